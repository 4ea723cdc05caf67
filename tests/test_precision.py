"""bf16 autocast on CPU (basisconv.experiment.precision): detection, fallback, and that it really runs in bf16."""
import warnings

import pytest
import torch
import torch.nn as nn

from basisconv.experiment.train import TrainConfig
from basisconv.experiment.models import build_model
from basisconv.experiment.data import synthetic_cifar
from basisconv.experiment.train import train
from basisconv.experiment import precision
from basisconv.pipeline import plan as basis_stage
from basisconv.pipeline.stages import training


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: False)


@pytest.fixture
def has_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)


def test_fallback_to_fp32_says_so(no_bf16):
    with pytest.warns(UserWarning, match="no native bf16 support.*running in fp32"):
        assert precision.effective_amp(True, "cpu") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.effective_amp(False, "cpu") is False  # nothing asked, nothing said
        assert precision.effective_amp(True, "cpu", warn=False) is False


def test_resolved_train_records_what_runs(no_bf16, monkeypatch):
    """A run's TrainConfig (and so its resume key) carries the precision that ran, not the one asked for."""
    T = {"epochs": 2, "batch_size": 10, "amp": True, "device": "cpu", "seeds": [0]}
    assert training.train_config(T, seed=0).amp is False
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    assert training.train_config(T, seed=0).amp is True
    assert training.train_config({**T, "amp": False}, seed=0).amp is False


def test_autocast_runs_convs_in_bf16(has_bf16):
    conv = nn.Conv2d(3, 8, 3)
    x = torch.randn(2, 3, 8, 8)
    with precision.autocast("cpu", precision.effective_amp(True, "cpu")):
        assert conv(x).dtype == torch.bfloat16
    with precision.autocast("cpu", False):
        assert conv(x).dtype == torch.float32


@pytest.mark.skipif(not precision.cpu_bf16_supported(), reason="this CPU has no native bf16")
def test_bf16_training_on_cpu_learns_like_fp32():
    """Same seed and batches: bf16 autocast training ends near the fp32 run (weights stay fp32)."""
    tr, va = synthetic_cifar("train", n_per_class=30), synthetic_cifar("val", n_per_class=10)
    out = {}
    for amp in (False, True):
        torch.manual_seed(0)
        res = train(build_model("resnet18", width=4), tr, va,
                    TrainConfig(epochs=4, batch_size=50, lr=0.05, warmup_epochs=0.5, amp=amp), progress=False)
        assert all(p.dtype == torch.float32 for p in res.model.parameters())
        out[amp] = res.history
    assert out[True][-1]["train_loss"] < 0.8 * out[True][0]["train_loss"]
    assert out[True][-1]["train_loss"] != out[False][-1]["train_loss"]  # it really ran in another precision
    assert out[True][-1]["train_loss"] == pytest.approx(out[False][-1]["train_loss"], rel=0.1)
    assert abs(out[True][-1]["val_acc"] - out[False][-1]["val_acc"]) < 0.15


@pytest.mark.parametrize("amp", [False, True])
def test_baseline_fp32_variant_only_under_bf16(amp):
    sel = {"layers": ["a"], "ratios": {"a": 0.5}, "candidates": ["a", "b"], "comparisons": {}}
    B = {"variants": ["baseline", "baseline_fp32", "selected"], "schedules": ["late"], "comparisons": {},
         "late_epoch": 3, "switch_epoch": 2, "front_schedule": "", "ratio": 0.5, "front_budgets": [],
         "front_ratios": []}
    names = [p[0] for p in basis_stage.plan(B, sel, 0, amp=amp)]
    assert names == (["baseline", "baseline_fp32", "selected@late"] if amp else ["baseline", "selected@late"])


def test_benchmark_times_the_precision_training_runs_in(no_bf16, monkeypatch):
    """fp32 always (the paper's cost model), plus bf16 when training runs in it; the last one holds the targets."""
    from basisconv.pipeline.stages import benchmark as bench_stage
    P = {"train": {"amp": True, "device": "cpu"}}
    assert bench_stage.precisions(P) == ["fp32"]  # asked for bf16, but it would not run here
    monkeypatch.setattr(precision, "cpu_bf16_supported", lambda: True)
    assert bench_stage.precisions(P) == ["fp32", "bf16"]
    assert bench_stage.precisions({"train": {"amp": False, "device": "cpu"}}) == ["fp32"]
    assert [precision.precision_name(a) for a in (False, True)] == ["fp32", "bf16"]
    assert {p: precision.dtype_name(p) for p in precision.PRECISIONS} == {"fp32": "float32", "bf16": "bfloat16"}


@pytest.mark.parametrize("value,limited", [("AVX2", True), ("avx512_core", True), ("AVX512_CORE_BF16", False),
                                           ("AVX512_CORE_AMX", False), ("ALL", False), ("", False)])
def test_onednn_isa_cap_below_bf16_means_no_native_bf16(monkeypatch, value, limited):
    """ONEDNN_MAX_CPU_ISA=AVX2 (CI's second pass) hides bf16 from oneDNN but not from /proc/cpuinfo."""
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", value)
    assert (precision.onednn_isa_limit_without_bf16() is not None) is limited
    precision.cpu_bf16_supported.cache_clear()
    try:
        if limited:
            assert precision.cpu_bf16_supported() is False
    finally:
        precision.cpu_bf16_supported.cache_clear()
