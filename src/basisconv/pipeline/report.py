"""Paragraphs of the report on what this run measured, topic by topic (arXiv 2408.06024's experiments).

Each function turns result files (already read into dicts and DataFrames) into one Markdown paragraph; every number
in it comes from those results. The paragraphs describe measurements; what they decide about the paper's claims is
``basisconv.pipeline.claims`` (the verdict table and its sentences), so no paragraph here states a claim as fact.
``claims`` is the whole list of topic paragraphs and ``targets_markdown`` the
table of performance targets: the report stage (``reports/README.md``) and ``basisconv.pipeline.publish`` (the README's
results block) both render these, so the prose lives here and nowhere else.
"""
from __future__ import annotations

import math

import pandas as pd

from basisconv.pipeline import tables, variants
from basisconv.pipeline.claims import CHEAP_FRACTION


def speedup_point(m: dict) -> float:
    """A timed model's speedup: the geometric mean of its rounds' ratios (the centre of its interval)."""
    return m.get("speedup_geomean", m["measured_speedup"])



def _kind(run: str) -> str:
    return variants.variant_of(run).kind


def _is_comparison(run: str) -> bool:
    """Is ``run`` a variant the selection is compared with: all layers or a matched comparison subset?"""
    v = variants.variant_of(run)
    return v.kind == "comparison" or v.name == "all_layers"


def fmt_acc(mt: pd.DataFrame, v: str) -> str:
    if v not in mt.index:
        return "not trained in this run"
    std = mt.loc[v, "test_acc_std"]
    return f"{mt.loc[v, 'test_acc_mean']:.2f}" + ("" if pd.isna(std) else f" ± {std:.2f}") + " %"


def selection_verdict(main_table: pd.DataFrame, schedule: str = "switch", same: dict[str, str] | None = None) -> str:
    """Does the sensitivity selection beat all-layers and the matched random / largest-first / spectral subsets?

    Compares mean test accuracy of ``selected@<schedule>`` with the others trained with the same schedule, and says
    how many parameters each keeps (the comparison subsets are matched to the selection's savings). ``same``: the runs
    that train another run's model (``claims.same_models``): each such model is counted once, and said so.
    """
    mt = main_table.set_index("variant")
    same = same or {}
    sel = f"selected@{schedule}"
    if sel not in mt.index:
        return (f"No `{sel}` run (the selection was empty or the variant was not trained), so the selection "
                "cannot be compared with the other subsets.")
    a = mt.loc[sel, "test_acc_mean"]
    others = [v for v in mt.index if v.endswith(f"@{schedule}") and _is_comparison(v) and not variants.point_of(v)]
    parts, wins, notes = [], {}, []
    for v in others:
        d, m = a - mt.loc[v, "test_acc_mean"], same.get(v, v)
        parts.append(f"`{v}` {fmt_acc(mt, v)} with {int(mt.loc[v, 'params']):,} parameters "
                     f"({'+' if d >= 0 else ''}{d:.2f} points for the selection)")
        if m == same.get(sel, sel):
            notes.append(f"`{v}` is the selection's own model here (the same layers at the same ratios), so it is "
                         "not counted.")
            continue
        wins.setdefault(m, d > 0)  # one model, one count (its first name's), whatever names it was trained under
        if m != v and m in others:
            notes.append(f"`{v}` is the same model as `{m}` here (the same layers at the same ratios), so the two "
                         "count once.")
    seeds = int(mt.loc[sel, "seeds"])
    what = "distinct models" if notes else "comparison variants"
    verdict = (f"The selection has the higher mean against {sum(wins.values())} of {len(wins)} {what} (which "
               "differences the seeds decide: the verdict table)" if others else "There are no comparison variants")
    return (f"`{sel}`: {fmt_acc(mt, sel)} with {int(mt.loc[sel, 'params']):,} parameters; " + "; ".join(parts)
            + f". {verdict} on mean test accuracy ({seeds} seed{'s' if seeds != 1 else ''}"
            + ("; one seed cannot separate differences smaller than the seed-to-seed spread" if seeds == 1 else "")
            + ")." + "".join(f" {n}" for n in notes))


