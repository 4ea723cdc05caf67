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
    # the final baseline and the switch-epoch snapshot are searched (the paper profile trains scratch and switch)
    assert pl["sensitivity"]["what"].startswith("2 sweeps of 48 proxy jobs (16 layers x 3 ratios x 2 proxies, "
                                                "zero_shot and finetune in one job)")
    # per seed: all layers and the selection under scratch (2) and switch (2), 3 random + largest + spectral under
    # switch (5), and the fronts under switch: all layers at 2 ratios, and at 2 budgets the selection + random0 +
    # largest + spectral (8): 19 runs, 17 of them switch runs; 2 more baselines
    assert pl["basis"]["what"] == ("59 trainings (2 more baseline seeds + 3 x 2 scratch runs of 40 epochs + 3 x 17 "
                                   "switch runs of 30 epochs; an upper bound: a subset that is another run's model "
                                   "trains once)")
    assert pl["faithfulness"]["what"] == "25 retrainings x 10 epochs x 45,000 images"  # control + 16 layers + 8 pairs
    assert pl["baseline"]["images"] > 40 * 45_000


def test_switch_and_late_runs_cost_only_their_epochs_after_the_switch():
    P = compose("cpu-full", profile_dir=ROOT / "profiles")
    pl = est.plan(P)
    T = P["train"]

    def cost(epochs=None):
        return est._one_training(T, 45_000, 5000, epochs)
    # 2 more baselines; per seed 2 scratch runs of 25 epochs, 4 switch runs of 13 and 24 late runs of 1
    assert pl["basis"]["images"] == pytest.approx(2 * cost() + 3 * (2 * cost() + 4 * cost(13) + 24 * cost(1)))
    assert pl["faithfulness"]["what"] == "19 retrainings x 1 epochs x 10,000 images"  # its train_subset
    assert "3 x 24 late runs of 1 epoch" in pl["basis"]["what"]


def test_cpu_full_is_the_size_its_issue_budgets():
    """The headline profile's planned work in dense-epoch equivalents (the estimate costs a basis epoch as a dense
    one, so this bounds it from above): the issue sizes it at about 420 with basis epochs at their measured 0.66-0.88
    of a dense one; counted as dense the plan stays under 470."""
    P = compose("cpu-full", "mirror", profile_dir=ROOT / "profiles")
    pl = est.plan(P)
    epoch = est._one_training(P["train"], 45_000, 5000, 1)
    total = sum(v["images"] for v in pl.values()) / epoch
    assert 350 < total < 470, total


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
        assert "hour" not in msg  # no duration quoted from an old run
        with_hint = est.check(e, gpu=gpu, max_hours=hours, allow_long=allow, smaller="estimated 52 min here")
        assert "offline; estimated 52 min here)" in with_hint


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
    assert 'PROFILE="cpu mirror" offline; estimated' in run.stderr  # the smaller profile's estimate, just computed
    ok = subprocess.run(cmd, cwd=ROOT, env={**env, "BASISCONV_ALLOW_LONG": "1"}, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
