import pytest
import torch

from basisconv import BasisConv2d, build_model, convert
from basisconv import bench


@pytest.fixture(scope="module")
def switched():
    torch.manual_seed(0)
    net = build_model("resnet18", width=4).eval()
    return net, convert(net, ["layer1.0.conv1", "layer3.1.conv2"], ratio={"layer1.0.conv1": 0.5,
                                                                          "layer3.1.conv2": 0.25}, init="qr")


def test_tune_forms_keeps_outputs_and_reports_choices(switched):
    _, model = switched
    train_model, inference_model, rows = bench.tune_forms(model, batch_size=4, memory_format="contiguous",
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
    rows = bench.bench_models({"baseline": net, "basis": model, "basis_inf": model}, batch_size=2,
                              memory_format="contiguous", min_run_time=0.01, modes={"basis_inf": ("inference",)})
    assert [(r["model"], r["mode"]) for r in rows] == [("baseline", "train_step"), ("baseline", "inference"),
                                                       ("basis", "train_step"), ("basis", "inference"),
                                                       ("basis_inf", "inference")]
    assert rows[0]["measured_speedup"] == 1.0 and rows[0]["theoretical_speedup"] == 1.0
    assert rows[2]["theoretical_speedup"] > 1.0  # fewer MACs than the dense model
    for r in rows:
        assert r["median_ms"] > 0 and r["device"] == "cpu" and r["torch"] == torch.__version__


def test_targets_from_rows():
    layer = lambda t, m: {"variant": "basis_reduced", "pass": "fwd+bwd", "memory_format": "channels_last",
                          "theoretical_speedup": t, "measured_speedup": m, "layer": "l", "ratio": 0.5}
    models = [{"model": "baseline", "mode": "train_step", "median_ms": 100.0, "measured_speedup": 1.0,
               "theoretical_speedup": 1.0},
              {"model": "selected", "mode": "train_step", "median_ms": 60.0, "measured_speedup": 1.6,
               "theoretical_speedup": 2.0},
              {"model": "selected_tuned", "mode": "train_step", "median_ms": 55.0, "measured_speedup": 1.85,
               "theoretical_speedup": 1.9}]
    tg = bench.targets([layer(2.0, 1.8), layer(3.0, 2.4), layer(1.2, 0.9)], models, {"median_ms": 4.0},
                       {"trainer_overhead": 0.12})
    assert tg["layers_fraction_of_theory"]["n_layers"] == 2 and tg["layers_fraction_of_theory"]["n_met"] == 1
    assert tg["selected_train_step_fraction_of_theory"]["value"] == pytest.approx(0.8)
    assert tg["selected_tuned_train_step_fraction_of_theory"]["value"] == pytest.approx(0.925)  # vs selected's theory
    assert tg["loader_fraction_of_step"] == {"target": "<= 0.05", "value": 0.04, "met": True}
    assert tg["trainer_overhead"]["met"] is False
