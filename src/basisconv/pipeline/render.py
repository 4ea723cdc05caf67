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

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from basisconv.experiment.io import atomic_write_text, read_json, write_frame
from basisconv.perf import analysis
from basisconv.pipeline import claims, display, figures, narrative, tables
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
def _params(r: dict, stage: str) -> dict:
    """The params ``stage`` ran with, from its summary (the selection is the sensitivity stage's)."""
    return r["selection" if stage == "sensitivity" else stage]["params_resolved"]


def _baseline_curve(r, path):
    P, b = _params(r, "baseline"), r["baseline"]
    return figures.baseline_curves(r["tables"]["baseline_history"], b["seed"],
                                   f"Baseline {P['model']['arch']} width {P['model']['width']} on {b['data']}", path,
                                   switch_epoch=P["basis"]["switch_epoch"])


def final_rows(r) -> pd.DataFrame:
    """The sweep rows of the final baseline (the model whose selection the figures outline); the switch-epoch
    snapshot's sweep is the other model of ``sensitivity.csv``."""
    rows = r["tables"]["sensitivity"]
    return rows[rows.model == "final"] if "model" in rows else rows


def _heatmap(r, path):
    S, sel = _params(r, "sensitivity")["sensitivity"], r["selection"]
    return figures.sensitivity_heatmap(final_rows(r), sel["candidates"], S["proxies"], sel, path,
                                       selection_proxy=S["selection_proxy"], title=f"{sel['data']}, final baseline")


def _bars(r, path):
    S, sel = _params(r, "sensitivity")["sensitivity"], r["selection"]
    return figures.sensitivity_bars(final_rows(r), sel["candidates"], sel, S["selection_proxy"], path,
                                    title=f"{sel['data']}, final baseline")


def _scatter(r, path):
    P, f = _params(r, "faithfulness"), r["faithfulness"]
    S, F = P["sensitivity"], P["faithfulness"]
    return figures.faithfulness_scatter(r["tables"]["faithfulness_layers"], f, S["proxies"], F["ratio"], F["epochs"],
                                        S["confidence"], path, title=f["data"])


def _additivity(r, path):
    return figures.additivity(r["tables"]["faithfulness_pairs"], _params(r, "faithfulness")["faithfulness"]["ratio"],
                              path)


def _pareto(r, path):
    return figures.basis_pareto(r["tables"]["runs"], figures.SEED_CONFIDENCE, path, title=r["basis"]["data"])


def _curves(r, path):
    return figures.training_curves(r["histories"], _params(r, "basis")["basis"]["switch_epoch"],
                                   figures.SEED_CONFIDENCE, path, title=r["basis"]["data"])


def _epoch_time(r, path):
    return figures.epoch_times(r["tables"]["runs"], figures.SEED_CONFIDENCE,
                               _params(r, "basis")["basis"]["switch_epoch"], path, title=r["basis"]["data"])


def _speedups(r) -> pd.DataFrame:
    fmt = _params(r, "benchmark")["benchmark"]["memory_formats"][0]
    return analysis.basis_speedups(r["tables"]["benchmark_layers"].to_dict("records"), fmt)


def _measured_vs_theory(r, path):
    b = r["benchmark"]
    return figures.measured_vs_theory(_speedups(r), b["precision"], b["hardware"], path,
                                      target_fraction=analysis.TARGETS["layers_fraction_of_theory"][1],
                                      theory_min=analysis.LAYER_THEORY_MIN)


def _speedup_vs_ratio(r, path):
    b = r["benchmark"]
    return figures.speedup_vs_ratio(_speedups(r), b["precision"], _params(r, "benchmark")["benchmark"]["batch_sizes"][0],
                                    path)


def _peers(r, path):
    return figures.peers(r["tables"]["benchmark_peers"], r["benchmark"]["hardware"], path)


@dataclass(frozen=True)
class Figure:
    stage: str
    role: str  # its path in ``display.FIGURES[stage]``
    draw: Callable[[dict, Path], Path]

    @property
    def name(self) -> str:
        return figures.figure_name(display.FIGURES[self.stage][self.role])


FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("baseline", "learning_curve", _baseline_curve),
    Figure("sensitivity", "heatmap", _heatmap), Figure("sensitivity", "bars", _bars),
    Figure("faithfulness", "scatter", _scatter), Figure("faithfulness", "additivity_plot", _additivity),
    Figure("basis", "pareto", _pareto), Figure("basis", "curves", _curves), Figure("basis", "epoch_time", _epoch_time),
    Figure("benchmark", "measured_vs_theory", _measured_vs_theory),
    Figure("benchmark", "speedup_vs_ratio", _speedup_vs_ratio), Figure("benchmark", "peers_plot", _peers),
)}
SAMPLES = figures.figure_name(display.DATA_SAMPLES)  # drawn from the images by the data stage, kept as drawn


def stage_figures(stage: str, root=".") -> dict[str, Path]:
    """Draw ``stage``'s figures at their declared paths under ``root`` from the results there (what a stage's
    notebook shows, after its computing part has run). Returns ``{name: path}``."""
    r = load_stage(stage, root)
    return {name: f.draw(r, Path(root) / display.FIGURES[stage][f.role]) for name, f in FIGURES.items()
            if f.stage == stage}


def load_stage(stage: str, root=".") -> dict:
    """What the figures of ``stage`` read, loaded from ``root`` before the later stages have run: the part of
    ``load`` that exists by then."""
    root = Path(root)
    r = {"root": root, "tables": {}}
    if stage == "baseline":
        r["baseline"] = read_json(root / BASELINE_SUMMARY)
        r["tables"]["baseline_history"] = pd.read_csv(root / table_path("baseline_history"))
    elif stage == "sensitivity":
        r["selection"] = read_json(root / SELECTION)
        r["tables"]["sensitivity"] = pd.read_csv(root / table_path("sensitivity"))
    elif stage == "faithfulness":
        r["faithfulness"] = read_json(root / STAGES["faithfulness"]["summary"])
        for n in ("faithfulness_layers", "faithfulness_pairs"):
            r["tables"][n] = pd.read_csv(root / table_path(n))
    elif stage == "basis":
        r["basis"] = read_json(root / STAGES["basis"]["summary"])
        r["tables"]["runs"] = pd.read_csv(root / table_path("runs"))
        r["histories"] = pd.read_csv(root / table_path("histories"))
    elif stage == "benchmark":
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
        done[name] = f.draw(r, fig_dir / f"{name}.png").relative_to(out)
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
             own: pd.DataFrame | None = None) -> str:
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
        lines += [f"**Figure {i}: `{name}`.** {figures.caption(name)}", "", f"![{name}]({path})", ""]
    lines += ["", "## Executed notebooks", "", "Every stage's notebook as it ran (HTML, no Jupyter needed): "
              + ", ".join(f"[{Path(s.html).stem}](notebooks/{Path(s.html).name})" for s in STAGES.values()) + "."]
    return "\n".join(lines) + "\n"


def claims_table(r: dict) -> pd.DataFrame:
    """The run's verdict table (``claims.verdict_table``) with its profile and training precision: what a published
    folder keeps as ``tables/claims.csv`` and other runs borrow from."""
    return claims.verdict_table(r).assign(run=r["baseline"]["profile"],
                                          precision=r["baseline"].get("precision", "fp32"))


def page(root, out, title: str, borrowed: pd.DataFrame | None = None, also=(), r: dict | None = None) -> dict:
    """Render the run at ``root`` (``r``: its ``load``, when already read) into ``out``: ``tables/``, ``figures/``,
    ``README.md``. Returns ``{"results", "readme", "figures", "claims"}`` (``claims``: ``claims_table``, kept as
    ``tables/claims.csv``)."""
    out = Path(out)
    r = load(root) if r is None else r
    write_tables(r, out)
    figs = write_figures(r, out)
    own = claims_table(r)
    write_frame(out / "tables" / "claims.csv", own)
    text = markdown(r, title, figs, borrowed, also, out, own)
    atomic_write_text(out / "README.md", text)
    return {"results": r, "readme": text, "figures": figs, "claims": own}
