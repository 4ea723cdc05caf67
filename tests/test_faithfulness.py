import math

import pytest
import torch

from basisconv.experiment.models import build_model
from basisconv.experiment.data import synthetic_cifar
from basisconv.core import evidence
from basisconv.experiment import faithfulness as fa
from basisconv.core.sensitivity import ProxyConfig, candidate_layers, layer_sensitivity
from basisconv.experiment import search

NAMES = [f"l{i}" for i in range(16)]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 15, 16, 40])
def test_sample_layers_spread_and_ordered(n):
    got = fa.sample_layers(NAMES, n)
    assert len(got) == (16 if n <= 0 or n >= 16 else n)
    assert got == [x for x in NAMES if x in got]  # model order, no duplicates
    if 2 <= n < 16:
        assert got[0] == "l0" and got[-1] == "l15"  # covers the first and the last stage


@pytest.mark.parametrize("n", [0, 1, 3, 10, 100])
def test_sample_pairs_distinct_deterministic(n):
    layers = NAMES[:5]
    pairs = fa.sample_pairs(layers, n, seed=3)
    assert pairs == fa.sample_pairs(layers, n, seed=3)
    assert len(pairs) == min(n, 10) and len(set(pairs)) == len(pairs)
    assert all(layers.index(a) < layers.index(b) for a, b in pairs)


def test_sample_errors():
    with pytest.raises(ValueError, match="number of layers must be an int"):
        fa.sample_layers(NAMES, 2.5)
    with pytest.raises(ValueError, match="number of pairs must be an int >= 0, got -1"):
        fa.sample_pairs(NAMES, -1)


@pytest.mark.parametrize("x,y,want", [
    ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
    ([1, 2, 3, 4], [1, 4, 9, 16], 1.0),          # monotone, not linear: rank correlation is still 1
    ([1, 2, 2, 3], [1, 2, 2, 3], 1.0),           # ties get average ranks
    ([1, 2, 3, 4, 5], [2, 1, 4, 3, 5], 0.8),
])
def test_spearman(x, y, want):
    assert evidence.spearman(x, y) == pytest.approx(want)


