"""How the pipeline's results look, kept apart from how they are computed (arXiv 2408.06024 replication).

Every label, colour, marker and figure path of the pipeline lives here, in a module that no computing stage imports:
editing a word or a colour changes no key (``basisconv.pipeline.keys``), so it re-runs drawing and writing only.

- ``LOOKS``: per variant of ``basisconv.pipeline.variants.VARIANTS`` the few words the report uses for it, its colour
  and its marker (``look``, ``style``);
- ``FIGURES``: per stage, the PNG of every figure its rendering draws (an SVG beside each), by role (the data
  stage's sample grid lies inside its summary folder, ``DATA_SAMPLES``, a DVC output of its own).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    describe: str  # a few words for tables and the report
    color: str
    marker: str


# Random subsets take one colour each (cycled), so several of them stay apart in a legend.
RANDOM_COLORS = ("tab:blue", "tab:cyan", "tab:olive", "tab:pink", "tab:green")

LOOKS: dict[str, Look] = {
    "baseline": Look("the full-rank model", "k", "s"),
    "baseline_fp32": Look("the baseline in fp32", "0.45", "X"),
    "all_layers": Look("basis layers on every candidate layer", "tab:gray", "v"),
    "selected": Look("basis layers on the sensitivity-selected layers", "tab:red", "*"),
    "random": Look("random layers saving about as many parameters", RANDOM_COLORS[0], "o"),
    "largest": Look("largest layers first, saving about as many parameters", "tab:purple", "D"),
    "largest_macs": Look("largest layers by MACs first, saving about as many MACs", "darkgoldenrod", "d"),
    "spectral": Look("singular-value energy threshold, saving about as many parameters", "tab:brown", "P"),
}


# learning curves are coloured by schedule (a panel holds one method under each), the dense reference black
SCHEDULE_COLORS = {"": "k", "scratch": "tab:blue", "switch": "tab:orange", "late": "tab:green"}


def look(run: str) -> Look:
    """The look of the variant of a run name (``selected@switch``, ``random2~ml2@switch``, ``baseline``)."""
    from basisconv.pipeline.variants import variant_of
    return LOOKS[variant_of(run).name]


def style(run: str) -> dict:
    """``{"color", "marker", "label"}`` of a run such as ``selected@switch`` or ``random2@switch``: each variant
    its own colour and marker, each random subset its own colour, scratch runs a different marker."""
    from basisconv.pipeline.variants import RunName
    name = RunName.parse(run)
    lk = look(run)
    color = lk.color
    if name.variant == "random":
        color = RANDOM_COLORS[name.draw % len(RANDOM_COLORS)]
    marker = {"*": "p", "v": "^"}.get(lk.marker, lk.marker) if name.schedule == "scratch" else lk.marker
    return {"color": color, "marker": marker, "label": run}


DATA_SAMPLES = "results/data/samples.png"
FIGURES: dict[str, dict[str, str]] = {
    "baseline": {"learning_curve": "results/baseline/learning_curve.png"},
    "sensitivity": {"heatmap": "results/sensitivity/heatmap.png"},
    "faithfulness": {"scatter": "results/faithfulness/proxy_vs_real.png",
                     "additivity_plot": "results/faithfulness/additivity.png"},
    "basis": {"fronts": "results/basis/fronts.png", "schedules": "results/basis/schedules.png",
              "curves": "results/basis/curves.png"},
    "benchmark": {"accuracy_vs_time": "results/benchmark/accuracy_vs_time.png",
                  "speedup_vs_ratio": "results/benchmark/speedup_vs_ratio.png",
                  "peers_plot": "results/benchmark/peers.png"},
}


def _with_figures() -> dict:
    from dataclasses import replace
    from basisconv.pipeline import layout
    return {n: replace(s, figures=dict(FIGURES.get(n, {}))) for n, s in layout.STAGES.items()}


# the stages of ``basisconv.pipeline.layout`` with their figures: what notebooks, rendering and ``dvc.yaml`` read
STAGES = _with_figures()
