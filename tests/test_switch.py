"""The paper's switch as a function for any training loop (basisconv.core.switch)."""
import pytest
import torch
import torch.nn as nn

import basisconv as bc


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def _step(model, opt):
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 4, (6,))
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_switch_keeps_state_groups_and_leaves_the_inputs():
    net = _net()
    head = [p for n, p in net.named_parameters() if n.startswith("6.")]
    body = [p for n, p in net.named_parameters() if not n.startswith("6.")]
    opt = torch.optim.SGD([{"params": body, "lr": 0.1}, {"params": head, "lr": 0.01}], momentum=0.9)
    _step(net, opt)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    new, new_opt = bc.switch(net, opt, ["2"], ratio=0.5)
    assert isinstance(new.get_submodule("2"), bc.BasisConv2d) and type(new_opt) is torch.optim.SGD
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the input model is untouched
    names = {id(p): n for n, p in new.named_parameters()}
    groups = [{names[id(p)] for p in g["params"]} for g in new_opt.param_groups]
    assert groups[1] == {"6.weight", "6.bias"} and {"0.weight", "0.bias"} <= groups[0]
    assert any(n.startswith("2.") for n in groups[0]) and [g["lr"] for g in new_opt.param_groups] == [0.1, 0.01]
    old_state = {n: opt.state[p]["momentum_buffer"] for n, p in net.named_parameters()}
    for n, p in new.named_parameters():
        if n in old_state and old_state[n].shape == p.shape:
            assert torch.equal(new_opt.state[p]["momentum_buffer"], old_state[n])  # momentum kept
        else:
            assert p not in new_opt.state  # a new basis parameter starts without momentum
    _step(new, new_opt)


def test_frozen_parameters_stay_frozen():
    net = _net()
    opt = torch.optim.SGD(net[6].parameters(), lr=0.1)  # only the head is trained
    new, new_opt = bc.switch(net, opt, ["2"], ratio=0.5)
    trained = {id(p) for g in new_opt.param_groups for p in g["params"]}
    assert trained == {id(new[6].weight), id(new[6].bias)}


def test_switch_applies_a_selection_and_refuses_a_non_optimizer():
    net = _net()
    sel = bc.Selection(layers=["2"], ratios={"2": 0.25})
    new, _ = bc.switch(net, torch.optim.Adam(net.parameters()), sel)
    assert new.get_submodule("2").rank == 2
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer, got dict"):
        bc.switch(net, {}, ["2"])
