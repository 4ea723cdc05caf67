"""A run rendered from its kept results alone: figures, tables and the report page (arXiv 2408.06024 replication).

The stages compute; this module only reads what they wrote. ``load(root)`` reads every stage's results (the small
JSON and CSV files under ``<root>/results/``, raw timing rounds included) into one dict, deciding nothing that the
results do not already hold except what is decided *at rendering*: the performance targets
(``basisconv.perf.analysis``) and, in ``basisconv.pipeline.claims``, every verdict. ``FIGURES`` draws each figure of
the pipeline from that dict; ``page`` writes a run's tables, figures and report page into a folder.

The same code renders the work tree (``root="."``: the report stage writes ``reports/``) and a published run
(``root=docs/results/<run>``, which keeps a copy of the results: ``basisconv.pipeline.publish --render``), so a
changed word or figure re-renders every published page without re-running a training or a timing. Rendering is
deterministic: the same results give the same bytes (figures carry no creation date, SVG ids a fixed salt).
"""
from __future__ import annotations

import inspect
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from basisconv.core import evidence
from basisconv.experiment.io import atomic_write_text, read_json, write_frame
from basisconv.perf import analysis
from basisconv.pipeline import captions, claims, display, figures, narrative, tables, variants
from basisconv.pipeline.variants import RunName
from basisconv.pipeline.layout import BASELINE_SUMMARY, SELECTION, STAGES

# table name -> the stage output it is read from (stage, role, file inside a folder output)
TABLES = {"data_splits": ("data", "summary", "splits.csv"), "baseline_history": ("baseline", "history", None),
          "sensitivity": ("sensitivity", "rows", None), "main_table": ("basis", "main_table", None),
          "runs": ("basis", "runs_table", None), "benchmark_layers": ("benchmark", "layers", None),
          "benchmark_models": ("benchmark", "models", None), "faithfulness_layers": ("faithfulness", "layers", None),
          "faithfulness_pairs": ("faithfulness", "pairs", None), "benchmark_forms": ("benchmark", "forms", None),
          "benchmark_peers": ("benchmark", "peers", None), "benchmark_onnx": ("benchmark", "onnx", None)}
# read for the figures, not shown as tables
EXTRA = {"histories": ("basis", "histories", None)}


def table_path(name: str) -> str:
    stage, role, file = {**TABLES, **EXTRA}[name]
    p = STAGES[stage][role]
    return f"{p}/{file}" if file else p


def result_files() -> list[str]:
    """Every result a page is rendered from (relative to a run's root): what ``publish`` keeps beside a page."""
    return list(dict.fromkeys(STAGES["report"].deps.values()))


def load(root=".") -> dict:
    """The results of the run at ``root`` (``.``: the work tree; a published folder: its kept copy): the stages'
    JSON summaries, every table (DataFrames), the run histories and, in the benchmark
    summary, ``targets_by_precision``: the performance targets held to the kept timings now."""
    root = Path(root)
    sel, basis_summary = read_json(root / SELECTION), read_json(root / STAGES["basis"]["summary"])
    t = {n: pd.read_csv(root / table_path(n)) for n in TABLES}
    bench = read_json(root / STAGES["benchmark"]["summary"])
    bench["targets_by_precision"] = analysis.targets_by_precision(
        t["benchmark_layers"].to_dict("records"), t["benchmark_models"].to_dict("records"), bench, sel)
    hist = root / table_path("histories")
    return {"root": root, "baseline": read_json(root / BASELINE_SUMMARY), "selection": sel, "benchmark": bench,
            "basis": basis_summary, "faithfulness": read_json(root / STAGES["faithfulness"]["summary"]),
            "tables": t, "main_table": t["main_table"],
            "histories": pd.read_csv(hist) if hist.is_file() else pd.DataFrame(columns=["variant", "seed", "epoch"]),
            "run": read_json(root / RUN_FILE) if (root / RUN_FILE).is_file() else {}}


RUN_FILE = "results/run.json"  # a published run's provenance (``publish``): profile, commit, notebook times


# ------------------------------------------------------------------------------------------------------ figures
# Each figure: ``prepare(r)`` turns the results into the frame it draws (and its caption reads), ``draw(data, path)``
# draws it, ``captions.<name>(r, data)`` words what this run's figure shows. The seed intervals are drawn at the
# confidence the paired comparisons are decided with (``evidence.paired_difference``), so figure and verdict agree.
CONFIDENCE: float = inspect.signature(evidence.paired_difference).parameters["confidence"].default


