"""The narrative of a run: every sentence, paragraph and table for people that the notebooks and the report show
(arXiv 2408.06024's experiments), from the results alone.

One layer of prose with one set of formatters: each stage's discussion (the notebooks' "What this run shows"), the
report's paragraphs by topic and its small tables. Every number comes from the results (the only constants are the
paper's CIFAR-10 split sizes, named below). A claim of the paper is stated as the paper's and decided only by
``basisconv.pipeline.claims``: its ``Decided`` objects and ``claims.sentence`` choose the verdict words ("holds here",
"is not decided here", "does not hold here"); nothing here words a verdict otherwise. The rest describes
measurements. A missing piece (no selection, one seed, an empty frame, a NaN interval) gets a sentence saying what is
missing instead of an error.
"""
from __future__ import annotations

import math

import pandas as pd

from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
from basisconv.perf.analysis import LAYER_THEORY_MIN, TARGETS
from basisconv.pipeline import claims, display, tables, variants
from basisconv.pipeline.tables import plural
from basisconv.pipeline.variants import RunName, run_name

THRESHOLD = TARGETS["layers_fraction_of_theory"][1]  # the per-layer target's share of theory, printed from its value
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


def acc(mt: pd.DataFrame, v: str) -> str:
    """A variant's mean test accuracy ± its std over seeds (``mt``: the main table indexed by variant)."""
    if v not in mt.index:
        return "not trained in this run"
    std = mt.loc[v, "test_acc_std"] if mt.loc[v, "seeds"] > 1 else math.nan
    return f"{_f(mt.loc[v, 'test_acc_mean'])}" + ("" if _missing(std) else f" ± {_f(std)}") + " %"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


# ------------------------------------------------------------------------------------------- stage discussions
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
    if len(rows) and "model" in rows:  # the final baseline's sweep (the switch-epoch snapshot's: the report)
        rows = rows[rows.model == "final"]
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
            out.append(f"The other proxy, not used by the selection: Spearman {spearman_text(summary, p)}.")
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
        out.append(f"The baseline reaches {acc(t, 'baseline')} with {_n(t.loc['baseline', 'params'], 'parameter')}.")
    for v, what in ((run_name("selected", sched, B=B), "The selection"),
                    (run_name("all_layers", sched, B=B), "Basis layers on every layer")):
        if v not in t.index:
            why = ", or the selection was empty" if v.startswith("selected") else ""
            out.append(f"There is no `{v}` run (not trained{why}).")
            continue
        out.append(f"{what} (`{v}`): {acc(t, v)}, {_f(t.loc[v, 'delta_vs_baseline'], sign=True)} points against "
                   f"the baseline, with {_n(t.loc[v, 'params'], 'parameter')} ({_f(t.loc[v, 'compression'])}x "
                   "compression).")
    if lo < 2:
        out.append(f"With {_n(lo, 'seed')} no paired interval exists, so no accuracy claim can be decided.")
    out.append(same_models_text(same or {}, runs))
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


# -------------------------------------------------------------------------------------- report paragraphs
def spearman_text(metrics: dict, p: str) -> str:
    """``rho`` of proxy ``p`` with its bootstrap interval and what the interval allows one to say."""
    v, lo, hi = (metrics.get(f"spearman_{p}{s}") for s in ("", "_ci_low", "_ci_high"))
    if _missing(v):
        return f"undefined ({p})"
    if _missing(lo) or _missing(hi):
        return f"{v:.2f} ({p}; no bootstrap interval)"
    conf = int(100 * metrics.get("confidence", 0.95))
    where = "above 0" if lo > 0 else "below 0" if hi < 0 else "including 0"
    return f"{v:.2f} ({p}; {conf} % bootstrap CI [{lo:.2f}, {hi:.2f}], {where})"


# what each proxy of ``basisconv.core.sensitivity.PROXIES`` does to the converted model before it is evaluated
PROXY_WORDS = {"zero_shot": "BatchNorm statistics recalibrated, no gradient step",
               "finetune": "the same, then a few SGD steps on the converted layer alone",
               "finetune_all": "the same steps on every parameter of the network"}


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


