"""Every figure of the arXiv 2408.06024 replication, drawn from the data the stages return, with one caption each.

The stages compute; the functions here draw. Each figure function takes the stage's frames and dicts and an output
path, draws, saves PNG and SVG with ``basisconv.experiment.io.save_figure`` and returns the PNG path; a notebook
cell is one call wrapped in ``show_figure``. Figures of the paper's kind:

- ``data_samples``: training images per class (stage 1);
- ``baseline_curves``: the baseline's loss and accuracy (%) per epoch, its seed named (stage 2);
- ``sensitivity_heatmap`` and ``sensitivity_bars``: the per-layer drop ``delta(l, q)`` of the sweep at every ratio,
  with its paired interval, the selected ``(layer, ratio)`` options marked (the paper's per-layer sensitivity
  analysis, stage 3);
- ``faithfulness_scatter`` and ``additivity``: proxy drop against the drop after retraining, pair drop against the
  sum of single drops (stage 3b);
- ``basis_pareto``, ``training_curves`` and ``epoch_times``: accuracy against parameters and MACs, validation
  accuracy per epoch with the switch epoch, and the time of an epoch after the switch, each per variant as a mean
  over seeds with a t-interval (``basisconv.core.evidence.t_quantile``) (the paper's main comparison, stage 4);
- ``measured_vs_theory``, ``speedup_vs_ratio`` and ``peers``: per-layer measured speedup against the MAC ratio
  (the paper's speed claim), with the IQR of the timings (stage 5).

Every function draws degenerate input too: an empty frame gives an axes with a note saying what is missing, an
all-NaN column draws nothing for it, and a variant with one seed is drawn as a point without an interval.
``CAPTIONS`` holds one caption per figure file the pipeline writes, keyed as the report stage names its copies
(``<stage folder>_<file stem>``, e.g. ``basis_pareto``); ``caption(name)`` refuses an unknown name.

``style()`` sets a single matplotlib style (constrained layout, so labels never run into colour bars or each other);
``variant_style(name)`` gives each training variant its colour and marker (a legend, not text on the points, so
nothing overlaps); ``layer_style(name)`` colours a conv by its ResNet stage and marks its position in the stage.
"""
from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd

from basisconv.core import evidence
from basisconv.core.checks import check_choice
from basisconv.pipeline import display, variants
from basisconv.pipeline.tables import plural

STAGE_COLORS = {"conv1": "0.3", "layer1": "tab:blue", "layer2": "tab:orange", "layer3": "tab:green",
                "layer4": "tab:red"}
_LAYER_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">")
NOTE_COLOR = "0.35"
# the confidence of the seed intervals drawn for the basis stage: the one its paired comparisons are decided with
# (``basisconv.pipeline.claims`` calls ``evidence.paired_difference`` with its default), so figure and verdict agree
SEED_CONFIDENCE: float = inspect.signature(evidence.paired_difference).parameters["confidence"].default


# --------------------------------------------------------------------------------------------------- style, names
def style() -> None:
    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
        "legend.fontsize": 7, "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "figure.constrained_layout.use": True,
        "svg.fonttype": "none",
    })


def variant_style(variant: str) -> dict:
    """``{"color", "marker", "label"}`` of a main-table variant such as ``selected@switch`` or ``random2@switch``
    (``basisconv.pipeline.display.style``)."""
    return display.style(variant)


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


def figure_name(path) -> str:
    """The name of a figure file in the report (``stages/report.py`` copies ``results/<stage>/<f>.png`` to
    ``reports/figures/<stage>_<f>.png``) and in ``CAPTIONS``: ``<parent folder>_<file stem>``."""
    p = Path(path)
    return f"{p.parent.name}_{p.stem}"


def figure_paths() -> dict[str, str]:
    """``{name: PNG path}`` of every figure the pipeline writes: each stage's (``basisconv.pipeline.display``) and
    the data stage's samples in its summary folder."""
    out = {figure_name(p): p for figs in display.FIGURES.values() for p in figs.values()}
    out[figure_name(display.DATA_SAMPLES)] = display.DATA_SAMPLES
    return out


