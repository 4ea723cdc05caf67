"""Publish a finished pipeline run of the arXiv 2408.06024 replication, and render published runs again.

``python -m basisconv.pipeline.publish`` makes ``docs/results/<profile>/`` from the work tree's run: it keeps a copy of
the results every page of the run is rendered from (``results/``: the stages' small JSON and CSV files, the raw
timing rounds included; never checkpoints or data), the executed notebooks (``notebooks/``, as the run made them) and
``results/run.json`` (profile, code commit, notebook wall times, the runs it borrows from), then renders the folder.

``python -m basisconv.pipeline.publish --render docs/results/<run>`` renders a published folder again from that folder
alone: its page (``README.md``), tables, figures and captions (``basisconv.pipeline.render``) and, for the run the
README shows (its ``<!-- results:start -->`` ... ``:end -->`` block, or the block named at publishing), the README's
results block. A word or a figure changes by ``--render``; no training or timing runs.

A profile that does not train some comparison can borrow those claims from another published run
(``--also docs/results/cpu-mirror``): each borrowed row is read from that run's own kept verdict table
(``tables/claims.csv``) whenever the page is rendered, says which run it comes from, and is never a speed claim
(a speed verdict belongs to the machine and models timed) or one the run itself decides.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import yaml

from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
from basisconv.experiment.io import atomic_write_text, read_json, write_json
from basisconv.pipeline import claims, narrative, render
from basisconv.pipeline.layout import EXECUTED_DIR, STAGES
from basisconv.pipeline.tables import plural

def markers(block: str = "results") -> tuple[str, str]:
    """The README markers of a results block: ``results`` (the main one) or e.g. ``results-cpu-long``."""
    return f"<!-- {block}:start -->", f"<!-- {block}:end -->"


START, END = markers()


# What `make repro PROFILE=...` itself rewrites in the work tree: the run's inputs and record, not its code.
RUN_FILES = ("params.yaml", "dvc.lock")


def params_are_a_profile(profile: str, params_file="params.yaml") -> bool:
    """Whether ``params_file`` holds exactly the composition of ``profile`` (the published run's, e.g.
    ``cpu+mirror``: what ``make repro PROFILE="cpu mirror"`` writes), so that it says nothing the provenance's
    command does not; a hand-edited ablation, or another profile's params, is not."""
    from basisconv.pipeline.params import compose
    try:
        given = yaml.safe_load(Path(params_file).read_text())
        return isinstance(given, dict) and given.get("profile") == profile and given == compose(*profile.split("+"))
    except (OSError, ValueError, yaml.YAMLError):
        return False


def code_commit(profile: str | None = None) -> str:
    """The repository's HEAD (short), with ``+changes`` when the work tree differs from it; ``unknown`` outside git.
    ``dvc.lock``, and a ``params.yaml`` that is the composition of the published ``profile``, do not count as
    changes: the published command (``make repro PROFILE=...``) writes them."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = {line[3:].strip() for line in dirty}
    changed -= {f for f in RUN_FILES if f != "params.yaml" or (profile and params_are_a_profile(profile, f))}
    return head + ("+changes" if changed else "")


def notebook_seconds(executed_dir=EXECUTED_DIR) -> dict[str, float]:
    """Papermill's recorded duration of every executed notebook, by stem."""
    out = {}
    for nb in sorted(Path(executed_dir).glob("*.ipynb")):
        meta = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            out[nb.stem] = float(meta["duration"])
    return out


def _is_true(x) -> bool:
    """A ``timed`` cell of a kept verdict table (a CSV read back gives bools or their text)."""
    return x is True or str(x).strip().lower() == "true"


CLAIMS_CSV = "tables/claims.csv"  # a published run's verdict table, what ``--also`` borrows from


def dest_dir(profile: str, docs_dir="docs/results") -> Path:
    """The folder a run's report is published to: ``docs/results/<profile>`` (``cpu+mirror`` -> ``cpu-mirror``)."""
    return Path(docs_dir) / re.sub(r"[^A-Za-z0-9_.-]", "-", profile)


