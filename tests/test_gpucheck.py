"""`make gpu-check` on CPU at a tiny size: the same command and code path, so it cannot rot while no GPU is lent."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)  # about half a minute on 2 cores; the subprocess has its own, shorter, timeout
def test_gpu_check_command_on_cpu(tmp_path):
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "2"}
    env.pop("WORLD_SIZE", None)
    run = subprocess.run([sys.executable, "-m", "basisconv.pipeline.gpucheck", str(out), "--size", "tiny", "--device", "cpu",
                          "--no-compile"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    r = json.loads((out / "gpu_check.json").read_text())
    assert r["skipped"] == [] and not r.get("errors") and r["hardware"]["device"] == "cpu"
    layers = r["layers"]
    assert {x["dtype"] for x in layers} == {"float32", "bfloat16"} and {x["pass"] for x in layers} == {"fwd", "fwd+bwd"}
    assert {x["variant"] for x in layers} == {"dense", "basis_reduced", "basis_full", "folded", "basis_kxk", "basis_mix"}
    assert {x["pass"] for x in layers if x["variant"] in ("basis_kxk", "basis_mix")} == {"fwd+bwd"}  # the floor's pass
    assert {(x["precision"], x["dtype"]) for x in layers} == {("fp32", "float32"), ("bf16", "bfloat16")}
    assert all(x["median_ms"] > 0 and x["theoretical_speedup"] > 0 for x in layers)
    assert all(abs(x["theoretical_speedup"] - 1) < 1e-9 for x in layers if x["variant"] in ("dense", "folded"))
    assert {m["model"] for m in r["models"]} == {"baseline", "all_layers", "subset"}
    assert [t["model"] for t in r["training"]] == ["baseline", "all_layers", "subset"]
    assert r["ddp"]["completed"] and r["ddp"]["backend"] == "gloo"
    assert r["projection"]["total_hours"] > 0 and set(r["projection"]["stages_hours"]) >= {"baseline", "basis"}
    text = (out / "README.md").read_text()
    for heading in ("# GPU check:", "## Per layer", "bfloat16 fwd+bwd kernel floor", "## Whole models (eager)",
                    "## Training",
                    "Projected wall time of the paper profile", "One-process `torchrun` (gloo): completed"):
        assert heading in text, heading


def test_gpu_check_needs_no_pipeline_tools():
    """Only the library's own dependencies: nothing of DVC, papermill or Jupyter is imported."""
    code = ("import sys, basisconv.pipeline.gpucheck; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('dvc', 'papermill', 'nbformat', 'nbclient', 'jupyter_client', 'IPython')]; print(bad)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr[-2000:]
