"""After `dvc repro`: every declared output exists, no executed notebook has an error, `dvc metrics show` lists
the metrics, a benchmark-only param change re-runs only benchmark and report, and three ablations (train.lr halved,
model.width changed, data.val_size changed) reach every downstream result: the baseline is retrained, every
sensitivity row is measured on the new baseline, the selection is made from those rows and the basis runs are the
ones of the new inputs. Run by `make smoke` (and so by CI). Exits non-zero with the list of problems."""
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# A hang is a named failure: no dvc call of this check may run past this (a smoke ablation takes minutes)
DVC_TIMEOUT = 1800


def declared_outputs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, st in stages.items():
        for kind in ("outs", "metrics", "plots"):
            for o in st.get(kind, []):
                yield name, next(iter(o)) if isinstance(o, dict) else o


def benchmark_params_rerun_only_benchmark() -> list[str]:
    """Change one benchmark.* param and really re-run: exactly `benchmark` and `report` must run.

    (`dvc repro --dry` cannot show this: it plans `report` only once `benchmark` has changed its outputs.)
    The original params are restored and reproduced again, so the workspace ends as it started.
    """
    import re
    params = ROOT / "params.yaml"
    original = params.read_text()
    p = yaml.safe_load(original)
    p["benchmark"]["min_run_time"] = float(p["benchmark"]["min_run_time"]) * 2 + 0.01
    try:
        params.write_text(yaml.safe_dump(p, sort_keys=False))
        run = subprocess.run(["dvc", "repro"], cwd=ROOT, capture_output=True, text=True, timeout=DVC_TIMEOUT)
    finally:
        params.write_text(original)
    problems = []
    ran = re.findall(r"Running stage '([^']+)'", run.stdout)
    if run.returncode != 0:
        problems.append(f"dvc repro after a benchmark-only param change failed: {run.stderr[-2000:]}")
    elif ran != ["benchmark", "report"]:
        problems.append(f"a benchmark-only param change ran stages {ran}, expected ['benchmark', 'report']")
    back = subprocess.run(["dvc", "repro"], cwd=ROOT, capture_output=True, text=True, timeout=DVC_TIMEOUT)
    if back.returncode != 0:
        problems.append(f"dvc repro with the original params failed: {back.stderr[-2000:]}")
    return problems


def _repro(*targets) -> tuple[list[str], str]:
    import re
    run = subprocess.run(["dvc", "repro", *targets], cwd=ROOT, capture_output=True, text=True, timeout=DVC_TIMEOUT)
    return re.findall(r"Running stage '([^']+)'", run.stdout), (run.stderr[-2000:] if run.returncode else "")


def _read(path):
    return json.loads((ROOT / path).read_text())