def _params(r: dict, stage: str) -> dict:
    """The params ``stage`` ran with, from its summary (the selection is the sensitivity stage's)."""
    return r["selection" if stage == "sensitivity" else stage]["params_resolved"]


def final_rows(r) -> pd.DataFrame:
    """The sweep rows of the final baseline (the model whose selection the figures outline); the switch-epoch
    snapshot's sweep is the other model of ``sensitivity.csv``."""
    rows = r["tables"]["sensitivity"]
    return rows[rows.model == "final"] if "model" in rows else rows


def front_schedule(r: dict) -> str:
    """The schedule whose runs carry the fronts (``basis.front_schedule``; without one, the last trained)."""
    B = _params(r, "basis")["basis"]
    return B.get("front_schedule") or variants.trained_schedules(B)[-1]


def timing(bench: dict, run: str, mode: str) -> tuple[float, float, float]:
    """``run``'s measured ``mode`` (``train_step``, ``inference``) time as a fraction of the baseline's, with the
    interval of its interleaved rounds: ``(time, low, high)``; NaNs where it was not timed. A run that is an earlier
    run's model was timed under that name (``timed_as``)."""
    m = (bench.get("models") or {}).get(f"{claims.timed_model(bench, run, mode)}.{mode}") or {}
    g, lo, hi = (m.get(k, math.nan) for k in ("speedup_geomean", "speedup_low", "speedup_high"))
    return 1 / g, 1 / hi, 1 / lo  # a time ratio is the speedup's inverse (its interval's ends swap)


def run_points(r: dict, schedule: str, timed: bool = False) -> pd.DataFrame:
    """One row per run name of ``schedule`` and the baseline (``figures.fronts``' points): its family (the name
    without its front point), whether it is the main budget, its test accuracy (%, seed t-interval), parameters and
    MACs (millions, seed mean: a random draw differs per seed) and, with ``timed``, its train-step and inference
    time as a fraction of the baseline's (``timing``)."""
    runs = r["tables"]["runs"]
    keep = runs[(runs.schedule == schedule) | (runs.variant == "baseline")]  # the fp32 twin is not a method
    rows = []
    for run, g in keep.groupby("variant", sort=False):
        name = RunName.parse(run)
        mean, low, high, n = figures.seed_interval(100 * g.test_acc, CONFIDENCE)
        row = {"run": run, "family": str(RunName(name.variant, name.schedule, "", name.draw, name.epoch)),
               "main": name.point == "", "acc": mean, "acc_low": low, "acc_high": high, "n": n,
               "params": g.params.mean() / 1e6, "macs": g.macs.mean() / 1e6}
        for mode, col in (("train_step", "train_time"), ("inference", "inference_time")) if timed else ():
            row[col], row[f"{col}_low"], row[f"{col}_high"] = timing(r["benchmark"], run, mode)
        rows.append(row)
    return pd.DataFrame(rows, columns=["run", *figures.POINT_COLUMNS, "params", "macs"] + (
        [f"{c}{s}" for c in ("train_time", "inference_time") for s in ("", "_low", "_high")] if timed else []))


def forest_rows(r: dict) -> pd.DataFrame:
    """Every main-budget run of every schedule against the baseline (``figures.paired_forest``' rows): its paired
    accuracy difference in points over the seeds both have; a run that is another run's model is one row, labelled
    with both names."""
    runs = r["tables"]["runs"]
    acc, same = claims.seed_accuracies(runs), claims.same_models(runs)
    twins: dict[str, list[str]] = {}
    for twin, first in same.items():
        twins.setdefault(first, []).append(twin)
    rows = []
    for s in variants.SCHEDULES:
        for run in dict.fromkeys(runs.variant[runs.schedule == s]):
            if run in same or RunName.parse(run).point or not set(acc.get("baseline", {})) & set(acc[run]):
                continue  # a twin is its first run's line; a run sharing no seed with the baseline pairs nothing
            p = evidence.paired_difference(acc[run], acc["baseline"], CONFIDENCE)
            names = [run, *twins.get(run, [])]  # drawn in the selection's look when it is one of them
            look = next((x for x in names if RunName.parse(x).variant == "selected"), run)
            rows.append({"label": " = ".join(names), "run": look, "schedule": s,
                         "mean": p.mean, "low": p.low, "high": p.high, "n": p.n})
    return pd.DataFrame(rows, columns=list(figures.FOREST_COLUMNS))


