"""The generated discussion of each stage's numbers: the notebooks' "What this run shows" (arXiv 2408.06024).

One function per stage turns that stage's results into a few sentences of Markdown. Every number comes from the
arguments (the only constants are the paper's CIFAR-10 split sizes, named below). A claim of the paper is stated as
the paper's and decided only by ``basisconv.pipeline.claims``: its ``Decided`` objects and ``claims.sentence``
choose the verdict words ("holds here", "is not decided here", "does not hold here"); nothing here words a verdict
otherwise. The rest describes measurements. A missing piece (no selection, one seed, an empty frame, a NaN interval)
gets a sentence saying what is missing instead of an error.
"""
from __future__ import annotations

import math

import pandas as pd

from basisconv.pipeline import claims
from basisconv.pipeline import tables
from basisconv.pipeline.variants import run_name
from basisconv.pipeline import report as report_text

# CIFAR-10 as the paper trains and tests on it (arXiv 2408.06024, Experiments): the paper's numbers, not this run's
PAPER_TRAIN, PAPER_TEST = 50_000, 10_000


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _f(x, d: int = 2, sign: bool = False) -> str:
    """``x`` with ``d`` fixed decimals: never scientific notation, never "-0.00"; "n/a" for None/NaN."""
    if _missing(x):
        return "n/a"
    s = f"{x:+.{d}f}" if sign else f"{x:.{d}f}"
    return f"{0:.{d}f}" if s.lstrip("+-") == f"{0:.{d}f}" else s


def _pct(frac) -> str:
    """A fraction in [0, 1] as a percentage with 2 decimals."""
    return "n/a" if _missing(frac) else f"{_f(100 * frac)} %"


def _n(count: int, word: str, many: str | None = None) -> str:
    """``1 seed``, ``3 seeds``, ``10,000 images`` (``tables.plural``)."""
    return tables.plural(int(count), word, many)


