"""Publish a finished pipeline run of the arXiv 2408.06024 replication into the repository's README.

``python -m basisconv.pipeline.publish`` copies ``reports/`` (README, Markdown tables, figures) to
``docs/results/<profile>/`` and replaces the block between ``<!-- results:start -->`` and ``<!-- results:end -->`` in
``README.md`` (or another named block, ``--block results-cpu-long``) with the run's data label, code commit,
hardware, versions, wall time and the verdict table of ``basisconv.pipeline.claims`` (the same one the report stage
writes), with a one-line reading of it and a link to the full report. Every number comes from the run's files; the
wall time is the sum of papermill's recorded durations of the executed notebooks.

Every published folder keeps its verdict table as ``tables/claims.csv`` (with the run's profile and precision). A
profile that does not train some comparison (``cpu-full`` has no ``scratch`` runs: issue 21 asks for them "in at least
the cheap profile") can borrow those claims from another published run, ``--also docs/results/cpu-mirror``: a claim
the run itself decides is never borrowed, and each borrowed row names the run, its precision and its report. After
the borrowed-from run is republished, ``--reborrow docs/results/cpu-full-mirror --also docs/results/cpu-mirror``
borrows its rows again into the published page and README block, without rerunning the borrowing run; with
``--reword`` it also re-words that run's own accuracy claims, search-cost row, figure captions, main-table note, time
columns' sentence and some topic-prose phrases in the current code's words, drops rows of withdrawn claims and names
fixes the run's code predates (``reworded_claims``, ``reworded_page``: numbers and verdicts must come out as
published), for a run too long to rerun at every change of wording.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
from basisconv.pipeline import claims, figures, report
from basisconv.experiment.io import atomic_write_text, write_frame
from basisconv.pipeline.layout import EXECUTED_DIR, STAGES
from basisconv.pipeline.stages.report import load_results
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
    out = {}
    for nb in sorted(Path(executed_dir).glob("*.ipynb")):
        meta = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            out[nb.stem] = float(meta["duration"])
    return out


def reading_line(table: pd.DataFrame, runs_from: str = "") -> str:
    """The one-line reading of a verdict table (``claim``, ``source``, ``verdict`` and, for rows borrowed from other
    published runs, ``borrowed``), singular and plural right (``tables.plural``): the paper's claims counted apart
    from what its search implies (``source`` ``implied``: comparisons this package adds) and from the package's own
    assumptions (``source`` ``package``), neither of which the paper states; a row that is not separate evidence
    (``repeats``: ``claims.same_models``) is left out of its group's counts, and the count says so."""
    borrowed = table["borrowed"].fillna(False).astype(bool) if "borrowed" in table else pd.Series(False, table.index)

    def tally(rows: pd.DataFrame, last: str, tail: str = "") -> str:
        """'<n> hold(s) here, <n> do(es) not hold here<last><n> is/are not decided<tail>' of ``rows``, leaving out
        the rows that are not separate evidence and saying how many they are."""
        counted = ~(rows["repeats"].map(claims.not_separate).astype(bool) if "repeats" in rows
                    else pd.Series(False, rows.index))
        v = rows[counted].verdict.value_counts()
        held, failed, open_ = (int(v.get(x, 0)) for x in (SUPPORTED, CONTRADICTED, UNDECIDED))
        n = int((~counted).sum())
        left = (f"; {plural(n, 'row')} of these {'repeats' if n == 1 else 'repeat'} another row's comparison with the "
                f"same model under another run name, so {'it is' if n == 1 else 'they are'} not counted (not "
                "separate evidence)" if n else "")
        return (f"{plural(held, 'holds', 'hold')} here, {plural(failed, 'does', 'do')} not hold here{last}"
                f"{plural(open_, 'is', 'are')} not decided{tail}{left}")

    def whence(rows: pd.Series) -> str:
        """' (<n> of them from the published run ...)' for the borrowed rows among ``rows`` (a mask), else ''."""
        n = int((borrowed & rows).sum())
        # the borrowed count stands apart from the verdict counts: it is a share of all these rows, not of the last
        return f" ({n} of them from the published run {runs_from}, which trains what this profile does not)" if n else ""

    paper = table.source == "paper"
    # rows, not claims: a claim tested again at a second budget (`~ml2`) is a row of its own
    line = (f"Of the {plural(int(paper.sum()), 'row')} testing the paper's claims{whence(paper)}, "
            f"{tally(table[paper], ' and ', ' at this scale')}.")
    implied = table.source == "implied"
    if implied.any():
        line += (f" Of the {plural(int(implied.sum()), 'comparison')} this package adds to test what the paper's "
                 f"search implies (rows marked (implied)){whence(implied)}, {tally(table[implied], ' and ')}.")
    own = table.source == "package"
    if own.any():
        line += (f" The package's own {plural(int(own.sum()), 'assumption')} (rows marked (package), not claims "
                 f"of the paper){whence(own)}: {tally(table[own], ', ')}.")
    return line