def borrowed_claims(own: pd.DataFrame, also=()) -> pd.DataFrame:
    """The rows of other published runs' verdict tables (each ``also`` a published folder) whose claim the run
    itself does not decide, first run first; speed claims never (``timed``: a speed verdict belongs to the machine and
    the models that were timed, and every run times its own) and the package's own assumptions never (every run
    measures its own proxies); the comparison names the run, its precision and its report."""
    rows = []
    for folder in map(Path, also):
        f = folder / CLAIMS_CSV
        if not f.is_file():
            valid = sorted(str(c.parent.parent) for c in folder.parent.glob(f"*/{CLAIMS_CSV}"))
            raise ValueError(f"--also {folder}: no {CLAIMS_CSV} there (runs published before it was kept have none); "
                             f"valid choices: {', '.join(valid) or 'none'}")
        t = pd.read_csv(f)
        if "timed" not in t or "group" not in t:
            raise ValueError(f"--also {folder}: its {CLAIMS_CSV} has no 'timed' or 'group' column (published before "
                             "speed claims were marked and claims grouped); republish that run first")
        t = t[~t.claim.isin(own.claim) & ~t.claim.isin([c for b in rows for c in b.claim]) & ~t.timed.map(_is_true)
              & (t.source != "package")]
        rows.append(t.assign(comparison=[f"{c} (run `{run}`, {prec}: [report]({folder}/README.md))"
                                         for c, run, prec in zip(t.comparison, t.run, t.precision)]))
    return pd.concat(rows, ignore_index=True) if rows else own.iloc[:0]


def unborrowed_speed(own: pd.DataFrame, also=()) -> list[tuple[str, str]]:
    """``(claim, run)`` of each speed claim a published run of ``also`` decides and this run (``own``) does not:
    never borrowed (``borrowed_claims``), so the reading says which they are rather than leave them out unsaid."""
    rows = []
    for folder in map(Path, also):
        t = pd.read_csv(folder / CLAIMS_CSV, keep_default_na=False)
        rows += [(c, run) for c, run, timed in zip(t.claim, t.run, t.timed)
                 if _is_true(timed) and c not in set(own.claim)]
    return list(dict.fromkeys(rows))


def speed_not_borrowed(rows: list[tuple[str, str]]) -> str:
    """The sentence naming the speed claims ``unborrowed_speed`` found, or ""."""
    if not rows:
        return ""
    return (f"Not borrowed: {plural(len(rows), 'speed claim')} that another run decides by its own timings ("
            + "; ".join(f"'{c}', run `{run}`" for c, run in rows) + "), since a speed verdict belongs to the machine "
            f"and the models that were timed; this run does not decide {'it' if len(rows) == 1 else 'them'} itself.")


def basis_stage_seconds(runs: pd.DataFrame) -> float:
    """Training seconds the basis stage itself spent, from its per-run rows (``runs.csv``): a reference or scratch run
    counts its ``train_time``, except the first seed's baseline (the baseline stage's run, counted apart); a switch or
    late run starts from its seed's baseline snapshot and carries that snapshot's history, so only its own
    ``basis_epochs`` count (``basis_epoch_time`` is their mean time); a run that is an earlier run's model
    (``same_as``) was not trained again and counts nothing."""
    if "same_as" in runs:
        runs = runs[~runs.same_as.map(lambda s: isinstance(s, str) and bool(s))]
    from_snapshot = runs.basis_epochs.between(1, runs.epochs - 1) if "basis_epochs" in runs else runs.index < 0
    own = runs[~from_snapshot].train_time.sum() - runs[runs.variant == "baseline"].train_time.head(1).sum()
    return float(own + (runs[from_snapshot].basis_epoch_time * runs[from_snapshot].basis_epochs).sum())


VERDICT_WORDS = {SUPPORTED: "holds", CONTRADICTED: "does not hold", UNDECIDED: "not decided"}  # the README's cells