def _verb(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _secs(s) -> str:
    if _missing(s):
        return "an unrecorded time"
    return f"{s:,.0f} s" + (f" ({s / 60:,.1f} min)" if s >= 120 else "")


def _share(frac: float) -> str:
    """A cost against a reference: "20.00 % of" below twice the reference, "53.0 times" above."""
    return f"{_pct(frac)} of" if frac < 2 else f"{frac:,.1f} times"


def _bullets(decided: list) -> str:
    """The claims' own sentences (``claims.sentence``: the paper's claim, then this run's verdict and evidence)."""
    return "\n".join(f"- {d.row()['sentence']}" for d in decided)


def _join(parts: list[str]) -> str:
    return " ".join(p for p in parts if p)


def data(meta: dict, table: pd.DataFrame) -> str:
    """The data stage: this run's image counts against the paper's 50,000 / 10,000, the validation split's per-class
    balance, and the data label. ``table``: per-class counts (columns train/val/test) with a ``total`` row."""
    label = meta.get("label") or "unlabelled data"
    per_class = table.drop(index="total", errors="ignore")
    sizes = meta.get("sizes") or ({s: table.loc["total", s] for s in ("train", "val", "test") if s in table}
                                  if "total" in table.index else {})
    if not {"train", "val", "test"} <= set(sizes):
        return f"This run's data is **{label}**, but its split sizes were not recorded, so they cannot be compared " \
               "with the paper's."
    n_tr, n_val, n_te = (int(sizes[s]) for s in ("train", "val", "test"))
    src = f" (source `{meta['source']}`" + (f", md5 `{meta['md5']}`" if meta.get("md5") else "") + ")" \
        if meta.get("source") else ""
    out = [f"This run uses **{label}**{src}: {_n(n_tr, 'training image')}, {_n(n_val, 'validation image')} and "
           f"{_n(n_te, 'test image')}."]
    if meta.get("source") == "synthetic":
        out.append("These are synthetic stand-in images, not CIFAR-10: no accuracy of this run can be compared with "
                   "the paper's.")
    pool = n_tr + n_val
    if pool == PAPER_TRAIN:
        out.append(f"Training and validation images together are the paper's {PAPER_TRAIN:,} CIFAR-10 training "
                   f"images; the validation split is carved from them, so the models train on {n_tr:,} of them "
                   f"({_pct(n_tr / PAPER_TRAIN)}).")
    else:
        out.append(f"The paper trains on CIFAR-10's {PAPER_TRAIN:,} training images; here training and validation "
                   f"together have {pool:,} ({_pct(pool / PAPER_TRAIN)} of that), so the models train on "
                   f"{_pct(n_tr / PAPER_TRAIN)} of the paper's images and their accuracies are not the paper's "
                   "setting.")
    out.append(f"The test split is the full {PAPER_TEST:,}-image test set the paper reports on." if n_te == PAPER_TEST
               else f"The test split has {n_te:,} images against the paper's {PAPER_TEST:,}.")
    if len(per_class) and "val" in per_class:
        lo, hi = int(per_class.val.min()), int(per_class.val.max())
        spread = f"exactly {lo:,} per class" if lo == hi else f"{lo:,} to {hi:,} per class"
        out.append(f"The validation split has {spread} over {_n(len(per_class), 'class', 'classes')}, "
                   + ("as a stratified split gives (classes differ by at most one image)." if hi - lo <= 1 else
                      f"so it is not stratified (classes differ by up to {hi - lo:,} images)."))
        if "train" in per_class:
            tlo, thi = int(per_class.train.min()), int(per_class.train.max())
            out.append(f"Training images per class: " + (f"exactly {tlo:,}." if tlo == thi else f"{tlo:,} to {thi:,}."))
    else:
        out.append("No per-class counts were recorded, so the balance of the validation split cannot be checked.")
    return _join(out)


def baseline(P: dict, metrics: dict, history: pd.DataFrame) -> str:
    """The baseline stage: final and best validation accuracy, test accuracy, the trend of the last epochs, time."""
    M = P.get("model", {})
    what = f"The baseline ({M.get('arch', 'model')} width {M.get('width', '?')}, {metrics.get('data', 'unlabelled')})"
    out = []
    h = history.dropna(subset=["val_acc"]).reset_index(drop=True) if history is not None and "val_acc" in history \
        else pd.DataFrame()
    if not len(h):
        out.append(f"{what} has no per-epoch validation history, so its learning curve cannot be discussed.")
    else:
        n, last = len(h), float(h.val_acc.iloc[-1])
        best = int(h.val_acc.idxmax())
        out.append(f"{what} trained for {_n(n, 'epoch')}: final validation accuracy {_pct(last)}, best "
                   f"{_pct(h.val_acc[best])} at epoch {int(h.epoch[best])}.")
        k = min(3, n - 1)
        if k < 1:
            out.append("With one epoch there is no trend to read.")
        else:
            delta = 100 * (last - float(h.val_acc.iloc[-1 - k]))
            n_val = (P.get("data") or {}).get("val_size")
            # the binomial standard error of one validation accuracy: the scale a change must exceed to be read
            se = 100 * math.sqrt(last * (1 - last) / n_val) if n_val else math.nan
            trend = f"Over the last {_n(k, 'epoch')} it changed by {_f(delta, sign=True)} points"
            if _missing(se):
                out.append(trend + " (the validation size is not recorded, so no scale to read it against).")
            else:
                reading = ("still improving at the end" if delta > se else "falling at the end" if delta < -se else
                           "flat at the end (within one standard error)")
                out.append(f"{trend}; one binomial standard error on {n_val:,} validation images is {_f(se)} "
                           f"points, so it was {reading}.")
        if "train_loss" in h:
            out.append(f"Training loss went from {_f(h.train_loss.iloc[0], 3)} to {_f(h.train_loss.iloc[-1], 3)}.")
    if _missing(metrics.get("test_acc")):
        out.append("No test accuracy was recorded.")
    else:
        out.append(f"Test accuracy: {_pct(metrics['test_acc'])}.")
    hw = metrics.get("hardware") or {}
    images = (f", {int(history['images'].iloc[-1]):,} training images per epoch"
              if history is not None and len(history) and "images" in history else "")
    epochs = metrics.get("epochs", len(history) if history is not None else 0)
    out.append(f"Training took {_secs(metrics.get('train_time'))} for {_n(epochs, 'epoch')} "
               f"({_f(metrics.get('epoch_time_mean'), 1)} s per epoch{images}) on "
               f"{hw.get('device_name', 'unrecorded hardware')}"
               + (f" ({_n(hw['threads'], 'thread')})" if hw.get("threads") else "")
               + f" in {metrics.get('precision', 'fp32')}.")
    return _join(out)


def _option(r, conf: int) -> str:
    ci = ("no interval" if _missing(r.ci_low) or _missing(r.ci_high)
          else f"{conf} % CI [{_f(r.ci_low, sign=True)}, {_f(r.ci_high, sign=True)}]")
    return f"`{r.layer}` at ratio {r.ratio:g} (drop {_f(r.delta_acc, sign=True)} points, {ci})"


def sensitivity(P: dict, rows: pd.DataFrame, selection: dict, layers: list[str]) -> str:
    """The sensitivity stage: most and least sensitive options with intervals, how many intervals exclude 0, what the
    knapsack took within ``sensitivity.max_loss``, and the search's cost (``claims.search_claim``)."""
    S, selection = P["sensitivity"], selection or {}
    proxy, conf, budget = S["selection_proxy"], int(round(100 * S.get("confidence", 0.95))), S["max_loss"]
    r = rows[rows.proxy == proxy].dropna(subset=["delta_acc"]) if len(rows) and "proxy" in rows else rows.iloc[0:0]
    out = []
    if not len(r):
        out.append(f"The sweep has no rows for the selection proxy `{proxy}`, so no option can be discussed.")
    else:
        srt = r.sort_values("delta_acc", kind="stable")
        out.append(f"The sweep scored {_n(len(rows), 'option')} ({_n(len(layers), 'candidate layer')} x "
                   f"{_n(rows.ratio.nunique(), 'ratio')} x {_n(rows.proxy.nunique(), 'proxy', 'proxies')}) on the "
                   f"validation images. With the `{proxy}` proxy the selection uses, the most sensitive option is "
                   f"{_option(srt.iloc[-1], conf)} and the least {_option(srt.iloc[0], conf)}.")
        above, below = int((r.ci_low > 0).sum()), int((r.ci_high < 0).sum())
        undefined = int((r.ci_low.isna() | r.ci_high.isna()).sum())
        across = len(r) - above - below - undefined
        out.append(f"Of its {_n(len(r), 'option')}, {above:,} {_verb(above, 'has', 'have')} an interval above 0 "
                   f"(a measurable drop), {below:,} below 0 (a measurable gain) and {across:,} "
                   f"{_verb(across, 'includes', 'include')} 0"
                   + (f"; {undefined:,} {_verb(undefined, 'has', 'have')} no interval" if undefined else "") + ".")
    chosen = selection.get("layers") or []
    if not chosen:
        out.append(f"Within the loss budget of {budget:g} points (`sensitivity.max_loss`) the knapsack took no "
                   "layer, so the basis stage has no selection to train.")
    else:
        by_ratio: dict = {}
        for name in chosen:
            by_ratio.setdefault(selection["ratios"][name], []).append(f"`{name}`")
        groups = "; ".join(f"at ratio {q:g}: {', '.join(v)}" for q, v in sorted(by_ratio.items()))
        out.append(f"The knapsack took {len(chosen):,} of {_n(len(layers), 'candidate layer')} ({groups}) for a "
                   f"predicted loss of {_f(selection.get('predicted_loss'))} points within the budget of {budget:g} "
                   f"points (`sensitivity.max_loss`), saving {_n(selection.get('params_saved', 0), 'parameter')}.")
    secs, base = selection.get("search_seconds"), selection.get("baseline_train_seconds")
    if not _missing(secs) and base:
        out.append(f"The sweep took {_secs(secs)}, {_share(secs / base)} one baseline training of {_secs(base)} (a "
                   "measurement of this sweep; the search-cost claim is decided by the benchmark, which times a "
                   "proxy job beside a training step in the same rounds).")
    res = selection.get("resolution")
    if res:
        same = "the same layers at the same ratios" if res["same_selection"] else (
            "another selection: " + (", ".join(f"`{n}`@{q:g}" for n, q in res["ratios"].items()) or "none"))
        out.append(f"Scored on {res['subset_images']:,} of its {res['eval_images']:,} images alone, the sweep "
                   f"selects {same}.")
    return _join(out)


def faithfulness(P: dict, summary: dict, table: pd.DataFrame, pairs: pd.DataFrame) -> str:
    """The faithfulness stage: the proxies' Spearman correlation with retrained drops (the selection proxy's as the
    verdict of ``claims.proxy_claim``) and the additivity the knapsack assumes."""
    S = P["sensitivity"]
    sp = S["selection_proxy"]
    if not summary or not summary.get("n_layers"):
        return "No faithfulness summary (no layer was retrained), so the proxy cannot be checked against retraining."
    n = int(summary["n_layers"])
    epochs = summary.get("retrain_epochs", (P.get("faithfulness") or {}).get("epochs", 0))
    out = [f"On {_n(n, 'layer')} at ratio {summary['ratio']:g}, each converted alone and retrained for "
           f"{_n(epochs, 'epoch')} against an unconverted control"]
    table = table.dropna(subset=["real_drop"]) if "real_drop" in table else table.iloc[0:0]
    if len(table):
        top = table.loc[table.real_drop.idxmax()]
        ci = ("" if _missing(top.get("real_ci_low")) else
              f", CI [{_f(top.real_ci_low, sign=True)}, {_f(top.real_ci_high, sign=True)}]")
        out[0] += (f", the real drops range from {_f(table.real_drop.min(), sign=True)} to "
                   f"{_f(table.real_drop.max(), sign=True)} points (largest: `{top.layer}`{ci}).")
    else:
        out[0] += ": the per-layer table is empty."
    decided = claims.proxy_claim(summary, sp)
    out.append(claims.sentence(decided[0].claim, decided[0].measured, decided[0].verdict, decided[0].source)
               if decided else f"The Spearman correlation of the selection proxy `{sp}` is undefined (fewer than 3 "
               "layers or constant drops), so this run cannot speak to whether it ranks layers in the same "
               "direction as retraining does.")
    for p in S["proxies"]:
        if p != sp:
            out.append(f"The other proxy, not used by the selection: Spearman {report_text.spearman_text(summary, p)}.")
    if n < 10:
        out.append(f"With {_n(n, 'layer')} the percentile bootstrap interval is itself rough (it undercovers "
                   "below 10).")
    inter = summary.get("additivity_real_mean_abs_interaction")
    if _missing(inter):
        out.append("No layer pair was retrained, so the additivity the knapsack assumes is not measured.")
    else:
        by_proxy = {p: summary.get(f"additivity_{p}_mean_abs_interaction") for p in S["proxies"]}
        proxies = ", ".join(f"{_f(v)} points with `{p}`" for p, v in by_proxy.items() if not _missing(v))
        single = (f" against a mean |single-layer real drop| of {_f(table.real_drop.abs().mean())} points"
                  if len(table) else "")
        out.append(f"Additivity, which the knapsack assumes when it adds single-layer drops: over "
                   f"{_n(summary.get('n_pairs', 0), 'layer pair')} the mean |drop(a, b) - drop(a) - drop(b)| after "
                   f"retraining is {_f(inter)} points{single}"
                   + (f" (by the proxies: {proxies})" if proxies else "") + ".")
        real = pairs[pairs.method == "real"] if len(pairs) and "method" in pairs else pairs.iloc[0:0]
        if len(real) > 1:
            w = real.loc[real.interaction.abs().idxmax()]
            out.append(f"The largest retrained interaction is {_f(w.interaction, sign=True)} points "
                       f"(`{w.layer_a}` with `{w.layer_b}`).")
    if not _missing(summary.get("seconds")):
        base = summary.get("baseline_train_seconds")
        out.append(f"The checks took {_secs(summary['seconds'])}"
                   + (f", {_share(summary['seconds'] / base)} one baseline training of {_secs(base)}." if base
                      else "."))
    return _join(out)


def _acc(t: pd.DataFrame, v: str) -> str:
    std = t.loc[v, "test_acc_std"] if t.loc[v, "seeds"] > 1 else math.nan
    return f"{_f(t.loc[v, 'test_acc_mean'])}" + ("" if _missing(std) else f" ± {_f(std)}") + " %"


def basis(P: dict, runs: pd.DataFrame, table: pd.DataFrame, same: dict[str, str] | None = None) -> str:
    """The basis stage: the selection against the baseline and all layers (the claims' paired intervals and
    verdicts, ``claims.accuracy_claims``; training time is the benchmark's), compression and the number of seeds;
    ``same``: the runs that are another run's model (the stage's ``twins``), said so."""
    B = P["basis"]
    sched = next((s for s in ("switch", "scratch", "late") if s in B["schedules"]), "switch")
    if runs is None or not len(runs) or table is None or not len(table):
        return "No basis-stage run was trained, so there is nothing to compare."
    t = table.set_index("variant")
    per = runs.groupby("variant").seed.nunique()
    lo, hi = int(per.min()), int(per.max())
    seeds = _n(lo, "seed") if lo == hi else f"{lo:,} to {hi:,} seeds"
    out = [f"{_n(len(t), 'variant')} trained with {seeds} each; test accuracy is "
           + ("the mean over seeds ± its standard deviation." if hi > 1 else "that seed's.")]
    if "baseline" in t.index:
        out.append(f"The baseline reaches {_acc(t, 'baseline')} with {_n(t.loc['baseline', 'params'], 'parameter')}.")
    for v, what in ((run_name("selected", sched, B=B), "The selection"),
                    (run_name("all_layers", sched, B=B), "Basis layers on every layer")):
        if v not in t.index:
            why = ", or the selection was empty" if v.startswith("selected") else ""
            out.append(f"There is no `{v}` run (not trained{why}).")
            continue
        out.append(f"{what} (`{v}`): {_acc(t, v)}, {_f(t.loc[v, 'delta_vs_baseline'], sign=True)} points against "
                   f"the baseline, with {_n(t.loc[v, 'params'], 'parameter')} ({_f(t.loc[v, 'compression'])}x "
                   "compression).")
    if lo < 2:
        out.append(f"With {_n(lo, 'seed')} no paired interval exists, so no accuracy claim can be decided.")
    out.append(report_text.same_models_text(same or {}, runs))
    decided = claims.accuracy_claims(runs, B, P["train"]["epochs"])
    text = _join(out)
    return text + ("\n\n" + _bullets(decided) if decided else "\n\nNo claim can be decided from these variants.")


def _model_summary(models, precision: str) -> dict:
    """``{"<model>.<mode>": row}`` in ``precision`` from the stage's whole-model frame (or the summary's dict)."""
    if isinstance(models, dict):
        return models
    if models is None or not len(models):
        return {}
    if "precision" in models:
        models = models[models.precision == precision]
    return {f"{r['model']}.{r['mode']}": r for r in models.to_dict("records")}


def benchmark(P: dict, out: dict) -> str:
    """The benchmark stage: whole-model speedups with their intervals and verdicts (``claims.speed_claims``), the
    layers that reach the per-layer target, and the hardware they were measured on."""
    hw, prec = out.get("hardware") or {}, out.get("precision", "fp32")
    text = [f"Timed on {hw.get('device_name', 'unrecorded hardware')}"
            + (f" ({_n(hw['threads'], 'thread')}" + (f", torch {hw['torch']}" if hw.get("torch") else "") + ")"
               if hw.get("threads") else "")
            + f" in {prec}, the precision training runs in; these timings speak for this hardware only."]
    lt = (out.get("targets") or {}).get("layers_fraction_of_theory")
    if not lt:
        text.append("No per-layer target was recorded.")
    elif not lt.get("n_layers"):
        text.append(f"No (layer, ratio) case is held to the per-layer target (`{lt.get('target', '?')}`).")
    else:
        n, met = int(lt["n_layers"]), int(lt["n_met"])
        text.append(f"Per layer, {met:,} of {_n(n, '(layer, ratio) case')} reach the target share of their MAC "
                    f"speedup in fwd+bwd (`{lt['target']}`; median share {_f(lt.get('median'))})"
                    + (f"; {int(lt.get('n_kernel_limited', 0)):,} of the {n - met:,} misses are kernel-limited (their "
                       "two kernels alone stay below the target)." if met < n else "."))
    by_prec = {}
    for p in (out.get("precisions") or [prec]):
        by_prec[p] = _model_summary(out.get("models"), p)
    decided = claims.speed_claims({"models_by_precision": by_prec}, P["basis"])
    body = _join(text)
    return body + ("\n\n" + _bullets(decided) if decided else "\n\nNo basis model was timed as a whole, so the speed "
                   "claim cannot be decided from this run.")


def report(readme: str) -> str:
    """The report's Markdown for display, whole, without its title (the notebook has its own)."""
    lines = (readme or "").strip("\n").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body = "\n".join(lines).strip("\n")
    return body + "\n" if body else "The report is empty (the report stage wrote no text)."
