"""Where every file of the pipeline lives, declared once (pipeline of the arXiv 2408.06024 replication).

One ``Stage`` per DVC stage: its notebook, the params sections it reads, its input files and its outputs by role.
The stage modules (``basisconv.pipeline.stages.<name>``) and the notebooks take their paths from here, and ``dvc.yaml`` is
generated from here (``python -m basisconv.pipeline.layout``) together with each stage's code dependencies: the transitive
closure of the ``basisconv`` modules its stage module and its notebook import (``keys.stage_code_files``). ``tests/test_layout.py``
fails when the committed ``dvc.yaml`` differs from what this module generates.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PARAMS_FILE = "params.yaml"
EXECUTED_DIR = "reports/notebooks"


@dataclass(frozen=True)
class Stage:
    """Paths of one stage by role. ``outs``: DVC-cached outputs; ``results``: outputs kept in the workspace only
    (``cache: false``, small files git can show); ``state``: resume folders that survive a re-run
    (``persist: true``); ``metrics``/``plots``: DVC metrics and plots (not cached)."""
    name: str
    notebook: str
    params: tuple[str, ...]
    deps: dict = field(default_factory=dict)
    outs: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # a few flat numbers worth comparing across experiments
    figures: dict = field(default_factory=dict)  # role -> PNG path; an SVG beside each (DVC-cached)
    plots: dict = field(default_factory=dict)  # role -> (path, {x:, y:})

    @property
    def module(self) -> str:
        return f"basisconv.pipeline.stages.{self.name}"

    @property
    def executed(self) -> str:
        return f"{EXECUTED_DIR}/{Path(self.notebook).name}"

    @property
    def html(self) -> str:
        """The executed notebook rendered to HTML (readable without Jupyter)."""
        return str(Path(self.executed).with_suffix(".html"))

    def __getitem__(self, role: str) -> str:
        for group in (self.deps, self.outs, self.figures, self.results, self.state, self.metrics):
            if role in group:
                return group[role]
        if role in self.plots:
            return self.plots[role][0]
        raise KeyError(f"stage {self.name!r} has no path {role!r}; roles: {', '.join(self.roles())}")

    def roles(self) -> list[str]:
        return [r for g in (self.deps, self.outs, self.figures, self.results, self.state, self.metrics, self.plots)
                for r in g]

    def figure_files(self) -> list[str]:
        """Every figure file: each PNG and its SVG."""
        return [f for p in self.figures.values() for f in (p, str(Path(p).with_suffix(".svg")))]

    def outputs(self) -> list[str]:
        """Every path the stage writes (what a test checks exists after a run)."""
        return ([*self.outs.values(), *self.figure_files(), *self.results.values(), *self.state.values(),
                 *self.metrics.values()]
                + [p for p, _ in self.plots.values()] + [self.executed, self.html])


PREPARED = "data/prepared"
BASELINE_MODEL = "models/baseline.pt"
BASELINE_SUMMARY = "results/baseline/summary.json"  # the baseline run's full record (metrics files hold a few numbers)
SENSITIVITY_ROWS = "results/sensitivity.csv"
SELECTION = "results/selection.json"
PROVENANCE = "results/provenance/{stage}.json"

_STAGES = [
    Stage("data", "notebooks/01_data.ipynb", ("profile", "data"),
          deps={"sources": "data/sources.yaml"},
          outs={"prepared": PREPARED, "summary": "results/data"},
          state={"raw": "data/cifar10"},
          results={"provenance": PROVENANCE.format(stage="data")}),
    Stage("baseline", "notebooks/02_baseline.ipynb", ("profile", "model", "train", "basis"),  # basis: switch_epoch
          deps={"prepared": PREPARED},
          outs={"model": BASELINE_MODEL}, figures={"learning_curve": "results/baseline/learning_curve.png"},
          state={"runs": "models/runs/baseline"},
          results={"summary": BASELINE_SUMMARY, "provenance": PROVENANCE.format(stage="baseline")},
          metrics={"metrics": "results/metrics/baseline.json"},
          plots={"history": ("results/baseline/history.csv", {"x": "epoch", "y": "val_acc"})}),
    Stage("sensitivity", "notebooks/03_sensitivity.ipynb", ("profile", "model", "train", "sensitivity", "basis"),
          deps={"model": BASELINE_MODEL, "prepared": PREPARED, "baseline": BASELINE_SUMMARY},
          figures={"heatmap": "results/sensitivity/heatmap.png", "bars": "results/sensitivity/bars.png"},
          results={"rows": SENSITIVITY_ROWS, "selection": SELECTION,
                   "provenance": PROVENANCE.format(stage="sensitivity")},
          state={"runs": "models/runs/sensitivity"},
          metrics={"metrics": "results/metrics/sensitivity.json"}),
    Stage("faithfulness", "notebooks/03b_faithfulness.ipynb",
          ("profile", "model", "train", "sensitivity", "faithfulness"),
          deps={"model": BASELINE_MODEL, "prepared": PREPARED, "sensitivity_rows": SENSITIVITY_ROWS,
                "baseline": BASELINE_SUMMARY},
          figures={"scatter": "results/faithfulness/proxy_vs_real.png",
                   "additivity_plot": "results/faithfulness/additivity.png"},
          results={"layers": "results/faithfulness/layers.csv", "pairs": "results/faithfulness/pairs.csv",
                   "summary": "results/faithfulness/summary.json",
                   "provenance": PROVENANCE.format(stage="faithfulness")},
          state={"runs": "models/runs/faithfulness"},
          metrics={"metrics": "results/metrics/faithfulness.json"}),
    Stage("basis", "notebooks/04_basis.ipynb", ("profile", "model", "train", "basis"),
          deps={"prepared": PREPARED, "selection": SELECTION, "baseline": BASELINE_SUMMARY},
          figures={"pareto": "results/basis/pareto.png", "curves": "results/basis/curves.png",
                   "epoch_time": "results/basis/epoch_time.png"},
          results={"runs_table": "results/basis/runs.csv", "main_table": "results/basis/main_table.csv",
                   "summary": "results/basis/summary.json", "provenance": PROVENANCE.format(stage="basis")},
          state={"runs": "models/runs/basis"},
          metrics={"metrics": "results/metrics/basis.json"}),
    Stage("benchmark", "notebooks/05_benchmark.ipynb", ("profile", "model", "train", "basis", "benchmark"),
          deps={"selection": SELECTION, "prepared": PREPARED},
          figures={"measured_vs_theory": "results/benchmark/measured_vs_theory.png",
                   "speedup_vs_ratio": "results/benchmark/speedup_vs_ratio.png",
                   "peers_plot": "results/benchmark/peers.png"},
          results={"layers": "results/benchmark_layers.csv", "models": "results/benchmark_models.csv",
                   "forms": "results/benchmark_forms.csv", "peers": "results/benchmark_peers.csv",
                   "onnx": "results/benchmark_onnx.csv", "summary": "results/benchmark/summary.json",
                   "provenance": PROVENANCE.format(stage="benchmark")},
          metrics={"metrics": "results/metrics/benchmark.json"}),
]
STAGES: dict[str, Stage] = {s.name: s for s in _STAGES}


def _report_stage() -> Stage:
    """The report reads every table, metrics file and figure of the stages before it."""
    deps = {}
    for s in _STAGES:
        for role, path in {**s.outs, **s.figures, **s.results, **s.metrics,
                           **{r: p for r, (p, _) in s.plots.items()}}.items():
            if path.startswith("results/") and role != "provenance":
                deps[f"{s.name}.{role}"] = path
    return Stage("report", "notebooks/06_report.ipynb", ("profile", "report"), deps=deps,
                 outs={"tables": "reports/tables", "figures": "reports/figures"},
                 results={"readme": "reports/README.md"})


STAGES["report"] = _report_stage()


def dvc_yaml(root: Path | None = None) -> dict:
    """The ``dvc.yaml`` of this layout: per stage its papermill command, params sections, notebook, input files,
    code closure (``src/basisconv/...`` of every module its stage module can import) and outputs."""
    from basisconv.pipeline.keys import PACKAGE_DIR, stage_code_files
    root = Path(root) if root is not None else PACKAGE_DIR.parents[1]
    stages = {}
    for s in STAGES.values():
        code = [str(p.relative_to(root)) for p in stage_code_files(s.module, root / s.notebook)]
        entry = {
            "cmd": f"python -m basisconv.pipeline.notebook {s.name}",
            "deps": [s.notebook, *s.deps.values(), *code],
            "params": list(s.params),
            "outs": ([*s.outs.values(), *s.figure_files()]
                     + [{p: {"persist": True, "cache": False}} for p in s.state.values()]
                     + [{p: {"cache": False}} for p in [*s.results.values(), s.executed, s.html]]),
        }
        if s.metrics:
            entry["metrics"] = [{p: {"cache": False}} for p in s.metrics.values()]
        if s.plots:
            entry["plots"] = [{p: {**opts, "cache": False}} for p, opts in s.plots.values()]
        stages[s.name] = entry
    return {"stages": stages}


HEADER = """\
# GENERATED by `python -m basisconv.pipeline.layout` from src/basisconv/layout.py: edit that file, then regenerate.
# Each stage runs one notebook with papermill (`python -m basisconv.pipeline.notebook <stage>` injects the params sections the
# stage reads, listed under `params:`, and writes the executed copy to reports/notebooks/). deps: the notebook, the input files and every basisconv module the stage's module imports
# (transitively), so editing any code a stage runs re-runs it. Resume state lives in models/runs/<stage>
# (persist: true); every reusable file in it is keyed by params, input content and code (basisconv.pipeline.keys).
"""


def render() -> str:
    return HEADER + yaml.safe_dump(dvc_yaml(), sort_keys=False, width=120)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write dvc.yaml from the pipeline layout (basisconv.pipeline.layout).")
    ap.add_argument("--out", default="dvc.yaml")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file differs from the layout")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if Path(args.out).read_text() != text:
            raise SystemExit(f"{args.out} differs from the layout; run `python -m basisconv.pipeline.layout`")
        print(f"{args.out} matches the layout")
        return
    from basisconv.experiment.io import atomic_write_text
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