def curve_panels(r: dict) -> dict[str, list[str]]:
    """``{variant: [baseline, its scratch, switch and late runs]}`` for every variant trained from scratch or after
    the switch (main budget): the learning curves of one method under each schedule, side by side."""
    runs = r["tables"]["runs"]
    panels: dict[str, list[str]] = {}
    for run in dict.fromkeys(runs.variant):
        name = RunName.parse(run)
        if name.schedule in ("scratch", "switch") and not name.point:
            panels.setdefault(name.base, [])
    for run in dict.fromkeys(runs.variant):
        name = RunName.parse(run)
        if name.base in panels and name.schedule and not name.point:
            panels[name.base].append(run)
    return {v: ["baseline", *rs] for v, rs in panels.items()}


def candidate_speedups(r) -> pd.DataFrame:
    """Per layer and ratio, the basis form's measured and theoretical speedup in the benchmark's first memory format
    (``perf.analysis.basis_speedups``), with ``dense_ns_per_mac``: the dense layer's fwd+bwd time per MAC."""
    fmt = _params(r, "benchmark")["benchmark"]["memory_formats"][0]
    layers = r["tables"]["benchmark_layers"]
    out = pd.DataFrame(analysis.basis_speedups(layers.to_dict("records"), fmt))
    dense = layers[(layers.variant == "dense") & (layers["pass"] == "fwd+bwd") & (layers.memory_format == fmt)]
    per_mac = dense.assign(v=1e6 * dense.median_ms / dense.macs).set_index(["layer", "precision", "batch_size"]).v
    if len(out):
        out["dense_ns_per_mac"] = [per_mac.get((l, p, b), math.nan)
                                   for l, p, b in zip(out.layer, out.precision, out.batch_size)]
    return out


def _speed_panel(r) -> tuple[str, int]:
    return r["benchmark"]["precision"], _params(r, "benchmark")["benchmark"]["batch_sizes"][0]


@dataclass(frozen=True)
class Figure:
    stage: str
    role: str  # its path in ``display.FIGURES[stage]``
    prepare: Callable[[dict], object]
    draw: Callable[[dict, object, Path], Path]

    @property
    def name(self) -> str:
        return figures.figure_name(display.FIGURES[self.stage][self.role])

    def caption(self, r: dict, data=None) -> str:
        return getattr(captions, self.name)(r, self.prepare(r) if data is None else data)


def _draw_fronts(r, pts, path):
    return figures.fronts(pts, [("params", "parameters (millions)"), ("macs", "MACs (millions)")], path,
                          title=f"Accuracy against size, {front_schedule(r)} ({r['basis']['data']})")


def _draw_time(r, pts, path):
    prec, bs = _speed_panel(r)
    return figures.fronts(pts, [("train_time", f"train-step time / dense ({prec}, batch {bs})"),
                                ("inference_time", f"inference time / dense ({prec}, batch {bs})")], path,
                          title=f"Accuracy against measured time, {front_schedule(r)} ({r['basis']['data']})")


def _draw_curves(r, panels, path):
    B = _params(r, "basis")["basis"]
    colors = {run: display.SCHEDULE_COLORS[RunName.parse(run).schedule] for rs in panels.values() for run in rs}
    marks = {s: variants.start_epoch(B, s) for s in variants.trained_schedules(B) if variants.start_epoch(B, s)}
    return figures.learning_curves(r["histories"], panels, colors, CONFIDENCE, path, marks=marks,
                                   title=f"Validation accuracy per epoch, mean over seeds ({r['basis']['data']})")


FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("baseline", "learning_curve", lambda r: r["tables"]["baseline_history"],
           lambda r, h, path: figures.baseline_curves(
               h, r["baseline"]["seed"], f"Baseline {_params(r, 'baseline')['model']['arch']} width "
               f"{_params(r, 'baseline')['model']['width']} on {r['baseline']['data']}", path,
               switch_epoch=_params(r, "baseline")["basis"]["switch_epoch"])),
    Figure("sensitivity", "heatmap", final_rows,
           lambda r, rows, path: figures.sensitivity_heatmap(
               rows, r["selection"]["candidates"], _params(r, "sensitivity")["sensitivity"]["proxies"],
               r["selection"], path, selection_proxy=_params(r, "sensitivity")["sensitivity"]["selection_proxy"],
               title=f"{r['selection']['data']}, final baseline")),
    Figure("faithfulness", "scatter", lambda r: r["tables"]["faithfulness_layers"],
           lambda r, t, path: figures.faithfulness_scatter(
               t, r["faithfulness"], _params(r, "faithfulness")["sensitivity"]["proxies"],
               _params(r, "faithfulness")["faithfulness"]["ratio"], _params(r, "faithfulness")["faithfulness"]["epochs"],
               _params(r, "faithfulness")["sensitivity"]["confidence"], path, title=r["faithfulness"]["data"])),
    Figure("faithfulness", "additivity_plot", lambda r: r["tables"]["faithfulness_pairs"],
           lambda r, t, path: figures.additivity(t, _params(r, "faithfulness")["faithfulness"]["ratio"], path)),
    Figure("basis", "fronts", lambda r: run_points(r, front_schedule(r)), _draw_fronts),
    Figure("basis", "schedules", forest_rows,
           lambda r, rows, path: figures.paired_forest(
               rows, path, claims.MARGIN, title=f"Each run against the baseline ({r['basis']['data']})",
               group_titles={s: claims.schedule_phrase(s, _params(r, "basis")["basis"]) for s in variants.SCHEDULES})),
    Figure("basis", "curves", curve_panels, _draw_curves),
    Figure("benchmark", "accuracy_vs_time", lambda r: run_points(r, front_schedule(r), timed=True),
           _draw_time),
    Figure("benchmark", "speedup_vs_ratio", candidate_speedups,
           lambda r, sp, path: figures.speedup_vs_ratio(sp, *_speed_panel(r), r["selection"]["candidates"], path)),
    Figure("benchmark", "peers_plot", lambda r: r["tables"]["benchmark_peers"],
           lambda r, t, path: figures.peers(t, r["benchmark"]["hardware"], path)),
)}
SAMPLES = figures.figure_name(display.DATA_SAMPLES)  # drawn from the images by the data stage, kept as drawn


def figure_caption(r: dict, name: str) -> str:
    """The caption of figure ``name`` (a ``FIGURES`` key or the data stage's samples) for the run ``r``, from its
    numbers; an unknown name raises ``KeyError`` listing the known ones."""
    if name == SAMPLES:
        return captions.data_samples(r, None)
    if name not in FIGURES:
        raise KeyError(f"no figure {name!r}; known figures: {', '.join([SAMPLES, *FIGURES])}")
    return FIGURES[name].caption(r)


def stage_figures(stage: str, root=".") -> dict[str, Path]:
    """Draw ``stage``'s figures at their declared paths under ``root`` from the results there (what a stage's
    notebook shows, after its computing part has run). Returns ``{name: path}``."""
    r = load_stage(stage, root)
    return {name: f.draw(r, f.prepare(r), Path(root) / display.FIGURES[stage][f.role])
            for name, f in FIGURES.items() if f.stage == stage}


def show_stage(stage: str, root=".") -> dict[str, Path]:
    """Draw ``stage``'s figures (``stage_figures``) and show each with its caption, written from the stage's numbers
    (a notebook's figures section). Returns ``{name: path}``."""
    from IPython.display import Markdown, display
    figs, r = stage_figures(stage, root), load_stage(stage, root)
    for i, (name, path) in enumerate(figs.items(), 1):
        figures.show_figure(path)
        display(Markdown(f"**Figure {i}: `{name}`.** {FIGURES[name].caption(r)}"))
    return figs


def load_stage(stage: str, root=".") -> dict:
    """What the figures of ``stage`` read, loaded from ``root`` before the later stages have run: the part of
    ``load`` that exists by then (the benchmark's figures read the basis stage's runs too)."""
    root = Path(root)
    r = {"root": root, "tables": {}}
    need = {"baseline": ["baseline"], "sensitivity": ["sensitivity"], "faithfulness": ["faithfulness"],
            "basis": ["basis"], "benchmark": ["basis", "benchmark", "sensitivity"]}[stage]
    if "baseline" in need:
        r["baseline"] = read_json(root / BASELINE_SUMMARY)
        r["tables"]["baseline_history"] = pd.read_csv(root / table_path("baseline_history"))
    if "sensitivity" in need:
        r["selection"] = read_json(root / SELECTION)
        r["tables"]["sensitivity"] = pd.read_csv(root / table_path("sensitivity"))
    if "faithfulness" in need:
        r["faithfulness"] = read_json(root / STAGES["faithfulness"]["summary"])
        for n in ("faithfulness_layers", "faithfulness_pairs"):
            r["tables"][n] = pd.read_csv(root / table_path(n))
    if "basis" in need:
        r["basis"] = read_json(root / STAGES["basis"]["summary"])
        r["tables"]["runs"] = pd.read_csv(root / table_path("runs"))
        r["histories"] = pd.read_csv(root / table_path("histories"))
    if "benchmark" in need:
        r["benchmark"] = read_json(root / STAGES["benchmark"]["summary"])
        for n in ("benchmark_layers", "benchmark_peers"):
            r["tables"][n] = pd.read_csv(root / table_path(n))
    return r


