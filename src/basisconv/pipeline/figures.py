"""Every figure of the arXiv 2408.06024 replication, drawn from frames the caller prepares (no verdict, no file read).

The stages compute and ``basisconv.pipeline.render`` prepares each figure's frame from a run's results; the
functions here only draw. Each takes frames and an output path, saves PNG and SVG with
``basisconv.experiment.io.save_figure`` and returns the PNG path. Figures of the paper's kind:

- ``data_samples``: training images per class (stage 1);
- ``baseline_curves``: the baseline's loss and accuracy (%) per epoch, its seed named (stage 2);
- ``sensitivity_heatmap``: the per-layer drop ``delta(l, q)`` of the sweep at every ratio, the selected
  ``(layer, ratio)`` options outlined (the paper's per-layer sensitivity analysis, stage 3);
- ``faithfulness_scatter`` and ``additivity``: proxy drop against the drop after retraining, pair drop against the
  sum of single drops (stage 3b);
- ``fronts``: accuracy against parameters, MACs or measured time, one line per method through its budgets (the
  paper's main comparison); ``paired_forest``: each run's paired accuracy difference from the baseline, grouped by
  schedule; ``learning_curves``: validation accuracy per epoch of dense, scratch and switch training (stage 4);
- ``speedup_vs_ratio`` and ``peers``: measured speedup of the basis form against the ratio and against theory
  (the paper's speed claim), with the IQR of the timings (stage 5).

Every function draws degenerate input too: an empty frame gives an axes with a note saying what is missing, an
all-NaN column draws nothing for it, and a point with one seed is drawn without an interval. Captions, written from
each run's numbers, are ``basisconv.pipeline.captions``'.

``style()`` sets a single matplotlib style (constrained layout, so labels never run into colour bars or each other);
runs take their colour and marker from ``basisconv.pipeline.display``; ``layer_style(name)`` colours a conv by its
ResNet stage and marks its position in the stage.
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


# ---------------------------------------------------------------------------------------------------- helpers
def _plt():
    import matplotlib.pyplot as plt
    style()  # every figure in the one style, however it is drawn (a stage, ``publish --render``, a test)
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
                        fmt=st["marker"], color=st["color"], capsize=2, label=r.layer.split(".")[0])
        ax.set_xlabel(f"{proxy} proxy drop (points, {pct} % CI)")
        ax.set_ylabel(f"drop after {plural(epochs, 'retraining epoch')} (points, CI)")
        rho = summary.get(f"spearman_{proxy}")
        lo, hi = summary.get(f"spearman_{proxy}_ci_low"), summary.get(f"spearman_{proxy}_ci_high")
        ax.set_title(f"{proxy}: Spearman {_fmt(rho)} over {len(table)} layers\n"
                     f"bootstrap {pct} % CI [{_fmt(lo)}, {_fmt(hi)}]")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:  # one entry per ResNet stage (its colour), not per layer: a legend one can read
        first = {lab: h for h, lab in zip(handles, labels) if lab}
        fig.legend(list(first.values()), list(first), loc="outside right upper", fontsize=6, title="stage")
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
POINT_COLUMNS = ("family", "main", "acc", "acc_low", "acc_high", "n")


def fronts(points: pd.DataFrame, panels: list[tuple[str, str]], path, title: str = "", baseline: str = "baseline",
           max_entries: int = 8) -> Path:
    """Test accuracy (%) against one measure per panel (parameters, MACs, measured time ...), one line per family
    through its points in x order: the paper's accuracy-against-cost front of each method.

    ``points``: one row per point with ``family`` (the run name without its front point, ``selected@late``; its look
    is ``display.style``), ``main`` (the main budget: filled; the front's other budgets hollow), ``acc``,
    ``acc_low``, ``acc_high`` (%, t-interval over seeds, NaN bounds with one seed) and ``n`` (seeds), and for each
    ``(column, axis label)`` of ``panels`` the column (and optionally ``<column>_low`` / ``<column>_high``, an
    interval on x). The ``baseline`` family is a black square with a grey band of its interval across the panel:
    the accuracy a conversion has to keep. At most ``max_entries`` legend entries (a legend one can read): families
    past ``max_entries - 1`` (one entry is the hollow key) are not drawn, and a note under the panels names them."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels) + 2.4, 3.9), sharey=True, squeeze=False)
    axes = axes[0]
    if not len(points):
        for ax in axes:
            note(ax, "no runs to draw")
        return _save(fig, path)
    _require(points, POINT_COLUMNS, "fronts")
    families = list(dict.fromkeys(points.family))
    left_out, families = families[max_entries - 1:], families[:max_entries - 1]
    if left_out:
        fig.text(0.01, 0.0, f"not drawn (at most {max_entries} legend entries): {', '.join(left_out)}", fontsize=6,
                 color=NOTE_COLOR, va="bottom")
    for ax, (col, label) in zip(axes, panels):
        if col not in points or not _finite(points[col], points.acc):
            note(ax, f"no {label} recorded")
            continue
        base = points[(points.family == baseline) & np.isfinite(points[col].astype(float))]
        if len(base) and np.isfinite(base.acc_low.iloc[0]):
            ax.axhspan(base.acc_low.iloc[0], base.acc_high.iloc[0], color="0.88", lw=0, zorder=0)
        for fam in families:
            g = points[(points.family == fam) & np.isfinite(points[col].astype(float))].sort_values(col)
            if not len(g):
                continue
            st = display.style(fam)
            n = int(points.n[points.family == fam].max())  # the family's seeds, in every panel alike
            ax.plot(g[col], g.acc, "-", color=st["color"], lw=1.0, alpha=0.7, zorder=1)
            for main, gg in g.groupby("main"):
                xerr = (_bar(gg[col], gg[f"{col}_low"], gg[f"{col}_high"]) if f"{col}_low" in gg else None)
                ax.errorbar(gg[col], gg.acc, yerr=_bar(gg.acc, gg.acc_low, gg.acc_high), xerr=xerr, fmt=st["marker"],
                            color=st["color"], mfc=st["color"] if main else "white", ms=7 if main else 5.5,
                            capsize=2, elinewidth=0.8, zorder=3 if fam.startswith("selected") else 2,
                            label=f"{fam} (n={n})" if main or not g.main.any() else None)
        _plain(ax)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(6))
        ax.set_xlabel(label)
    axes[0].set_ylabel("test accuracy (%)")
    lo, hi = axes[0].get_ylim()
    axes[0].set_ylim(max(lo, 0.0), min(hi, 100.0))  # an interval past 0 % or 100 % says only "few seeds"
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    handles.append(mpl.lines.Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label="other budgets"))
    fig.legend(handles=handles, loc="outside right upper", title="mean, t-interval\nover seeds (n)")
    fig.suptitle(title)
    return _save(fig, path)


