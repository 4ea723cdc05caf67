"""One figure style for every stage of the arXiv 2408.06024 replication, and colours that stay distinguishable.

``style()`` sets a single matplotlib style (sizes, grid, constrained layout so labels never run into colour bars or
each other); ``variant_style(name)`` gives each training variant its own colour and marker (legend, not text labels
on the points, so nothing overlaps); ``layer_style(name)`` colours a conv by its ResNet stage and marks its position
in the stage. Figures are saved as PNG and SVG (``io.save_figure``) and shown in the notebook with ``show_figure``.
"""
from __future__ import annotations

import re

import matplotlib as mpl

from basisconv.pipeline import variants

STAGE_COLORS = {"conv1": "0.3", "layer1": "tab:blue", "layer2": "tab:orange", "layer3": "tab:green",
                "layer4": "tab:red"}
_LAYER_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">")


def style() -> None:
    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
        "legend.fontsize": 7, "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "figure.constrained_layout.use": True,
        "svg.fonttype": "none",
    })


def variant_style(variant: str) -> dict:
    """``{"color", "marker", "label"}`` of a main-table variant such as ``selected@switch`` or ``random2@switch``
    (the registry's, ``basisconv.pipeline.variants.style``)."""
    return variants.style(variant)


def show_figure(path):
    """Display a saved figure's PNG in the notebook's output (so the executed notebook and its HTML copy show it;
    the stages draw with the Agg backend, which displays nothing by itself). Returns ``path``."""
    try:
        from IPython.display import Image, display
    except ImportError:  # not in a notebook: the file is the figure
        return path
    display(Image(filename=str(path)))
    return path


def layer_style(layer: str) -> dict:
    """Colour by ResNet stage, marker and line style by position in the stage (``layer2.1.conv1`` ...)."""
    stage = layer.split(".")[0]
    m = re.match(r"layer\d+\.(\d+)\.(conv(\d)|downsample)", layer)
    pos = 0 if not m else int(m.group(1)) * 3 + (2 if m.group(2) == "downsample" else int(m.group(3)) - 1)
    return {"color": STAGE_COLORS.get(stage, "0.5"), "marker": _LAYER_MARKERS[pos % len(_LAYER_MARKERS)],
            "linestyle": ("-", "--", ":")[pos % 3], "label": layer}