# --------------------------------------------------------------------------------------------------------- page
def write_tables(r: dict, out: Path) -> None:
    """Every table as CSV (full precision), Markdown (for people) and LaTeX, in ``out/tables``, and the verdict
    table as ``tables/claims.csv``."""
    for name, t in r["tables"].items():
        write_frame(out / "tables" / f"{name}.csv", t)
        atomic_write_text(out / "tables" / f"{name}.md", tables.markdown(t, name=name, csv=f"{name}.csv"))
        atomic_write_text(out / "tables" / f"{name}.tex", t.to_latex(index=False, float_format="%.4g"))


def write_figures(r: dict, out: Path) -> dict[str, Path]:
    """Every figure drawn from ``r`` into ``out/figures/<name>.png`` (and SVG), the data stage's sample grid
    copied as it was drawn; ``{name: path relative to out}`` in the pipeline's order."""
    fig_dir, done = out / "figures", {}
    samples = Path(r["root"]) / display.DATA_SAMPLES
    if samples.is_file():
        dst = fig_dir / f"{SAMPLES}.png"
        if samples.resolve() != dst.resolve():
            dst.parent.mkdir(parents=True, exist_ok=True)
            for suffix in (".png", ".svg"):
                if samples.with_suffix(suffix).is_file():
                    shutil.copyfile(samples.with_suffix(suffix), dst.with_suffix(suffix))
        done[SAMPLES] = dst.relative_to(out)
    for name, f in FIGURES.items():
        done[name] = f.draw(r, f.prepare(r), fig_dir / f"{name}.png").relative_to(out)
    return done


def provenance(r: dict) -> str:
    """A published page's first paragraph: which profile, command, code and precisions produced it (``r["run"]``:
    what ``publish`` kept of the run)."""
    base, run = r["baseline"], r["run"]
    profile = base["profile"]
    timed = ", ".join(r["benchmark"]["targets_by_precision"]) or r["benchmark"].get("precision", "fp32")
    runs = r["tables"]["runs"]
    n_machines = runs.machine.nunique() if "machine" in runs else 1
    spread = (f" The basis-stage runs ran on {n_machines} machines (the pipeline resumed after a session ended): "
              "epoch times are compared only between runs of one machine." if n_machines > 1 else "")
    return (f"> **Provenance.** Profile `{profile}`, made by `make repro PROFILE=\"{profile.replace('+', ' ')}\"` "
            f"from the code at commit `{run['commit']}`, published by `python -m basisconv.pipeline.publish` and "
            "rendered from the results kept beside this page (`results/`) by `python -m basisconv.pipeline.publish "
            f"--render`; training in {base.get('precision', 'fp32')}, timings in {timed}.{spread}\n")


BORROWED_HEADING = "### Claims this profile does not train, from another published run (its verdicts, not this run's)"


def borrowed_section(borrowed: pd.DataFrame, also, out: Path) -> str:
    """A page's section of the rows borrowed from the published runs ``also`` (``publish.borrowed_claims``: read
    from each run's kept ``tables/claims.csv``): their table and sentences, links relative to the page's folder."""
    import os
    table = borrowed[["claim", "comparison", "measured", "verdict"]].to_markdown(index=False)
    sentences = "\n".join(f"- In run `{run}`: {x}" for run, x in zip(borrowed.run, borrowed.sentence))
    section = f"{BORROWED_HEADING}\n\n{table}\n\n{sentences}\n"
    for folder in map(Path, also):
        section = section.replace(f"]({folder}/README.md)", f"]({os.path.relpath(folder, out)}/README.md)")
    return section


