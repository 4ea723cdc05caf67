"""Stage modules end to end on a tiny workspace: every reused artefact follows its inputs.

A result is reused only under the same key (params read, content of the input files, source of the modules the
stage imports); a changed param, a retrained baseline or an edited module computes afresh, and a killed sweep
resumes with the rows it had.
"""
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from basisconv.pipeline import keys
from basisconv.experiment.data import prepare
from basisconv.experiment.io import read_json
from basisconv.pipeline.layout import BASELINE_MODEL, PREPARED, STAGES
from basisconv.experiment.loader import TensorLoader
from basisconv.pipeline.params import compose
from basisconv.pipeline.stages import baseline, sensitivity
from basisconv.experiment.train import evaluate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace with the schema, tiny params (smoke profile, smaller still) and prepared synthetic data."""
    (tmp_path / "profiles").mkdir()
    shutil.copy(ROOT / "profiles" / "paper.yaml", tmp_path / "profiles" / "paper.yaml")
    P = compose("smoke", profile_dir=ROOT / "profiles")
    P["train"].update(epochs=1, batch_size=50, eval_batch_size=100, threads=0)
    P["sensitivity"].update(include=["layer1.0.conv1", "layer4.1.conv2"], bn_batches=1, batch_size=50,
                            finetune_steps=1, eval_size=0)
    # the late conversion only: one searched model (the final baseline), so one sweep per run of the stage
    P["basis"].update(schedules=["late"], comparisons={"scratch": [], "switch": [], "late": []}, front_schedule="",
                      front_budgets=[], front_ratios=[])
    P["data"].update(val_size=100, synthetic_per_class=30)
    monkeypatch.chdir(tmp_path)
    prepare("synthetic", PREPARED, val_size=100, synthetic_per_class=30)
    return P


@pytest.fixture
def edited_package(tmp_path, monkeypatch):
    """``edit(file)``: the code keys now read a copy of the package in which ``file`` has one more line."""
    copy = tmp_path / "pkg" / "basisconv"

    def edit(rel):
        if not copy.exists():
            shutil.copytree(keys.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
        with open(copy / rel, "a") as f:
            # a statement (a comment or a docstring would change no key: words are not computation)
            f.write("\nEDITED = 'an edit that changes no behaviour, but is code the stage runs'\n")
        monkeypatch.setattr(keys, "PACKAGE_DIR", copy)
    return edit


def _with(P, section, **kw):
    return {**P, section: {**P[section], **kw}}


def _json_files(stage):
    return sorted(Path(STAGES[stage]["runs"]).glob("*.json"))


def test_baseline_is_reused_only_under_the_same_key(ws, edited_package):
    # an interrupted run of another key (another profile, an ablation): its resume state must outlive these runs
    interrupted = Path(STAGES["baseline"]["runs"]) / "baseline_s0-0123456789abcdef.ckpt"
    interrupted.parent.mkdir(parents=True, exist_ok=True)
    interrupted.write_bytes(b"resume state")
    k1 = baseline.run(ws, progress=False)["metrics"]["key"]
    (f1,) = _json_files("baseline")
    stamp = f1.stat().st_mtime_ns
    assert baseline.run(ws, progress=False)["metrics"]["key"] == k1 and f1.stat().st_mtime_ns == stamp  # reused
    weights = keys.content_digest(BASELINE_MODEL)
    m2 = baseline.run(_with(ws, "train", lr=ws["train"]["lr"] / 2), progress=False)["metrics"]
    assert m2["key"] != k1 and keys.content_digest(BASELINE_MODEL) != weights  # retrained, and published
    assert read_json(STAGES["baseline"]["summary"])["val_acc"] == m2["val_acc"]
    assert read_json(STAGES["baseline"]["metrics"]) == {"acc": round(100 * m2["test_acc"], 4)}
    baseline.run(ws, progress=False)  # back to the first params: found again, its weights published again
    assert keys.content_digest(BASELINE_MODEL) == weights and len(_json_files("baseline")) == 2
    edited_package("experiment/train.py")  # the trainer's code changed: the stored run is not returned
    assert baseline.run(ws, progress=False)["metrics"]["key"] not in (k1, m2["key"])
    assert len(_json_files("baseline")) == 3
    ckpts = sorted(Path(STAGES["baseline"]["runs"]).glob("*.ckpt"))
    resume = [p for p in ckpts if not re.search(r"\.e\d+\.ckpt$", p.name)]
    # a finished run drops its own resume checkpoint; a run of another key never deletes the state an interrupted
    # run resumes from when its key comes back
    assert resume == [interrupted] and interrupted.read_bytes() == b"resume state"
    # each run keeps its switch-epoch snapshot (the switch variants of its key start from it), like its weights
    assert len(ckpts) - len(resume) == len(_json_files("baseline")) == 3


def _rows(out):
    return out["rows"].drop(columns=["seconds", "time_saved_ms"]).to_dict("records")


def test_sweep_follows_baseline_params_and_code(ws, edited_package):
    baseline.run(ws, progress=False)
    first = sensitivity.run(ws, progress=False)
    k1 = read_json(STAGES["sensitivity"]["provenance"])["key"]
    again = sensitivity.run(ws, progress=False)
    assert again["rows"].seconds.tolist() == first["rows"].seconds.tolist()  # read back, not measured again

    P2 = _with(ws, "train", lr=ws["train"]["lr"] / 2)  # the ablation: a new baseline
    baseline.run(P2, progress=False)
    second = sensitivity.run(P2, progress=False)
    prov = read_json(STAGES["sensitivity"]["provenance"])
    assert prov["key"] != k1 and prov["inputs"][BASELINE_MODEL] == keys.content_digest(BASELINE_MODEL)
    val = tuple(torch.load(f"{PREPARED}/val.pt", weights_only=True).values())
    acc = evaluate(sensitivity.trained_baseline(P2), TensorLoader(*val, 1000, train=False))["acc"]
    assert (second["rows"].baseline_val_acc == acc).all()  # every row measured on the new baseline
    assert second["selection"]["params_resolved"]["train"]["lr"] == P2["train"]["lr"]
    sel_rows = pd.read_csv(STAGES["sensitivity"]["rows"])
    assert (sel_rows.baseline_val_acc == acc).all()

    edited_package("core/sensitivity.py")  # the sweep's code changed: measured again under a new key
    third = sensitivity.run(P2, progress=False)
    assert read_json(STAGES["sensitivity"]["provenance"])["key"] not in (k1, prov["key"])
    assert third["rows"].seconds.tolist() != second["rows"].seconds.tolist()
    assert _rows(third) == _rows(second)  # same inputs, same behaviour: same numbers
    assert len(list(Path(STAGES["sensitivity"]["runs"]).glob("partial-*.jsonl"))) == 3


def test_killed_sweep_resumes_with_its_rows(ws):
    baseline.run(ws, progress=False)
    full = sensitivity.run(ws, progress=False)
    (log,) = Path(STAGES["sensitivity"]["runs"]).glob("partial-*.jsonl")
    (kept,) = Path("kept", ws["profile"], "sensitivity").glob("partial-*.jsonl")  # the committed copy of the rows
    lines = log.read_text().splitlines()
    for f in (log, kept):
        f.write_text("\n".join(lines[:2]) + '\n{"layer": "layer4.1.con')  # killed while writing the third row
    resumed = sensitivity.run(ws, progress=False)
    assert _rows(resumed) == _rows(full)
    kept = full["rows"].seconds.tolist()
    assert sum(s in kept for s in resumed["rows"].seconds) == 2  # two rows reused, the others measured again


def test_stage_registry_is_the_layout():
    from basisconv.pipeline import stages
    assert stages.NAMES == tuple(STAGES)
    for name in stages.NAMES:
        assert callable(stages.get(name).run)
    with pytest.raises(ValueError, match="unknown stage 'train'; valid choices: data, baseline, sensitivity"):
        stages.get("train")


def test_selection_params_reuse_the_sweep_rows(ws):
    """A new loss budget (or a split over workers) re-selects from the same rows: they are not part of the key."""
    baseline.run(ws, progress=False)
    first = sensitivity.run(ws, progress=False)
    k1 = read_json(STAGES["sensitivity"]["provenance"])["key"]
    P2 = _with(ws, "sensitivity", max_loss=0.0, objective="macs")
    second = sensitivity.run(P2, progress=False)
    assert read_json(STAGES["sensitivity"]["provenance"])["key"] == k1
    assert second["rows"].seconds.tolist() == first["rows"].seconds.tolist()  # read back, not measured
    assert second["selection"]["method"]["max_loss"] == 0.0
    P3 = _with(ws, "sensitivity", finetune_steps=2)  # reaches the rows: measured again
    sensitivity.run(P3, progress=False)
    assert read_json(STAGES["sensitivity"]["provenance"])["key"] != k1
