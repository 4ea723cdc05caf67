"""Publish a finished pipeline run of the arXiv 2408.06024 replication into the repository's README.

``python -m basisconv.pipeline.publish`` copies ``reports/`` (README, Markdown tables, figures) to ``docs/results/<profile>/``
and replaces the block between ``<!-- results:start -->`` and ``<!-- results:end -->`` in ``README.md`` (or another
named block, ``--block results-cpu-long``) with the
run's main table, data label, hardware, versions, wall time and the claim paragraphs of ``basisconv.pipeline.report`` (the
same ones the report stage writes). Every number comes from the run's files; the wall time is the sum of
papermill's recorded durations of the executed notebooks.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from basisconv.pipeline import report
from basisconv.experiment.io import atomic_write_text
from basisconv.pipeline.layout import EXECUTED_DIR, STAGES
from basisconv.pipeline.stages.report import load_results

def markers(block: str = "results") -> tuple[str, str]:
    """The README markers of a results block: ``results`` (the main one) or e.g. ``results-cpu-long``."""
    return f"<!-- {block}:start -->", f"<!-- {block}:end -->"


START, END = markers()


def notebook_seconds(executed_dir=EXECUTED_DIR) -> dict[str, float]:
    out = {}
    for nb in sorted(Path(executed_dir).glob("*.ipynb")):
        meta = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            out[nb.stem] = float(meta["duration"])
    return out


def results_block(docs_dir="docs/results") -> tuple[str, Path]:
    r = load_results()
    base, bench, sel, faith = r["baseline"], r["benchmark"], r["selection"], r["faithfulness"]
    profile = base["profile"]
    dest = Path(docs_dir) / re.sub(r"[^A-Za-z0-9_.-]", "-", profile)
    hw = base["hardware"]
    secs = notebook_seconds()
    runs = r["tables"]["runs"]
    # the first seed's baseline row is the baseline stage's run, already counted above
    basis_seconds = float(runs.train_time.sum() - runs[runs.variant == "baseline"].train_time.head(1).sum())
    models = r["tables"]["benchmark_models"]
    # a run from before timings had a precision timed in fp32 only
    models = models if "precision" in models else models.assign(precision="fp32")
    models = models[["model", "mode", "precision", "batch_size", "median_ms", "images_per_s", "theoretical_speedup",
                     "measured_speedup"]]
    lines = [
        f"Profile **{profile}** on **{base['data']}**, produced by the pipeline "
        f"(`make repro PROFILE=\"{profile.replace('+', ' ')}\"`, then `python -m basisconv.pipeline.publish`).",
        f"Hardware: {hw['device_name']}, {hw['threads']} threads ({hw['cpu_count']} cores); torch {hw['torch']}, "
        f"torchvision {hw['torchvision']}, Python {hw['python']}; training in {base.get('precision', 'fp32')}. "
        f"Notebook wall time of the last `dvc repro` "
        f"{sum(secs.values()) / 60:.1f} min (" + ", ".join(f"{k} {v / 60:.1f}" for k, v in secs.items()) + " min). "
        f"Compute recorded in the results (a resumed stage reuses finished work, so its notebook can take less): "
        f"baseline training {base['train_time']:.0f} s, sensitivity sweep {sel['search_seconds']:.0f} s, "
        f"faithfulness checks {faith['seconds']:.0f} s, basis-stage trainings {basis_seconds:.0f} s.",
        "",
        "Test accuracy in %, mean ± std over seeds (`seeds` column); `delta_vs_baseline` in points; times in seconds.",
        "",
        r["main_table"].drop(columns=["data"]).to_markdown(index=False, floatfmt=".4g"),
        "",
        report.selection_line(sel),
        "",
        "Verdicts of the paper's accuracy claims (`basisconv.core.evidence`):",
        "",
        report.verdicts_markdown(r["tables"]["runs"]),
        "",
        *[f"- **{claim}** {text}" for claim, text in report.claims(r)],
        "",
        f"Whole-model timing ({bench['hardware']['device_name']}, {bench['hardware']['threads']} threads):",
        "",
        models.to_markdown(index=False, floatfmt=".4g"),
        "",
    ]
    if "targets" in bench:
        prec = bench.get("precision", "fp32")
        lines += ["", f"Performance targets in {prec}, the precision training runs in (measured by the benchmark "
                  "stage, never asserted by a test; fp32 and the per-layer misses are in the full report):", "",
                  report.targets_markdown(bench["targets"])]
    lines += ["", f"Full report with every table and figure: [`{dest}/README.md`]({dest}/README.md)."]
    return "\n".join(lines), dest


def publish(readme="README.md", docs_dir="docs/results", block_name: str = "results") -> Path:
    start, end = markers(block_name)
    block, dest = results_block(docs_dir)
    readme = Path(readme)
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block to fill")
    reports = Path(STAGES["report"]["readme"]).parent
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "tables").mkdir(parents=True)
    shutil.copytree(STAGES["report"]["figures"], dest / "figures")
    for t in Path(STAGES["report"]["tables"]).glob("*.md"):
        shutil.copyfile(t, dest / "tables" / t.name)
    shutil.copyfile(reports / "README.md", dest / "README.md")
    (dest / "notebooks").mkdir()
    for html in Path(EXECUTED_DIR).glob("*.html"):  # the executed notebooks the report links to
        shutil.copyfile(html, dest / "notebooks" / html.name)
    pre, rest = text.split(start, 1)
    post = rest.split(end, 1)[1]
    atomic_write_text(readme, f"{pre}{start}\n{block}\n{end}{post}")
    return dest


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--block", default="results", help="README block to fill: <!-- BLOCK:start --> ... :end -->")
    args = ap.parse_args(argv)
    print(f"published to {publish(args.readme, block_name=args.block)} and {args.readme} ({args.block} block)")


if __name__ == "__main__":
    main()
