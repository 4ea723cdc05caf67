"""The wall-time estimate and the stop before an accidental week-long CPU run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from basisconv.pipeline import estimate as est
from basisconv.pipeline.params import compose

ROOT = Path(__file__).resolve().parents[1]


def test_plan_counts_the_paper_profile():
    P = compose("paper", profile_dir=ROOT / "profiles")
    pl = est.plan(P)
    assert pl["sensitivity"]["what"].startswith("96 proxy jobs (16 layers x 3 ratios x 2 proxies)")
    # per seed: all_layers and selected with two schedules each, 3 random + largest + spectral: 9; 2 more baselines
    # 7 of them per seed switch (all_layers, selected, 3 random, largest, spectral) and start from the snapshot;
    # the fronts add per seed all layers at 2 more ratios and, at each of 2 more budgets, selected + 5 comparisons:
    # 14 more switch runs per seed
    assert pl["basis"]["what"] == ("71 trainings (3 seeds x 23 basis runs + 2 more baseline seeds + 63 of them "
                                   "switch runs of 30 epochs each)")
    assert pl["faithfulness"]["what"] == "25 retrainings x 10 epochs x 45,000 images"  # control + 16 layers + 8 pairs
    assert pl["baseline"]["images"] > 40 * 45_000


def test_switch_runs_cost_only_their_epochs_after_the_switch():
    P = compose("cpu-full", profile_dir=ROOT / "profiles")
    pl = est.plan(P)
    one = est._one_training(P["train"], 45_000, 5000)
    late = est._one_training(P["train"], 45_000, 5000, epochs=1)
    # 2 more baselines at full cost, 30 switch runs (5 main and 5 front points per seed) of the last of 25 epochs
    assert pl["basis"]["images"] == pytest.approx(2 * one + 30 * late)
    assert pl["faithfulness"]["what"] == "19 retrainings x 1 epochs x 10,000 images"  # its train_subset
    assert "30 of them switch runs of 1 epoch each" in pl["basis"]["what"]


def test_cpu_full_fits_its_budget_at_the_measured_speed():
    """The realistic profile's planned work at the per-image cost its sizing machine's estimate measured (2.09 ms,
    bf16, 2-core Xeon with AMX; profiles/cpu-full.yaml) leaves room for the benchmark within 4 hours; on the slowest
    Xeon measured (4.41 ms, docs/results/recipe) it spans a session end, resumed by content (a run's timings pair
    only within one machine): a sizing check of the plan, not a timing."""
    P = compose("cpu-full", "mirror", profile_dir=ROOT / "profiles")
    assert est.estimate(P, sec_per_image=2.09e-3)["total_seconds"] < 3.5 * 3600
    assert est.estimate(P, sec_per_image=4.41e-3)["total_seconds"] < 7.5 * 3600


def test_estimate_scales_with_measured_speed():
    P = compose("cpu", profile_dir=ROOT / "profiles")
    a, b = est.estimate(P, sec_per_image=1e-3), est.estimate(P, sec_per_image=2e-3)
    assert b["total_seconds"] == pytest.approx(2 * a["total_seconds"])
    assert set(a["stages"]) == {"baseline", "sensitivity", "faithfulness", "basis"}


@pytest.mark.parametrize("gpu,allow,hours,stops", [(False, False, 1.0, True), (True, False, 1.0, False),
                                                    (False, True, 1.0, False), (False, False, 100.0, False)])
def test_check_stops_only_long_cpu_runs(gpu, allow, hours, stops):
    e = {"total_seconds": 7 * 3600.0}
    msg = est.check(e, gpu=gpu, max_hours=hours, allow_long=allow)
    assert (msg is not None) == stops
    if stops:
        assert "about 7.0 h on this machine without a GPU (limit 1 h)" in msg
        assert "make repro PROFILE=cpu" in msg and "ALLOW_LONG=1" in msg


@pytest.mark.timeout(300)  # two estimate subprocesses of about 5 s, each with its own timeout
def test_estimate_command_stops_with_a_tiny_threshold(tmp_path):
    P = compose("smoke", profile_dir=ROOT / "profiles")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(P))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BASISCONV_MAX_HOURS": "1e-9", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("BASISCONV_ALLOW_LONG", None)
    cmd = [sys.executable, "-m", "basisconv.pipeline.estimate", "--params", str(tmp_path / "params.yaml")]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-2000:]
    assert "baseline" in run.stdout and "sensitivity" in run.stdout and "total" in run.stdout
    assert "stop: this `dvc repro` would take about" in run.stderr
    ok = subprocess.run(cmd, cwd=ROOT, env={**env, "BASISCONV_ALLOW_LONG": "1"}, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