def check_results_follow_the_baseline(label: str, before: dict) -> list[str]:
    """After an ablation: every result downstream of the baseline was computed from the current files."""
    import pandas as pd
    import torch
    sys.path.insert(0, str(ROOT / "src"))
    from basisconv.pipeline.keys import content_digest
    from basisconv.pipeline.layout import BASELINE_MODEL, PREPARED, STAGES
    from basisconv.experiment.loader import TensorLoader
    from basisconv.pipeline.params import resolve
    from basisconv.core.selection import select_layers
    from basisconv.pipeline.stages.common import load_splits
    from basisconv.pipeline.stages.sensitivity import sweep_val, trained_baseline
    from basisconv.experiment.train import evaluate
    problems = []
    prov = {s: _read(STAGES[s]["provenance"]) for s in ("baseline", "sensitivity", "basis")}
    model_digest, data_digest = content_digest(ROOT / BASELINE_MODEL), content_digest(ROOT / PREPARED)
    if prov["baseline"]["key"] == before["baseline_key"]:
        problems.append(f"{label}: the baseline run was not retrained (same key)")
    if before["weights_change"] and model_digest == before["model_digest"]:
        problems.append(f"{label}: {BASELINE_MODEL} did not change")
    for f, d in ((BASELINE_MODEL, model_digest), (PREPARED, data_digest)):
        if prov["sensitivity"]["inputs"].get(f) != d:
            problems.append(f"{label}: the sweep's key does not hold the current {f}")
    if prov["basis"]["inputs"].get(PREPARED) != data_digest:
        problems.append(f"{label}: the basis runs' key does not hold the current {PREPARED}")
    given = yaml.safe_load((ROOT / "params.yaml").read_text())
    P = resolve(**{k: given[k] for k in ("profile", "model", "train", "sensitivity", "basis")})
    cwd = Path.cwd()
    import os
    os.chdir(ROOT)
    try:
        D, _ = load_splits()
        val = sweep_val(P["sensitivity"], D)
        acc = evaluate(trained_baseline(P), TensorLoader(*val, 1000, train=False))["acc"]
    finally:
        os.chdir(cwd)
    rows = pd.read_csv(ROOT / STAGES["sensitivity"]["rows"])
    rows = rows[rows.model == "final"]  # the final baseline's sweep (the other searches its switch-epoch snapshot)
    if (abs(rows.baseline_val_acc - acc) > 1.5 / len(val[1])).any():
        problems.append(f"{label}: sensitivity rows' baseline_val_acc {sorted(set(rows.baseline_val_acc))} is not "
                        f"the current baseline's {acc} on the sweep's images")
    if rows.groupby("proxy").control_val_acc.nunique().max() != 1:
        problems.append(f"{label}: sensitivity rows mix controls of several baselines")
    sel = _read(STAGES["sensitivity"]["selection"])
    S = P["sensitivity"]
    again = select_layers(rows.to_dict("records"), proxy=S["selection_proxy"], objective=S["objective"],
                          max_loss=S["max_loss"], order=sel["candidates"])
    if (again.layers, again.ratios) != (sel["layers"], sel["ratios"]):
        problems.append(f"{label}: selection.json is not the selection of the current sensitivity rows")
    runs = pd.read_csv(ROOT / STAGES["basis"]["runs_table"])
    base = _read(STAGES["baseline"]["summary"])
    first = runs[(runs.variant == "baseline") & (runs.seed == P["train"]["seeds"][0])]
    if len(first) and float(first.test_acc.iloc[0]) != base["test_acc"]:
        problems.append(f"{label}: the basis table's baseline row is not the current baseline")
    if len(first) and first.key.iloc[0] != prov["baseline"]["key"]:
        problems.append(f"{label}: the basis table's baseline row is not the baseline stage's run")
    for r in runs[(runs.variant != "baseline") | (runs.seed != P["train"]["seeds"][0])].itertuples():
        # a run that is an earlier run's model was trained once, under that name
        name = r.same_as if isinstance(r.same_as, str) and r.same_as else r.variant
        f = ROOT / STAGES["basis"]["runs"] / f"{name}_s{r.seed}-{r.key}.json"
        m = json.loads(f.read_text()) if f.is_file() else None
        if m is None or m["inputs"] != prov["basis"]["run_inputs"] or m["test_acc"] != r.test_acc \
                or m["model"] != P["model"] or any(m["config"][k] != v for k, v in P["train"].items()
                                                   if k in m["config"] and k != "seed"):
            problems.append(f"{label}: run {r.variant} seed {r.seed} is not a run of the current params and inputs")
    return problems