CAPTIONS: dict[str, str] = {
    "data_samples": (
        "Training images of each class, as the data stage stores them (uint8, before augmentation). Read: whether "
        "the images and labels look right (a run on the synthetic source shows its learnable stand-in, not "
        "CIFAR-10; the figure's title names the data)."),
    "baseline_learning_curve": (
        "The full-rank baseline of one named seed: loss (left) and accuracy in % (right) per epoch, on the "
        "training batches and the validation split; a vertical line marks the epoch after which the basis "
        "stage's switch runs replace layers. Read: whether training converged, and how far validation "
        "accuracy trails training accuracy."),
    "sensitivity_heatmap": (
        "Drop in validation accuracy (points) when only one layer (rows) becomes a basis layer at one ratio "
        "(columns), one panel per proxy; blue cells are gains, red cells drops, and the colour scale is clipped at "
        "a high percentile (the colour bar says so) so one extreme cell does not wash out the rest; the numbers "
        "are the unclipped drops. Outlined cells are the options the knapsack selected. Read: which layers "
        "tolerate a basis conversion, how the drop grows as the ratio shrinks, and whether the proxies agree."),
    "sensitivity_bars": (
        "Per-layer drop in validation accuracy (points) on the selection's proxy at every ratio of the sweep "
        "(one bar per ratio), with the paired interval over the same validation images; hatched, black-edged "
        "bars with a star are the selected (layer, ratio) options. Read: whether the selected options are the "
        "ones whose intervals stay near zero, and which layers are distinguishable from no drop at all."),
    "faithfulness_proxy_vs_real": (
        "For sampled layers, the proxy's drop (x, with the sweep's paired interval) against the drop after "
        "really retraining the converted model (y, paired interval over the validation images), one panel per "
        "proxy with its Spearman rank correlation and bootstrap interval. Read: whether the cheap proxy ranks "
        "layers as retraining does (points along an increasing line), not whether the values agree."),
    "faithfulness_additivity": (
        "Drop of converting two layers together against the sum of their single drops, per method, with the "
        "line of exact additivity. Read: points on the line mean the knapsack's sum of single drops predicts "
        "the drop of the combination; above it, the pair costs more than predicted."),
    "basis_pareto": (
        "Test accuracy (%) of each variant against its parameters (left) and MACs (right), in millions: the "
        "mean over seeds with a t-interval (a point without a bar has one seed); a line joins a variant's "
        "budgets where the run trains several (a front; its extra points hollow, the random subsets averaged per "
        "budget); where the run also trains the baseline in full precision, that point is hollow at the "
        "baseline's size. "
        "Read: which variants lose accuracy for their saving, and whether the selected layers beat the "
        "comparison subsets at the same budget beyond the seed intervals."),
    "basis_curves": (
        "Validation accuracy (%) per epoch, one panel per variant with the baseline (dotted) in each for "
        "reference: the mean over seeds with a t-interval band (no band with one seed); the dashed vertical line "
        "marks the switch epoch, after which the switch runs train basis layers (before it they are their seed's "
        "baseline). Read: how much accuracy a variant loses at the switch and how much of it the epochs after the "
        "switch win back (little can be, where the switch comes in the last epochs of a one-cycle schedule, at a "
        "learning rate near zero)."),
    "basis_epoch_time": (
        "Mean wall time of an epoch from the switch epoch on (the epochs in which switch runs train their "
        "basis layers) per variant, mean over seeds with a t-interval; the dotted line is the baseline's mean. "
        "Read: a measurement, not a verdict: the trainings ran minutes to hours apart, so the machine's speed "
        "drift between them is part of every difference here; the verdict table decides the time claims from "
        "the benchmark's interleaved timings instead."),
    "benchmark_measured_vs_theory": (
        "Per layer and ratio, the measured forward+backward speedup of the reduced basis layer over the dense "
        "conv (filled, bars: the timings' interquartile ranges combined) and its kernel floor (hollow: the two "
        "kernels timed alone) against the theoretical speedup (MAC ratio) on log-log axes, one panel per "
        "precision and batch size; the dashed line is theory, the dotted one the target's fraction of it, and the shaded band the "
        "layers the target is not held for. Read: how close measured speedups come to the MAC ratio, and "
        "whether a miss is form overhead (floor above the point) or a kernel limit (floor below the target)."),
    "benchmark_speedup_vs_ratio": (
        "Measured forward+backward speedup of each layer's reduced basis form (solid, bars: combined IQR) and "
        "its theoretical speedup (dashed, same colour) against the ratio rank / C_out on a log speedup axis, "
        "one panel per ResNet stage, in the precision training runs in. Read: at which ratios each layer becomes faster than dense "
        "(above the horizontal line of equal time) and how far it falls short of theory."),
    "benchmark_peers": (
        "Measured forward+backward speedup against each form's own theoretical speedup (its executed MACs) for "
        "the basis layer and its peers at the same parameter budget, every distinct 3x3 shape, on log-log axes, "
        "one panel per precision; bars are the form's timing IQR. Read: which form turns its MAC saving into time best on "
        "this hardware (points nearest the dashed theory line)."),
}


def caption(name: str) -> str:
    """The caption of figure ``name`` (a ``CAPTIONS`` key such as ``basis_pareto``, or a figure path); an unknown
    name raises ``KeyError`` listing the known ones."""
    key = figure_name(name) if str(name).endswith(".png") else str(name)
    if key not in CAPTIONS:
        raise KeyError(f"no caption for figure {name!r}; known figures: {', '.join(sorted(CAPTIONS))}")
    return CAPTIONS[key]


# ---------------------------------------------------------------------------------------------------- helpers
def _plt():
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    from basisconv.experiment.io import save_figure
    out = save_figure(fig, path)
    _plt().close(fig)  # a notebook draws many figures: each is shown from its PNG, not kept open
    return out


def note(ax, text: str) -> None:
    """Write ``text`` in the middle of an axes that has nothing to draw (instead of an empty or crashed panel)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8, color=NOTE_COLOR,
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _plain(ax, axis: str = "both") -> None:
    """Plain tick labels: no ``1e6`` offset or scientific text on the axis (values are already scaled)."""
    for a in ("x", "y") if axis == "both" else (axis,):
        fmt = mpl.ticker.ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        getattr(ax, f"{a}axis").set_major_formatter(fmt)


def seed_interval(values, confidence: float) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` of per-seed ``values`` (NaNs dropped): the ``confidence`` t-interval
    ``mean +/- t_{(1+c)/2, n-1} sd / sqrt(n)`` (``basisconv.core.evidence.t_interval``); NaN bounds when
    ``n < 2`` (one seed gives a point, not an interval), NaN everything when ``n == 0``."""
    v = np.asarray(pd.to_numeric(pd.Series(list(values)), errors="coerce"), dtype=float)
    return evidence.t_interval(v[np.isfinite(v)], confidence)


def seed_summary(runs: pd.DataFrame, column: str, confidence: float, scale: float = 1.0) -> pd.DataFrame:
    """Per variant (in the order of ``runs``): ``mean``, ``low``, ``high`` (t-interval over seeds) and ``n`` of
    ``scale * runs[column]``."""
    rows = []
    for variant, g in runs.groupby("variant", sort=False):
        mean, low, high, n = seed_interval(g[column] * scale, confidence)
        rows.append({"variant": variant, "mean": mean, "low": low, "high": high, "n": n})
    return pd.DataFrame(rows, columns=["variant", "mean", "low", "high", "n"])