def test_spearman_undefined():
    assert math.isnan(evidence.spearman([1, 2], [2, 1]))
    assert math.isnan(evidence.spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equal lengths"):
        evidence.spearman([1, 2, 3], [1, 2])


def test_retrain_config_takes_optimiser_settings():
    train = {"epochs": 40, "batch_size": 64, "lr": 0.2, "momentum": 0.8, "weight_decay": 1e-3, "schedule": "onecycle",
             "warmup_epochs": 2, "seeds": [0, 1], "device": "auto", "threads": 0, "channels_last": False}
    cfg = fa.retrain_config(train, epochs=2, lr=0.01, seed=5)
    assert (cfg.epochs, cfg.lr, cfg.schedule, cfg.warmup_epochs, cfg.seed) == (2, 0.01, "cosine", 0, 5)
    assert (cfg.batch_size, cfg.momentum, cfg.weight_decay, cfg.channels_last) == (64, 0.8, 1e-3, False)


def test_additivity_table():
    t = fa.additivity_table({"a": 0.5, "b": 1.0, "c": -0.2}, {("a", "b"): 2.0, ("b", "c"): 0.8})
    assert t.interaction.tolist() == pytest.approx([0.5, 0.0])
    assert t.sum_of_singles.tolist() == pytest.approx([1.5, 0.8])


def test_measure_and_summarise_on_a_tiny_model():
    """The whole check on a tiny ResNet: every job measured once, resume skips, the summary is consistent."""
    torch.manual_seed(0)
    model = build_model("resnet18", width=4)
    tr, va = synthetic_cifar("train", n_per_class=8), synthetic_cifar("val", n_per_class=4)
    layers = fa.sample_layers(candidate_layers(model, ["*"], ["conv1", "*downsample*"], [3]), 3)
    pairs = fa.sample_pairs(layers, 2, seed=0)
    proxy_cfg = ProxyConfig(bn_batches=1, finetune_steps=2, seed=0)
    sens = layer_sensitivity(model, layers, [0.5], ["zero_shot", "finetune"], search.train_batches(tr, 20, seed=0),
                             search.correctness(va), (1, 3, 32, 32), proxy_cfg, progress=False)
    cfg = fa.retrain_config({"batch_size": 20, "channels_last": False}, epochs=1, lr=0.01, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    rows = fa.measure(model, layers, pairs, 0.5, tr, va, cfg, proxies=["zero_shot", "finetune"], proxy_val_data=va,
                      proxy_cfg=proxy_cfg, proxy_batch_size=20, progress=False, on_row=seen.append)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the baseline is not trained
    assert seen == rows and len(rows) == 1 + len(layers) + len(pairs) + 2 * len(pairs)
    assert all(0 <= r["val_acc"] <= 1 and r["n_val"] == 40 and r["seconds"] > 0 for r in rows)
    # a resumed call with everything done measures nothing
    assert fa.measure(model, layers, pairs, 0.5, tr, va, cfg, proxies=["zero_shot", "finetune"], proxy_val_data=va,
                      proxy_cfg=proxy_cfg, proxy_batch_size=20, progress=False,
                      done={(r["method"], tuple(r["layers"])) for r in rows}) == []
    table, add, summary = fa.summarise(rows, sens, 0.5, layers, pairs, ["zero_shot", "finetune"])
    assert table.layer.tolist() == layers and {"real_drop", "zero_shot_drop", "finetune_drop"} <= set(table)
    control = next(r["val_acc"] for r in rows if r["method"] == "real" and not r["layers"])
    for r in rows:
        if r["method"] == "real" and len(r["layers"]) == 1:
            assert table.set_index("layer").real_drop[r["layers"][0]] == pytest.approx(100 * (control - r["val_acc"]))
    assert sorted(add.method.unique()) == ["finetune", "real", "zero_shot"] and len(add) == 3 * len(pairs)
    assert summary["n_layers"] == 3 and summary["n_pairs"] == 2
    rho = summary["spearman_finetune"]
    assert math.isnan(rho) or -1 <= rho <= 1


def test_summarise_needs_control_and_swept_ratio():
    rows = [{"method": "real", "layers": ["a"], "val_acc": 0.5, "seconds": 1.0}]
    with pytest.raises(ValueError, match="no control run"):
        fa.summarise(rows, [], 0.5, ["a"], [], ["finetune"])
    rows.append({"method": "real", "layers": [], "val_acc": 0.6, "seconds": 1.0})
    sens = [{"layer": "a", "ratio": 0.25, "proxy": "finetune", "delta_acc": 1.0, "control_val_acc": 0.6}]
    with pytest.raises(ValueError, match="sensitivity rows at ratio 0.5 missing"):
        fa.summarise(rows, sens, 0.5, ["a"], [], ["finetune"])


def test_split_measurements_equal_one_worker():
    torch.manual_seed(0)
    model = build_model("resnet18", width=4)
    tr, va = synthetic_cifar("train", n_per_class=6), synthetic_cifar("val", n_per_class=3)
    layers, pairs = ["layer1.0.conv1", "layer4.1.conv2"], [("layer1.0.conv1", "layer4.1.conv2")]
    cfg = fa.retrain_config({"batch_size": 20, "channels_last": False}, epochs=1, lr=0.01, seed=0)
    kw = dict(proxies=["zero_shot"], proxy_val_data=va, proxy_cfg=ProxyConfig(bn_batches=1, seed=0), proxy_batch_size=20,
              progress=False)
    one = fa.measure(model, layers, pairs, 0.5, tr, va, cfg, **kw)
    split = [r for k in range(3) for r in fa.measure(model, layers, pairs, 0.5, tr, va, cfg, shard=(k, 3), **kw)]

    def strip(rows):
        return sorted((r["method"], tuple(r["layers"]), r["val_acc"]) for r in rows)
    assert strip(split) == strip(one) and len(one) == 1 + 2 + 1 + 1
    with pytest.raises(ValueError, match=r"shard must be \(k, n\)"):
        fa.measure(model, layers, pairs, 0.5, tr, va, cfg, shard=(1, 1), **kw)


def test_measure_validates_before_retraining(monkeypatch):
    """A bad proxy name or config fails at once, not after the retraining jobs that come first."""
    monkeypatch.setattr(fa, "train", lambda *a, **k: pytest.fail("retrained before validating"))
    model = build_model("resnet18", width=4)
    va = synthetic_cifar("val", n_per_class=2)
    cfg = fa.retrain_config({"batch_size": 20}, epochs=1, lr=0.01, seed=0)
    with pytest.raises(ValueError, match="unknown proxy 'x'; valid choices: zero_shot, finetune"):
        fa.measure(model, ["layer1.0.conv1"], [], 0.5, va, va, cfg, proxies=["x"], proxy_val_data=va, progress=False)
    with pytest.raises(TypeError, match="proxy_cfg must be a ProxyConfig or None, got dict"):
        fa.measure(model, ["layer1.0.conv1"], [], 0.5, va, va, cfg, proxy_cfg={"init": "svd"}, progress=False)


@pytest.mark.parametrize("proxy_cfg,init,coeff", [(None, "qr", "reduced"),
                                                  (ProxyConfig(init="svd", coeff="full"), "svd", "full")])
def test_retraining_converts_with_proxy_cfg(monkeypatch, proxy_cfg, init, coeff):
    """The retrained conversions use proxy_cfg's init/coeff (ProxyConfig() when None), like the proxy jobs."""
    seen = []

    def fake_retrain(model, layers, ratio, train_data, val_data, cfg, *, init, coeff, device, progress=False):
        seen.append((tuple(layers), init, coeff))
        return {"acc": 0.5, "n": 2, "correct": torch.tensor([True, False])}
    monkeypatch.setattr(fa, "retrain_eval", fake_retrain)
    va = synthetic_cifar("val", n_per_class=2)
    cfg = fa.retrain_config({"batch_size": 20}, epochs=1, lr=0.01, seed=0)
    rows = fa.measure(build_model("resnet18", width=4), ["layer1.0.conv1"], [], 0.5, va, va, cfg,
                      proxy_cfg=proxy_cfg, progress=False)
    assert len(rows) == 2 and seen == [((), init, coeff), (("layer1.0.conv1",), init, coeff)]


def test_bootstrap_spearman_known_answers():
    x = list(range(12))
    assert evidence.bootstrap_spearman(x, [2 * v + 1 for v in x]) == pytest.approx((1.0, 1.0))  # monotone: always 1
    assert evidence.bootstrap_spearman(x, [-v for v in x]) == pytest.approx((-1.0, -1.0))
    lo, hi = evidence.bootstrap_spearman(x, [5, 1, 9, 3, 11, 0, 7, 2, 10, 4, 8, 6], seed=3)
    assert lo < 0 < hi  # an unrelated order: the interval covers 0
    assert evidence.bootstrap_spearman(x, [5, 1, 9, 3, 11, 0, 7, 2, 10, 4, 8, 6], seed=3) == (lo, hi)  # seeded
    few = evidence.bootstrap_spearman([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])
    many = evidence.bootstrap_spearman(list(range(40)), [v + (3 if v % 2 else -3) for v in range(40)])
    assert few[1] - few[0] > many[1] - many[0]  # more layers, narrower interval
    assert all(math.isnan(v) for v in evidence.bootstrap_spearman([1, 2], [2, 1]))
    with pytest.raises(ValueError, match="equal lengths"):
        evidence.bootstrap_spearman([1, 2, 3], [1, 2])


@pytest.mark.parametrize("n", [1, 7, 8, 9, 100, 5001])
def test_pack_correct_round_trip(n):
    c = torch.rand(n, generator=torch.Generator().manual_seed(n)) > 0.5
    assert torch.equal(fa.unpack_correct(fa.pack_correct(c), n), c)


def test_summarise_gives_paired_real_intervals():
    n = 200
    ctrl = torch.ones(n, dtype=torch.bool)
    worse = ctrl.clone()
    worse[:20] = False  # 10 points worse on the same images
    rows = [{"method": "real", "layers": [], "val_acc": 1.0, "n_val": n, "correct": fa.pack_correct(ctrl),
             "seconds": 1.0},
            {"method": "real", "layers": ["a"], "val_acc": 0.9, "n_val": n, "correct": fa.pack_correct(worse),
             "seconds": 1.0},
            {"method": "real", "layers": ["b"], "val_acc": 0.95, "n_val": n, "seconds": 1.0}]  # an old row
    sens = [{"layer": l, "ratio": 0.5, "proxy": "finetune", "delta_acc": d, "control_val_acc": 0.9, "ci_low": d - 1,
             "ci_high": d + 1} for l, d in (("a", 3.0), ("b", 1.0))]
    table, _, summary = fa.summarise(rows, sens, 0.5, ["a", "b"], [], ["finetune"])
    t = table.set_index("layer")
    assert t.real_drop["a"] == pytest.approx(10.0) and t.real_ci_low["a"] < 10 < t.real_ci_high["a"]
    assert t.real_ci_low["a"] > 0  # 20 of 200 images lost: clearly a drop
    assert math.isnan(t.real_ci_low["b"])  # no per-image correctness: no interval, not a made-up one
    assert math.isnan(summary["spearman_finetune_ci_low"])  # two layers: no correlation, no interval