def provenance(r: dict, commit: str | None = None) -> str:
    """The published report's first paragraph: which profile, command, code and precision produced it (``r``: the
    run's results, ``load_results()``; ``commit``: ``code_commit()`` taken before publishing wrote anything, read
    here when not given)."""
    base, bench = r["baseline"], r["benchmark"]
    profile = base["profile"]
    timed = ", ".join(report.targets_by_precision(bench)) or bench.get("precision", "fp32")
    runs = r["tables"]["runs"]
    n_machines = runs.machine.nunique() if "machine" in runs else 1
    spread = (f" The basis-stage runs ran on {n_machines} machines (the pipeline resumed after a session ended): "
              "epoch times are compared only between runs of one machine." if n_machines > 1 else "")
    return (f"> **Provenance.** Profile `{profile}`, made by `make repro PROFILE=\"{profile.replace('+', ' ')}\"` "
            f"from the code at commit `{commit or code_commit(profile)}` and published by "
            "`python -m basisconv.pipeline.publish`; "
            f"training in {base.get('precision', 'fp32')}, timings in {timed}.{spread}\n")


CLAIMS_CSV = "tables/claims.csv"  # a published run's verdict table, what ``--also`` borrows from


def dest_dir(r: dict, docs_dir="docs/results") -> Path:
    """The folder a run's report is published to: ``docs/results/<profile>`` (``cpu+mirror`` -> ``cpu-mirror``)."""
    return Path(docs_dir) / re.sub(r"[^A-Za-z0-9_.-]", "-", r["baseline"]["profile"])


def own_claims(r: dict) -> pd.DataFrame:
    """The run's verdict table (``claims.verdict_table``, computed once per publish) with the run's profile and
    training precision, as ``tables/claims.csv`` keeps it."""
    return claims.verdict_table(r).assign(run=r["baseline"]["profile"],
                                          precision=r["baseline"].get("precision", "fp32"))


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
        if "timed" not in t:
            raise ValueError(f"--also {folder}: its {CLAIMS_CSV} has no 'timed' column (published before speed claims "
                             "were marked); republish that run first")
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


def _train_span(P: dict) -> dict:
    """The epochs and switch epoch the basis stage ran with, from its summary's resolved params ``P`` (not the work
    tree's ``params.yaml``, which may since have been rewritten)."""
    return {"epochs": P["train"]["epochs"], "switch_epoch": P["basis"]["switch_epoch"]}


def basis_stage_seconds(runs: pd.DataFrame, epochs: int, switch_epoch: int) -> float:
    """Training seconds the basis stage itself spent, from its per-run rows (``runs.csv``): a baseline or scratch run
    counts its ``train_time``, except the first seed's baseline (the baseline stage's run, counted apart); a switch
    run starts from its seed's baseline snapshot at ``switch_epoch`` and carries that snapshot's history, so only its
    own ``epochs - switch_epoch`` epochs count (``basis_epoch_time`` is their mean time)."""
    switch = runs.variant.str.endswith("@switch")
    own = runs[~switch].train_time.sum() - runs[runs.variant == "baseline"].train_time.head(1).sum()
    return float(own + (runs[switch].basis_epoch_time * (epochs - switch_epoch)).sum())