# the main table's note: what its columns are
MAIN_TABLE_NOTE = ("Test accuracy in %, mean and std over seeds; differences in points; params: the model's parameters; "
                   "compression: the baseline's parameters over the variant's; macs: multiply-accumulates of one "
                   "forward pass of one 32x32 image; the per-run rows: [tables/runs.csv](tables/runs.csv).")


def same_models_text(same: dict[str, str], runs: pd.DataFrame) -> str:
    """Which run names of the per-run table ``runs`` (``variant``, ``seed``, ``test_acc``) train one model (``same``:
    ``claims.same_models``); "" when none do."""
    parts = [f"`{v}` is `{m}`" for v, m in same.items()]
    if not parts:
        return ""
    return ("One model under two run names: " + "; ".join(parts) + ". The same layers at the same ratios with the "
            "same schedule on every seed: trained once and reported under both names, so its rows count as one "
            "result.")


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


def limits_text(bench: dict) -> str:
    """Where the measured speed falls short of the MAC count, and which step limits it (``analysis.layer_misses``)."""
    by = bench.get("targets_by_precision") or {}
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
            f"{name.removesuffix('_train_step_fraction_of_theory').replace('_', '-')} {'n/a' if t.get('value') is None else format(t['value'], '.2f')}"
            + ("" if t.get("layer_sum_fraction_of_theory") is None
               else f" (its layers alone predict {t['layer_sum_fraction_of_theory']:.2f})")
            for name, t in tg.items() if name.endswith("_train_step_fraction_of_theory"))
        parts.append(
            f"**{prec}**{' (the precision training runs in)' if prec == trained else ''}: {lt['n_met']} of "
            f"{lt['n_layers']} layer cases with theoretical >= {LAYER_THEORY_MIN:g}x reach {100 * THRESHOLD:.0f} % of it in "
            "fwd+bwd (median "
            + ("n/a" if lt["median"] is None else f"{lt['median']:.2f}") + f"). Of the {len(misses)} "
            f"miss{'es' if len(misses) != 1 else ''}, {len(kernel)} {_are(len(kernel))} kernel-limited: even the two "
            "kernels every execution form runs, timed alone, stay "
            f"below {100 * THRESHOLD:.0f} % (kernel floor " + (f"{floors[0]:.2f}-{floors[-1]:.2f}" if floors else "n/a") + "), "
            f"limited by the rank-r k x k conv in {by_limit['kxk conv']} and by the 1 x 1 mix in "
            f"{by_limit['1x1 mix']}; {n_form} {_are(n_form)} form overhead "
            f"(the form costs more than its two kernels). Train step as a share of theory: {models}.")
    return (" ".join(parts) + " The kernel floor is `t_dense / (t_kxk + t_mix)` over the MAC ratio; a kernel's "
            "excess is its time beyond its MAC share of the dense conv's time. Per layer: the misses table of "
            "the report.")


def search_text(sel: dict, at_switch: dict | None, bench: dict) -> str:
    """What the sweeps cost as measured (their wall time against the baseline training; a measurement, the claim is
    decided from the benchmark's rounds), and what the timed search is."""
    out = []
    for what, s in (("final baseline", sel), (f"switch-epoch snapshot", at_switch)):
        if not s or _missing(s.get("search_seconds")):
            continue
        base = sel.get("baseline_train_seconds")
        out.append(f"The sweep on the {what} took {_secs(s['search_seconds'])}"
                   + (f", {_share(s['search_seconds'] / base)} one baseline training ({_secs(base)})" if base else "")
                   + ".")
    n, imgs = bench.get("sweep_options"), bench.get("search_images")
    if n:
        P = bench.get("params_resolved", {}).get("sensitivity", {})
        out.append(f"The search-cost claim times the search as the method runs it: {_n(n, 'option')} (layer x ratio) "
                   f"scored by the selection proxy `{P.get('selection_proxy', '?')}` on {_n(imgs or 0, 'image')}, a "
                   "proxy job at the first, middle and last candidate layer in every timing round beside the baseline's "
                   "training step; the sweeps above also score the other proxies and every validation image, for "
                   "this package's checks of the proxy.")
    return _join(out) or "No sweep time was recorded."