def ablations() -> list[str]:
    """Each ablation: edit one param, `dvc repro basis`, check that the results follow; then restore the params and
    reproduce everything (content-addressed runs of the original inputs are found again, not retrained)."""
    sys.path.insert(0, str(ROOT / "src"))
    from basisconv.pipeline.keys import content_digest
    from basisconv.pipeline.layout import BASELINE_MODEL, STAGES
    params = ROOT / "params.yaml"
    original = params.read_text()
    edits = {"train.lr halved": ("train", "lr", lambda v: v / 2),
             "model.width + 2": ("model", "width", lambda v: v + 2),
             "data.val_size - 100": ("data", "val_size", lambda v: v - 100)}
    problems = []
    for label, (section, key, change) in edits.items():
        # synthetic data: val_size changes the val split only, so the retrained weights may be bit-identical
        before = {"baseline_key": _read(STAGES["baseline"]["provenance"])["key"],
                  "model_digest": content_digest(ROOT / BASELINE_MODEL), "weights_change": section != "data"}
        p = yaml.safe_load(original)
        p[section][key] = change(p[section][key])
        try:
            params.write_text(yaml.safe_dump(p, sort_keys=False))
            ran, err = _repro("basis")
            if err:
                problems.append(f"{label}: dvc repro basis failed: {err}")
                continue
            want = (["data"] if section == "data" else []) + ["baseline", "sensitivity", "basis"]
            if ran != want:
                problems.append(f"{label}: ran stages {ran}, expected {want}")
            problems += check_results_follow_the_baseline(label, before)
        finally:
            params.write_text(original)
        _, err = _repro()
        if err:
            problems.append(f"dvc repro after restoring the params failed: {err}")
    return problems


# the modules that only draw and write: an edit of any of them must re-compute nothing
PROSE = ("captions", "claims", "narrative", "figures", "tables", "publish", "render", "display")


def _kept() -> dict:
    """Every file a computation keeps (trainings, sweep and check rows, timings), with its modification time."""
    return {str(p.relative_to(ROOT)): p.stat().st_mtime_ns for p in (ROOT / "models" / "runs").rglob("*")
            if p.is_file()}


def prose_edits_recompute_nothing() -> list[str]:
    """Append a statement to every prose module and `dvc repro`: the notebooks that show them run again (they
    import them), but no training, sweep row, check row or timing is made again, and no key changes. The modules
    are restored and reproduced again, so the workspace ends as it started."""
    sys.path.insert(0, str(ROOT / "src"))
    from basisconv.pipeline.layout import STAGES
    files = [ROOT / "src" / "basisconv" / "pipeline" / f"{m}.py" for m in PROSE]
    originals = {f: f.read_text() for f in files}
    computing = [s for s in STAGES if s not in ("data", "report")]
    keys = {s: _read(STAGES[s]["provenance"]).get("key") for s in computing}
    before, problems = _kept(), []
    try:
        for f in files:
            f.write_text(originals[f] + "\nEDITED_WORDS = 'a prose edit'\n")
        ran, err = _repro()
    finally:
        for f, text in originals.items():
            f.write_text(text)
    if err:
        problems.append(f"dvc repro after a prose edit failed: {err}")
    elif "benchmark" not in ran or "report" not in ran:
        problems.append(f"a prose edit ran stages {ran}: the benchmark and report notebooks show prose, so they "
                        "should have re-rendered")
    after = _kept()
    changed = sorted(f for f in set(before) | set(after) if before.get(f) != after.get(f))
    if changed:
        problems.append(f"a prose edit re-computed kept results: {changed[:8]}")
    for s in computing:
        if _read(STAGES[s]["provenance"]).get("key") != keys[s]:
            problems.append(f"a prose edit changed the key of stage {s}")
    _, err = _repro()
    if err:
        problems.append(f"dvc repro after restoring the prose modules failed: {err}")
    return problems


