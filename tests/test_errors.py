"""Bad input is refused before any compute, with a message naming the bad value and the valid choices.

Other cases live beside their code: unknown arch (test_models), unknown/empty layer selection and ratio outside
(0, 1] (test_surgery), non-positive epochs/batch size and NaN loss (test_train), md5 mismatch and truncated archive
(test_data), unknown profile and profile keys (test_params).
"""
import subprocess
import sys
from pathlib import Path

import pytest

from basisconv.pipeline import params
from basisconv.pipeline import plan as basis_stage
from basisconv.experiment.data import DataError, load_prepared, prepare

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # params.resolve reads the schema profiles/paper.yaml from the repository root


def test_unknown_params_key_of_a_stage(in_repo):
    with pytest.raises(ValueError, match=r"unknown key\(s\) train.epoch in params; valid keys of 'train': amp, "
                                         r"batch_size, channels_last, compile"):
        params.resolve(train={"epoch": 3})


def test_unknown_params_section(in_repo):
    with pytest.raises(ValueError, match="unknown params section 'trian'; valid sections: profile, data, model"):
        params.resolve(trian={})


def test_missing_prepared_data(tmp_path):
    with pytest.raises(DataError, match=r"no prepared split at .*train.pt; run the data stage \(dvc repro data\)"):
        load_prepared(tmp_path, "train")


def test_unknown_data_source_before_download(tmp_path):
    with pytest.raises(ValueError, match="unknown data source 'cifar100'; valid choices: synthetic, jpeg_mirror"):
        prepare("cifar100", tmp_path / "p", root=tmp_path / "r", sources={"jpeg_mirror": {}})
    assert not (tmp_path / "p").exists()


def test_launch_unknown_stage():
    run = subprocess.run([sys.executable, "-m", "basisconv.pipeline.launch", "report"], cwd=ROOT, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert run.returncode == 2
    assert "unknown stage 'report'; valid choices: baseline, basis, sensitivity, faithfulness" in run.stderr


def test_unknown_variant_and_schedule_refused_before_the_basis_stage():
    """The params rules live in validate, applied by params.resolve before a stage runs; the stage does not
    re-check them."""
    from basisconv.pipeline import params
    sel = {"layers": ["a"], "ratios": {"a": 0.5}, "candidates": ["a", "b"], "comparisons": {}}
    base = {"variants": ["baseline"], "schedules": ["late"], "comparisons": {}, "late_epoch": 3, "switch_epoch": 2,
            "front_schedule": "", "ratio": 0.5, "front_budgets": [], "front_ratios": []}
    with pytest.raises(ValueError, match="basis.variants = \\['naive'\\]: must be a list of distinct values from "
                                         "baseline, baseline_fp32, all_layers"):
        params.resolve(basis={"variants": ["naive"]})
    with pytest.raises(ValueError, match="basis.schedules = \\['skip'\\]: must be a list of distinct values "
                                         "from scratch, switch, late"):
        params.resolve(basis={"schedules": ["skip"]})
    plan = basis_stage.plan({**base, "variants": ["baseline", "all_layers", "selected"]}, sel, 0)
    assert [p[:2] for p in plan] == [("baseline", "-"), ("all_layers@late", "late"), ("selected@late", "late")]
