import copy
import dataclasses
import itertools
import re

import pytest
import torch

from basisconv.experiment.models import build_model
from basisconv import conv_layers
from basisconv.experiment.loader import TensorLoader
from basisconv.core.counting import basis_params_saved
from basisconv.core.evidence import paired_interval
from basisconv.core.selection import Selection, matched_subset, select_layers
from basisconv.core.sensitivity import (PROXIES, ProxyConfig, candidate_layers, finetune, layer_sensitivity, proxy_eval,
                                        recalibrate_bn)
from basisconv.experiment import search

X32 = (1, 3, 32, 32)  # one CIFAR example: the shape the tests' models are counted on


def _rows(spec, proxy="finetune"):
    """spec: {(layer, ratio): (delta_acc, params_saved)}"""
    return [{"layer": l, "ratio": r, "proxy": proxy, "delta_acc": d, "params_saved": p, "macs_saved": 10 * p,
             "time_saved_ms": p / 100} for (l, r), (d, p) in spec.items()]


SPEC = {("a", 0.25): (0.8, 300), ("a", 0.5): (0.2, 200), ("b", 0.25): (3.0, 900), ("b", 0.5): (1.0, 500),
        ("c", 0.25): (-0.1, 100), ("c", 0.5): (0.0, 50), ("d", 0.5): (0.4, 400)}


@pytest.mark.parametrize("max_loss", [0.0, 0.3, 0.5, 1.0, 2.0, 5.0, 100.0])
def test_budget_respected_one_ratio_per_layer(max_loss):
    sel = select_layers(_rows(SPEC), proxy="finetune", max_loss=max_loss, order=list("abcd"))
    assert sel.predicted_loss <= max_loss + 1e-9
    assert len(set(sel.layers)) == len(sel.layers)
    assert sel.predicted_loss == pytest.approx(sum(max(SPEC[(n, sel.ratios[n])][0], 0) for n in sel.layers))
    assert sel.params_saved == sum(SPEC[(n, sel.ratios[n])][1] for n in sel.layers)


def test_free_layers_first_and_most_saving_option():
    sel = select_layers(_rows(SPEC), proxy="finetune", max_loss=0.0, order=list("abcd"))
    assert sel.layers == ["c"] and sel.ratios == {"c": 0.25}  # no loss; 0.25 saves more than 0.5


def test_budget_monotone():
    saved = [select_layers(_rows(SPEC), proxy="finetune", max_loss=b).params_saved for b in (0, 0.5, 1, 2, 5)]
    assert saved == sorted(saved)


def test_deterministic_under_row_order():
    rows = _rows(SPEC)
    ref = select_layers(rows, proxy="finetune", max_loss=1.0, order=list("abcd"))
    for perm in itertools.islice(itertools.permutations(rows), 0, 200, 7):
        assert select_layers(list(perm), proxy="finetune", max_loss=1.0, order=list("abcd")) == ref


def test_ties_resolve_by_layer_order():
    tie = {("x", 0.5): (0.5, 100), ("y", 0.5): (0.5, 100)}
    assert select_layers(_rows(tie), proxy="finetune", max_loss=0.5, order=["x", "y"]).layers == ["x"]
    assert select_layers(_rows(tie), proxy="finetune", max_loss=0.5, order=["y", "x"]).layers == ["y"]


@pytest.mark.parametrize("objective", ["params", "macs", "time"])
def test_objectives(objective):
    sel = select_layers(_rows(SPEC), proxy="finetune", objective=objective, max_loss=1.0)
    assert sel.method["objective"] == objective and sel.predicted_loss <= 1.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(proxy="zero_shot"), r"no sensitivity rows for proxy 'zero_shot'; measured proxies: \['finetune'\]"),
    (dict(proxy="finetune", objective="flops"), "unknown objective 'flops'; valid choices: params, macs, time"),
    (dict(proxy="finetune", max_loss=-1), "max_loss must be a number >= 0"),
])
def test_selection_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_layers(_rows(SPEC), **kwargs)


@pytest.mark.parametrize("seed", range(5))
def test_paired_interval_covers_and_is_narrow(seed):
    g = torch.Generator().manual_seed(seed)
    control = torch.rand(2000, generator=g) < 0.6
    flip = torch.rand(2000, generator=g) < 0.05  # the conversion changes 5 % of the answers
    converted = control ^ flip
    lo, hi = paired_interval(control, converted)
    delta = 100 * (control.double().mean() - converted.double().mean()).item()
    assert lo <= delta <= hi
    assert hi - lo < 2.5  # an unpaired interval on 2000 images at 60 % is about 4.3 points wide