def results_block(r: dict, docs_dir="docs/results", own: pd.DataFrame | None = None,
                  borrowed: pd.DataFrame | None = None, commit: str | None = None,
                  train_span: dict | None = None, also=()) -> tuple[str, Path]:
    """The README block of the run's results ``r`` (``load_results()``) and the folder its report is published to;
    ``own``: its verdict table (``own_claims``, computed here when not given); ``borrowed``: rows of other runs'
    verdict tables (``borrowed_claims``) shown in the same table; ``commit``: as for ``provenance``; ``train_span``:
    ``basis_stage_seconds``' epochs and switch_epoch (read from the basis stage's summary when not given); ``also``:
    the published runs borrowed from, whose speed claims the reading names as not borrowed."""
    base, sel, faith = r["baseline"], r["selection"], r["faithfulness"]
    profile = base["profile"]
    dest = dest_dir(r, docs_dir)
    own = own_claims(r) if own is None else own
    borrowed = own.iloc[:0] if borrowed is None else borrowed
    hw = base["hardware"]
    secs = notebook_seconds()
    runs = r["tables"]["runs"]
    basis_seconds = basis_stage_seconds(runs, **(train_span or _train_span(r["basis"]["params_resolved"])))
    mt = r["main_table"].set_index("variant")
    n = int(mt.loc["baseline", "seeds"]) if "baseline" in mt.index else 0
    base_acc = (f" Baseline test accuracy {report.fmt_acc(mt, 'baseline')} (mean ± std) over {plural(n, 'seed')}."
                if n else "")
    lines = [
        f"Profile **{profile}** on **{base['data']}**, produced by the pipeline "
        f"(`make repro PROFILE=\"{profile.replace('+', ' ')}\"`, with `ALLOW_LONG=1` where it stops at its wall-time "
        "estimate, then `python -m basisconv.pipeline.publish`) "
        f"from the code at commit `{commit or code_commit(profile)}`.",
        f"Hardware: {hw['device_name']}, {hw['threads']} threads ({hw['cpu_count']} cores); torch {hw['torch']}; "
        f"training in {base.get('precision', 'fp32')}. Notebook wall time of the last `dvc repro` "
        f"{sum(secs.values()) / 60:.1f} min (work that earlier runs finished is reused, so it can be less than the "
        f"compute); compute recorded in the results: baseline training {base['train_time']:,.0f} s (the first seed), "
        f"sensitivity sweep {sel['search_seconds']:,.0f} s, faithfulness checks {faith['seconds']:,.0f} s, basis-stage "
        f"trainings (the other baseline seeds and every basis run) {basis_seconds:,.0f} s.{base_acc}",
        "",
        verdicts_and_reading(r, own, borrowed, also),
        "",
        report_link(dest),
    ]
    return "\n".join(lines), dest


def verdicts_and_reading(r: dict, own: pd.DataFrame, borrowed: pd.DataFrame, also=()) -> str:
    """The README block's verdict table (the run's own rows, then the borrowed ones) and its one-line reading, with
    the speed claims of the runs ``also`` that are not borrowed (``speed_not_borrowed``); ``r`` needs only
    ``r["tables"]["runs"]`` (the seed count)."""
    reading = reading_line(pd.concat([own.assign(borrowed=False), borrowed.assign(borrowed=True)], ignore_index=True),
                           ", ".join(f"`{x}`" for x in dict.fromkeys(borrowed.run)))
    unborrowed = speed_not_borrowed(unborrowed_speed(own, also))
    return f"{claims.verdict_markdown(r, table=own, extra=borrowed)}\n\n{reading}" + (
        f" {unborrowed}" if unborrowed else "")


def report_link(dest: Path) -> str:
    """The README block's last line: the link to the published report (how ``reborrow`` knows whose block it is)."""
    return f"Full report with every table and figure: [`{dest}/README.md`]({dest}/README.md)."


BORROWED_HEADING = "### Claims this profile does not train, from another published run (its verdicts, not this run's)"
MEASUREMENTS = "## Measurements by topic"  # the report's section after its verdicts, before which borrowed rows go


def page_borrowed(section: str) -> list[tuple[str, str]]:
    """``(claim, comparison)`` of each row of a published page's borrowed table (``borrowed_section``); the
    comparison without the run, precision and link that the page adds to it."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|")]
    return [(r[0], _bare_comparison(r[1])) for r in rows[2:] if len(r) >= 4]


def _bare_comparison(comparison: str) -> str:
    """A borrowed row's comparison without the run, precision and report link ``borrowed_claims`` adds."""
    return comparison.split(" (run `")[0]