def _bar(center, low, high):
    """Asymmetric error lengths ``[[below], [above]]`` for errorbar; a missing bound draws no bar (length 0)."""
    c, lo, hi = (np.asarray(x, dtype=float).reshape(-1) for x in (center, low, high))
    below, above = np.nan_to_num(c - lo, nan=0.0), np.nan_to_num(hi - c, nan=0.0)
    return np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def _finite(*cols) -> bool:
    """Whether some row has a finite value in every one of ``cols`` (equal-length columns): something to draw."""
    arrays = [np.isfinite(np.asarray(c, dtype=float)).reshape(-1) for c in cols]
    return bool(np.logical_and.reduce(arrays).any()) if arrays and all(len(a) for a in arrays) else False


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what} needs columns {missing}; it has: {', '.join(map(str, frame.columns))}")


# -------------------------------------------------------------------------------------------------- stage 1, 2
def data_samples(images, labels, classes: list[str], title: str, path, per_class: int = 8) -> Path:
    """``per_class`` training images of every class in a grid (rows: classes). ``images``: uint8 ``(N, 3, H, W)``
    (tensor or array), ``labels``: ``(N,)``; a class with fewer images leaves its cells blank."""
    plt = _plt()
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    k, n_cls = max(1, per_class), max(1, len(classes))
    fig, axes = plt.subplots(n_cls, k, figsize=(k, 1.05 * n_cls), squeeze=False)
    for c in range(n_cls):
        idx = np.flatnonzero(labels == c)[:k]
        for j in range(k):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                ax.imshow(np.transpose(images[idx[j]], (1, 2, 0)))  # (3, H, W) -> (H, W, 3)
        axes[c, 0].set_title(f"{classes[c] if c < len(classes) else c} ({len(np.flatnonzero(labels == c))})",
                             fontsize=7, loc="left")
    fig.suptitle(f"{title}: training samples per class (in brackets: the class's images in the split)", fontsize=9)
    return _save(fig, path)


