"""Sentences of the report that compare this run with the claims of arXiv 2408.06024.

Each function turns result files (already read into dicts and DataFrames) into one Markdown paragraph; every number
in it comes from those results. Shared by the report notebook (``reports/README.md``) and ``basisconv.publish``
(the README's results block), so both say the same thing.
"""
from __future__ import annotations

import math

import pandas as pd


def fmt_acc(mt: pd.DataFrame, v: str) -> str:
    if v not in mt.index:
        return "n/a"
    std = mt.loc[v, "test_acc_std"]
    return f"{mt.loc[v, 'test_acc_mean']:.2f}" + ("" if pd.isna(std) else f" ± {std:.2f}") + " %"


def selection_verdict(main_table: pd.DataFrame, schedule: str = "switch") -> str:
    """Does the sensitivity selection beat all-layers and the matched random / largest-first subsets?

    Compares mean test accuracy of ``selected@<schedule>`` with the others trained with the same schedule, and says
    how many parameters each keeps (the comparison subsets are matched to the selection's savings).
    """
    mt = main_table.set_index("variant")
    sel = f"selected@{schedule}"
    if sel not in mt.index:
        return (f"No `{sel}` run (the selection was empty or the variant was not trained), so the selection "
                "cannot be compared with the other subsets.")
    a = mt.loc[sel, "test_acc_mean"]
    others = [v for v in mt.index if v != sel and v.endswith(f"@{schedule}")
              and v.startswith(("all_layers", "random", "largest"))]
    parts, wins = [], 0
    for v in others:
        d = a - mt.loc[v, "test_acc_mean"]
        wins += d > 0
        parts.append(f"`{v}` {fmt_acc(mt, v)} with {int(mt.loc[v, 'params']):,} parameters "
                     f"({'+' if d >= 0 else ''}{d:.2f} points for the selection)")
    seeds = int(mt.loc[sel, "seeds"])
    verdict = (f"The selection beats {wins} of {len(others)} comparison variants" if others
               else "There are no comparison variants")
    return (f"`{sel}`: {fmt_acc(mt, sel)} with {int(mt.loc[sel, 'params']):,} parameters; " + "; ".join(parts)
            + f". {verdict} on mean test accuracy ({seeds} seed{'s' if seeds != 1 else ''}"
            + ("; one seed cannot separate differences smaller than the seed-to-seed spread" if seeds == 1 else "")
            + ").")


def search_cost(sel: dict, baseline: dict) -> str:
    """The sweep's wall time against one baseline training (the paper's 'fast' claim; target <= 10 %)."""
    epochs_eq = sel["search_seconds"] / baseline["epoch_time_mean"]
    frac = sel["search_cost_fraction"]
    n_opts = len(sel["candidates"]) * len(sel["params_resolved"]["sensitivity"]["ratios"])
    brute = n_opts * baseline["train_time"]
    return (f"The sweep ({len(sel['candidates'])} candidate layers) took {sel['search_seconds']:.0f} s = "
            f"{100 * frac:.0f} % of one baseline training ({baseline['train_time']:.0f} s, {baseline['epochs']} epochs), "
            f"i.e. the time of {epochs_eq:.1f} baseline epochs; target <= 10 %: "
            f"{'met' if frac <= 0.10 else 'not met'}. Training each of the {n_opts} (layer, ratio) options once "
            f"instead would take about {n_opts} x {baseline['train_time']:.0f} s; the sweep is "
            f"{100 * sel['search_seconds'] / brute:.1f} % of that. The sweep's cost does not grow with the training "
            "schedule, so its share of one training falls in proportion to the number of training epochs.")


def faithfulness(metrics: dict, proxies) -> str:
    """Spearman correlation of proxy and real drops, and additivity of pairs (``results/metrics/faithfulness.json``)."""
    def rho(p):
        v = metrics.get(f"spearman_{p}")
        return "undefined" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"

    def inter(m):
        v = metrics.get(f"additivity_{m}_mean_abs_interaction")
        return "n/a" if v is None else f"{v:.2f}"

    return (f"On {metrics['n_layers']} layers at ratio {metrics['ratio']}, each retrained alone for "
            f"{metrics.get('retrain_epochs', '?')} epoch(s) against an unconverted control, the Spearman rank "
            "correlation between proxy drop and real drop is " + ", ".join(f"{rho(p)} ({p})" for p in proxies)
            + f". Additivity over {metrics['n_pairs']} layer pairs: the mean |drop(a, b) - drop(a) - drop(b)| is "
            + ", ".join(f"{inter(m)} points ({m})" for m in ["real", *proxies])
            + f". The checks took {metrics['seconds']:.0f} s.")