def test_paired_interval_identical_and_errors():
    c = torch.tensor([True, False, True, True])
    assert paired_interval(c, c) == (0.0, 0.0)
    with pytest.raises(ValueError, match="equal 1-D correctness vectors"):
        paired_interval(c, c[:3])


def test_candidates_default_excludes_stem_and_shortcuts():
    m = build_model("resnet18", width=4)
    names = candidate_layers(m, ["*"], ["conv1", "*downsample*"], [3])
    assert len(names) == 16 and "conv1" not in names and not any("downsample" in n for n in names)
    assert candidate_layers(m, ["layer4.*"], [], [1]) == ["layer4.0.downsample.0"]
    with pytest.raises(ValueError, match="no candidate layers"):
        candidate_layers(m, ["nothing*"])


@pytest.mark.parametrize("ratios", [[0.5], [0.25, 0.5], [0.25, 0.5, 0.75]])
def test_matched_subsets_land_near_the_target(ratios):
    m = build_model("resnet18", width=8)
    recs = conv_layers(m, X32)
    cands = candidate_layers(m, ["*"], ["conv1", "*downsample*"], [3])
    by = {r.name: r for r in recs}

    def saved(n, q):
        return basis_params_saved(by[n].in_channels, by[n].out_channels, 3, round(q * by[n].out_channels))
    biggest = max(saved(n, q) for n in cands for q in ratios)
    for target in (20_000, 60_000, 100_000):
        reachable = sum(saved(n, min(ratios)) for n in cands)
        for order, seed in (("random", 0), ("random", 1), ("random", 2), ("largest", 0)):
            s = matched_subset(recs, cands, target, ratios, order=order, seed=seed)
            assert set(s["ratios"]) == set(s["layers"]) and set(s["ratios"].values()) <= set(ratios)
            assert s["params_saved"] == sum(saved(n, q) for n, q in s["ratios"].items())
            if target <= reachable:  # never a whole big layer past (or short of) the target
                assert abs(s["params_saved"] - target) <= biggest / 2, (target, order, seed)
            assert s == matched_subset(recs, cands, target, ratios, order=order, seed=seed)  # deterministic
    big = matched_subset(recs, cands, 20_000, ratios, order="largest")
    assert "layer4.0.conv2" in big["layers"]  # the largest layer (first in that order) is taken first
    with pytest.raises(ValueError, match="unknown order 'smallest'; valid choices: random, largest"):
        matched_subset(recs, cands, 1, ratios, order="smallest")


def test_layer_sensitivity_rows(tmp_path):
    from basisconv.experiment.data import synthetic_cifar
    torch.manual_seed(0)
    m = build_model("resnet18", width=4)
    tr, va = synthetic_cifar("train", n_per_class=10), synthetic_cifar("val", n_per_class=5)
    seen = []
    rows = layer_sensitivity(m, ["layer1.0.conv1", "layer3.0.conv2"], [0.5], ["zero_shot", "finetune"],
                             search.train_batches(tr, 20, seed=0), search.correctness(va), X32,
                             ProxyConfig(bn_batches=1, finetune_steps=2), progress=False,
                             on_row=seen.append, done={("layer3.0.conv2", 0.5, "finetune")})
    assert len(rows) == 3 and seen == rows
    for r in rows:
        assert r["ci_low"] <= r["delta_acc"] <= r["ci_high"] and r["n_val"] == 50
        assert r["delta_acc"] == pytest.approx(100 * (r["control_val_acc"] - r["val_acc"]))
        c = 4 if r["layer"].startswith("layer1") else 16  # channels of that stage at width 4
        assert r["params_saved"] == basis_params_saved(c, c, 3, r["rank"])
        assert r["macs_saved"] > 0 and r["seconds"] > 0