def baseline_curves(history: pd.DataFrame, seed: int, title: str, path, switch_epoch: int | None = None) -> Path:
    """Loss and accuracy (%) per epoch of one baseline run (``history``: its ``epoch``, ``train_loss``,
    ``val_loss``, ``train_acc``, ``val_acc``, accuracies as fractions); ``switch_epoch`` > 0 is marked."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    if history is None or len(history) == 0:
        note(a1, "no epochs in the history")
        note(a2, "no epochs in the history")
    else:
        ms = 4 if len(history) < 30 else 0  # few epochs: markers show where the points are
        for ax, kind, scale, ylabel in ((a1, "loss", 1.0, "loss"), (a2, "acc", 100.0, "accuracy (%)")):
            drawn = False
            for split, ls in (("train", "-"), ("val", "--")):
                col = f"{split}_{kind}"
                if col in history and _finite(history[col]):
                    ax.plot(history.epoch, history[col] * scale, ls, marker="o", ms=ms, label=split)
                    drawn = True
            if not drawn:
                note(ax, f"no {kind} recorded")
                continue
            if switch_epoch:
                ax.axvline(switch_epoch, color="0.4", ls=":", lw=1, label=f"switch after epoch {switch_epoch}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
            ax.legend()
    fig.suptitle(f"{title}, seed {seed}")
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ stage 3, 3b
def _selected(selection: dict) -> dict:
    """``{layer: ratio}`` of the selection (``selection["ratios"]`` for its ``layers``)."""
    return {n: float(selection["ratios"][n]) for n in selection.get("layers", [])}


def sensitivity_heatmap(rows: pd.DataFrame, layers: list[str], proxies: list[str], selection: dict, path,
                        selection_proxy: str | None = None, percentile: float = 95.0, title: str = "") -> Path:
    """Layer x ratio grid of ``delta_acc`` (points), one panel per proxy, the selected ``(layer, ratio)`` cells
    outlined. The diverging colour scale (0: white) ends at the ``percentile`` of ``|delta_acc|`` so one extreme
    cell does not wash out the rest; the colour bar label says when values are clipped (the numbers are not)."""
    plt = _plt()
    proxies = list(proxies) or ["(none)"]
    if len(rows):  # a proxy the sweep did not measure is a wrong argument, not an empty panel
        for proxy in proxies:
            check_choice(proxy, sorted(rows.proxy.unique()), "proxy")
    ratios = sorted(rows.ratio.dropna().unique()) if len(rows) else []
    vals = np.abs(rows.delta_acc.to_numpy(dtype=float)) if len(rows) else np.array([])
    vals = vals[np.isfinite(vals)]
    vmax = float(np.percentile(vals, percentile)) if len(vals) else 1.0
    vmax = vmax if vmax > 0 else (float(vals.max()) if len(vals) and vals.max() > 0 else 1.0)
    clipped = bool(len(vals) and vals.max() > vmax)
    sel = _selected(selection)
    n_l = max(len(layers), 1)
    fig, axes = plt.subplots(1, len(proxies), squeeze=False, sharey=True,
                             figsize=(max(2.6, 0.75 * len(ratios) + 1.4) * len(proxies) + 1.6, 0.3 * n_l + 1.5))
    im = None
    for i, (ax, proxy) in enumerate(zip(axes[0], proxies)):
        ax.grid(False)  # grid lines would run through the numbers
        sub = rows[rows.proxy == proxy] if len(rows) else rows
        if not len(sub) or not layers:
            note(ax, f"{proxy}: no sweep rows")
            continue
        piv = sub.pivot_table(index="layer", columns="ratio", values="delta_acc", aggfunc="mean")
        piv = piv.reindex(index=layers, columns=ratios)
        z = piv.to_numpy(dtype=float)  # (layers, ratios)
        im = ax.imshow(np.ma.masked_invalid(z), cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                       interpolation="nearest")
        for (li, rj), v in np.ndenumerate(z):
            if np.isfinite(v):
                ax.text(rj, li, f"{v:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * vmax else "black")
            else:
                ax.text(rj, li, "n/a", ha="center", va="center", fontsize=6, color=NOTE_COLOR)
        for li, layer in enumerate(layers):
            if layer in sel and sel[layer] in ratios:  # inset, so two selected neighbours keep two outlines
                rj = ratios.index(sel[layer])
                ax.add_patch(mpl.patches.Rectangle((rj - 0.45, li - 0.45), 0.9, 0.9, fill=False, ec="black", lw=2))
        ax.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
        if i == 0:  # the y axis is shared: the layer names once, on the first panel
            ax.set_yticks(range(len(layers)), layers)
        else:
            ax.tick_params(labelleft=False)
        ax.set_xlabel("ratio (rank / C_out)")
        chose = " (selection proxy)" if proxy == selection_proxy else ""
        ax.set_title(f"{proxy}{chose}")
    if im is not None:
        label = "val acc drop (points)"
        if clipped:
            label += f"\ncolours clipped at |drop| {vmax:.2g} ({percentile:g}th percentile)"
        fig.colorbar(im, ax=axes[0].tolist(), label=label, shrink=0.9)
    n_sel = len(sel)
    fig.suptitle(f"Per-layer sensitivity{f' ({title})' if title else ''}; outlined: the {plural(n_sel, 'selected option')}")
    return _save(fig, path)


def sensitivity_bars(rows: pd.DataFrame, layers: list[str], selection: dict, proxy: str, path,
                     title: str = "") -> Path:
    """Per layer, one bar per ratio of the sweep: ``delta_acc`` on ``proxy`` with the paired interval
    (``ci_low``, ``ci_high``); the selected ``(layer, ratio)`` options (``selection["ratios"]``) hatched with a black
    edge and a star above."""
    plt = _plt()
    if len(rows):
        check_choice(proxy, sorted(rows.proxy.unique()), "proxy")
    sub = rows[rows.proxy == proxy] if len(rows) else rows
    ratios = sorted(sub.ratio.dropna().unique()) if len(sub) else []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(layers) * max(1, len(ratios)) ** 0.5 + 2), 3.8))
    if not len(sub) or not layers:
        note(ax, f"no sweep rows for proxy {proxy}")
        return _save(fig, path)
    sel = _selected(selection)
    colors = plt.cm.viridis(np.linspace(0.15, 0.8, len(ratios)))
    w = 0.8 / len(ratios)
    pos = {n: i for i, n in enumerate(layers)}
    for j, (ratio, color) in enumerate(zip(ratios, colors)):
        g = sub[sub.ratio == ratio].groupby("layer").mean(numeric_only=True).reindex(layers)
        x = np.arange(len(layers)) + (j - (len(ratios) - 1) / 2) * w  # bar centres of this ratio, (layers,)
        d = g.delta_acc.to_numpy(dtype=float)
        chosen = np.array([sel.get(n) == ratio for n in layers])
        ax.bar(x, np.nan_to_num(d), w, color=color, label=f"ratio {ratio:g}")
        if chosen.any():  # black edge and hatch: the chosen bars stand out in grey-scale prints too
            ax.bar(x[chosen], np.nan_to_num(d[chosen]), w, fill=False, hatch="///", edgecolor="black", lw=1.4)
        has_ci = {"ci_low", "ci_high"} <= set(g.columns) and _finite(g.ci_low, g.ci_high)
        if has_ci:
            ax.errorbar(x, d, yerr=_bar(d, g.ci_low, g.ci_high), fmt="none", ecolor="0.2", elinewidth=0.8, capsize=2)
        top = np.fmax(np.nan_to_num(d), np.nan_to_num(g.ci_high.to_numpy(dtype=float))) if has_ci else np.nan_to_num(d)
        if chosen.any():
            ax.scatter(x[chosen], np.fmax(top[chosen], 0), marker="*", s=60, color="black", zorder=3,
                       transform=mpl.transforms.offset_copy(ax.transData, fig=fig, y=6, units="points"))
        for xi in x[~np.isfinite(d)]:
            ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=6, color=NOTE_COLOR, rotation=90)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.set_ylabel("val acc drop (points), paired interval")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(mpl.patches.Patch(facecolor="white", edgecolor="black", hatch="///", label="selected option"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    ax.set_title(f"Sensitivity per layer at every ratio ({proxy} proxy{'; ' + title if title else ''}); "
                 f"{plural(len(sel), 'option')} selected")
    return _save(fig, path)


def _fmt(v, spec: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def faithfulness_scatter(table: pd.DataFrame, summary: dict, proxies: list[str], ratio: float, epochs: int,
                         confidence: float, path, title: str = "") -> Path:
    """Per proxy, each sampled layer's proxy drop (x, the sweep's paired interval ``<proxy>_ci_low/high``) against
    its drop after ``epochs`` retraining epochs (y, ``real_ci_low/high``), with the Spearman correlation and its
    bootstrap interval from ``summary`` (``spearman_<proxy>``, ``spearman_<proxy>_ci_low/high``)."""
    plt = _plt()
    proxies = list(proxies) or ["(none)"]
    fig, axes = plt.subplots(1, len(proxies), figsize=(3.6 * len(proxies) + 2, 3.8), squeeze=False)
    pct = int(round(100 * confidence))
    for ax, proxy in zip(axes[0], proxies):
        x_col = f"{proxy}_drop"
        if not len(table) or x_col not in table or "real_drop" not in table or not _finite(table[x_col],
                                                                                            table.real_drop):
            note(ax, f"{proxy}: no layer with both a proxy and a retrained drop")
            continue
        for r in table.itertuples():
            st = layer_style(r.layer)
            x, y = getattr(r, x_col), r.real_drop
            ax.errorbar(x, y, xerr=_bar(x, getattr(r, f"{proxy}_ci_low", np.nan), getattr(r, f"{proxy}_ci_high", np.nan)),
                        yerr=_bar(y, getattr(r, "real_ci_low", np.nan), getattr(r, "real_ci_high", np.nan)),
                        fmt=st["marker"], color=st["color"], capsize=2, label=r.layer)
        ax.set_xlabel(f"{proxy} proxy drop (points, {pct} % CI)")
        ax.set_ylabel(f"drop after {plural(epochs, 'retraining epoch')} (points, CI)")
        rho = summary.get(f"spearman_{proxy}")
        lo, hi = summary.get(f"spearman_{proxy}_ci_low"), summary.get(f"spearman_{proxy}_ci_high")
        ax.set_title(f"{proxy}: Spearman {_fmt(rho)} over {len(table)} layers\n"
                     f"bootstrap {pct} % CI [{_fmt(lo)}, {_fmt(hi)}]")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=6, title="layer")
    fig.suptitle(f"Proxy against retraining at ratio {ratio:g}{f', {title}' if title else ''}")
    return _save(fig, path)


def additivity(pairs: pd.DataFrame, ratio: float, path) -> Path:
    """Per pair and method: ``pair_drop`` against ``sum_of_singles`` (points), and the line of exact additivity."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ok = (pairs[["sum_of_singles", "pair_drop"]].notna().all(axis=1) if len(pairs)
          and {"sum_of_singles", "pair_drop"} <= set(pairs.columns) else pd.Series(dtype=bool))
    if not ok.any():
        note(ax, "no layer pair with both a pair drop and single drops")
        return _save(fig, path)
    good = pairs[ok]
    groups = good.groupby("method", sort=False) if "method" in good else [("pairs", good)]
    for i, (method, grp) in enumerate(groups):
        ax.scatter(grp.sum_of_singles, grp.pair_drop, label=f"{method} ({len(grp)})", color=f"C{i}",
                   marker=_LAYER_MARKERS[i % len(_LAYER_MARKERS)], s=28)
    vals = pd.concat([good.sum_of_singles, good.pair_drop]).astype(float)
    pad = max(0.05 * float(vals.max() - vals.min()), 0.5)
    lo, hi = min(float(vals.min()), 0.0) - pad, float(vals.max()) + pad
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="additive: drop(a, b) = drop(a) + drop(b)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("drop(a) + drop(b) (points)")
    ax.set_ylabel("drop(a, b) (points)")
    ax.legend(title="method (pairs)", loc="best")
    n_pairs = len(good[["layer_a", "layer_b"]].drop_duplicates()) if {"layer_a", "layer_b"} <= set(good) else len(good)
    ax.set_title(f"{plural(n_pairs, 'layer pair')} at ratio {ratio:g}")
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------------- stage 4
def _family(run: str) -> str:
    """Runs drawn as one front (a line through their budgets): the variant (``random0``, ``random1`` and
    ``random0~ml2`` are ``random``) and its schedule."""
    name = variants.RunName.parse(run)
    return str(variants.RunName(name.variant, name.schedule))


