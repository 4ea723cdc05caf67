"""The public API on models no one here wrote: the README's example as written (torchvision ResNet18 with a
DataLoader), and the same calls on a timm model. No CIFAR assumption: 48x48 and 64x64 inputs, the caller's data."""
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import basisconv as bc

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Apply it to your own model"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.timeout(300)
def test_readme_example_runs_as_written(capsys):
    pytest.importorskip("torchvision")
    scope = {}
    exec(compile(readme_example(), "README.md (Apply it to your own model)", "exec"), scope)
    sel, model, deployed = scope["sel"], scope["model"], scope["deployed"]
    assert isinstance(sel, bc.Selection) and sel.layers, "the example's budget must select something"
    assert {n for n, m in model.named_modules() if isinstance(m, bc.BasisConv2d)} == set(sel.layers)
    assert not any(isinstance(m, bc.BasisConv2d) for m in deployed.modules())
    x = scope["val_x"][:4]
    with torch.no_grad():
        assert torch.allclose(deployed(x), model.eval()(x), atol=1e-4)
    rows = scope["rows"]
    assert len(rows) == len(scope["layers"]) * 2 and all(r["n_val"] == 64 for r in rows)
    assert all(r["ci_low"] <= r["delta_acc"] <= r["ci_high"] for r in rows)


@pytest.mark.timeout(300)
def test_same_api_on_a_timm_model():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet18d", pretrained=False, num_classes=7)
    x, y = torch.randn(96, 3, 64, 64), torch.randint(0, 7, (96,))
    batches = lambda: [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]  # a factory: fresh per job
    val_x, val_y = x[64:], y[64:]

    def evaluate(m):
        with torch.no_grad():
            return m(val_x).argmax(1) == val_y
    layers = bc.candidate_layers(model, include=["layer3.*"])
    recs = {r.name: r for r in bc.conv_layers(model, (1, 3, 64, 64))}
    assert {recs[n].input_hw for n in layers} <= {(8, 8), (4, 4)}  # 64x64 inputs, layer3: stride 8 or 16
    rows = bc.layer_sensitivity(model, layers, [0.5], ["zero_shot", "finetune"], batches, evaluate,
                                (1, 3, 64, 64), bc.ProxyConfig(bn_batches=2, finetune_steps=2), progress=False)
    assert len(rows) == 2 * len(layers) and all(r["macs_saved"] > 0 for r in rows)
    sel = bc.select_layers(rows, proxy="zero_shot", max_loss=100.0)
    assert sel.layers == layers  # an unbounded budget takes every layer that saves something
    small = bc.convert(model, sel)
    assert bc.count_params(small) < bc.count_params(model)
    assert bc.count_macs(small, (1, 3, 64, 64)) < bc.count_macs(model, (1, 3, 64, 64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(x[:8]), y[:8])
    loss.backward()
    opt.step()
    switched, opt2 = bc.switch(model, opt, sel)
    assert type(opt2) is torch.optim.Adam
    moments = {n: opt2.state[p] for n, p in switched.named_parameters() if p in opt2.state}
    assert "fc.weight" in moments and "exp_avg" in moments["fc.weight"]  # a surviving parameter kept its state
    F.cross_entropy(switched(x[:8]), y[:8]).backward()
    opt2.step()
    folded = bc.fold(switched.eval())
    with torch.no_grad():
        assert torch.allclose(folded(val_x[:4]), switched(val_x[:4]), atol=1e-4)