def search_cost(sel: dict, baseline: dict) -> str:
    """The sweep's wall time against one baseline training (the paper's 'fast' claim; target: at most
    ``claims.CHEAP_FRACTION`` of it)."""
    epochs_eq = sel["search_seconds"] / baseline["epoch_time_mean"]
    frac = sel["search_cost_fraction"]
    n_opts = len(sel["candidates"]) * len(sel["params_resolved"]["sensitivity"]["ratios"])
    brute = n_opts * baseline["train_time"]
    return (f"The sweep ({len(sel['candidates'])} candidate layers) took {sel['search_seconds']:.0f} s = "
            f"{100 * frac:.1f} % of one baseline training ({baseline['train_time']:.0f} s, {baseline['epochs']} epochs), "
            f"i.e. the time of {epochs_eq:.1f} baseline epochs; target <= {100 * CHEAP_FRACTION:g} %: "
            f"{'met' if frac <= CHEAP_FRACTION else 'not met'}. Training each of the {n_opts} (layer, ratio) options once "
            f"instead would take about {n_opts} x {baseline['train_time']:.0f} s; the sweep is "
            f"{100 * sel['search_seconds'] / brute:.1f} % of that. The sweep's cost does not grow with the training "
            "schedule (not measured here: an expectation), so its share of one training should fall inversely with the "
            "number of training epochs.")