def borrowed_section(borrowed: pd.DataFrame, also, dest: Path, gone=(), own: pd.DataFrame | None = None) -> str:
    """The published page's section of borrowed claims (``borrowed_claims``): their table and sentences, each link
    relative to the page's folder ``dest`` (the README's links are relative to the repository); ``gone``: lines
    saying which claims are no longer borrowed (``reborrow``); ``own``: the run's own verdict table, to name the speed
    claims of ``also`` that are not borrowed (``speed_not_borrowed``)."""
    table = borrowed[["claim", "comparison", "measured", "verdict"]].to_markdown(index=False)
    sentences = "\n".join(f"- In run `{run}`: {x}" for run, x in zip(borrowed.run, borrowed.sentence))
    unborrowed = "" if own is None else speed_not_borrowed(unborrowed_speed(own, also))
    section = f"{BORROWED_HEADING}\n\n{table}\n\n{sentences}\n\n" + "".join(f"{g}\n\n" for g in gone) + (
        f"{unborrowed}\n\n" if unborrowed else "")
    for folder in map(Path, also):
        section = section.replace(f"]({folder}/README.md)", f"]({os.path.relpath(folder, dest)}/README.md)")
    return section


def publish(readme="README.md", docs_dir="docs/results", block_name: str = "results", also=()) -> Path:
    """Publish the run in the work tree; ``also``: published folders to borrow the claims it does not decide from.
    Every input is checked before anything is written."""
    start, end = markers(block_name)
    r = load_results()
    own = own_claims(r)
    borrowed = borrowed_claims(own, also)
    # once, before anything is written: publishing changes tracked files (README, docs/results)
    commit = code_commit(r["baseline"]["profile"])
    block, dest = results_block(r, docs_dir, own, borrowed, commit, also=also)
    readme = Path(readme)
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} has no {start} ... {end} block to fill")
    if any(Path(a).resolve() == dest.resolve() for a in also):
        raise ValueError(f"--also {dest}: that is the folder this run is published to")
    reports = Path(STAGES["report"]["readme"]).parent
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "tables").mkdir(parents=True)
    shutil.copytree(STAGES["report"]["figures"], dest / "figures")
    for t in Path(STAGES["report"]["tables"]).iterdir():  # Markdown for people, CSV (full precision) beside it
        if t.suffix in (".md", ".csv"):
            shutil.copyfile(t, dest / "tables" / t.name)
    own.to_csv(dest / CLAIMS_CSV, index=False)
    title, body = (reports / "README.md").read_text().split("\n", 1)
    if len(borrowed):  # the borrowed rows in the report too, after its own verdicts
        section = borrowed_section(borrowed, also, dest, own=own)
        body = body.replace(MEASUREMENTS, section + MEASUREMENTS, 1) if MEASUREMENTS in body else f"{body}\n{section}"
    atomic_write_text(dest / "README.md", f"{title}\n\n{provenance(r, commit)}\n{body}")
    (dest / "notebooks").mkdir()
    for html in Path(EXECUTED_DIR).glob("*.html"):  # the executed notebooks the report links to
        shutil.copyfile(html, dest / "notebooks" / html.name)
    pre, rest = text.split(start, 1)
    post = rest.split(end, 1)[1]
    atomic_write_text(readme, f"{pre}{start}\n{block}\n{end}{post}")
    return dest


CLAIMS_HEADING = "## The paper's claims and what this run decides"  # the report's verdict section
FIGURE_LINE = re.compile(r"^\*\*Figure (\d+): `([^`]+)`\.\*\* .*$", re.M)  # a caption line of the report
# phrases of the topic prose that older report code wrote stronger than its evidence, and today's words for them
PHRASES = [(re.compile(r"random subsets at equal savings"),
            "random layer subsets saving about as many parameters (one draw each)"),
           (re.compile(r"faster than dense on (\d+/\d+)\)"), r"faster than dense by median time on \1, no interval)")]