def selections_text(sel: dict) -> str:
    """The two selections side by side (the late conversion's, searched on the final baseline; the training
    schedules', on seed 0's snapshot at the switch epoch), and the resolution check of each."""
    def one(s, where):
        layers = ", ".join(f"`{n}`@{s['ratios'][n]:g}" for n in s["layers"]) or "none"
        out = (f"On the {where}: {len(s['layers'])} of {_n(len(s['candidates']), 'candidate layer')} ({layers}; "
               f"predicted loss {_f(s['predicted_loss'])} points, {_n(s['params_saved'], 'parameter')} and "
               f"{s['macs_saved'] / 1e6:,.1f} M MACs saved).")
        res = s.get("resolution")
        if res:
            out += (f" Scored on {res['subset_images']:,} of its {res['eval_images']:,} evaluation images alone, the "
                    + ("sweep selects the same layers at the same ratios on this subset."
                       if res["same_selection"] else "sweep selects other layers ("
                       + (", ".join(f"`{n}`@{q:g}" for n, q in res["ratios"].items()) or "none")
                       + "), so the whole validation split is kept."))
        return out
    parts = [one(sel, "final baseline (the late conversion's selection)")]
    sw = sel.get("at_switch")
    if sw:
        parts.append(one(sw, "first seed's baseline at the switch epoch (the selection of the training schedules)"))
        same = (sw["layers"], sw["ratios"]) == (sel["layers"], sel["ratios"])
        common = sorted(set(sw["layers"]) & set(sel["layers"]))
        parts.append("The two selections are " + ("the same." if same else
                                                   f"different: {len(common)} layer(s) in common."))
    return " ".join(parts)


def layers_table(r: dict) -> str:
    """What every variant of the first seed converts and at which ratio: a layer-by-variant table (a cell is the
    ratio; empty: the layer stays dense), for the main point's runs (the fronts' layers are in the selection file)."""
    from basisconv.pipeline.plan import plan
    P = r["basis"]["params_resolved"]
    B, seed = P["basis"], P["train"]["seeds"][0]
    entries = [e for e in plan(B, r["selection"], seed) if e[2] is not None and not RunName.parse(e[0]).point]
    if not entries:
        return "No basis run in this plan."
    cands = r["selection"]["candidates"]
    rows = []
    for layer in cands:
        row = {"layer": layer}
        for name, _, layers, ratio in entries:
            row[name] = (f"{float(ratio[layer] if isinstance(ratio, dict) else ratio):g}" if layer in layers else "")
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def main_table(r: dict) -> pd.DataFrame:
    """The main table for people: mean test accuracy ± std, seeds, difference to the baseline, parameters,
    compression and MACs in millions; a run that is another run's model is one row, named by both (``a = b``); the
    time columns, which decide nothing, stay in ``runs.csv``."""
    mt, same = r["main_table"], claims.same_models(r["tables"]["runs"])
    aliases = {}
    for v, first in same.items():
        aliases.setdefault(first, []).append(v)
    keep = mt[~mt.variant.isin(same)]
    return pd.DataFrame({
        "variant": [" = ".join([v, *aliases.get(v, [])]) for v in keep.variant],
        "test acc (%)": [f"{a:.2f}" + ("" if pd.isna(sd) else f" ± {sd:.2f}") for a, sd in
                         zip(keep.test_acc_mean, keep.test_acc_std)],
        "seeds": keep.seeds.astype(int).tolist(),
        "vs baseline (points)": [f"{d:+.2f}" for d in keep.delta_vs_baseline],
        "params": [f"{int(x):,}" for x in keep.params], "compression": [f"{c:.2f}x" for c in keep.compression],
        "MACs (M)": [f"{m / 1e6:,.1f}" for m in keep.macs]})