RUN_COLUMNS = ("variant", "seed", "test_acc", "params", "macs")


def basis_pareto(runs: pd.DataFrame, confidence: float, path, title: str = "", baseline: str = "baseline") -> Path:
    """Test accuracy (%) against parameters and against MACs (millions, two panels), per variant the mean over
    seeds with the ``confidence`` t-interval. ``runs``: one row per (variant, seed) with ``test_acc`` (fraction),
    ``params`` and ``macs`` (the basis stage's ``runs``). A variant trained at several budgets (a front:
    ``selected~ml2@switch`` beside ``selected@switch``, ``basis.front_budgets`` / ``front_ratios``) is joined by a
    line in size order through each budget's mean (its extra points hollow); variants of the baseline's size and MACs
    (``baseline_fp32``, hollow) sit at the baseline's x, so they leave the axes' range alone."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), sharey=True)
    if not len(runs):
        for ax in axes:
            note(ax, "no basis-stage runs")
        return _save(fig, path)
    _require(runs, RUN_COLUMNS, "basis_pareto")
    acc = seed_summary(runs, "test_acc", confidence, scale=100.0).set_index("variant")
    size = runs.groupby("variant", sort=False)[["params", "macs"]].first()  # one architecture per variant
    n_max = int(acc.n.max()) if len(acc) else 0
    for ax, col, label in ((axes[0], "params", "parameters (millions)"), (axes[1], "macs", "MACs (millions)")):
        x = size[col].astype(float).reindex(acc.index) / 1e6  # (variants,), millions
        if not _finite(x, acc["mean"]):
            note(ax, f"no {col} recorded")
            continue
        for fam, members in pd.Series(acc.index, index=acc.index).groupby(lambda v: _family(v), sort=False):
            # a front through the family's budgets (``variants.point_of``: "" is the main point, ``ml2`` ... the
            # extra ones), at each budget the mean of its runs (the random subsets share one budget)
            members, points = list(members), {}
            for m in members:
                if np.isfinite(x[m]) and np.isfinite(acc.loc[m, "mean"]):
                    points.setdefault(variants.point_of(m), []).append(m)
            if len(points) > 1:
                xy = sorted((float(np.mean([x[m] for m in ms])), float(np.mean([acc.loc[m, "mean"] for m in ms])))
                            for ms in points.values())
                ax.plot(*zip(*xy), "-", color=display.look(members[0]).color, lw=0.9, alpha=0.6, zorder=1)
        for v in acc.index:
            st = variant_style(v)
            m = acc.loc[v]
            if not (np.isfinite(x[v]) and np.isfinite(m["mean"])):
                continue
            big = v.startswith("selected")
            hollow = v == f"{baseline}_fp32" or variants.point_of(v) != ""  # the fp32 twin, a front's extra points
            ax.errorbar(x[v], m["mean"], yerr=_bar(m["mean"], m["low"], m["high"]), fmt=st["marker"],
                        color=st["color"], ms=10 if big else 6.5, capsize=3, label=f"{v} (n={int(m['n'])})",
                        mfc="white" if hollow else st["color"], zorder=3 if big else 2)
        _plain(ax)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(6))  # a few plain labels that do not run together
        ax.set_xlabel(label)
    axes[0].set_ylabel("test accuracy (%)")
    lo, hi = axes[0].get_ylim()
    axes[0].set_ylim(max(lo, 0.0), min(hi, 100.0))  # an interval past 0 % or 100 % says only "few seeds"
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper",
                   title=f"mean, {int(round(100 * confidence))} % t-interval\nover seeds (n)")
    fig.suptitle(f"Accuracy against size{f' ({title})' if title else ''}; up to {plural(n_max, 'seed')} per variant")
    return _save(fig, path)


def training_curves(histories: pd.DataFrame, switch_epoch: int, confidence: float, path, title: str = "",
                    column: str = "val_acc", baseline: str = "baseline", ncols: int = 3) -> Path:
    """``column`` (a fraction, drawn in %) per epoch, one panel per variant with the baseline drawn in each for
    reference: the mean over seeds with the ``confidence`` t-interval as a band (none with one seed).
    ``histories``: rows of (``variant``, ``seed``, ``epoch``, ``column``), the basis stage's ``histories.csv``. ``switch_epoch`` > 0 is
    marked by a vertical line (the switch runs are their seed's baseline up to it)."""
    plt = _plt()
    ok = len(histories) and column in histories and _finite(histories[column])
    names = list(dict.fromkeys(histories.variant)) if ok else []
    panels = [v for v in names if v != baseline] or names[:1]
    nc = max(1, min(ncols, len(panels)))
    nr = max(1, math.ceil(len(panels) / nc))
    fig, axes = plt.subplots(nr, nc, figsize=(3.4 * nc + 0.6, 2.6 * nr + 0.7), squeeze=False, sharex=True,
                             sharey=True)
    flat = axes.reshape(-1)
    if not panels:
        note(flat[0], f"no {column} in the run histories")
        return _save(fig, path)
    n_epochs = int(histories.epoch.max())
    curves = {}
    for v, g in histories.groupby("variant", sort=False):  # per variant: epoch, mean, low, high, n (%)
        stats = [(e, *seed_interval(gg[column] * 100, confidence)) for e, gg in g.groupby("epoch")]
        curves[v] = tuple(np.array(c, dtype=float) for c in zip(*stats))

    def draw(ax, v, color, ls, alpha, zorder):
        e, mean, low, high, n = curves[v]
        ax.plot(e, mean, ls, marker=variant_style(v)["marker"], ms=3.5 if n_epochs < 30 else 0, color=color, lw=1.2,
                zorder=zorder)
        if np.isfinite(low).any():
            ax.fill_between(e, low, high, color=color, alpha=alpha, lw=0, zorder=zorder - 1)
        return int(n.max())

    ref = baseline in curves
    for ax, v in zip(flat, panels):
        if v != baseline and ref:  # the reference in every panel: black, dotted, a fainter band
            draw(ax, baseline, "k", ":", 0.07, 2)
        n = draw(ax, v, variant_style(v)["color"] if v != baseline else "k", "-", 0.18, 3)
        if switch_epoch and switch_epoch > 0:
            ax.axvline(switch_epoch, color="0.3", ls="--", lw=0.9)
        ax.set_title(f"{v} (n={n})")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    lo, hi = flat[0].get_ylim()
    flat[0].set_ylim(max(lo, 0.0), min(hi, 100.0))  # a band past 0 % or 100 % says only "few seeds"
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("val accuracy (%)")
    key = [mpl.lines.Line2D([], [], color="0.3", ls="-", label="the panel's variant (n: seeds)")]
    if ref and panels != [baseline]:
        key.append(mpl.lines.Line2D([], [], color="k", ls=":", label=f"{baseline} (n={int(curves[baseline][4].max())})"))
    if switch_epoch and switch_epoch > 0:
        key.append(mpl.lines.Line2D([], [], color="0.3", ls="--", lw=0.9, label=f"switch after epoch {switch_epoch}"))
    fig.legend(handles=key, loc="outside lower center", ncol=len(key), fontsize=7)
    fig.suptitle(f"Validation accuracy per epoch{f' ({title})' if title else ''}: mean over seeds and "
                 f"{int(round(100 * confidence))} % t-band")
    return _save(fig, path)


def epoch_times(runs: pd.DataFrame, confidence: float, switch_epoch: int, path, title: str = "",
                column: str = "basis_epoch_time", baseline: str = "baseline") -> Path:
    """Per variant, ``column`` (seconds; default the mean epoch time from ``switch_epoch`` on) as the mean over
    seeds with the ``confidence`` t-interval, horizontal, the baseline's mean as a reference line."""
    plt = _plt()
    s = seed_summary(runs, column, confidence) if len(runs) and column in runs else pd.DataFrame()
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(len(s), 1) + 1.5))
    if not len(s) or not _finite(s["mean"]):
        note(ax, f"no {column} recorded (a schedule without epochs after the switch has none)")
        return _save(fig, path)
    s = s.iloc[::-1].reset_index(drop=True)  # first variant on top
    for i, r in s.iterrows():
        st = variant_style(r.variant)
        if not np.isfinite(r["mean"]):
            ax.text(0, i, " n/a", va="center", fontsize=7, color=NOTE_COLOR)
            continue
        ax.errorbar(r["mean"], i, xerr=_bar(r["mean"], r["low"], r["high"]), fmt=st["marker"], color=st["color"],
                    capsize=3, ms=7)
    base = s[s.variant == baseline]
    has_base = bool(len(base) and np.isfinite(base["mean"].iloc[0]))
    if has_base:
        ax.axvline(base["mean"].iloc[0], color="k", ls=":", lw=1)
    ax.set_yticks(range(len(s)), [f"{v} (n={int(n)})" for v, n in zip(s.variant, s.n)])
    ax.set_xlim(left=0)
    ax.set_xlabel(f"seconds per epoch, epochs {switch_epoch + 1} on (mean, {int(round(100 * confidence))} % "
                  "t-interval over seeds)")
    ax.set_title(f"Epoch time after the switch{f' ({title})' if title else ''}"
                 + (f"; dotted: the {baseline} mean" if has_base else ""))
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------------- stage 5
SPEEDUP_COLUMNS = ("layer", "ratio", "batch_size", "precision", "theoretical_speedup", "measured_speedup",
                   "speedup_low", "speedup_high", "floor_speedup")