TABLE_NOTE = re.compile(r"^Test accuracy in %, mean and std over seeds;.*$", re.M)  # the main table's note
# the run names' sentence on the time columns, as the report stage worded it since c4d01ae (an older page is
# refused by ``reworded_page`` rather than left saying epoch times decide claims)
TIME_COLUMNS = re.compile(r"Epoch \(s\) and training \(s\) of a switch run include the (\d+) dense epochs? before "
                          r"the switch, the baseline's[;.].*?(?:those dense epochs included|interleaved timings)\.")
REWORDED = "Claim wording and figure captions re-rendered"  # how a re-worded page and block say so
NO_LONGER = "No longer borrowed:"  # how a page and block say a claim left the borrowed rows (``reborrow``)
# fixes after which a published run's numbers may differ: (commit, what a run of older code may carry); ``--reword``
# names each whose commit the page's code predates
FIXES = [("81a714f", "this run's code predates fix 81a714f: its sensitivity sweep's rows could depend on the layers "
                     "timed before them (a layer left in channels_last; a resumed sweep differed from a straight one "
                     "in 7 of 64 rows), so its selection, and every row built on it, may differ from today's code's.")]


def no_longer_line(claim: str) -> str:
    """What a page and README block say of a borrowed claim that its run now decides by timing (``reborrow``)."""
    return (f"{NO_LONGER} '{claim}' (borrowed earlier, when it was decided from training times; its run now decides "
            "it from interleaved timings of that run's machine, a verdict of that machine only, so this run, which "
            "times its own models, does not borrow it).")


def page_commit(text: str) -> str | None:
    """The code commit a published page names on its provenance line (``from the code at commit `...```)."""
    m = re.search(r"^> \*\*Provenance\.\*\*.*?from the code at commit `([0-9a-f]+)", text, re.M)
    return m[1] if m else None


def caveats(commit: str | None, fixes=None) -> list[str]:
    """The ``FIXES`` (or ``fixes``) whose commit ``commit`` does not contain (``git merge-base --is-ancestor``);
    none when either is unknown to git (a page of unknown code names no fix it cannot check)."""
    out = []
    for fix, text in FIXES if fixes is None else fixes:
        if not commit:
            break
        r = subprocess.run(["git", "merge-base", "--is-ancestor", fix, commit], capture_output=True)
        if r.returncode == 1:  # 0: contains the fix; 128: unknown commit
            out.append(text)
    return out


def _is_true(x) -> bool:
    """A ``timed`` cell as read from a CSV (bool, or its text)."""
    return str(x).strip().lower() == "true"


def withdrawn_rows(own: pd.DataFrame) -> pd.DataFrame:
    """The rows of a published verdict table that decide a claim the current code has withdrawn
    (``claims.WITHDRAWN``: decided from untimed evidence that cannot carry it), with the reason in ``why``; a table
    published before rows were marked ``timed`` has none of them timed (the withdrawn ones never were)."""
    timed = own.timed.map(_is_true) if "timed" in own else pd.Series(False, index=own.index)
    gone = own[own.claim.isin(list(claims.WITHDRAWN)) & ~timed]
    return gone.assign(why=[claims.WITHDRAWN[c] for c in gone.claim])


def withdrawn_text(gone: pd.DataFrame) -> str:
    """What a re-worded page and README block say of the rows ``withdrawn_rows`` dropped (empty when none)."""
    return "".join(f" Withdrawn: the row '{g.claim}' (published: {g.measured}, {g.verdict}), since {g.why}."
                   for g in gone.itertuples())


# who may become whom in a re-wording: the words of a claim's opener, never a package assumption into the paper's
_REWORDABLE_SOURCES = {"paper", "implied"}