def markdown(r: dict, title: str, figs: dict, borrowed: pd.DataFrame | None = None, also=(), out=".",
             own: pd.DataFrame | None = None, note: str = "") -> str:
    """The report page of the results ``r``: provenance, main table, what each variant converts, verdicts by group
    with their sentences (and the rows ``borrowed`` from the published runs ``also``), the measurements by topic, the
    targets, the figures."""
    base, hw = r["baseline"], r["baseline"]["hardware"]
    P = r["basis"]["params_resolved"]
    own = claims.verdict_table(r) if own is None else own
    twins = narrative.same_models_text(claims.same_models(r["tables"]["runs"]), r["tables"]["runs"])
    lines = [f"# {title}", ""]
    if r.get("run"):
        lines += [provenance(r), ""]
    lines += [f"Profile **{base['profile']}**, data **{base['data']}**. Hardware: {hw['device_name']} "
              f"({hw['threads']} threads), torch {hw['torch']}, torchvision {hw['torchvision']}; training in "
              f"{base.get('precision', 'fp32')}. Baseline training (the first seed): {base['train_time']:.0f} s.", "",
              "## Main table", "", narrative.MAIN_TABLE_NOTE, "",
              narrative.main_table(r).to_markdown(index=False, disable_numparse=True), "",
              narrative.run_names_text(P["basis"], P["train"]["epochs"], r["selection"], r["main_table"].variant), "",
              *([twins, ""] if twins else []),
              "## What each variant converts (seed " + str(P["train"]["seeds"][0]) + ")", "",
              narrative.layers_table(r), "",
              "## The paper's claims and what this run decides", "",
              claims.verdict_markdown(r, table=own), ""]
    both = own.assign(borrowed=False) if borrowed is None else pd.concat(
        [own.assign(borrowed=False), borrowed.assign(borrowed=True)], ignore_index=True)
    runs_from = ", ".join(f"`{x}`" for x in dict.fromkeys(borrowed.run)) if borrowed is not None and len(borrowed) else ""
    lines += [narrative.reading_line(both, runs_from) + (f" {note}" if note else ""), ""]
    lines += [f"- {s}" for s in own.sentence] + [""]
    if borrowed is not None and len(borrowed):
        lines += [borrowed_section(borrowed, also, Path(out)), ""]
    lines += ["## Measurements by topic", ""]
    for topic, text in narrative.topics(r):
        lines += [f"**{topic}** {text}", ""]
    bench = r["benchmark"]
    for prec, tg in bench["targets_by_precision"].items():
        trained = ", the precision training runs in" if prec == bench.get("precision", prec) else ""
        lines += [f"## Performance targets in {prec}{trained}: measured, not asserted", "",
                  narrative.targets_markdown(tg), "", narrative.targets_note(tg), "",
                  f"Layers that miss the per-layer target in {prec}, and what limits them:", "",
                  narrative.misses_markdown(tg), ""]
    lines += ["## Figures", ""]
    for i, (name, path) in enumerate(figs.items(), 1):
        lines += [f"**Figure {i}: `{name}`.** {figure_caption(r, name)}", "", f"![{name}]({path})", ""]
    lines += ["", "## Executed notebooks", "", "Every stage's notebook as it ran (HTML, no Jupyter needed): "
              + ", ".join(f"[{Path(s.html).stem}](notebooks/{Path(s.html).name})" for s in STAGES.values()) + "."]
    return "\n".join(lines) + "\n"


def claims_table(r: dict) -> pd.DataFrame:
    """The run's verdict table (``claims.verdict_table``) with its profile and training precision: what a published
    folder keeps as ``tables/claims.csv`` and other runs borrow from."""
    return claims.verdict_table(r).assign(run=r["baseline"]["profile"],
                                          precision=r["baseline"].get("precision", "fp32"))


def page(root, out, title: str, borrowed: pd.DataFrame | None = None, also=(), r: dict | None = None,
         note: str = "") -> dict:
    """Render the run at ``root`` (``r``: its ``load``, when already read) into ``out``: ``tables/``, ``figures/``,
    ``README.md``. Returns ``{"results", "readme", "figures", "claims"}`` (``claims``: ``claims_table``, kept as
    ``tables/claims.csv``)."""
    out = Path(out)
    r = load(root) if r is None else r
    write_tables(r, out)
    figs = write_figures(r, out)
    own = claims_table(r)
    write_frame(out / "tables" / "claims.csv", own)
    text = markdown(r, title, figs, borrowed, also, out, own, note)
    atomic_write_text(out / "README.md", text)
    return {"results": r, "readme": text, "figures": figs, "claims": own}
