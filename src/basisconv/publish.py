"""Publish a finished pipeline run of the arXiv 2408.06024 replication into the repository's README.

``python -m basisconv.publish`` copies ``reports/`` (README, Markdown tables, figures) to ``docs/results/<profile>/``
and replaces the block between ``<!-- results:start -->`` and ``<!-- results:end -->`` in ``README.md`` with the
run's main table, data label, hardware, versions and wall time. Every number comes from the run's files; the wall
time is the sum of papermill's recorded durations of the executed notebooks.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pandas as pd

from . import report
from .io import atomic_write_text, read_json

START, END = "<!-- results:start -->", "<!-- results:end -->"


def notebook_seconds(executed_dir) -> dict[str, float]:
    out = {}
    for nb in sorted(Path(executed_dir).glob("*.ipynb")):
        meta = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            out[nb.stem] = float(meta["duration"])
    return out


def results_block(reports="reports", results="results", docs_dir="docs/results") -> tuple[str, Path]:
    reports, results = Path(reports), Path(results)
    base = read_json(results / "metrics" / "baseline.json")
    bench = read_json(results / "metrics" / "benchmark.json")
    sel = read_json(results / "selection.json")
    faith = read_json(results / "metrics" / "faithfulness.json")
    profile = base["profile"]
    dest = Path(docs_dir) / re.sub(r"[^A-Za-z0-9_.-]", "-", profile)
    hw = base["hardware"]
    secs = notebook_seconds(reports / "notebooks")
    main_table = pd.read_csv(reports / "tables" / "main_table.csv")
    runs = pd.read_csv(reports / "tables" / "runs.csv")
    # the first seed's baseline row is the baseline stage's run, already counted above
    basis_seconds = float(runs.train_time.sum() - runs[runs.variant == "baseline"].train_time.head(1).sum())
    table = main_table.drop(columns=["data"])
    models = pd.read_csv(reports / "tables" / "benchmark_models.csv")
    models = models[["model", "mode", "batch_size", "median_ms", "images_per_s", "theoretical_speedup",
                     "measured_speedup"]]
    lines = [
        f"Profile **{profile}** on **{base['data']}**, produced by the pipeline "
        f"(`make repro PROFILE=\"{profile.replace('+', ' ')}\"`, then `python -m basisconv.publish`).",
        f"Hardware: {hw['device_name']}, {hw['threads']} threads ({hw['cpu_count']} cores); torch {hw['torch']}, "
        f"torchvision {hw['torchvision']}, Python {hw['python']}. Notebook wall time of the last `dvc repro` "
        f"{sum(secs.values()) / 60:.1f} min (" + ", ".join(f"{k} {v / 60:.1f}" for k, v in secs.items()) + " min). "
        f"Compute recorded in the results (a resumed stage reuses finished work, so its notebook can take less): "
        f"baseline training {base['train_time']:.0f} s, sensitivity sweep {sel['search_seconds']:.0f} s, "
        f"faithfulness checks {faith['seconds']:.0f} s, basis-stage trainings {basis_seconds:.0f} s.",
        "",
        "Test accuracy in %, mean ± std over seeds (`seeds` column); `delta_vs_baseline` in points; times in seconds.",
        "",
        table.to_markdown(index=False, floatfmt=".4g"),
        "",
        f"Sensitivity selection: {len(sel['layers'])} of {len(sel['candidates'])} layers (predicted loss "
        f"{sel['predicted_loss']:.2f} points, {sel['params_saved']:,} parameters saved): "
        + (", ".join(f"`{n}`@{sel['ratios'][n]}" for n in sel["layers"]) or "none") + ".",
        "",
        "- **Selected vs. naive and random subsets at equal savings.** " + report.selection_verdict(main_table),
        "- **Cost of the search.** " + report.search_cost(sel, base),
        "- **Faithfulness of the fast proxy.** " + report.faithfulness(
            faith, faith["params_resolved"]["sensitivity"]["proxies"]),
        "",
        f"Whole-model timing ({bench['hardware']['device_name']}, {bench['hardware']['threads']} threads):",
        "",
        models.to_markdown(index=False, floatfmt=".4g"),
        "",
    ]
    if "targets" in bench:
        lines += ["", "Performance targets (measured by the benchmark stage, never asserted by a test):", "",
                  targets_markdown(bench["targets"])]
    lines += [
        "",
        f"Full report with every table and figure: [`{dest}/README.md`]({dest}/README.md).",
    ]
    return "\n".join(lines), dest


def targets_markdown(tg: dict) -> str:
    rows = []
    for name, t in tg.items():
        if name == "fold_at_inference":
            rows.append({"target": "basis slower than dense in fwd (fold at inference)", "goal": "-",
                         "measured": ", ".join(f"{x['layer']}@{x['ratio']}" for x in t) or "none", "met": "-"})
            continue
        value = t.get("value", t.get("median"))
        measured = f"{value:.3g}" if isinstance(value, (int, float)) else "n/a"
        if "n_layers" in t:
            measured = f"{t['n_met']}/{t['n_layers']} layers (median {measured}, min " + (
                f"{t['min']:.3g})" if t["min"] is not None else "n/a)")
        rows.append({"target": name, "goal": t["target"], "measured": measured, "met": "yes" if t["met"] else "no"})
    return pd.DataFrame(rows).to_markdown(index=False)


def publish(readme="README.md", reports="reports", results="results", docs_dir="docs/results") -> Path:
    block, dest = results_block(reports, results, docs_dir)
    readme = Path(readme)
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block to fill")
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "tables").mkdir(parents=True)
    shutil.copytree(Path(reports) / "figures", dest / "figures")
    for t in Path(reports, "tables").glob("*.md"):
        shutil.copyfile(t, dest / "tables" / t.name)
    shutil.copyfile(Path(reports) / "README.md", dest / "README.md")
    pre, rest = text.split(START, 1)
    post = rest.split(END, 1)[1]
    atomic_write_text(readme, f"{pre}{START}\n{block}\n{END}{post}")
    return dest


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default="README.md")
    args = ap.parse_args(argv)
    print(f"published to {publish(args.readme)} and {args.readme}")


if __name__ == "__main__":
    main()