def reworded_claims(folder, own: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """A published run's verdict table ``own`` (its ``tables/claims.csv``) with its accuracy claims in the current
    code's words: each is derived again from the run's per-run table ``runs`` (``tables/runs.csv``) by
    ``claims.accuracy_claims`` and matched to the published row by its comparison (the runs compared and their
    sizes). Only words may change (the claim, its sentence, and whether the paper states it or its search implies
    it): a derived claim that measures or decides otherwise than its published row, or that the published table
    lacks, raises (the computation changed, so the run must be republished). Rows of withdrawn claims
    (``withdrawn_rows``) are dropped; the search-cost row takes the current words of its claim; rows the per-run
    table cannot derive (speed, the proxy) keep their words; ``folder`` names the run in the errors."""
    derived = pd.DataFrame([d.row() for d in claims.accuracy_claims(runs)], columns=claims.COLUMNS)
    missing = sorted(set(derived.comparison) - set(own.comparison))
    if missing or derived.comparison.duplicated().any():
        raise ValueError(f"--reword {folder}: the current code decides claims its {CLAIMS_CSV} lacks "
                         f"({'; '.join(missing) or 'a comparison twice'}); republish {folder} itself")
    out = own.copy()
    for _, d in own.merge(derived, on="comparison", suffixes=("", "_new")).iterrows():
        same_source = d.source_new == d.source or {d.source_new, d.source} <= _REWORDABLE_SOURCES
        if (d.measured_new, d.verdict_new) != (d.measured, d.verdict) or not same_source:
            raise ValueError(f"--reword {folder}: `{d.comparison}` now measures {d.measured_new!r} "
                             f"({d.verdict_new}, {d.source_new}), published {d.measured!r} ({d.verdict}, {d.source}); "
                             f"only words may change, so republish {folder} itself")
        at = own.index[own.comparison == d.comparison]
        # the published row's note that it is not separate evidence stays (the per-run table cannot know it)
        repeats = d.get("repeats") if claims.not_separate(d.get("repeats")) else ""
        out.loc[at, "claim"], out.loc[at, "source"] = d.claim_new, d.source_new
        out.loc[at, "sentence"] = claims.sentence(d.claim_new, d.measured, d.verdict, d.source_new, repeats)
    # the search-cost row: one measurement against a fixed threshold, so its words are the current ones as they are
    at = out.index[(out.comparison == claims.SEARCH_COMPARISON) & (out.source == "paper")]
    for i in at:  # its verdict under today's threshold must be the published one
        share = re.search(r", (\d+(?:\.\d+)?) %", out.loc[i, "measured"])
        now = claims.SUPPORTED if share and float(share[1]) <= 100 * claims.CHEAP_FRACTION else claims.CONTRADICTED
        if share is None or now != out.loc[i, "verdict"]:
            raise ValueError(f"--reword {folder}: the search-cost row ({out.loc[i, 'measured']!r}, "
                             f"{out.loc[i, 'verdict']}) is not decided so under today's threshold "
                             f"({100 * claims.CHEAP_FRACTION:g} %); republish {folder} itself")
    out.loc[at, "claim"] = claims.SEARCH_CLAIM
    out.loc[at, "sentence"] = [claims.sentence(claims.SEARCH_CLAIM, m, v) for m, v in
                               zip(out.loc[at, "measured"], out.loc[at, "verdict"])]
    return out.drop(index=withdrawn_rows(own).index)


def reworded_page(text: str, old: pd.DataFrame, new: pd.DataFrame, runs: pd.DataFrame, note: str) -> str:
    """The published ``text`` with its verdict section (table, note and sentences: the report stage's) rendered from
    ``new`` instead of ``old`` (its published claims), every figure caption from ``figures.caption``, the main
    table's note and the run names' sentence on the time columns in the current words (``report``), the topic
    prose's ``PHRASES`` that older code worded stronger than its evidence, and ``note`` at the end of its provenance
    line (in place of an earlier one). Raises, before anything is written, on a page
    whose verdict sentences are not ``old``'s or that names a figure without a caption."""
    if CLAIMS_HEADING not in text:
        raise ValueError(f"the page has no '{CLAIMS_HEADING}' section")
    head, rest = text.split(CLAIMS_HEADING, 1)
    end = rest.find("\n#")
    section, tail = (rest, "") if end < 0 else (rest[:end + 1], rest[end + 1:])
    if [line[2:] for line in section.splitlines() if line.startswith("- ")] != list(old.sentence):
        raise ValueError("the page's verdict sentences are not those of its tables/claims.csv")
    verdicts = claims.verdict_markdown({"tables": {"runs": runs}}, table=new)
    section = "\n\n" + verdicts + "\n\n" + "\n".join(f"- {x}" for x in new.sentence) + "\n\n"
    tail = FIGURE_LINE.sub(lambda m: f"**Figure {m[1]}: `{m[2]}`.** {figures.caption(m[2])}", tail)
    for old_words, words in PHRASES:
        tail = old_words.sub(words, tail)
    head = TABLE_NOTE.sub(lambda m: report.MAIN_TABLE_NOTE, head, count=1)
    head, n = TIME_COLUMNS.subn(lambda m: report.time_columns_text(int(m[1])), head, count=1)
    if not n and "Epoch (s) and training (s)" in head:
        raise ValueError("the page's sentence on its time columns is in words --reword does not know "
                         "(TIME_COLUMNS); republish the run, or add its words there")
    head = re.sub(r"^(> \*\*Provenance\.\*\*.*?)(?: " + REWORDED + r"[^\n]*)?$", lambda m: f"{m[1]} {note}",
                  head, count=1, flags=re.M)
    return head + CLAIMS_HEADING + section + tail


def reborrow(folder, also, readme="README.md", block_name: str = "results", reword: bool = False) -> list[str]:
    """Refresh the borrowed rows of a published run from ``also`` as those folders are now, without rerunning it:
    after a borrowed-from run was republished, the borrowing run's page and README block would otherwise show the
    older run's numbers beside links to the newer report. Which claims are borrowed stays as published (each row of
    the page's borrowed section, found again by its comparison in ``also``; a claim no longer there is an error: then
    republish the run itself; one its run now decides by timing is dropped, and page and block say so); the run's own rows come from its ``tables/claims.csv``, re-rendered, and the README
    block keeps its provenance and hardware lines. ``readme``'s block is rewritten only when its report link is
    ``folder``'s. ``reword``: the run's own claims in the current code's words as well (``reworded_claims``), and
    its figure captions; page and block then say so, with the commit. Every input is checked before anything is
    written; returns the files rewritten."""
    folder = Path(folder)
    page = folder / "README.md"
    for f in (page, folder / CLAIMS_CSV, folder / "tables/runs.csv"):
        if not f.is_file():
            valid = sorted(str(c.parent.parent) for c in folder.parent.glob(f"*/{CLAIMS_CSV}"))
            raise ValueError(f"--reborrow {folder}: no {f.relative_to(folder)} there; valid choices: "
                             f"{', '.join(valid) or 'none'}")
    if not also:
        raise ValueError("--reborrow needs --also: the published runs to borrow from again")
    if any(Path(a).resolve() == folder.resolve() for a in also):
        raise ValueError(f"--also {folder}: that is the folder whose claims are borrowed into")
    text = page.read_text()
    if BORROWED_HEADING not in text:
        raise ValueError(f"--reborrow {folder}: its page borrows nothing (no '{BORROWED_HEADING}' section)")
    old = text[text.index(BORROWED_HEADING):]
    old = old[:old.index(MEASUREMENTS)] if MEASUREMENTS in old else old
    own = pd.read_csv(folder / CLAIMS_CSV, keep_default_na=False)
    runs = pd.read_csv(folder / "tables/runs.csv")
    note = ""
    if reword:
        published, own = own, reworded_claims(folder, own, runs)
        # rows withdrawn by an earlier re-wording are no longer in claims.csv: their note is carried over
        earlier = re.findall(r" Withdrawn: the row .*?\.(?= Withdrawn:| Caveat:|$)", next(
            (line for line in text.splitlines() if line.startswith("> **Provenance.**") and REWORDED in line), ""))
        note = (f"{REWORDED} by `python -m basisconv.pipeline.publish --reword` from the code at commit "
                f"`{code_commit()}`; every number and verdict still shown is the run's as published."
                + "".join(dict.fromkeys(earlier + [withdrawn_text(withdrawn_rows(published))]))
                + "".join(f" Caveat: {c}" for c in caveats(page_commit(text))))
        try:
            text = reworded_page(text, published, own, runs, note)
        except (ValueError, KeyError) as e:  # KeyError: a figure without a caption (figures.caption lists them)
            raise ValueError(f"--reword {folder}: {e.args[0]}") from e
    candidates = borrowed_claims(own, also)
    before = page_borrowed(old)
    # a borrowed claim that its run now decides by timing is that machine's and no longer borrowed (it is dropped
    # here, and the note says so); every other one must be found again by its comparison
    timed = {c for a in also for c, t in pd.read_csv(Path(a) / CLAIMS_CSV, keep_default_na=False)[["claim", "timed"]]
             .itertuples(index=False) if _is_true(t)}
    dropped = [(c, m) for c, m in before if m not in set(candidates.comparison.map(_bare_comparison)) and c in timed]
    kept = [m for c, m in before if (c, m) not in dropped]
    borrowed = candidates[candidates.comparison.map(_bare_comparison).isin(kept)]
    if len(borrowed) != len(kept):
        raise ValueError(f"--reborrow {folder}: {len(before)} borrowed claims on its page, {len(borrowed)} of them "
                         f"found in {', '.join(map(str, also))} (no longer decided there, or decided otherwise); "
                         f"republish {folder} itself")
    # kept on the page and in the block at every later reborrow too (in the current words)
    before_gone = [m[1] for line in old.splitlines() if line.startswith(NO_LONGER)
                   for m in [re.match(NO_LONGER + r" '(.*?)' \(", line)] if m]
    gone = [no_longer_line(c) for c in dict.fromkeys(before_gone + [c for c, _ in dropped])]
    start, end = markers(block_name)
    readme = Path(readme)
    rtext = readme.read_text()
    block = rtext.split(start, 1)[1].split(end, 1)[0].strip("\n").split("\n") \
        if start in rtext and end in rtext else []
    new_block = None
    if block and block[-1] == report_link(folder):
        first_row = next((i for i, line in enumerate(block) if line.startswith("|")), None)
        if first_row is None:
            raise ValueError(f"{readme}: the {block_name} block of {folder} has no verdict table to refresh")
        # the re-wording note is replaced only by a new one: a plain reborrow keeps it (and its withdrawals, caveats)
        lead = [line for line in block[:first_row] if not line.startswith((REWORDED, NO_LONGER) if note else NO_LONGER)]
        while lead and not lead[-1].strip():  # one blank line between the paragraphs, however many notes went
            lead.pop()
        lead += [""] + [x for line in ([note] if note else []) + gone for x in (line, "")]
        new_block = "\n".join(lead + [verdicts_and_reading({"tables": {"runs": runs}}, own, borrowed, also), "",
                                       block[-1]])
    atomic_write_text(page, text.replace(old, borrowed_section(borrowed, also, folder, gone, own=own), 1))
    if reword:
        write_frame(folder / CLAIMS_CSV, own)
    written = [str(page)] + ([str(folder / CLAIMS_CSV)] if reword else [])
    if new_block is not None:
        pre, rest = rtext.split(start, 1)
        atomic_write_text(readme, f"{pre}{start}\n{new_block}\n{end}{rest.split(end, 1)[1]}")
        written.append(str(readme))
    return written


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--block", default="results", help="README block to fill: <!-- BLOCK:start --> ... :end -->")
    ap.add_argument("--also", action="append", default=[], metavar="FOLDER",
                    help="a published run (docs/results/<profile>) to borrow the claims this run does not decide from")
    ap.add_argument("--reborrow", metavar="FOLDER",
                    help="do not publish the work tree's run: borrow the --also claims into this published run "
                         "(docs/results/<profile>) again, as those folders are now")
    ap.add_argument("--reword", action="store_true",
                    help="with --reborrow: that run's own claims, figure captions and notes in the current code's "
                         "words too, withdrawn rows dropped (its numbers and verdicts must come out as published)")
    args = ap.parse_args(argv)
    if args.reword and not args.reborrow:
        ap.error("--reword needs --reborrow FOLDER: the published run to re-word")
    if args.reborrow:
        written = reborrow(args.reborrow, args.also, args.readme, args.block, reword=args.reword)
        print(f"borrowed into {args.reborrow} again from {', '.join(args.also)}: rewrote {', '.join(written)}")
        return
    dest = publish(args.readme, block_name=args.block, also=args.also)
    print(f"published to {dest} and {args.readme} ({args.block} block)")


if __name__ == "__main__":
    main()