@pytest.fixture(scope="module")
def tiny():
    """A width-4 ResNet18 fitted for a few steps (so accuracies differ from chance) and tiny synthetic data."""
    from basisconv.experiment.train import TrainConfig
    from basisconv.experiment.data import synthetic_cifar
    from basisconv.experiment.train import train
    torch.manual_seed(0)
    tr, va = synthetic_cifar("train", n_per_class=10), synthetic_cifar("val", n_per_class=5)
    m = build_model("resnet18", width=4)
    train(m, tr, va, TrainConfig(epochs=2, batch_size=20, lr=0.05, warmup_epochs=0), progress=False)
    return m.eval(), tr, va


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_every_proxy_scores_control_and_converted(tiny, proxy):
    """Each registered proxy: the control (nothing converted) and a converted model evaluate to finite accuracies,
    the proxy leaves finite weights and BN statistics, and the caller's model is untouched."""
    m, tr, va = tiny
    before = {k: v.clone() for k, v in m.state_dict().items()}
    cfg = ProxyConfig(bn_batches=2, finetune_steps=3)
    for layers in ([], ["layer1.0.conv1", "layer2.1.conv2"]):
        net, correct = proxy_eval(m, layers, 0.5, proxy, search.train_batches(tr, 20, seed=cfg.seed),
                                  search.correctness(va), cfg)
        assert net is not m and not net.training
        assert correct.shape == (50,) and correct.dtype == torch.bool
        assert all(torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point())
        assert sum(type(mod).__name__ == "BasisConv2d" for mod in net.modules()) == len(layers)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_proxy_is_deterministic(tiny, proxy):
    m, tr, va = tiny
    cfg = ProxyConfig(init="random", bn_batches=1, finetune_steps=2, seed=3)
    batches, score = search.train_batches(tr, 20, seed=3), search.correctness(va)
    a = proxy_eval(m, ["layer3.0.conv1"], 0.25, proxy, batches, score, cfg)
    b = proxy_eval(m, ["layer3.0.conv1"], 0.25, proxy, batches, score, cfg)
    assert torch.equal(a[1], b[1])
    assert all(torch.equal(x, y) for x, y in zip(a[0].state_dict().values(), b[0].state_dict().values()))


def test_zero_shot_is_bn_recalibration(tiny):
    """``zero_shot`` changes only BatchNorm running statistics, exactly as ``recalibrate_bn`` does."""
    m, tr, va = tiny
    cfg = ProxyConfig(bn_batches=2, seed=1)
    net, _ = proxy_eval(m, [], 1.0, "zero_shot", search.train_batches(tr, 20, seed=1), search.correctness(va), cfg)
    ref = copy.deepcopy(m)
    recalibrate_bn(ref, TensorLoader(*tr, 20, train=True, seed=1), 2)
    assert all(torch.equal(x, y) for x, y in zip(net.state_dict().values(), ref.state_dict().values()))
    params = dict(m.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in net.named_parameters())


@pytest.mark.parametrize("kwargs,match", [
    (dict(init="pca"), "unknown init 'pca'; valid choices: qr, svd, random"),
    (dict(coeff="diag"), "unknown coeff 'diag'; valid choices: reduced, full"),
    (dict(bn_batches=0), "bn_batches must be a positive int, got 0"),
    (dict(bn_batches=2.5), "bn_batches must be a positive int, got 2.5"),
    (dict(finetune_steps=True), "finetune_steps must be a positive int, got True"),
    (dict(finetune_lr=0), "finetune_lr must be a finite number > 0, got 0"),
    (dict(finetune_lr=float("inf")), "finetune_lr must be a finite number > 0, got inf"),
    (dict(seed=-1), "seed must be an int >= 0, got -1"),
])
def test_proxy_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        ProxyConfig(**kwargs)


