"""Where every file of the pipeline lives, declared once (pipeline of the arXiv 2408.06024 replication).

One ``Stage`` per DVC stage: its notebook, the params sections it reads, its input files and its outputs by role.
The stage modules (``basisconv.pipeline.stages.<name>``) take their paths from here; the figures each stage draws are
declared in ``basisconv.pipeline.display`` (a figure path is not computation, so it stays out of every key), and
``dvc.yaml`` is generated from both by ``python -m basisconv.pipeline.dvcfile``. ``tests/test_layout.py`` fails when the
committed ``dvc.yaml`` differs from what is generated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    # role -> PNG path (an SVG beside each, DVC-cached): empty here, since drawing is not computation; the stages with
    # their figures are ``basisconv.pipeline.display.STAGES`` (``display.FIGURES``)
    figures: dict = field(default_factory=dict)
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
BASELINE_SWITCH = "models/baseline_switch.pt"  # seed 0's baseline at basis.switch_epoch: the training schedules' search
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
          outs={"model": BASELINE_MODEL, "switch_model": BASELINE_SWITCH},
          state={"runs": "models/runs/baseline"},
          results={"summary": BASELINE_SUMMARY, "provenance": PROVENANCE.format(stage="baseline")},
          metrics={"metrics": "results/metrics/baseline.json"},
          plots={"history": ("results/baseline/history.csv", {"x": "epoch", "y": "val_acc"})}),
    Stage("sensitivity", "notebooks/03_sensitivity.ipynb", ("profile", "model", "train", "sensitivity", "basis"),
          deps={"model": BASELINE_MODEL, "switch_model": BASELINE_SWITCH, "prepared": PREPARED,
                "baseline": BASELINE_SUMMARY},
          results={"rows": SENSITIVITY_ROWS, "selection": SELECTION,
                   "provenance": PROVENANCE.format(stage="sensitivity")},
          state={"runs": "models/runs/sensitivity"},
          metrics={"metrics": "results/metrics/sensitivity.json"}),
    Stage("faithfulness", "notebooks/03b_faithfulness.ipynb",
          ("profile", "model", "train", "sensitivity", "faithfulness"),
          deps={"model": BASELINE_MODEL, "prepared": PREPARED, "sensitivity_rows": SENSITIVITY_ROWS,
                "baseline": BASELINE_SUMMARY},
          results={"layers": "results/faithfulness/layers.csv", "pairs": "results/faithfulness/pairs.csv",
                   "summary": "results/faithfulness/summary.json",
                   "provenance": PROVENANCE.format(stage="faithfulness")},
          state={"runs": "models/runs/faithfulness"},
          metrics={"metrics": "results/metrics/faithfulness.json"}),
    Stage("basis", "notebooks/04_basis.ipynb", ("profile", "model", "train", "basis"),
          deps={"prepared": PREPARED, "selection": SELECTION, "baseline": BASELINE_SUMMARY},
          results={"runs_table": "results/basis/runs.csv", "main_table": "results/basis/main_table.csv",
                   "histories": "results/basis/histories.csv",
                   "summary": "results/basis/summary.json", "provenance": PROVENANCE.format(stage="basis")},
          state={"runs": "models/runs/basis"},
          metrics={"metrics": "results/metrics/basis.json"}),
    Stage("benchmark", "notebooks/05_benchmark.ipynb",
          ("profile", "model", "train", "sensitivity", "basis", "benchmark"),  # sensitivity: the proxy jobs timed
          deps={"selection": SELECTION, "prepared": PREPARED},
          results={"layers": "results/benchmark_layers.csv", "models": "results/benchmark_models.csv",
                   "forms": "results/benchmark_forms.csv", "peers": "results/benchmark_peers.csv",
                   "onnx": "results/benchmark_onnx.csv", "summary": "results/benchmark/summary.json",
                   "provenance": PROVENANCE.format(stage="benchmark")},
          state={"runs": "models/runs/benchmark"},
          metrics={"metrics": "results/metrics/benchmark.json"}),
]
STAGES: dict[str, Stage] = {s.name: s for s in _STAGES}


def _report_stage() -> Stage:
    """The report reads every table and metrics file of the stages before it (it draws every figure from them)."""
    deps = {}
    for s in _STAGES:
        for role, path in {**s.outs, **s.results, **s.metrics,
                           **{r: p for r, (p, _) in s.plots.items()}}.items():
            if path.startswith("results/") and role != "provenance":
                deps[f"{s.name}.{role}"] = path
    return Stage("report", "notebooks/06_report.ipynb", ("profile", "report"), deps=deps,
                 outs={"tables": "reports/tables", "figures": "reports/figures"},
                 results={"readme": "reports/README.md"})


STAGES["report"] = _report_stage()
