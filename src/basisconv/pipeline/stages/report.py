"""Stage ``report``: every table and figure of the run, and one paragraph per claim of arXiv 2408.06024.

Tables go to ``reports/tables/`` (CSV, Markdown, LaTeX), figures to ``reports/figures/``, and ``reports/README.md``
states what the paper claims and what this run measured; the paragraphs come from ``basisconv.pipeline.report``, the same
functions ``basisconv.pipeline.publish`` uses for the README's results block. Every number comes from the result files.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from basisconv.pipeline import claims, figures, report, tables
from basisconv.experiment.io import atomic_write_text, read_json, write_frame
from basisconv.pipeline.layout import BASELINE_SUMMARY, SELECTION, STAGES

L = STAGES["report"]
# table name -> the stage output it is read from (stage, role)
TABLES = {"data_splits": ("data", "summary", "splits.csv"), "baseline_history": ("baseline", "history", None),
          "sensitivity": ("sensitivity", "rows", None), "main_table": ("basis", "main_table", None),
          "runs": ("basis", "runs_table", None), "benchmark_layers": ("benchmark", "layers", None),
          "benchmark_models": ("benchmark", "models", None), "faithfulness_layers": ("faithfulness", "layers", None),
          "faithfulness_pairs": ("faithfulness", "pairs", None), "benchmark_forms": ("benchmark", "forms", None),
          "benchmark_peers": ("benchmark", "peers", None), "benchmark_onnx": ("benchmark", "onnx", None)}


def table_path(name: str) -> str:
    stage, role, file = TABLES[name]
    p = STAGES[stage][role]
    return f"{p}/{file}" if file else p


def load_results() -> dict:
    """The stages' JSON results and every table (DataFrames), read from the paths of ``basisconv.pipeline.layout``,
    and ``same_models``: the basis-stage runs that train another run's model (``claims.same_models`` of the plan of
    the main table's runs, read back from the selection and the basis section the stage ran with)."""
    sel, basis_summary = read_json(SELECTION), read_json(STAGES["basis"]["summary"])
    main = pd.read_csv(table_path("main_table"))
    plan = claims.planned(main.variant, sel, basis_summary["params_resolved"]["basis"])
    return {"baseline": read_json(BASELINE_SUMMARY), "selection": sel,
            "benchmark": read_json(STAGES["benchmark"]["summary"]), "basis": basis_summary,
            "faithfulness": read_json(STAGES["faithfulness"]["summary"]),
            "tables": {n: pd.read_csv(table_path(n)) for n in TABLES}, "main_table": main,
            "same_models": claims.same_models(plan)}


def figure_files() -> list[Path]:
    """Every figure the stages wrote (``results/<stage>/*.png``; each has an SVG beside it)."""
    return sorted(Path("results").glob("*/*.png"))


def markdown(title: str, profile: str, r: dict, figs: dict) -> str:
    base, hw = r["baseline"], r["baseline"]["hardware"]
    twins = report.same_models_text(r["same_models"], r["tables"]["runs"])
    lines = [f"# {title}", "",
             f"Profile **{profile}**, data **{base['data']}**. Hardware: {hw['device_name']} ({hw['threads']} "
             f"threads), torch {hw['torch']}, torchvision {hw['torchvision']}; training in "
             f"{base.get('precision', 'fp32')}. Baseline training (the first seed): "
             f"{base['train_time']:.0f} s.", "",
             "## Main table", "",
             report.MAIN_TABLE_NOTE, "",
             tables.markdown(r["main_table"], name="main_table"), "",
             report.run_names_text(r["selection"], r["basis"]["params_resolved"], r["main_table"].variant), "",
             *([twins, ""] if twins else []),
             report.selection_line(r["selection"]), "", "## The paper's claims and what this run decides", "",
             claims.verdict_markdown(r), ""]
    lines += [f"- {s}" for s in claims.verdict_table(r).sentence] + ["", "## Measurements by topic", ""]
    for topic, text in report.claims(r):
        lines += [f"**{topic}** {text}", ""]
    bench = r["benchmark"]
    for prec, tg in report.targets_by_precision(bench).items():
        trained = ", the precision training runs in" if prec == bench.get("precision", prec) else ""
        lines += [f"## Performance targets in {prec}{trained}: measured, not asserted", "",
                  report.targets_markdown(tg), "", report.targets_note(tg), "",
                  f"Layers that miss the per-layer target in {prec}, and what limits them:", "",
                  report.misses_markdown(tg), ""]
    lines += ["## Figures", ""]
    # in the pipeline's order (the captions' registry), each with what it shows and what to read from it; a figure
    # without a caption fails here (figures.caption names the known ones)
    order = [n for n in figures.CAPTIONS if n in figs] + sorted(set(figs) - set(figures.CAPTIONS))
    for i, name in enumerate(order, 1):
        lines += [f"**Figure {i}: `{name}`.** {figures.caption(name)}", "", f"![{name}]({figs[name]})", ""]
    lines += ["", "## Executed notebooks", "", "Every stage's notebook as it ran (HTML, no Jupyter needed): "
              + ", ".join(f"[{Path(s.html).stem}](notebooks/{Path(s.html).name})" for s in STAGES.values()) + "."]
    return "\n".join(lines) + "\n"


def run(P: dict, progress=True) -> dict:
    """Write tables, figures and ``reports/README.md``. Returns ``{"readme" (text), "figures"}``."""
    r = load_results()
    for name, t in r["tables"].items():
        write_frame(f"{L['tables']}/{name}.csv", t)
        atomic_write_text(f"{L['tables']}/{name}.md", tables.markdown(t, name=name, csv=f"{name}.csv"))
        atomic_write_text(f"{L['tables']}/{name}.tex", t.to_latex(index=False, float_format="%.4g"))
    out_dir = Path(L["readme"]).parent
    figs = {}
    for src in figure_files():
        dst = Path(L["figures"]) / f"{src.parent.name}_{src.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        if src.with_suffix(".svg").is_file():
            shutil.copyfile(src.with_suffix(".svg"), dst.with_suffix(".svg"))
        figs[dst.stem] = dst.relative_to(out_dir)
    text = markdown(P["report"]["title"], P["profile"], r, figs)
    atomic_write_text(L["readme"], text)
    return {"readme": text, "figures": figs}