def run_names_text(B: dict, E: int, sel: dict, trained) -> str:
    """How to read the run names of the main table: each schedule and front point that it has."""
    trained = [RunName.parse(v) for v in trained]
    schedules = {t.schedule for t in trained}
    parts = []
    if "scratch" in schedules:
        parts.append(f"`@scratch`: basis layers from step 0, all {E} epochs.")
    if "switch" in schedules:
        S = B["switch_epoch"]
        parts.append(f"`@switch{S}`: the seed's dense baseline for {_n(S, 'epoch')} (its snapshot), then basis layers "
                     f"for the remaining {E - S}.")
    if "late" in schedules:
        L = B["late_epoch"]
        parts.append(f"`@late`: the dense baseline for {L} epochs, then converted (with the selection searched on the "
                     f"trained baseline) and fine-tuned for the last {_n(E - L, 'epoch')}: post-training conversion.")
    points = sorted({t.point for t in trained if t.point})
    main_loss = sel.get("params_resolved", {}).get("sensitivity", {}).get("max_loss")
    for p in points:
        if p.startswith("ml"):
            parts.append(f"`~{p}`: the selection at a loss budget of {p[2:]} points (the main point's: "
                         f"{'n/a' if main_loss is None else format(main_loss, 'g')}), and the subsets matched to it.")
        else:
            parts.append(f"`~{p}`: basis layers on every candidate layer at ratio {p[1:]} (the main point's: "
                         f"{B['ratio']:g}).")
    comps = sorted({t.variant for t in trained if t.kind == "comparison"})
    if comps:
        parts.append("Comparison subsets: " + "; ".join(f"`{c}`: {display.LOOKS[c].describe}" for c in comps)
                     + (" (`random<k>` is drawn anew for every seed)" if "random" in comps else "") + ".")
    return " ".join(["Run names:", *parts]) if parts else ""


def topics(r: dict) -> list[tuple[str, str]]:
    """``(topic, paragraph)`` of the report's measurements by topic."""
    bench, sel, faith = r["benchmark"], r["selection"], r["faithfulness"]
    proxies = faith.get("params_resolved", {}).get("sensitivity", {}).get("proxies", [])
    said = "; ".join(f"`{p}`: {PROXY_WORDS[p]}" for p in proxies if p in PROXY_WORDS)
    return [
        ("The selections.", selections_text(sel)),
        ("Cost of the search.", search_text(sel, sel.get("at_switch"), bench)),
        ("Faithfulness of the fast proxy.",
         f"On {faith.get('n_layers', 0)} layers, each retrained alone against an unconverted control, the Spearman "
         "rank correlation between proxy drop and real drop is "
         + "; ".join(spearman_text(faith, p) for p in proxies) + (f". The proxies: {said}." if said else ".")),
        ("Measured speed against the MAC count.", limits_text(bench)),
        ("Factorized peers at equal parameters.", peers_text(bench)),
        ("Deployment: ONNX export of the basis and folded forms.", onnx_text(bench)),
    ]


def _value(t: pd.DataFrame, prefix: str, words: str = "") -> str:
    """The short evidence (``value``, its unit ``pts`` dropped) of the verdict-table row whose comparison starts with
    ``prefix``: ``-0.41 [-0.90, +0.08]``; "n/a" when the run has no such row."""
    hit = t[t.comparison.str.startswith(prefix) & t.claim.str.contains(words, regex=False)] if len(t) else t
    if not len(hit) or not isinstance(hit.value.iloc[0], str):
        return "n/a"
    return hit.value.iloc[0].replace(" pts", "")


def headline(r: dict, t: pd.DataFrame, width: int = 118) -> str:
    """The README's result in at most five lines: what each selection keeps, its paired accuracy difference from
    dense under each schedule and what converting every layer costs (points, 95 % interval), the measured
    training-step and whole-training speedups, the machine and the precision (the verdicts are the table's). ``t``:
    the run's verdict table (``claims.verdict_table``), whose short values it quotes."""
    import textwrap
    P, base = r["basis"]["params_resolved"], r["baseline"]
    B, E = P["basis"], P["train"]["epochs"]
    runs = r["tables"]["runs"]
    size = runs.groupby("variant")[["params", "macs"]].mean()
    sel = run_name("selected", "switch", B=B)
    if sel not in size.index or "baseline" not in size.index:
        return "This run trained no selection after a switch, so it has no headline."

    def kept(run):
        return "/".join(f"{size.loc[run, c] / size.loc['baseline', c]:.0%}" for c in ("params", "macs"))

    def trained(v, s):
        return run_name(v, s, B=B) in size.index

    mt = r["main_table"].set_index("variant")
    hw, prec = base["hardware"], base.get("precision", "fp32")
    early = r["selection"].get("at_switch") or r["selection"]
    training = ", ".join(f"{s} " + _value(t, run_name("selected", s, B=B) + " - baseline")
                         for s in ("scratch", "switch") if trained("selected", s))
    late = run_name("selected", "late", B=B)
    late_text = (f"; late (own selection, {len(r['selection'].get('layers', []))} layers, {kept(late)}) "
                 + _value(t, late + " - baseline") if late in size.index else "")
    every = ", ".join(f"{s} " + _value(t, "baseline - " + run_name("all_layers", s, B=B))
                      for s in variants.SCHEDULES if trained("all_layers", s))
    timed = claims.timed_names(r).get(sel, sel)
    step = _value(t, f"baseline / {timed}, {prec}", "training step")
    whole = _value(t, f"dense / {timed}, training steps")
    text = (f"{base['data']}, {P['model']['arch']} width {P['model']['width']}, {E} epochs, "
            f"{_n(int(mt.loc['baseline', 'seeds']), 'seed')}, {hw['device_name']} ({hw['cpu_count']} cores, {prec}); "
            f"dense {acc(mt, 'baseline')}. Selection searched at epoch {B['switch_epoch']} "
            f"({len(early.get('layers', []))}/{len(r['selection']['candidates'])} layers, {kept(sel)} of "
            f"params/MACs kept), test accuracy minus dense's (points, 95 % CI): {training}{late_text}; every layer "
            f"converted: {every}. The switch selection runs its training step {step} as fast as dense, a whole "
            f"training with its search {whole}.")
    return textwrap.fill(text, width)


