"""Each figure's caption, written from the run's own numbers (arXiv 2408.06024 replication).

A caption says what the figure draws and then what this run's figure shows: the values a reader would otherwise
read off the axes (the best and worst point, the selection against its comparisons, where speed beats or misses
theory, and why where the results can say). One function per figure of ``basisconv.pipeline.render.FIGURES``,
named as the figure (``basis_fronts``), taking the run's results ``r`` (``render.load``) and the frame the figure
was drawn from. Words only: nothing here decides a verdict (``basisconv.pipeline.claims`` does); a number that is
missing is said to be missing.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from basisconv.pipeline.claims import MARGIN
from basisconv.pipeline.variants import RunName


def _ok(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _ci(mean, low, high, d: int = 2, unit: str = "") -> str:
    """``88.57 [88.21, 88.93] %`` (one seed: no interval)."""
    if not _ok(mean):
        return "n/a"
    s = f"{mean:.{d}f}" + unit
    return s + (f" [{low:.{d}f}, {high:.{d}f}]" if _ok(low) and _ok(high) else " (one seed)")


def _schedule(points: pd.DataFrame) -> str:
    runs = [f for f in points.family if f != "baseline" and "@" in f] if len(points) else []
    return RunName.parse(runs[0]).label if runs else "(none)"


def data_samples(r: dict, _=None) -> str:
    t = r["tables"]["data_splits"]
    total = t[t["class"] == "total"].iloc[0] if "class" in t and (t["class"] == "total").any() else None
    sizes = (f"the splits hold {int(total.train):,} training, {int(total.val):,} validation and {int(total.test):,} "
             "test images" if total is not None else "the split sizes are not recorded")
    return (f"Training images of each class of {r['baseline']['data']}, as the data stage stores them (uint8, before "
            f"augmentation); {sizes}, in {len(t) - (total is not None)} classes.")


def baseline_learning_curve(r: dict, h: pd.DataFrame) -> str:
    b = r["baseline"]
    if not len(h):
        return "The baseline's learning curve: no epoch was recorded."
    last = h.iloc[-1]
    best = h.loc[h.val_acc.idxmax()]
    return (f"Loss (left) and accuracy (right) per epoch of the full-rank baseline, seed {b['seed']}, on the "
            f"training batches and the validation split. Over {len(h)} epochs validation accuracy reaches "
            f"{100 * last.val_acc:.2f} % (best {100 * best.val_acc:.2f} % at epoch {int(best.epoch)}) while "
            f"training accuracy ends at {100 * last.train_acc:.2f} %; its test accuracy is {100 * b['test_acc']:.2f} "
            "%. The dotted line marks the epoch after which the switch runs train basis layers.")


def sensitivity_heatmap(r: dict, rows: pd.DataFrame) -> str:
    sel = r["selection"]
    head = ("Drop in validation accuracy (points) when one layer (rows) alone becomes a basis layer at one ratio "
            "(columns), one panel per proxy, on the final baseline; outlined cells are the options the knapsack "
            "selected, colours are clipped at the 95th percentile of |drop| (the numbers are not).")
    if not len(rows):
        return head + " This run has no sweep rows."
    proxy = sel["method"]["proxy"]
    p = rows[rows.proxy == proxy].dropna(subset=["delta_acc"])
    if not len(p):
        return head + f" The sweep has no rows for the selection's proxy ({proxy})."
    worst = p.loc[p.delta_acc.idxmax()]
    low = min(p.ratio) if len(p) else math.nan
    at_low = p[p.ratio == low]
    under = int((at_low.delta_acc < 1).sum()) if len(at_low) else 0
    return (head + f" On the selection's proxy ({proxy}) the largest drop is {worst.delta_acc:.1f} points "
            f"({worst.layer} at ratio {worst.ratio:g}); at the smallest ratio, {low:g}, {under} of "
            f"{len(at_low)} layers lose under 1 point. The selection converts {len(sel['layers'])} of "
            f"{len(sel['candidates'])} candidate layers (predicted loss {sel['predicted_loss']:.2f} points, budget "
            f"{sel['method']['max_loss']:g}).")


def faithfulness_proxy_vs_real(r: dict, t: pd.DataFrame) -> str:
    f = r["faithfulness"]
    parts = []
    for p in r["faithfulness"]["params_resolved"]["sensitivity"]["proxies"]:
        v, lo, hi = (f.get(f"spearman_{p}{s}") for s in ("", "_ci_low", "_ci_high"))
        if _ok(v):
            parts.append(f"{p} {_ci(v, lo, hi)}")
    rho = "; ".join(parts) or "not computed"
    return (f"Each sampled layer's proxy drop (x) against its drop after {f.get('retrain_epochs', '?')} epoch(s) of "
            f"really retraining the converted model (y), at ratio {f.get('ratio', math.nan):g}, with paired intervals over the "
            f"validation images; colours are ResNet stages. Over {len(t)} layers the Spearman rank correlation "
            f"(bootstrap interval) is {rho}: the proxy is faithful where it ranks layers as retraining does.")


def faithfulness_additivity(r: dict, t: pd.DataFrame) -> str:
    f = r["faithfulness"]
    inter = "; ".join(f"{m} {f[k]:.2f}" for m in ("real", "zero_shot", "finetune")
                      if _ok(f.get(k := f"additivity_{m}_mean_abs_interaction")))
    return (f"Drop of converting two layers together against the sum of their single drops, for "
            f"{f.get('n_pairs', len(t))} layer pair(s) at ratio {f.get('ratio', math.nan):g}; the dashed line is exact additivity, "
            "which the knapsack assumes. Mean |interaction| (pair drop minus the sum, points): "
            f"{inter or 'not computed'}.")


def _point(points: pd.DataFrame, family: str, main: bool = True):
    g = points[(points.family == family) & (points.main == main)]
    return g.iloc[0] if len(g) else None


def basis_fronts(r: dict, points: pd.DataFrame) -> str:
    s = _schedule(points)
    head = (f"Test accuracy (%) against parameters (left) and MACs (right), in millions, for the {s} runs: one "
            "line per method through its budgets (filled: the main budget; hollow: the front's other budgets), the "
            "mean over seeds with a t-interval; the grey band is the baseline's interval.")
    base, sel = _point(points, "baseline"), _point(points, f"selected@{s}")
    if base is None or sel is None:
        return head
    text = (f" The selection keeps {sel.params / base.params:.0%} of the parameters and {sel.macs / base.macs:.0%} "
            f"of the MACs at {_ci(sel.acc, sel.acc_low, sel.acc_high, unit=' %')} (baseline "
            f"{_ci(base.acc, base.acc_low, base.acc_high, unit=' %')})")
    rivals = [f"{RunName.parse(f).base} {p.acc:.2f} % at {p.params / base.params:.0%} / {p.macs / base.macs:.0%}"
              for f in dict.fromkeys(points.family) if f not in ("baseline", f"selected@{s}")
              and (p := _point(points, f)) is not None]
    return head + text + ("; at their main budget " + ", ".join(rivals) + " (parameters / MACs kept)."
                          if rivals else ".")


def basis_schedules(r: dict, rows: pd.DataFrame) -> str:
    head = ("Each run's test accuracy minus the baseline's (points), paired over the seeds both have, with the "
            "t-interval, grouped by schedule (a run that is another run's model is one line with both names); the "
            "dotted line is the non-inferiority margin the claims use.")
    if not len(rows):
        return head + " No run to compare."
    best, worst = rows.loc[rows["mean"].idxmax()], rows.loc[rows["mean"].idxmin()]
    finite = rows[np.isfinite(rows.low.astype(float)) & np.isfinite(rows.high.astype(float))]
    within = (f"{int((finite.low > -MARGIN).sum())} of the {len(finite)} intervals lie wholly above the margin"
              if len(finite) else "no run has an interval (one seed)")
    return (head + f" Highest: {best.label} ({_ci(best['mean'], best.low, best.high)}); lowest: {worst.label} "
            f"({_ci(worst['mean'], worst.low, worst.high)}); {within}.")


def basis_curves(r: dict, panels: dict) -> str:
    h = r["histories"]
    head = ("Validation accuracy (%) per epoch, the mean over seeds with a t-band, one panel per method: dense "
            "(dotted black), from scratch, after the switch and the late conversion; dashed lines mark the epochs "
            "after which each schedule trains basis layers.")
    ends = []
    for v, runs in panels.items():
        for run in runs[1:]:
            g = h[h.variant == run]
            if len(g):
                last = g[g.epoch == g.epoch.max()].val_acc.mean()
                ends.append(f"{run} {100 * last:.2f} %")
    base = h[h.variant == "baseline"]
    b = f"; the baseline ends at {100 * base[base.epoch == base.epoch.max()].val_acc.mean():.2f} %" if len(base) else ""
    return head + (" Final validation accuracy (seed mean): " + ", ".join(ends) + b + "." if ends else "")


def benchmark_accuracy_vs_time(r: dict, points: pd.DataFrame) -> str:
    s = _schedule(points)
    b = r["benchmark"]
    head = (f"Test accuracy (%) against each {s} model's measured train-step time (left) and inference time "
            f"(right) as a fraction of the dense model's, {b['precision']}, timed in interleaved rounds (bars: the "
            "rounds' interval; a random subset is its first seed's draw); lines join each method's budgets.")
    sel = _point(points, f"selected@{s}")
    if sel is None or not _ok(sel.get("train_time")):
        return head + " The selection was not timed."
    converted = points[points.family != "baseline"]
    fastest = converted.loc[converted.train_time.idxmin()] if converted.train_time.notna().any() else None
    return (head + f" The selection's train step takes {_ci(sel.train_time, sel.train_time_low, sel.train_time_high)}"
            f" of the dense step's time, its inference {_ci(sel.inference_time, sel.inference_time_low, sel.inference_time_high)}"
            + (f"; the fastest model here, {fastest.run}, {fastest.train_time:.2f} at {fastest.acc:.2f} %."
               if fastest is not None else "."))


def benchmark_speedup_vs_ratio(r: dict, sp: pd.DataFrame) -> str:
    prec = r["benchmark"]["precision"]
    bs = r["benchmark"]["params_resolved"]["benchmark"]["batch_sizes"][0]
    head = ("Each layer's measured forward+backward speedup of the reduced basis form over its dense conv (solid, "
            "bars: the timings' interquartile ranges) and the theoretical speedup, the MAC ratio (dashed, x marks), "
            f"against the ratio, in {prec} at batch {bs}, one panel per ResNet stage; layers that are not candidates "
            "of this profile's search (the stem and the 1x1 shortcuts always) are hollow.")
    if not len(sp):
        return head + " No layer was timed."
    g = sp[(sp.precision == prec) & (sp.batch_size == bs)]
    cand = set(r["selection"]["candidates"])
    c = g[g.layer.isin(cand)]
    faster = int((c.measured_speedup > 1).sum())
    text = f" {faster} of {len(c)} candidate (layer, ratio) points run faster than dense"
    above = g[g.speedup_low > g.theoretical_speedup]
    if len(above):
        ref = float(np.nanmedian(c.dense_ns_per_mac)) if "dense_ns_per_mac" in c and len(c) else math.nan
        why = []
        for layer, lg in above.groupby("layer", sort=False):
            per = lg.dense_ns_per_mac.iloc[0] if "dense_ns_per_mac" in lg else math.nan
            slow = (f": its dense conv takes {per / ref:.1f}x the candidates' median time per MAC, so the basis "
                    "form gains more than its MAC saving" if _ok(per) and _ok(ref) and ref > 0 else "")
            why.append(f"{layer} (measured {lg.measured_speedup.max():.2f}x where theory says "
                       f"{lg.loc[lg.measured_speedup.idxmax(), 'theoretical_speedup']:.2f}x{slow})")
        text += "; above theory beyond its IQR: " + "; ".join(why)
    return head + text + "."


def benchmark_peers(r: dict, t: pd.DataFrame) -> str:
    rows = [p for p in (r["benchmark"].get("peers") or []) if p["pass"] == "fwd+bwd"]
    head = ("Measured forward+backward speedup against each form's own theoretical speedup (its executed MACs) for "
            "the basis layer and its peers at the same parameter budget, every distinct 3x3 shape, one panel per "
            "precision; bars: the form's timing IQR, dashed: theory.")
    if not rows:
        return head + " No peer timings in this run."
    best = max(rows, key=lambda p: p["median_share_of_theory"])
    return head + (" Median share of theory: " + ", ".join(
        f"{p['form']} ({p['precision']}) {100 * p['median_share_of_theory']:.0f} %" for p in rows)
        + f"; nearest theory: {best['form']} in {best['precision']}.")