def headline_table(t: pd.DataFrame) -> str:
    """The README's verdict table (``claims.headline`` rows): group, short claim, verdict in the tally's words, the
    measured value with its direction; a row that is not separate evidence says so in its verdict."""
    if not len(t):
        return "No claim of the headline could be decided in this run."
    shown = pd.DataFrame({
        "group": t.group.map(lambda g: "late conversion" if g == "late" else g), "claim": t.short,
        "verdict": [VERDICT_WORDS[v] + (f" ({repeat_words(x)}: not counted)" if claims.not_separate(x) else "")
                    for v, x in zip(t.verdict, t.get("repeats", [""] * len(t)))],
        "measured (95 % CI)": t.measured})
    return shown.to_markdown(index=False)


def repeat_words(why: str) -> str:
    """Why a row is not separate evidence, in a few words (``claims.Decided.repeats`` says it in full)."""
    return "same architecture" if "same architecture" in why else "same model" if "itself" in why else "a repeat"


def headline_tally(t: pd.DataFrame, full: pd.DataFrame) -> str:
    """One line: how the README's rows read (rows that are not separate evidence left out), what the cells mean, and
    how many rows the report's full table has."""
    counted = t[~t.get("repeats", pd.Series("", t.index)).map(claims.not_separate).astype(bool)]
    v = counted.verdict.value_counts()
    held, failed, open_ = (int(v.get(x, 0)) for x in (SUPPORTED, CONTRADICTED, UNDECIDED))
    left = len(t) - len(counted)
    return (f"Of these {plural(len(t), 'row')}: {plural(held, 'holds', 'hold')} here, {plural(failed, 'does', 'do')} "
            f"not hold here, {plural(open_, 'is', 'are')} not decided"
            + (f" ({plural(left, 'row')} comparing a model with itself or repeating another, not counted)" if left
               else "")
            + ". A claim holds when its 95 % interval lies wholly on the claim's side, does not hold when wholly on "
            "the other, and is not decided when the interval crosses the bound. Points: the run's test accuracy minus "
            "the other's (dense, every layer, a subset, scratch); x: how many times faster than dense; %: the search's "
            f"time as a share of one dense training. The report's full table has {plural(len(full), 'row')}, each "
            "with its sentence.")


def results_block(r: dict, dest: Path, own: pd.DataFrame, borrowed: pd.DataFrame, also=()) -> str:
    """The README block of the run rendered from ``r`` (``render.load`` of the published folder ``dest``): the result
    in five lines (``narrative.headline``), the headline verdicts (``claims.headline``) and their tally, what made
    the run, the link to the full report (every row, borrowed ones included)."""
    base, run = r["baseline"], r["run"]
    profile = base["profile"]
    hw = base["hardware"]
    P = r["basis"]["params_resolved"]
    top = claims.headline(own, P["basis"], base.get("precision", "fp32"), claims.timed_names(r))
    lines = [
        narrative.headline(r, own), "",
        headline_table(top), "",
        textwrap.fill(headline_tally(top, pd.concat([own, borrowed], ignore_index=True)), 118), "",
        textwrap.fill(f"Made by `make repro PROFILE=\"{profile.replace('+', ' ')}\"` (with `ALLOW_LONG=1` past its "
        f"estimate's stop) and `python -m basisconv.pipeline.publish` from commit `{run['commit']}`: {hw['device_name']}, {hw['cpu_count']} cores, "
        f"torch {hw['torch']}. Full report with every table, figure and sentence: [`{dest}/README.md`]"
        f"({dest}/README.md).", 118, break_long_words=False, break_on_hyphens=False),
    ]
    return "\n".join(lines)


def _replace_block(readme: Path, block_name: str, block: str) -> None:
    start, end = markers(block_name)
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block to fill")
    pre, rest = text.split(start, 1)
    atomic_write_text(readme, f"{pre}{start}\n{block}\n{end}{rest.split(end, 1)[1]}")