def reading_line(table: pd.DataFrame, runs_from: str = "") -> str:
    """The one-line reading of a verdict table (``claim``, ``source``, ``verdict`` and, for rows borrowed from other
    published runs, ``borrowed``), singular and plural right (``tables.plural``): the paper's claims counted apart
    from what its search implies (``source`` ``implied``: comparisons this package adds) and from the package's own
    assumptions (``source`` ``package``), neither of which the paper states; a row that is not separate evidence
    (``repeats``: ``claims.same_models``) is left out of its group's counts, and the count says so."""
    borrowed = table["borrowed"].fillna(False).astype(bool) if "borrowed" in table else pd.Series(False, table.index)

    def tally(rows: pd.DataFrame, last: str, tail: str = "") -> str:
        """'<n> hold(s) here, <n> do(es) not hold here<last><n> is/are not decided<tail>' of ``rows``, leaving out
        the rows that are not separate evidence and saying how many they are."""
        counted = ~(rows["repeats"].map(claims.not_separate).astype(bool) if "repeats" in rows
                    else pd.Series(False, rows.index))
        v = rows[counted].verdict.value_counts()
        held, failed, open_ = (int(v.get(x, 0)) for x in (SUPPORTED, CONTRADICTED, UNDECIDED))
        n = int((~counted).sum())
        left = (f"; {plural(n, 'row')} of these {'repeats' if n == 1 else 'repeat'} another row's comparison with the "
                f"same model under another run name, so {'it is' if n == 1 else 'they are'} not counted (not "
                "separate evidence)" if n else "")
        return (f"{plural(held, 'holds', 'hold')} here, {plural(failed, 'does', 'do')} not hold here{last}"
                f"{plural(open_, 'is', 'are')} not decided{tail}{left}")

    def whence(rows: pd.Series) -> str:
        """' (<n> of them from the published run ...)' for the borrowed rows among ``rows`` (a mask), else ''."""
        n = int((borrowed & rows).sum())
        # the borrowed count stands apart from the verdict counts: it is a share of all these rows, not of the last
        return f" ({n} of them from the published run {runs_from}, which trains what this profile does not)" if n else ""

    paper = table.source == "paper"
    # rows, not claims: a claim tested again at a second budget (`~ml2`) is a row of its own
    line = (f"Of the {plural(int(paper.sum()), 'row')} testing the paper's claims{whence(paper)}, "
            f"{tally(table[paper], ' and ', ' at this scale')}.")
    implied = table.source == "implied"
    if implied.any():
        line += (f" Of the {plural(int(implied.sum()), 'comparison')} this package adds to test what the paper's "
                 f"search implies (rows marked (implied)){whence(implied)}, {tally(table[implied], ' and ')}.")
    own = table.source == "package"
    if own.any():
        line += (f" The package's own {plural(int(own.sum()), 'assumption')} (rows marked (package), not claims "
                 f"of the paper){whence(own)}: {tally(table[own], ', ')}.")
    return line