def test_proxy_config_defaults_and_frozen():
    cfg = ProxyConfig()
    assert (cfg.init, cfg.coeff, cfg.bn_batches, cfg.finetune_steps, cfg.finetune_lr, cfg.seed) == \
        ("qr", "reduced", 20, 100, 0.01, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_finetune_control_is_the_zero_shot_control(tiny):
    """``finetune`` trains only basis layers: with nothing converted its control equals ``zero_shot``'s exactly
    (issue 21: the all-parameter fine-tune moved the control 9 points away from the baseline)."""
    m, tr, va = tiny
    cfg = ProxyConfig(bn_batches=2, finetune_steps=3, finetune_lr=0.5, seed=2)
    nets = {p: proxy_eval(m, [], 1.0, p, search.train_batches(tr, 20, seed=2), search.correctness(va), cfg)
            for p in ("zero_shot", "finetune", "finetune_all")}
    z, f, a = (nets[p][0].state_dict() for p in ("zero_shot", "finetune", "finetune_all"))
    assert all(torch.equal(z[k], f[k]) for k in z)
    assert torch.equal(nets["zero_shot"][1], nets["finetune"][1])
    assert not all(torch.equal(z[k], a[k]) for k in z)  # the all-parameter steps did move it


def test_finetune_trains_only_the_converted_layer(tiny):
    m, tr, va = tiny
    cfg = ProxyConfig(bn_batches=1, finetune_steps=3, finetune_lr=0.1, seed=0)
    net, _ = proxy_eval(m, ["layer2.0.conv1"], 0.5, "finetune", search.train_batches(tr, 20, seed=0),
                        search.correctness(va), cfg)
    ref = dict(m.named_parameters())
    moved = {n for n, p in net.named_parameters() if n not in ref or not torch.equal(p, ref[n])}
    assert moved and all(n.startswith("layer2.0.conv1.") for n in moved), moved
    assert all(p.requires_grad for p in net.parameters())  # flags restored after the steps


def test_finetune_without_parameters_is_refused(tiny):
    m, tr, _ = tiny
    with pytest.raises(ValueError, match="finetune: no parameters to train"):
        finetune(copy.deepcopy(m), TensorLoader(*tr, 20, train=True, seed=0), 1, 0.1, params=[])


def test_unknown_proxy_fails_before_compute():
    def never(*a, **k):
        pytest.fail("computed before validating")
    m = build_model("resnet18", width=4)
    match = "unknown proxy 'x'; valid choices: zero_shot, finetune, finetune_all"
    with pytest.raises(ValueError, match=match):
        layer_sensitivity(m, ["layer1.0.conv1"], [0.5], ["zero_shot", "x"], never, never, X32, ProxyConfig())
    with pytest.raises(ValueError, match=match):
        proxy_eval(m, [], 1.0, "x", never, never, ProxyConfig())
    with pytest.raises(TypeError, match="cfg must be a ProxyConfig, got dict"):
        layer_sensitivity(m, ["layer1.0.conv1"], [0.5], ["zero_shot"], never, never, X32, {"bn_batches": 1})
    with pytest.raises(TypeError, match="evaluate must be a callable, got tuple"):
        layer_sensitivity(m, ["layer1.0.conv1"], [0.5], ["zero_shot"], never, (1, 2), X32, ProxyConfig())


def test_selection_converts_with_its_ratios():
    m = build_model("resnet18", width=4)
    sel = select_layers(_rows({("layer1.0.conv1", 0.25): (0.1, 30), ("layer2.0.conv2", 0.5): (0.2, 60)}),
                        proxy="finetune", max_loss=1.0)
    assert isinstance(sel, Selection) and sel.to_dict()["ratios"] == sel.ratios
    from basisconv import BasisConv2d, convert
    net = convert(m, sel)
    ranks = {n: mod.rank for n, mod in net.named_modules() if isinstance(mod, BasisConv2d)}
    assert ranks == {"layer1.0.conv1": 1, "layer2.0.conv2": 4}  # round(0.25 * 4), round(0.5 * 8)


def test_evaluate_must_return_per_example_correctness(tiny):
    m, tr, va = tiny
    with pytest.raises(ValueError, match="evaluate\\(model\\) must return a 1-D tensor of per-example correctness"):
        layer_sensitivity(m, ["layer1.0.conv1"], [0.5], ["zero_shot"], search.train_batches(tr, 20, seed=0),
                          lambda net: 0.5, X32, ProxyConfig(bn_batches=1), progress=False)


def _sweep_outputs(model, tr, *, time_layer=None, done=(), shard=(0, 1)):
    """A small real sweep; ``{job: (row without timings, logits of its converted model)}`` and the controls' logits.

    The evaluation keeps every model's logits on fixed random inputs: they change with any change of the model, where
    the rows' accuracies on 50 images might not."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 3, 32, 32, generator=g), torch.randint(0, 10, (50,), generator=g)
    logits = []

    def evaluate(net):
        with torch.no_grad():
            logits.append(net(x))
        return logits[-1].argmax(1) == y

    out, controls, pending = {}, {}, set(done)

    def on_row(r):
        # a job scores zero_shot, then finetune on the way (one conversion), or the one proxy a resumed job lacks;
        # its rows come after its evaluations: the job's logits are the last ones, and before them the process's
        # first job scored the controls the same way ([0] is the baseline's own score)
        job = (r["layer"], r["ratio"])
        chained = r["proxy"] == "finetune" or (*job, "finetune") not in pending
        i = -2 if r["proxy"] == "zero_shot" and chained else -1
        row = {k: v for k, v in r.items() if k not in ("seconds", "time_saved_ms")}
        out[(*job, r["proxy"])] = (row, logits[i])
        pending.add((*job, r["proxy"]))
        if r["proxy"] == "finetune" or not chained:  # the job's last row
            n = 2 if r["proxy"] == "finetune" and (*job, "zero_shot") not in done else 1
            if len(logits) == 1 + 2 * n:
                controls.update(zip(("zero_shot", "finetune")[2 - n:], logits[1:1 + n]))
            del logits[1:]

    layer_sensitivity(model, ["layer1.0.conv1", "layer2.0.conv2", "layer3.1.conv1"], [0.5], ["zero_shot", "finetune"],
                      search.train_batches(tr, 20, seed=0), evaluate, X32, ProxyConfig(bn_batches=2, finetune_steps=3),
                      time_layer=time_layer, done=set(done), on_row=on_row, progress=False, shard=shard)
    return out, controls


def _mutating_timer(conv, basis, rec):
    """A timer that changes what it is given, as ``Module.to(memory_format=...)`` does, and worse (weights)."""
    conv.to(memory_format=torch.channels_last)
    with torch.no_grad():
        conv.weight.mul_(0.5)
        basis.weight.mul_(0.5)
    return 0.0


def test_sweep_rows_do_not_depend_on_earlier_jobs(tiny):
    """A job's row is the same whether the process ran the jobs before it or not: a straight sweep, one resumed
    after its first half, and two shards merged give the same rows and the same converted models, also with a
    timer that modifies the layers it times (the sweep hands it copies). Before that fix, the stage's timer put the
    baseline's layers into channels_last in place, and a resumed cpu-full sweep differed in 7 of 64 rows."""
    m, tr, _ = tiny
    ref, ref_ctrl = _sweep_outputs(m, tr)
    assert len(ref) == 6 and set(ref_ctrl) == {"zero_shot", "finetune"}
    jobs = list(ref)
    straight, ctrl = _sweep_outputs(m, tr, time_layer=_mutating_timer)
    resumed, ctrl_resumed = _sweep_outputs(m, tr, time_layer=_mutating_timer, done=jobs[:3])
    merged, ctrl_shards = {}, []
    for k in range(2):
        rows, c = _sweep_outputs(m, tr, time_layer=_mutating_timer, shard=(k, 2))
        merged.update(rows)
        ctrl_shards.append(c)
    assert set(resumed) == set(jobs[3:])
    for name, got in [("straight", straight), ("merged shards", merged), ("resumed", {**straight, **resumed})]:
        assert set(got) == set(ref), name
        for job in jobs:
            assert got[job][0] == ref[job][0], (name, job)
            assert torch.equal(got[job][1], ref[job][1]), (name, job)
    for c in (ctrl, ctrl_resumed, *ctrl_shards):  # every process's controls: the same models
        assert c and all(torch.equal(v, ref_ctrl[p]) for p, v in c.items())


def test_layer_timer_leaves_its_layers_as_they_were():
    """``make_layer_timer`` times copies: the layers keep memory format, values, gradients and class."""
    from basisconv.perf.bench import make_layer_timer
    from basisconv.core.basis import BasisConv2d
    net = build_model("resnet18", width=4).eval()
    records = {r.name: r for r in conv_layers(net, X32)}
    # a 3x3 conv, and a 1x1 stride-2 one with 4 input channels, which the oneDNN #6035 guard would swap for its class
    for name, rank in [("layer2.0.conv2", 4), ("layer2.0.downsample.0", 4)]:
        conv = net.get_submodule(name)
        basis = BasisConv2d.from_conv(conv, rank=rank)
        if type(conv) is not torch.nn.Conv2d:  # build_model guards its own convs: undo it, as a user's model has none
            conv.__class__ = torch.nn.Conv2d
        before = [(t, t.clone(), t.stride()) for t in (*conv.parameters(), *basis.parameters())]
        saved = make_layer_timer(2, min_run_time=0.01)(conv, basis, records[name])
        assert isinstance(saved, float)
        for t, v, stride in before:
            assert torch.equal(t, v) and t.stride() == stride and t.grad is None
        assert type(conv) is torch.nn.Conv2d and type(basis) is BasisConv2d