def published_run_renders_again() -> list[str]:
    """Publish the run into a scratch folder, render it again from that folder alone: the same bytes in every
    file, and no checkpoint, weights or data kept in it."""
    import shutil
    import tempfile
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        readme = Path(tmp) / "README.md"
        readme.write_text("# scratch\n<!-- results:start -->\n<!-- results:end -->\n")
        cmd = [sys.executable, "-m", "basisconv.pipeline.publish", "--docs-dir", tmp, "--readme", str(readme)]
        pub = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=DVC_TIMEOUT)
        if pub.returncode:
            return [f"publish failed: {pub.stderr[-2000:]}"]
        (folder,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        first = {p: p.read_bytes() for p in [*folder.rglob("*"), readme] if p.is_file()}
        bad = [str(p.relative_to(folder)) for p in first if p.suffix in (".pt", ".ckpt", ".npz")]
        if bad:
            problems.append(f"the published folder keeps weights or data: {bad}")
        shutil.rmtree(folder / "figures")
        (folder / "README.md").unlink()
        again = subprocess.run([sys.executable, "-m", "basisconv.pipeline.publish", "--readme", str(readme),
                                "--render", str(folder)], cwd=ROOT, capture_output=True, text=True,
                               timeout=DVC_TIMEOUT)
        if again.returncode:
            return problems + [f"publish --render failed: {again.stderr[-2000:]}"]
        second = {p: p.read_bytes() for p in [*folder.rglob("*"), readme] if p.is_file()}
        differ = sorted(str(p) for p in set(first) | set(second) if first.get(p) != second.get(p))
        if differ:
            problems.append(f"publish --render did not reproduce the published files: {differ[:8]}")
    return problems


def main() -> int:
    problems = []
    for stage, out in declared_outputs():
        if not (ROOT / out).exists():
            problems.append(f"stage {stage}: declared output {out} is missing")
    for nb in sorted((ROOT / "reports" / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    problems.append(f"{nb.name}: error cell {o.get('ename')}: {o.get('evalue')}")
    readme = ROOT / "reports" / "README.md"
    if readme.is_file() and ("## The paper's claims and what this run decides" not in readme.read_text()
                             or "| verdict" not in readme.read_text()):
        problems.append("reports/README.md has no verdict table")
    if readme.is_file():  # every figure the report shows comes with its caption, and no page shows warnings
        text = readme.read_text()
        for m in re.finditer(r"!\[([^\]]*)\]\(([^)]*)\)", text):
            if f"`{m.group(1)}`.**" not in text:
                problems.append(f"reports/README.md shows figure {m.group(1)} without a caption")
    for nb in sorted((ROOT / "reports" / "notebooks").glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for o in cell.get("outputs", []):
                text = "".join(o.get("text", "")) if o.get("output_type") == "stream" else ""
                if re.search(r"Warning: |^W\d{4} |\d+%\|", text, re.M):
                    problems.append(f"{nb.name}: a cell's output holds a warning or a progress bar: "
                                    f"{text.strip().splitlines()[0][:120]}")
    n_nbs = len(list((ROOT / "notebooks").glob("*.ipynb")))
    n_exec = len(list((ROOT / "reports" / "notebooks").glob("*.ipynb")))
    if n_exec != n_nbs:
        problems.append(f"{n_exec} executed notebooks for {n_nbs} notebooks")
    shown = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=ROOT, capture_output=True, text=True,
                           timeout=DVC_TIMEOUT)
    metrics = json.loads(shown.stdout or "{}")
    files = {f for ws in metrics.values() for f in (ws.get("data") or {})}
    sys.path.insert(0, str(ROOT / "src"))
    from basisconv.pipeline.layout import STAGES
    for st in STAGES.values():
        for want in st.metrics.values():
            if want not in files:
                problems.append(f"dvc metrics show does not list {want} (got {sorted(files)})")
            elif not all(isinstance(v, (int, float, type(None))) and not isinstance(v, bool)
                         for v in json.loads((ROOT / want).read_text()).values()):
                problems.append(f"{want} holds more than flat numbers")
    table = subprocess.run(["dvc", "metrics", "show"], cwd=ROOT, capture_output=True, text=True, timeout=DVC_TIMEOUT).stdout
    if max(map(len, table.splitlines() or [""])) > 120:
        problems.append(f"`dvc metrics show` is wider than 120 columns:\n{table}")
    problems += published_run_renders_again()
    problems += prose_edits_recompute_nothing()
    problems += benchmark_params_rerun_only_benchmark()
    problems += ablations()
    status = subprocess.run(["dvc", "status", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=DVC_TIMEOUT)
    if json.loads(status.stdout or "{}"):
        problems.append(f"dvc status not clean after repro: {status.stdout.strip()}")
    for p in problems:
        print("FAIL:", p)
    print(f"pipeline check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