FOREST_COLUMNS = ("label", "run", "schedule", "mean", "low", "high", "n")


def paired_forest(rows: pd.DataFrame, path, margin: float, title: str = "", group_titles: dict | None = None) -> Path:
    """One line per compared run: its paired accuracy difference (points) against the baseline, mean over seeds with
    the t-interval, grouped by ``schedule`` (top to bottom in ``rows`` order, ``group_titles`` naming each group),
    coloured by variant; the vertical lines are no difference and the non-inferiority margin ``-margin``.
    ``rows``: ``label`` (the y tick), ``run`` (for its look), ``schedule``, ``mean``, ``low``, ``high``, ``n``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.5, 0.27 * max(len(rows), 1) + 1.6))
    if not len(rows):
        note(ax, "no run to compare with the baseline")
        return _save(fig, path)
    _require(rows, FOREST_COLUMNS, "paired_forest")
    y = np.arange(len(rows))[::-1]  # the first row on top
    seen = set()
    for yi, r in zip(y, rows.itertuples()):
        # one marker per variant whatever the schedule (the groups say the schedule), so the legend reads true
        variant, color = variants.RunName.parse(r.run).variant, display.style(r.run)["color"]
        ax.errorbar(r.mean, yi, xerr=_bar(r.mean, r.low, r.high), fmt=display.look(r.run).marker, color=color,
                    capsize=2.5, ms=6, label=None if variant in seen else variant)
        seen.add(variant)
    starts = rows.schedule.ne(rows.schedule.shift()).to_numpy()
    for yi, sched in zip(y[starts], rows.schedule[starts]):  # the group's name right of the axes, off the points
        ax.axhline(yi + 0.5, color="0.6", lw=0.6)
        ax.text(1.01, yi + 0.45, (group_titles or {}).get(sched, sched), transform=ax.get_yaxis_transform(),
                ha="left", va="top", fontsize=7, color=NOTE_COLOR)
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(-margin, color="k", ls=":", lw=0.8)
    ax.set_yticks(y, [f"{lab} (n={n})" for lab, n in zip(rows.label, rows.n)], fontsize=7)
    ax.set_ylim(-0.6, len(rows) - 0.4 + 0.6)
    ax.set_xlabel(f"test accuracy minus the baseline's (points), paired over seeds; dotted: -{margin:g}")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=6, ncol=min(len(labels), 6) or 1)
    ax.set_title(title)
    return _save(fig, path)


def learning_curves(histories: pd.DataFrame, panels: dict[str, list[str]], colors: dict[str, str], confidence: float,
                    path, marks: dict[str, int] | None = None, column: str = "val_acc", baseline: str = "baseline",
                    title: str = "", ncols: int = 2) -> Path:
    """``column`` (a fraction, drawn in %) per epoch of the runs of each panel (``{panel title: [run names]}``), the
    mean over seeds with the ``confidence`` t-band (none with one seed); ``colors``: ``{run: colour}`` (the
    caller colours by schedule, so a panel's lines are dense, scratch, switch ...), the ``baseline`` dotted black in
    every panel it is listed in. ``histories``: rows of (``variant``, ``seed``, ``epoch``, ``column``), the basis
    stage's ``histories.csv``; ``marks``: ``{label: epoch}`` drawn as vertical lines (the switch epochs)."""
    plt = _plt()
    ok = bool(len(histories)) and column in histories and _finite(histories[column])
    names = [t for t, runs in panels.items() if ok and set(runs) & set(histories.variant)]
    nc = max(1, min(ncols, len(names)))
    nr = max(1, math.ceil(len(names) / nc))
    fig, axes = plt.subplots(nr, nc, figsize=(4.4 * nc + 0.6, 2.9 * nr + 0.9), squeeze=False, sharex=True,
                             sharey=True)
    flat = axes.reshape(-1)
    if not names:
        note(flat[0], f"no {column} in the run histories")
        return _save(fig, path)
    n_epochs = int(histories.epoch.max())
    for ax, t in zip(flat, names):
        for run in panels[t]:
            g = histories[histories.variant == run]
            if not len(g):
                continue
            stats = [(e, *seed_interval(gg[column] * 100, confidence)) for e, gg in g.groupby("epoch")]
            e, mean, low, high, n = (np.array(c, dtype=float) for c in zip(*stats))
            color = "k" if run == baseline else colors.get(run, "0.4")
            ax.plot(e, mean, ":" if run == baseline else "-", color=color, lw=1.2, ms=3 if n_epochs < 30 else 0,
                    marker="o", label=f"{run} (n={int(n.max())})")
            if np.isfinite(low).any():
                ax.fill_between(e, low, high, color=color, alpha=0.15, lw=0)
        for label, epoch in (marks or {}).items():
            ax.axvline(epoch, color="0.4", ls="--", lw=0.7)
        ax.set_title(t)
        ax.legend(fontsize=6, loc="lower right")
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    for ax in flat[len(names):]:
        ax.set_visible(False)
    lo, hi = flat[0].get_ylim()
    flat[0].set_ylim(max(lo, 0.0), min(hi, 100.0))
    for ax in axes[-1]:
        ax.set_xlabel("epoch" + (f" (dashed: {', '.join(f'{k} after epoch {v}' for k, v in marks.items())})"
                                 if marks else ""))
    for ax in axes[:, 0]:
        ax.set_ylabel("val accuracy (%)")
    fig.suptitle(title)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------------- stage 5
SPEEDUP_COLUMNS = ("layer", "ratio", "batch_size", "precision", "theoretical_speedup", "measured_speedup",
                   "speedup_low", "speedup_high")


def _ratio_limits(*cols) -> tuple[float, float]:
    """Common log-axis limits of speedups (ratios): every positive finite value inside, with a margin of a factor."""
    v = np.concatenate([np.asarray(c, dtype=float).reshape(-1) for c in cols]) if cols else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return 0.5, 2.0
    lo, hi = min(float(v.min()), 1.0), max(float(v.max()), 1.0)  # the line of equal time stays in view
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


def speedup_vs_ratio(speedups: pd.DataFrame, precision: str, batch_size: int, candidates, path,
                     ncols: int = 3) -> Path:
    """Each layer's measured forward+backward speedup of its reduced basis form against the ratio (solid, bars
    ``speedup_low``-``speedup_high``) and its theoretical speedup (dashed, same colour), in ``precision`` at
    ``batch_size`` on a log speedup axis, one panel per ResNet stage (the stem its own); layers that are not among
    the ``candidates`` (the layers the search may convert: the stem, 1x1 shortcuts) are drawn hollow and named so."""
    plt = _plt()
    g = speedups[(speedups.precision == precision) & (speedups.batch_size == batch_size)] if len(speedups) else speedups
    if len(g):
        _require(g, SPEEDUP_COLUMNS, "speedup_vs_ratio")
    cand = set(candidates)
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
        for i, (layer, lg) in enumerate(g[stage_of == stage].groupby("layer", sort=False)):
            lg, c, is_cand = lg.sort_values("ratio"), f"C{i % 10}", layer in cand
            ax.errorbar(lg.ratio, lg.measured_speedup, yerr=_bar(lg.measured_speedup, lg.speedup_low, lg.speedup_high),
                        marker="o", mfc=c if is_cand else "white", color=c, ms=4, lw=1.1 if is_cand else 0.8,
                        capsize=2, elinewidth=0.7, label=layer if is_cand else f"{layer} (not a candidate)")
            ax.plot(lg.ratio, lg.theoretical_speedup, ls="--", marker="x", ms=4, color=c, lw=0.9)
        ax.axhline(1, color="k", lw=0.5)
        _log_ratio_axes(ax, ylim)
        ax.set_title(f"{stage} (the stem)" if stage == "conv1" else stage)
        # below the panel: inside, a stage's five layers would cover the points they name
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    for ax in flat[len(groups):]:
        ax.set_visible(False)
    for i, ax in enumerate(flat[:len(groups)]):
        if i >= len(groups) - nc:  # the lowest visible panel of each column
            ax.set_xlabel("ratio (rank / C_out)")
        if i % nc == 0:
            ax.set_ylabel(f"fwd+bwd speedup over dense ({precision})")
    fig.suptitle(f"Speedup against ratio: measured (solid, bar: IQR; hollow: not a candidate), theory (dashed); "
                 f"batch {batch_size}")
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