def render_folder(folder, readme="README.md") -> list[str]:
    """Render the published run ``folder`` again from its kept results: page, tables, figures and (when the run
    was published into a README block) that block. Returns the files written, relative to the repository."""
    folder = Path(folder)
    if not (folder / render.RUN_FILE).is_file():
        valid = sorted(str(f.parent.parent) for f in folder.parent.glob(f"*/{render.RUN_FILE}"))
        raise ValueError(f"--render {folder}: no {render.RUN_FILE} there, so no kept results to render from (a run "
                         f"published before results were kept); valid choices: {', '.join(valid) or 'none'}")
    run = read_json(folder / render.RUN_FILE)
    also = run.get("also", [])
    r = render.load(folder)
    own = render.claims_table(r)
    borrowed = borrowed_claims(own, also)
    out = render.page(folder, folder, run["title"], borrowed, also, r,
                      note=speed_not_borrowed(unborrowed_speed(own, also)))
    written = [str(folder / "README.md"), str(folder / "tables"), str(folder / "figures")]
    if run.get("block"):
        _replace_block(Path(readme), run["block"], results_block(out["results"], folder, out["claims"], borrowed,
                                                                 also))
        written.append(str(readme))
    return written


def kept_results(dest: Path) -> None:
    """Copy into ``dest`` every result the run's pages are rendered from (``render.result_files``), at the same
    relative paths; figures are drawn again, except the data stage's sample grid (an image of the data)."""
    for rel in render.result_files():
        src = Path(rel)
        if src.is_dir():
            shutil.copytree(src, dest / rel)
        elif src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
        else:
            raise FileNotFoundError(f"{rel} does not exist: run `dvc repro` to the end before publishing")


def publish(readme="README.md", docs_dir="docs/results", block_name: str | None = "results", also=()) -> Path:
    """Publish the run in the work tree (its results, executed notebooks and provenance) and render it; ``also``:
    published folders to borrow the claims it does not decide from; ``block_name``: the README block the run's
    results go to (None: none). Every input is checked before anything is written."""
    r = render.load(".")
    profile = r["baseline"]["profile"]
    dest = dest_dir(profile, docs_dir)
    borrowed_claims(render.claims_table(r), also)  # refuses a folder without a kept verdict table, before writing
    if any(Path(a).resolve() == dest.resolve() for a in also):
        raise ValueError(f"--also {dest}: that is the folder this run is published to")
    if block_name is not None:
        start, end = markers(block_name)
        if start not in Path(readme).read_text() or end not in Path(readme).read_text():
            raise ValueError(f"{readme} has no {start} ... {end} block to fill")
    # once, before anything is written: publishing changes tracked files (README, docs/results)
    commit = code_commit(profile)
    title = Path(STAGES["report"]["readme"]).read_text().split("\n", 1)[0].lstrip("# ").strip()
    if dest.exists():
        shutil.rmtree(dest)
    kept_results(dest)
    write_json(dest / render.RUN_FILE, {"profile": profile, "commit": commit, "title": title,
                                        "notebook_seconds": notebook_seconds(), "also": [str(a) for a in also],
                                        "block": block_name})
    (dest / "notebooks").mkdir()
    for html in sorted(Path(EXECUTED_DIR).glob("*.html")):  # the executed notebooks the report links to
        shutil.copyfile(html, dest / "notebooks" / html.name)
    render_folder(dest, readme)
    return dest


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--docs-dir", default="docs/results", help="the folder published runs go to")
    ap.add_argument("--block", default="results", help="README block to fill: <!-- BLOCK:start --> ... :end -->")
    ap.add_argument("--no-block", action="store_true", help="publish the run's folder without a README block")
    ap.add_argument("--also", action="append", default=[], metavar="FOLDER",
                    help="a published run (docs/results/<profile>) to borrow the claims this run does not decide from")
    ap.add_argument("--render", nargs="+", metavar="FOLDER",
                    help="do not publish: render these published runs (docs/results/<run>) again from their kept "
                         "results")
    args = ap.parse_args(argv)
    if args.render:
        for folder in args.render:
            print(f"rendered {folder}: {', '.join(render_folder(folder, args.readme))}")
        return
    dest = publish(args.readme, args.docs_dir, block_name=None if args.no_block else args.block, also=args.also)
    print(f"published to {dest}" + ("" if args.no_block else f" and {args.readme} ({args.block} block)"))


if __name__ == "__main__":
    main()