def _ratio_limits(*cols) -> tuple[float, float]:
    """Common log-axis limits of speedups (ratios): every positive finite value inside, with a margin of a factor."""
    v = np.concatenate([np.asarray(c, dtype=float).reshape(-1) for c in cols]) if cols else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return 0.5, 2.0
    lo, hi = float(v.min()), float(v.max())
    lo, hi = min(lo, 1.0), max(hi, 1.0)  # the line of equal time stays in view
    return lo / 1.25, hi * 1.25


def _log_ratio_axes(ax, ylim: tuple[float, float], xlim: tuple[float, float] | None = None) -> None:
    """Log scale for speedups (a factor of two faster and slower are equally far from 1), plain tick labels; the
    x axis too when ``xlim`` is given."""
    for a, lim in (("y", ylim), ("x", xlim)):
        if lim is None:
            continue
        getattr(ax, f"set_{a}scale")("log")
        getattr(ax, f"set_{a}lim")(*lim)
        axis = getattr(ax, f"{a}axis")
        axis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=(1, 2, 5)))  # labels in a narrow range too
        axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(mpl.ticker.NullFormatter())


def measured_vs_theory(speedups: pd.DataFrame, trained: str, hardware: dict, path, target_fraction: float,
                       theory_min: float) -> Path:
    """Per (precision, batch size) panel: every layer's measured speedup (filled, bars ``speedup_low``-
    ``speedup_high``) and kernel floor (hollow) against the theoretical speedup on log-log axes, the theory line
    y = x and the target line y = ``target_fraction`` x, the region below ``theory_min`` (where the target is not
    held) shaded. ``speedups``: ``perf.analysis.basis_speedups``; layers keyed by ``layer_style`` in the legend."""
    plt = _plt()
    panels = ([] if not len(speedups) else
              list(speedups[["precision", "batch_size"]].drop_duplicates().itertuples(index=False, name=None)))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.6 * max(len(panels), 1) + 2.2, 4.6), squeeze=False)
    if not panels:
        note(axes[0][0], "no basis-layer timings")
        return _save(fig, path)
    _require(speedups, SPEEDUP_COLUMNS, "measured_vs_theory")
    # y: every measured value in view; x: the theoretical speedups only (they span far less than noisy timings)
    ylim = _ratio_limits(*(speedups[c] for c in ("theoretical_speedup", "measured_speedup", "speedup_low",
                                                 "speedup_high", "floor_speedup")))
    xlim = _ratio_limits(speedups.theoretical_speedup)
    line = np.geomspace(*xlim, 50)
    for ax, (prec, bs) in zip(axes[0], panels):
        g = speedups[(speedups.precision == prec) & (speedups.batch_size == bs)]
        ax.axvspan(xlim[0], theory_min, color="0.92", lw=0, zorder=0)
        ax.plot(line, line, "k--", lw=1)
        ax.plot(line, target_fraction * line, "k:", lw=1)
        ax.axhline(1, color="0.5", lw=0.5)
        for layer, lg in g.groupby("layer", sort=False):
            st = layer_style(layer)
            ax.errorbar(lg.theoretical_speedup, lg.measured_speedup,
                        yerr=_bar(lg.measured_speedup, lg.speedup_low, lg.speedup_high), fmt=st["marker"],
                        color=st["color"], ms=5, capsize=2, elinewidth=0.8, label=layer)
            ax.scatter(lg.theoretical_speedup, lg.floor_speedup, marker=st["marker"], s=30, facecolors="none",
                       edgecolors=st["color"], lw=0.9)
        _log_ratio_axes(ax, ylim, xlim)
        ax.set_xlabel("theoretical speedup (MAC ratio)")
        ax.set_ylabel("fwd+bwd speedup over dense")
        ax.set_title(f"Reduced basis layers, {prec}{' (training precision)' if prec == trained else ''}, "
                     f"batch {bs}\n{str(hardware.get('device_name', '?'))[:34]}, {hardware.get('threads', '?')} "
                     "threads")
    handles, labels = [], []
    for ax in axes[0]:  # every layer once, in model order
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    key = [mpl.lines.Line2D([], [], color="k", ls="--", label="theory (y = x)"),
           mpl.lines.Line2D([], [], color="k", ls=":", label=f"target: {target_fraction:.0%} of theory"),
           mpl.patches.Patch(color="0.92", label=f"theory < {theory_min:g}: no target"),
           mpl.lines.Line2D([], [], color="0.3", marker="o", ls="none", label="measured (bar: IQR)"),
           mpl.lines.Line2D([], [], color="0.3", marker="o", mfc="none", ls="none", label="kernel floor")]
    fig.legend(key + handles, [k.get_label() for k in key] + labels, loc="outside right upper", fontsize=6,
               ncol=1 if len(labels) <= 22 else 2)
    return _save(fig, path)


