"""After `dvc repro`: every declared output exists, no executed notebook has an error, `dvc metrics show` lists
the metrics. Run by `make smoke` (and so by CI). Exits non-zero with the list of problems."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


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
        run = subprocess.run(["dvc", "repro"], cwd=ROOT, capture_output=True, text=True)
    finally:
        params.write_text(original)
    problems = []
    ran = re.findall(r"Running stage '([^']+)'", run.stdout)
    if run.returncode != 0:
        problems.append(f"dvc repro after a benchmark-only param change failed: {run.stderr[-2000:]}")
    elif ran != ["benchmark", "report"]:
        problems.append(f"a benchmark-only param change ran stages {ran}, expected ['benchmark', 'report']")
    back = subprocess.run(["dvc", "repro"], cwd=ROOT, capture_output=True, text=True)
    if back.returncode != 0:
        problems.append(f"dvc repro with the original params failed: {back.stderr[-2000:]}")
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
    n_nbs = len(list((ROOT / "notebooks").glob("*.ipynb")))
    n_exec = len(list((ROOT / "reports" / "notebooks").glob("*.ipynb")))
    if n_exec != n_nbs:
        problems.append(f"{n_exec} executed notebooks for {n_nbs} notebooks")
    shown = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=ROOT, capture_output=True, text=True)
    metrics = json.loads(shown.stdout or "{}")
    files = {f for ws in metrics.values() for f in (ws.get("data") or {})}
    for want in ("results/metrics/baseline.json", "results/metrics/basis.json", "results/metrics/benchmark.json"):
        if want not in files:
            problems.append(f"dvc metrics show does not list {want} (got {sorted(files)})")
    problems += benchmark_params_rerun_only_benchmark()
    status = subprocess.run(["dvc", "status", "--json"], cwd=ROOT, capture_output=True, text=True)
    if json.loads(status.stdout or "{}"):
        problems.append(f"dvc status not clean after repro: {status.stdout.strip()}")
    for p in problems:
        print("FAIL:", p)
    print(f"pipeline check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
