import math
import re

import pytest
import torch

from basisconv import BasisConv2d, convert
from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED, t_quantile
from basisconv.experiment.models import build_model
from basisconv.perf import analysis, bench


CIFAR = dict(input_shape=(3, 32, 32), num_classes=10)  # the tests' models: CIFAR ResNets


@pytest.fixture(scope="module")
def switched():
    torch.manual_seed(0)
    net = build_model("resnet18", width=4).eval()
    return net, convert(net, ["layer1.0.conv1", "layer3.1.conv2"], ratio={"layer1.0.conv1": 0.5,
                                                                          "layer3.1.conv2": 0.25}, init="qr")


def test_tune_forms_keeps_outputs_and_reports_choices(switched):
    _, model = switched
    train_model, inference_model, rows = bench.tune_forms(model, batch_size=4, input_shape=(3, 32, 32), memory_format="contiguous",
                                                          min_run_time=0.01)
    assert [r["layer"] for r in rows] == ["layer1.0.conv1", "layer3.1.conv2"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model.eval()(x)
        assert torch.allclose(train_model.eval()(x), ref, atol=1e-5)
        assert torch.allclose(inference_model.eval()(x), ref, atol=1e-5)
    for r in rows:
        assert r["train_impl"] in ("cat", "dense_mix") and r["inference_form"] in ("basis", "folded")
        assert train_model.get_submodule(r["layer"]).impl == r["train_impl"]
        kind = torch.nn.Conv2d if r["inference_form"] == "folded" else BasisConv2d
        assert type(inference_model.get_submodule(r["layer"])) is kind
        assert r["train_impl"] == min(("cat", "dense_mix"), key=lambda k: r[f"fwd+bwd_ms_{k}"])
    assert all(isinstance(m, BasisConv2d) and m.impl == "auto" for n, m in model.named_modules()
               if n in ("layer1.0.conv1", "layer3.1.conv2"))  # the input model is untouched


def test_bench_models_modes_and_reference(switched):
    net, model = switched
    rows = bench.bench_models({"baseline": net, "basis": model, "basis_inf": model}, **CIFAR, batch_size=2,
                              memory_format="contiguous", min_run_time=0.01, modes={"basis_inf": ("inference",)})
    assert [(r["model"], r["mode"]) for r in rows] == [("baseline", "train_step"), ("baseline", "inference"),
                                                       ("basis", "train_step"), ("basis", "inference"),
                                                       ("basis_inf", "inference")]
    assert rows[0]["measured_speedup"] == 1.0 and rows[0]["theoretical_speedup"] == 1.0
    assert rows[2]["theoretical_speedup"] > 1.0  # fewer MACs than the dense model
    for r in rows:
        assert r["median_ms"] > 0 and r["device"] == "cpu" and r["torch"] == torch.__version__
        # interleaved rounds (default 3): the row's median is the median of its round medians
        assert r["repeats"] == 3 and len(r["round_ms"]) == 3 and all(t > 0 for t in r["round_ms"])
        assert r["median_ms"] == sorted(r["round_ms"])[1]
        assert math.isfinite(r["speedup_low"]) and math.isfinite(r["speedup_high"])
        assert 0 < r["speedup_low"] <= r["speedup_geomean"] <= r["speedup_high"]
        assert "speedup_verdict" not in r  # decided where the claim is rendered, from the kept rounds
    for base in rows[:2]:  # the baseline against itself: s_r = 1 in every round
        assert base["speedup_low"] == base["speedup_high"] == 1.0


def test_bench_models_on_row_and_one_round(switched):
    net, model = switched
    seen = []
    rows = bench.bench_models({"baseline": net, "basis": model}, **CIFAR, batch_size=2, memory_format="contiguous",
                              min_run_time=0.01, repeats=1, on_row=seen.append)
    assert [(r["model"], r["mode"]) for r in rows] == [("baseline", "train_step"), ("baseline", "inference"),
                                                       ("basis", "train_step"), ("basis", "inference")]
    assert sorted(id(r) for r in seen) == sorted(id(r) for r in rows)  # every row once
    for r in rows:  # one round: a median, no interval
        assert r["repeats"] == 1 and r["round_ms"] == [r["median_ms"]]
        assert math.isnan(r["speedup_low"]) and math.isnan(r["speedup_high"])


@pytest.mark.parametrize("repeats", [0, -2, True, 2.0, "3"])
def test_bench_models_refuses_bad_repeats_before_timing(switched, monkeypatch, repeats):
    net, _ = switched

    def no_timing(*a, **k):
        raise AssertionError("timed before checking repeats")
    monkeypatch.setattr(bench, "time_call", no_timing)
    monkeypatch.setattr(bench, "synthetic_batch", no_timing)
    with pytest.raises(ValueError, match=f"repeats.*{re.escape(repr(repeats))}"):
        bench.bench_models({"baseline": net}, **CIFAR, batch_size=2, min_run_time=0.01, repeats=repeats)


def test_speedup_interval_known_answers():
    assert bench.speedup_interval([2, 2, 2], [1, 1, 1]) == (2.0, 2.0, 2.0)  # no spread: a point
    assert bench.speedup_interval([1.0, 1.0], [1.0, 1.0]) == (1.0, 1.0, 1.0)
    base, rounds = [10.0, 12.0, 11.0, 10.5], [8.0, 9.0, 9.5, 8.0]
    logs = [math.log(b / t) for b, t in zip(base, rounds)]  # by hand: log-scale paired t-interval
    m = sum(logs) / 4
    sd = math.sqrt(sum((v - m) ** 2 for v in logs) / 3)
    half = t_quantile(0.975, 3) * sd / 2
    mean, low, high = bench.speedup_interval(base, rounds)
    assert mean == pytest.approx(math.exp(m)) and low == pytest.approx(math.exp(m - half))
    assert high == pytest.approx(math.exp(m + half)) and low < mean < high
    assert t_quantile(0.975, 3) == pytest.approx(3.182446, abs=1e-5)  # the table value the interval uses
    _, low90, high90 = bench.speedup_interval(base, rounds, confidence=0.9)
    assert low < low90 < high90 < high  # a narrower interval at lower confidence
    # slower than the baseline: the interval lies below 1; swapping the roles inverts it
    _, slo, shi = bench.speedup_interval(rounds, base)
    assert slo == pytest.approx(1 / high) and shi == pytest.approx(1 / low) and shi < 1
    mean1, low1, high1 = bench.speedup_interval([3.0], [1.5])  # one round: the ratio, no interval
    assert mean1 == pytest.approx(2.0) and math.isnan(low1) and math.isnan(high1)
    with pytest.raises(ValueError, match="as many"):
        bench.speedup_interval([1.0, 2.0], [1.0])


def test_speedup_verdict_is_the_interval_against_1():
    """A speedup claim (faster than the baseline) is ``evidence.interval_verdict`` with bound 1."""
    from basisconv.core.evidence import interval_verdict
    assert interval_verdict(1.02, 1.3, 1.0) == SUPPORTED
    assert interval_verdict(0.7, 0.98, 1.0) == CONTRADICTED
    assert interval_verdict(0.95, 1.05, 1.0) == UNDECIDED
    assert interval_verdict(1.0, 1.0, 1.0) == UNDECIDED  # the baseline against itself
    assert interval_verdict(math.nan, math.nan, 1.0) == UNDECIDED  # one round: no interval


def _layer_row(t, m, variant="basis_reduced", layer="l", ratio=0.5, ms=1.0, precision="fp32"):
    return {"variant": variant, "pass": "fwd+bwd", "memory_format": "channels_last", "theoretical_speedup": t,
            "measured_speedup": m, "layer": layer, "ratio": ratio, "batch_size": 8, "median_ms": ms,
            "precision": precision}


def test_targets_from_rows():
    models = [{"model": "baseline", "mode": "train_step", "median_ms": 100.0, "measured_speedup": 1.0,
               "theoretical_speedup": 1.0, "batch_size": 8},
              {"model": "selected", "mode": "train_step", "median_ms": 60.0, "measured_speedup": 1.6,
               "theoretical_speedup": 2.0, "batch_size": 8},
              {"model": "selected_tuned", "mode": "train_step", "median_ms": 55.0, "measured_speedup": 1.85,
               "theoretical_speedup": 1.9, "batch_size": 8}]
    rows = [_layer_row(2.0, 1.8, layer="a"), _layer_row(3.0, 2.4, layer="b"), _layer_row(1.2, 0.9, layer="c")]
    tg = analysis.targets(rows, models, {"median_ms": 4.0}, {"trainer_overhead": 0.12})
    assert tg["precision"] == "fp32"
    assert tg["layers_fraction_of_theory"]["n_layers"] == 2 and tg["layers_fraction_of_theory"]["n_met"] == 1
    (miss,) = tg["layers_fraction_of_theory"]["misses"]  # b: 0.8 of theory; no kernel rows, so not measured
    assert miss["layer"] == "b" and miss["fraction"] == pytest.approx(0.8) and miss["limit"] == "not measured"
    assert tg["selected_train_step_fraction_of_theory"]["value"] == pytest.approx(0.8)
    assert tg["selected_tuned_train_step_fraction_of_theory"]["value"] == pytest.approx(1.85 / 1.9)  # its own theory
    assert tg["loader_fraction_of_step"] == {"target": "<= 0.05", "value": 0.04, "met": True}
    assert tg["trainer_overhead"]["met"] is False
    # rows of another precision are not this precision's targets
    other = analysis.targets([{**r, "precision": "bf16"} for r in rows] + rows[:1], models
                          + [{**m, "precision": "bf16"} for m in models], {"median_ms": 4.0},
                          {"trainer_overhead": 0.0}, precision="bf16")
    assert other["layers_fraction_of_theory"]["n_layers"] == 2 and other["precision"] == "bf16"


@pytest.mark.parametrize("kxk_ms, mix_ms, limit", [(1.5, 0.2, "kxk conv"), (0.6, 1.2, "1x1 mix"),
                                                    (0.5, 0.1, "form overhead")])
def test_layer_misses_name_the_limiting_step(kxk_ms, mix_ms, limit):
    # dense 4 ms; the basis layer 2 ms (2x of a 4x theory: 0.5); kxk has 1/5 of the dense MACs, the mix 1/20
    rows = [_layer_row(4.0, 2.0, ms=2.0), _layer_row(5.0, 4.0 / kxk_ms, "basis_kxk", ms=kxk_ms),
            _layer_row(20.0, 4.0 / mix_ms, "basis_mix", ms=mix_ms)]
    (miss,) = analysis.layer_misses(rows, 0.85)
    assert miss["fraction"] == pytest.approx(0.5)
    assert miss["floor_fraction"] == pytest.approx(4.0 / (kxk_ms + mix_ms) / 4.0)
    assert miss["excess_ms"] == pytest.approx({"kxk conv": kxk_ms - 0.8, "1x1 mix": mix_ms - 0.2})
    assert miss["overhead_ms"] == pytest.approx(2.0 - kxk_ms - mix_ms)
    assert miss["limit"] == limit


def test_kernel_floors_known_answer():
    """t_dense / (t_kxk + t_mix) per basis layer and key; a layer whose kernels were not both timed has none."""
    rows = [_layer_row(4.0, 2.0, ms=2.0), _layer_row(5.0, 4.0, "basis_kxk", ms=1.0),
            _layer_row(20.0, 8.0, "basis_mix", ms=0.5), _layer_row(4.0, 2.0, ms=2.0, precision="bf16"),
            _layer_row(5.0, 4.0, "basis_kxk", ms=1.0, precision="bf16"), _layer_row(4.0, 2.0, layer="x", ms=2.0)]
    (f,) = analysis.kernel_floors(rows)  # bf16 has no mix row, layer x no kernel rows
    assert (f["layer"], f["precision"], f["dense_ms"], f["kernels_ms"]) == ("l", "fp32", 4.0, 1.5)
    assert f["floor_speedup"] == pytest.approx(4.0 / 1.5) and (f["kxk_theory"], f["mix_theory"]) == (5.0, 20.0)
    g = analysis.kernel_floors([{**r, "variant": "basis"} if r["variant"] == "basis_reduced" else r for r in rows],
                            basis_variant="basis")  # gpu-check's rows name the basis layer "basis"
    assert [x["floor_speedup"] for x in g] == [f["floor_speedup"]]


def test_layer_sum_speedup():
    rows = [_layer_row(2.0, 2.0, layer="a", ms=5.0), _layer_row(2.0, 1.5, layer="b", ms=10.0)]  # saves 5 + 5 ms
    assert analysis.layer_sum_speedup(rows, {"a": 0.5, "b": 0.5}, 100.0, batch_size=8) == pytest.approx(100 / 90)
    assert analysis.layer_sum_speedup(rows, {"a": 0.25}, 100.0, batch_size=8) is None  # not timed at that ratio
    assert analysis.layer_sum_speedup(rows, {"a": 0.5}, 100.0, batch_size=16) is None  # nor at that batch size


@pytest.mark.parametrize("init", ["random", "qr"])
def test_kernel_parts_compose_to_the_layer(init):
    """The two kernels timed alone are exactly what the reduced layer computes: Y' = kxk(X), Z = mix(Y'),
    Y = [Y'; Z] in the layer's channel order."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=False)
    layer = BasisConv2d.from_conv(conv, ratio=0.25, init=init)
    parts = bench.kernel_parts(layer)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        y = parts["basis_kxk"](x)
        out = torch.cat([y, parts["basis_mix"](y)], 1)[:, layer.inv_perm]
        assert torch.allclose(out, layer(x), atol=1e-5)
    assert bench.kernel_parts(BasisConv2d.from_conv(conv, rank=12)) == {}  # nothing to mix
    assert bench.kernel_parts(BasisConv2d.from_conv(conv, ratio=0.5, coeff="full")) == {}


def test_bench_layers_rows_per_precision():
    torch.manual_seed(0)
    net = build_model("resnet18", width=4)
    rows = bench.bench_layers(net, [0.5], input_shape=(3, 32, 32), batch_sizes=[2], layers=["layer2.1.conv1"], min_run_time=0.01,
                              precisions=["fp32", "bf16"], progress=False)
    for prec, dtype in (("fp32", "float32"), ("bf16", "bfloat16")):
        sub = [r for r in rows if r["precision"] == prec]
        assert {r["dtype"] for r in sub} == {dtype}
        assert [(r["variant"], r["pass"]) for r in sub] == [
            ("dense", "fwd"), ("dense", "fwd+bwd"), *[(v, p) for v in ("basis_reduced", "basis_full", "folded")
                                                      for p in ("fwd", "fwd+bwd")],
            ("basis_kxk", "fwd+bwd"), ("basis_mix", "fwd+bwd")]
        kxk, mix = (next(r for r in sub if r["variant"] == v) for v in ("basis_kxk", "basis_mix"))
        basis = next(r for r in sub if r["variant"] == "basis_reduced")
        r, c_in, c_out, hw = basis["rank"], basis["in_channels"], basis["out_channels"], 16 * 16  # layer2: 16x16
        assert kxk["macs"] + mix["macs"] == (r * c_in * 9 + (c_out - r) * r) * hw  # the paper's MAC count
        assert basis["macs"] == (r * c_in * 9 + c_out * r) * hw  # QR basis: the dense_mix form it runs
        assert all(r["median_ms"] > 0 for r in sub)
    with pytest.raises(ValueError, match="fp16.*fp32, bf16"):
        bench.bench_layers(net, [0.5], input_shape=(3, 32, 32), precisions=["fp16"], progress=False)


def test_bench_models_precision(switched):
    net, model = switched
    rows = bench.bench_models({"baseline": net, "basis": model}, **CIFAR, batch_size=2, memory_format="contiguous",
                              min_run_time=0.01, precision="bf16")
    assert {(r["precision"], r["dtype"]) for r in rows} == {("bf16", "bfloat16")}
    assert all(len(r["round_ms"]) == r["repeats"] == 3 and r["speedup_low"] <= r["speedup_high"] for r in rows)
    with pytest.raises(ValueError, match="precision 'half'"):
        bench.bench_models({"baseline": net}, **CIFAR, precision="half")