def speedup_vs_ratio(speedups: pd.DataFrame, precision: str, batch_size: int, path, ncols: int = 3) -> Path:
    """Per ResNet stage panel: each layer's measured speedup against the ratio (solid, bars ``speedup_low``-
    ``speedup_high``) and its theoretical speedup (dashed, same colour), in ``precision`` at ``batch_size``, on a
    log speedup axis."""
    plt = _plt()
    g = speedups[(speedups.precision == precision) & (speedups.batch_size == batch_size)] if len(speedups) else speedups
    stage_of = g.layer.str.split(".").str[0] if len(g) else pd.Series(dtype=str)
    groups = list(dict.fromkeys(stage_of)) if len(g) else []
    nc = max(1, min(ncols, len(groups)))
    nr = max(1, math.ceil(len(groups) / nc))
    fig, axes = plt.subplots(nr, nc, figsize=(3.6 * nc + 0.6, 3.0 * nr + 0.6), squeeze=False, sharey=True)
    flat = axes.reshape(-1)
    if not groups:
        note(flat[0], f"no basis-layer timings in {precision} at batch {batch_size}")
        return _save(fig, path)
    ylim = _ratio_limits(*(g[c] for c in ("theoretical_speedup", "measured_speedup", "speedup_low",
                                          "speedup_high")))
    for ax, stage in zip(flat, groups):
        sub = g[stage_of == stage]
        for i, (layer, lg) in enumerate(sub.groupby("layer", sort=False)):
            lg = lg.sort_values("ratio")
            st, c = layer_style(layer), f"C{i % 10}"
            ax.errorbar(lg.ratio, lg.measured_speedup, yerr=_bar(lg.measured_speedup, lg.speedup_low, lg.speedup_high),
                        marker=st["marker"], color=c, ms=4, lw=1.1, capsize=2, elinewidth=0.7, label=layer)
            ax.plot(lg.ratio, lg.theoretical_speedup, ls="--", marker="x", ms=4, color=c, lw=0.9)
        ax.axhline(1, color="k", lw=0.5)
        _log_ratio_axes(ax, ylim)
        ax.set_title(stage)
        ax.legend(fontsize=6, loc="best")
    for ax in flat[len(groups):]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[:len(groups)]):
        if i >= len(groups) - nc:  # the lowest visible panel of each column
            ax.set_xlabel("ratio (rank / C_out)")
        if i % nc == 0:
            ax.set_ylabel(f"fwd+bwd speedup over dense ({precision})")
    fig.suptitle(f"Speedup against ratio: measured (solid, bar: IQR), theory (dashed); batch {batch_size}")
    return _save(fig, path)


