"""Publish a finished pipeline run of the arXiv 2408.06024 replication into the repository's README.

``python -m basisconv.pipeline.publish`` copies ``reports/`` (README, Markdown tables, figures) to ``docs/results/<profile>/``
and replaces the block between ``<!-- results:start -->`` and ``<!-- results:end -->`` in ``README.md`` (or another
named block, ``--block results-cpu-long``) with the
run's data label, code commit, hardware, versions, wall time and the verdict table of ``basisconv.pipeline.claims``
(the same one the report stage writes), with a one-line reading of it and a link to the full report. Every number comes from the run's files; the wall time is the sum of
papermill's recorded durations of the executed notebooks.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
from basisconv.pipeline import claims, report
from basisconv.experiment.io import atomic_write_text
from basisconv.pipeline.layout import EXECUTED_DIR, STAGES
from basisconv.pipeline.stages.report import load_results
from basisconv.pipeline.tables import plural

def markers(block: str = "results") -> tuple[str, str]:
    """The README markers of a results block: ``results`` (the main one) or e.g. ``results-cpu-long``."""
    return f"<!-- {block}:start -->", f"<!-- {block}:end -->"


START, END = markers()


def code_commit() -> str:
    """The repository's HEAD (short), with ``+changes`` when the work tree differs from it; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def notebook_seconds(executed_dir=EXECUTED_DIR) -> dict[str, float]:
    out = {}
    for nb in sorted(Path(executed_dir).glob("*.ipynb")):
        meta = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            out[nb.stem] = float(meta["duration"])
    return out


def reading_line(n: int, held: int, failed: int, open_: int) -> str:
    """The one-line reading of a verdict table, singular and plural right (``tables.plural``)."""
    return (f"Of {plural(n, 'claim')}, {plural(held, 'holds', 'hold')} here, {plural(failed, 'does', 'do')} not hold "
            f"here and {plural(open_, 'is', 'are')} not decided at this scale.")


def provenance(r: dict) -> str:
    """The published report's first paragraph: which profile, command, code and precision produced it (``r``: the
    run's results, ``load_results()``)."""
    base, bench = r["baseline"], r["benchmark"]
    profile = base["profile"]
    timed = ", ".join(report.targets_by_precision(bench)) or bench.get("precision", "fp32")
    runs = r["tables"]["runs"]
    n_machines = runs.machine.nunique() if "machine" in runs else 1
    spread = (f" The basis-stage runs ran on {n_machines} machines (the pipeline resumed after a session ended): "
              "epoch times are compared only between runs of one machine." if n_machines > 1 else "")
    return (f"> **Provenance.** Profile `{profile}`, made by `make repro PROFILE=\"{profile.replace('+', ' ')}\"` "
            f"from the code at commit `{code_commit()}` and published by `python -m basisconv.pipeline.publish`; "
            f"training in {base.get('precision', 'fp32')}, timings in {timed}.{spread}\n")


def results_block(r: dict, docs_dir="docs/results") -> tuple[str, Path]:
    """The README block of the run's results ``r`` (``load_results()``) and the folder its report is published to."""
    base, sel, faith = r["baseline"], r["selection"], r["faithfulness"]
    profile = base["profile"]
    dest = Path(docs_dir) / re.sub(r"[^A-Za-z0-9_.-]", "-", profile)
    hw = base["hardware"]
    secs = notebook_seconds()
    runs = r["tables"]["runs"]
    # the first seed's baseline row is the baseline stage's run, already counted above
    basis_seconds = float(runs.train_time.sum() - runs[runs.variant == "baseline"].train_time.head(1).sum())
    t = claims.verdict_table(r)
    counts = t.verdict.value_counts()
    reading = reading_line(len(t), counts.get(SUPPORTED, 0), counts.get(CONTRADICTED, 0), counts.get(UNDECIDED, 0))
    mt = r["main_table"].set_index("variant")
    n = int(mt.loc["baseline", "seeds"]) if "baseline" in mt.index else 0
    base_acc = (f" Baseline test accuracy {report.fmt_acc(mt, 'baseline')} over {n} seed{'s' * (n != 1)}."
                if n else "")
    lines = [
        f"Profile **{profile}** on **{base['data']}**, produced by the pipeline "
        f"(`make repro PROFILE=\"{profile.replace('+', ' ')}\"`, then `python -m basisconv.pipeline.publish`) "
        f"from the code at commit `{code_commit()}`.",
        f"Hardware: {hw['device_name']}, {hw['threads']} threads ({hw['cpu_count']} cores); torch {hw['torch']}; "
        f"training in {base.get('precision', 'fp32')}. Notebook wall time of the last `dvc repro` "
        f"{sum(secs.values()) / 60:.1f} min; compute recorded in the results: baseline training "
        f"{base['train_time']:.0f} s, sensitivity sweep {sel['search_seconds']:.0f} s, faithfulness checks "
        f"{faith['seconds']:.0f} s, basis-stage trainings {basis_seconds:.0f} s.{base_acc}",
        "",
        claims.verdict_markdown(r),
        "",
        reading,
        "",
        f"Full report with every table and figure: [`{dest}/README.md`]({dest}/README.md).",
    ]
    return "\n".join(lines), dest


def publish(readme="README.md", docs_dir="docs/results", block_name: str = "results") -> Path:
    start, end = markers(block_name)
    r = load_results()
    block, dest = results_block(r, docs_dir)
    readme = Path(readme)
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block to fill")
    reports = Path(STAGES["report"]["readme"]).parent
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "tables").mkdir(parents=True)
    shutil.copytree(STAGES["report"]["figures"], dest / "figures")
    for t in Path(STAGES["report"]["tables"]).iterdir():  # Markdown for people, CSV (full precision) beside it
        if t.suffix in (".md", ".csv"):
            shutil.copyfile(t, dest / "tables" / t.name)
    title, body = (reports / "README.md").read_text().split("\n", 1)
    atomic_write_text(dest / "README.md", f"{title}\n\n{provenance(r)}\n{body}")
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