def _undefined(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def spearman_text(metrics: dict, p: str) -> str:
    """``rho`` of proxy ``p`` with its bootstrap interval and what the interval allows one to say."""
    v, lo, hi = (metrics.get(f"spearman_{p}{s}") for s in ("", "_ci_low", "_ci_high"))
    if _undefined(v):
        return f"undefined ({p})"
    if _undefined(lo) or _undefined(hi):
        return f"{v:.2f} ({p}; no bootstrap interval)"
    conf = int(100 * metrics.get("confidence", 0.95))
    reading = ("above 0: the proxy's ranking of layers agrees with retraining's more than by chance" if lo > 0 else
               "below 0: the proxy's ranking of layers runs against retraining's" if hi < 0 else
               "it includes 0, so these layers cannot show that the proxy ranks layers like retraining")
    return f"{v:.2f} ({p}; {conf} % bootstrap CI [{lo:.2f}, {hi:.2f}], {reading})"


# what each proxy of ``basisconv.core.sensitivity.PROXIES`` does to the converted model before it is evaluated
PROXY_WORDS = {"zero_shot": "BatchNorm statistics recalibrated, no gradient step",
               "finetune": "the same, then a few SGD steps on the converted layer alone",
               "finetune_all": "the same steps on every parameter of the network"}


def faithfulness(metrics: dict, proxies) -> str:
    """Spearman correlation of proxy and real drops with bootstrap intervals, and additivity of pairs
    (``results/metrics/faithfulness.json``); each proxy named with what it does (``PROXY_WORDS``)."""
    said = "; ".join(f"`{p}`: {PROXY_WORDS[p]}" for p in proxies if p in PROXY_WORDS)
    def inter(m):
        v = metrics.get(f"additivity_{m}_mean_abs_interaction")
        return "n/a" if v is None else f"{v:.2f}"

    return (f"On {metrics['n_layers']} layers at ratio {metrics['ratio']}, each retrained alone for "
            f"{tables.plural(metrics['retrain_epochs'], 'epoch') if 'retrain_epochs' in metrics else '? epochs'} against an unconverted control, the Spearman rank "
            "correlation between proxy drop and real drop is " + "; ".join(spearman_text(metrics, p) for p in proxies)
            + f". Additivity over {metrics['n_pairs']} layer pairs: the mean |drop(a, b) - drop(a) - drop(b)| is "
            + ", ".join(f"{inter(m)} points ({m})" for m in ["real", *proxies])
            + f". The checks took {metrics['seconds']:.0f} s."
            + (f" The proxies (each scores a layer by the accuracy drop of the model with that layer converted): "
               f"{said}." if said else ""))


def _speed(bench: dict, key: str) -> str:
    """A model's measured speedup with its 95 % interval over timing rounds (the geometric mean, the interval's
    centre, where the results have it) against its theoretical one."""
    m = bench.get("models", {}).get(key)
    if not m:
        return "n/a"
    lo, hi = m.get("speedup_low", math.nan), m.get("speedup_high", math.nan)
    ci = "" if math.isnan(lo) or math.isnan(hi) else f" [{lo:.2f}x, {hi:.2f}x]"
    return f"{speedup_point(m):.2f}x{ci} measured vs {m['theoretical_speedup']:.2f}x theoretical"


def peers_text(bench: dict) -> str:
    """The basis layer against its peers at the same parameter budget (``benchmark`` summary's ``peers``)."""
    rows = bench.get("peers") or []
    if not rows:
        return "No peer timings in this run (`benchmark.peers` is empty)."
    parts = []
    for prec in dict.fromkeys(r["precision"] for r in rows):
        sub = [r for r in rows if r["precision"] == prec and r["pass"] == "fwd+bwd"]
        parts.append(f"{prec} fwd+bwd: " + ", ".join(
            f"{r['form']} {r['median_measured_speedup']:.2f}x ({100 * r['median_share_of_theory']:.0f} % of its "
            f"theory; faster than dense by median time on {r['faster_than_dense']}/{r['shapes_x_ratios']}, no "
            "interval)" for r in sub))
    return ("At the basis layer's parameter budget on every distinct 3x3 shape, median speedup over the dense conv "
            "(share of each form's own MAC ratio): " + "; ".join(parts) + ". `tucker` is tensorly-torch's "
            "FactorizedConv (factorized implementation), `full_coeff` a k x k conv to a rank then 1 x 1 (Composer's "
            "Factorize). Per shape: [tables/benchmark_peers.md](tables/benchmark_peers.md).")


def onnx_text(bench: dict) -> str:
    rows = bench.get("onnx") or []
    if not rows:
        return "No ONNX export in this run (`benchmark.onnx` is false)."
    return ("Exported with `torch.onnx.export` and run in onnxruntime " + rows[0]["onnxruntime"] + " (CPU, "
            f"{rows[0]['threads']} threads, batch {rows[0]['batch_size']}): " + "; ".join(
                f"{r['model']} max |diff| {r['max_abs_diff']:.1e}, {r['onnxruntime_ms']:.1f} ms in onnxruntime vs "
                f"{r['pytorch_ms']:.1f} ms in PyTorch" for r in rows) + ".")


def claims(r: dict) -> list[tuple[str, str]]:
    """``(claim, paragraph)`` for every claim of the paper this run can speak to.

    ``r``: ``{"baseline", "selection", "benchmark", "faithfulness"}`` (the stages' JSON files) and
    ``"main_table"`` (DataFrame), as ``basisconv.pipeline.render.load`` reads them.
    """
    mt = r["main_table"].set_index("variant")
    bench, sel = r["benchmark"], r["selection"]

    def acc(v):
        return fmt_acc(mt, v)
    base_params = f"{int(mt.loc['baseline', 'params']):,}" if "baseline" in mt.index else "n/a"
    return [
        ("Model size.",
         "The paper: only `rank` filters and a reduced coefficient matrix are trained. Measured: baseline "
         f"{base_params} parameters; " + ", ".join(f"{v} {int(x.params):,} ({x.compression:.2f}x)"
                                                   for v, x in mt.iterrows() if v != "baseline") + "."),
        ("Speed of the forward and backward passes.",
         "Measured whole-model training step, speedup over the baseline with its 95 % interval over timing rounds "
         f"({bench.get('precision', 'fp32')}, the precision training runs in; fp32 and per layer in the tables): "
         "all layers "
         f"{_speed(bench, 'all_layers.train_step')}, as the switch schedule trains them (QR basis: "
         "column-pivoted QR picks the basis among the layer's own trained filters) "
         f"{_speed(bench, 'all_layers_switched.train_step')}; selected {_speed(bench, 'selected.train_step')}; selected as "
         f"the switch schedule trains it (QR basis) {_speed(bench, 'selected_switched.train_step')}, with execution "
         f"forms tuned by measurement {_speed(bench, 'selected_tuned.train_step')}; inference: all layers "
         f"{_speed(bench, 'all_layers.inference')} (switched: {_speed(bench, 'all_layers_switched.inference')}), "
         f"selected {_speed(bench, 'selected.inference')}, tuned (folded "
         f"where faster) {_speed(bench, 'selected_tuned_inference.inference')}. Per-layer results in "
         "[tables/benchmark_layers.md](tables/benchmark_layers.md)."),
        ("Accuracy of every variant.",
         f"Measured test accuracy (mean ± sample std over seeds): baseline {acc('baseline')}; all layers (switch) "
         f"{acc('all_layers@switch')}, (scratch) {acc('all_layers@scratch')}; selected (switch) {acc('selected@switch')}, (scratch) "
         f"{acc('selected@scratch')}; random layer subsets saving about as many parameters (one draw each) "
         f"{', '.join(f'`{v}` ' + acc(v) for v in mt.index if variants.variant_of(v).name == 'random' and not variants.point_of(v)) or 'not trained in this run'}; largest-first (the layers with the most parameters converted first until the saving matches) "
         f"{acc('largest@switch')}; spectral (singular-value energy threshold) {acc('spectral@switch')}."),
        ("The selection against the other subsets.",
         selection_verdict(r["main_table"], same=r.get("same_models"))),
        ("Cost of the search.", search_cost(sel, r["baseline"]) + f" Selected {len(sel['layers'])} layers with "
         f"predicted loss {sel['predicted_loss']:.2f} points."),
        ("Faithfulness of the fast proxy.",
         faithfulness(r["faithfulness"], r["faithfulness"]["params_resolved"]["sensitivity"]["proxies"])),
        ("Measured speed against the MAC count.", limits_text(bench)),
        ("Factorized peers at equal parameters.", peers_text(bench)),
        ("Deployment: ONNX export of the basis and folded forms.", onnx_text(bench)),
    ]


def selection_line(sel: dict) -> str:
    return (f"Sensitivity selection: {len(sel['layers'])} of {len(sel['candidates'])} layers (predicted loss "
            f"{sel['predicted_loss']:.2f} points, {sel['params_saved']:,} parameters saved): "
            + (", ".join(f"`{n}`@{sel['ratios'][n]}" for n in sel["layers"]) or "none") + ".")


def run_names_text(sel: dict, span: dict, trained) -> str:
    """How to read the main table's run names and time columns. ``span``: the basis stage's resolved params
    (``{"train": {"epochs"}, "basis": {"switch_epoch", "ratio", "front_budgets", "front_ratios"}}``); ``sel``: the
    selection (its ``params_resolved`` holds the main point's ``max_loss``); ``trained``: the run names of the table,
    so only the schedules and front points it has are explained."""
    E, B = span["train"]["epochs"], span["basis"]
    S = B["switch_epoch"]
    trained = list(trained)
    has = {s: any(r.endswith(f"@{s}") for r in trained) for s in ("switch", "scratch")}
    parts = []
    if has["switch"]:
        parts.append(f"`<variant>@switch` continues its seed's dense baseline from the snapshot at epoch {S} and "
                     f"trains the basis model for the remaining {E - S} of {E} epochs.")
    if has["scratch"]:
        parts.append(f"`<variant>@scratch` trains the basis model from its initialisation for all {E} epochs.")
    main_loss = sel.get("params_resolved", {}).get("sensitivity", {}).get("max_loss")
    budgets = [f"`~{p}`" for p in map(variants.budget_point, B.get("front_budgets", []))
               if any(variants.point_of(r) == p for r in trained)]
    if budgets:
        parts.append(", ".join(budgets) + ": the selection at that loss budget in points (the main point's budget: "
                     + ("n/a" if main_loss is None else f"{main_loss:g}") + "), and the comparison subsets matched "
                     "to its own parameter saving.")
    ratios = [f"`~{p}`" for p in map(variants.ratio_point, B.get("front_ratios", []))
              if any(variants.point_of(r) == p for r in trained)]
    if ratios:
        parts.append(", ".join(ratios) + ": basis layers on every candidate layer at that ratio (the main point's "
                     f"ratio: {B['ratio']:g}).")
    if has["switch"]:
        parts.append(time_columns_text(S))
    return " ".join(["Run names:", *parts]) if parts else ""


# the main table's note: what its columns are
MAIN_TABLE_NOTE = ("Test accuracy in %, mean and std over seeds; differences in points; params: the model's parameters; "
                   "compression: the baseline's parameters over the variant's; macs: multiply-accumulates of one "
                   "forward pass of one 32x32 image; the per-run rows: [tables/runs.csv](tables/runs.csv).")


def same_models_text(same: dict[str, str], runs: pd.DataFrame) -> str:
    """Which run names of the per-run table ``runs`` (``variant``, ``seed``, ``test_acc``) train one model (``same``:
    ``claims.same_models``), and whether their per-seed test accuracies agree; "" when none do."""
    acc = {v: dict(zip(g.seed, g.test_acc)) for v, g in runs.groupby("variant")}
    parts = []
    for v, m in same.items():
        if v not in acc or m not in acc:
            continue
        common = sorted(set(acc[v]) & set(acc[m]))
        gap = max((abs(acc[v][s] - acc[m][s]) for s in common), default=0.0)
        seeds = tables.plural(len(common), "seed")
        agree = (f"equal test accuracy on each of {seeds}" if gap == 0 else
                 f"test accuracies up to {100 * gap:.2f} points apart over {seeds} (training is not bit-reproducible "
                 "here)")
        parts.append(f"`{v}` is `{m}` ({agree})")
    if not parts:
        return ""
    return ("One model under two run names: " + "; ".join(parts) + ". The same layers at the same ratios with the "
            "same schedule: one configuration, trained under each name, so its rows count as one result.")


def time_columns_text(switch_epoch: int) -> str:
    """What the main table's time columns hold, and that they decide no claim."""
    return (f"Epoch (s) and training (s) of a switch run include the {tables.plural(switch_epoch, 'dense epoch')} "
            "before the switch, the baseline's. The time columns are measurements, not evidence: trainings run "
            "minutes to hours apart, and the machine's speed drifts between them, so they decide no claim; the "
            "verdict table's time claims come from the benchmark's interleaved timings.")


def targets_note(tg: dict) -> str:
    """How the model rows of ``targets_markdown`` are measured: the estimator of the measured speedup (the ratio of
    median times, not the verdict table's geometric mean over rounds), against each model's own MAC ratio."""
    if not any(n.endswith("_train_step_fraction_of_theory") for n in tg):
        return ""
    return ("A model's train-step share of theory divides its measured speedup, here the baseline's median step "
            "time over the model's (medians over all timing rounds), by its theoretical speedup (its MAC ratio to the "
            "baseline); the verdict table's speed rows take the geometric mean of the rounds' ratios instead (the "
            "centre of their interval), so the two speedups can differ.")


def targets_markdown(tg: dict) -> str:
    """The performance targets recorded by the benchmark stage (one precision), as a Markdown table."""
    rows = []
    for name, t in tg.items():
        if name == "precision":
            continue
        if name == "fold_at_inference":
            rows.append({"target": "basis slower than dense in fwd (fold at inference)", "goal": "-",
                         "measured": ", ".join(f"{x['layer']}@{x['ratio']}" for x in t) or "none", "met": "-"})
            continue
        value = t.get("value", t.get("median"))
        measured = f"{value:.3g}" if isinstance(value, (int, float)) else "n/a"
        if "n_layers" in t:
            measured = f"{t['n_met']}/{t['n_layers']} layers (median {measured}, min " + (
                f"{t['min']:.3g})" if t["min"] is not None else "n/a)")
            if "n_kernel_limited" in t:
                n_miss = t["n_layers"] - t["n_met"]
                measured += f"; of the {n_miss} misses, {t['n_kernel_limited']} kernel-limited"
        if t.get("layer_sum_fraction_of_theory") is not None:
            measured += f" (its layers alone predict {t['layer_sum_fraction_of_theory']:.3g})"
        rows.append({"target": name, "goal": t["target"], "measured": measured, "met": "yes" if t["met"] else "no"})
    return pd.DataFrame(rows).to_markdown(index=False)


def misses_markdown(tg: dict) -> str:
    """Every layer that misses the per-layer target, with the measurement of its limiting step."""
    misses = tg.get("layers_fraction_of_theory", {}).get("misses", [])
    if not misses:
        return "No layer misses the per-layer target."

    def ms(v):  # 0 where 0 is meant: -0.004 ms prints 0.00, not -0.00
        return "n/a" if v is None else ("0.00" if round(v, 2) == 0 else f"{v:+.2f}")
    return pd.DataFrame([{
        "layer": m["layer"], "ratio": m["ratio"], "share of theory": f"{m['fraction']:.2f}",
        "kernel floor": "n/a" if m["floor_fraction"] is None else f"{m['floor_fraction']:.2f}",
        "limit": m["limit"], "kxk conv excess ms": ms(m["excess_ms"].get("kxk conv")),
        "1x1 mix excess ms": ms(m["excess_ms"].get("1x1 mix")), "form overhead ms": ms(m["overhead_ms"])}
        for m in misses]).to_markdown(index=False, disable_numparse=True)


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _share(t: dict | None) -> str:
    return "n/a" if t is None or t.get("value") is None else f"{t['value']:.2f}"


def targets_by_precision(bench: dict) -> dict:
    """``{precision: targets}`` of a benchmark summary (a summary from before timings had a precision: fp32)."""
    return bench.get("targets_by_precision") or ({"fp32": bench["targets"]} if "targets" in bench else {})


def limits_text(bench: dict) -> str:
    """Where the measured speed falls short of the MAC count, and which step limits it (``bench.layer_misses``)."""
    by = targets_by_precision(bench)
    if not by:
        return "No targets in this run."
    trained = bench.get("precision", next(iter(by)))
    parts = []
    for prec, tg in by.items():
        lt = tg["layers_fraction_of_theory"]
        misses = lt.get("misses", [])
        kernel = [m for m in misses if m["floor_fraction"] is not None and m["limit"] != "form overhead"]
        by_limit = {k: sum(m["limit"] == k for m in kernel) for k in ("kxk conv", "1x1 mix")}
        floors = sorted(m["floor_fraction"] for m in kernel)
        n_form = sum(m["limit"] == "form overhead" for m in misses)
        models = ", ".join(
            f"{name.removesuffix('_train_step_fraction_of_theory').replace('_', '-')} {_share(t)}"
            + ("" if t.get("layer_sum_fraction_of_theory") is None
               else f" (its layers alone predict {t['layer_sum_fraction_of_theory']:.2f})")
            for name, t in tg.items() if name.endswith("_train_step_fraction_of_theory"))
        parts.append(
            f"**{prec}**{' (the precision training runs in)' if prec == trained else ''}: {lt['n_met']} of "
            f"{lt['n_layers']} layer cases with theoretical >= 1.5x reach 85 % of it in fwd+bwd (median "
            + ("n/a" if lt["median"] is None else f"{lt['median']:.2f}") + f"). Of the {len(misses)} "
            f"miss{'es' if len(misses) != 1 else ''}, {len(kernel)} {_are(len(kernel))} kernel-limited: even the two "
            "kernels every execution form runs, timed alone, stay "
            "below 85 % (kernel floor " + (f"{floors[0]:.2f}-{floors[-1]:.2f}" if floors else "n/a") + "), "
            f"limited by the rank-r k x k conv in {by_limit['kxk conv']} and by the 1 x 1 mix in "
            f"{by_limit['1x1 mix']}; {n_form} {_are(n_form)} form overhead "
            f"(the form costs more than its two kernels). Train step as a share of theory: {models}.")
    return (" ".join(parts) + " The kernel floor is `t_dense / (t_kxk + t_mix)` over the MAC ratio; a kernel's "
            "excess is its time beyond its MAC share of the dense conv's time. Per layer: the misses table of "
            "the report.")