def peers(peer_rows: pd.DataFrame, hardware: dict, path, pass_: str = "fwd+bwd") -> Path:
    """Per precision: measured speedup of every non-dense form against its own theoretical speedup (``pass_``
    rows of ``perf.peers.bench_peers``) on log-log axes, IQR bars from the form's ``iqr_ms`` (the dense time taken
    as exact)."""
    plt = _plt()
    pp = (peer_rows[(peer_rows["pass"] == pass_) & (peer_rows.form != "dense")]
          if len(peer_rows) and {"pass", "form"} <= set(peer_rows.columns) else pd.DataFrame())
    precs = list(dict.fromkeys(pp.precision)) if len(pp) else []
    fig, axes = plt.subplots(1, max(len(precs), 1), figsize=(4.4 * max(len(precs), 1) + 1.8, 4.0), squeeze=False)
    if not precs:
        note(axes[0][0], "no peer timings (benchmark.peers is empty)")
        return _save(fig, path)
    forms = list(dict.fromkeys(pp.form))
    ylim, xlim = _ratio_limits(pp.theoretical_speedup, pp.measured_speedup), _ratio_limits(pp.theoretical_speedup)
    line = np.geomspace(*xlim, 50)
    for ax, prec in zip(axes[0], precs):
        grp = pp[pp.precision == prec]
        for i, form in enumerate(forms):
            f = grp[grp.form == form]
            if not len(f):
                continue
            med, iqr = f.median_ms.to_numpy(dtype=float), f.iqr_ms.to_numpy(dtype=float)
            sp = f.measured_speedup.to_numpy(dtype=float)
            low = sp * med / (med + iqr / 2)  # the dense time fixed: speedup at the form's time +/- IQR/2
            high = np.where(med - iqr / 2 > 0, sp * med / np.maximum(med - iqr / 2, 1e-12), np.nan)
            ax.errorbar(f.theoretical_speedup, sp, yerr=_bar(sp, low, high), fmt=_LAYER_MARKERS[i % 9],
                        color=f"C{i}", ms=5, capsize=2, elinewidth=0.7, label=form)
        ax.plot(line, line, "k--", lw=1, label="theory")
        ax.axhline(1, color="gray", lw=0.5)
        _log_ratio_axes(ax, ylim, xlim)
        ax.set_xlabel("theoretical speedup (executed MACs)")
        ax.set_ylabel(f"measured {pass_} speedup")
        ax.set_title(f"{prec}, batch {int(grp.batch_size.iloc[0])}, {str(hardware.get('device_name', '?'))[:30]}")
        ax.legend(loc="best")
    fig.suptitle("Forms at equal parameter budget, every distinct 3x3 shape")
    return _save(fig, path)
