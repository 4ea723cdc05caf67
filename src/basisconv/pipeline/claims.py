"""Every claim of arXiv 2408.06024 this pipeline tests, decided by the run's evidence, and the one sentence allowed
to state each.

A claim is the paper's, not ours: the report states it as the paper's, then what this run decides, in the words its
verdict (``basisconv.core.evidence``) allows and no stronger:

- ``supported``: "holds here";
- ``not decided at this scale``: "is not decided here";
- ``contradicted``: "does not hold here".

``sentence`` is the only place these words are chosen; ``verdict_table`` decides every claim the run's results can
speak to (a claim whose runs were not trained is left out, not guessed):

1. all layers cost accuracy: ``baseline - all_layers`` > 0 (superiority, paired over seeds);
2. the selection stays within ``margin`` points of the baseline (non-inferiority);
3. the selection beats all layers and every comparison subset (random, largest-first, spectral) saving about as
   many parameters; the comparison lists both models' parameters and MACs, since the subsets are matched in
   parameters only, and only as near as whole layers allow;
4. the switch schedule matches training basis layers from scratch (equivalence within ``margin``) at lower cost
   (total training time, paired over seeds);
5. selective basis layers reduce training time: epoch time of the epochs after the switch, the selection's against
   the same epochs of the same seed's baseline;
6. basis layers speed up the forward and backward passes: whole-model training-step and inference speedups in the
   training precision, with the interval over interleaved repeated timings (``basisconv.perf.bench.bench_models``);
7. the search is cheap next to training: the sensitivity sweep costs at most ``CHEAP_FRACTION`` of one baseline
   training (one measurement, so the verdict is the threshold's);
8. the fast proxy ranks layers in the same direction as retraining does (ours, the premise of the search): the
   bootstrap interval of the Spearman correlation between proxy drops and retrained drops lies above 0;
9. bf16 autocast leaves accuracy unchanged (ours; only when ``baseline_fp32`` was trained): equivalence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from basisconv.core import evidence
from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED, interval_verdict
from basisconv.pipeline import variants
from basisconv.pipeline.tables import plural

# the selection "keeps accuracy" when it loses at most this many points against the baseline (non-inferiority), and
# two schedules "match" when they differ by less than this either way (equivalence)
MARGIN = 1.0
# the search is "cheap" when it costs at most this share of one baseline training
CHEAP_FRACTION = 0.10

WORDS = {SUPPORTED: "This holds here", UNDECIDED: "This is not decided here", CONTRADICTED: "This does not hold here"}
# ``timed``: a speed claim, decided by timings of this machine's models: ``publish`` never borrows one into another run
COLUMNS = ["claim", "source", "comparison", "measured", "verdict", "sentence", "timed"]


def sentence(claim: str, measured: str, verdict: str, source: str = "paper") -> str:
    """The claim as its source's, then this run's verdict in the words it allows, then the evidence.

    >>> sentence("all layers cost accuracy", "+2.10 points, 95 % CI [+1.50, +2.70] over 3 seeds", "supported")
    'The paper claims that all layers cost accuracy. This holds here: +2.10 points, 95 % CI [+1.50, +2.70] over 3 seeds.'
    """
    if verdict not in WORDS:
        raise ValueError(f"unknown verdict {verdict!r}; valid choices: {', '.join(WORDS)}")
    who = {"paper": "The paper claims", "package": "The search assumes"}.get(source)
    if who is None:
        raise ValueError(f"unknown source {source!r}; valid choices: paper, package")
    return f"{who} that {claim}. {WORDS[verdict]}: {measured}."


@dataclass(frozen=True)
class Decided:
    """One decided claim: its words, where it comes from, what was compared, the evidence and the verdict;
    ``timed``: decided by timing models on this machine (a speed claim)."""
    claim: str
    source: str
    comparison: str
    measured: str
    verdict: str
    timed: bool = False

    def row(self) -> dict:
        return {"claim": self.claim, "source": self.source, "comparison": self.comparison, "measured": self.measured,
                "verdict": self.verdict, "sentence": sentence(self.claim, self.measured, self.verdict, self.source),
                "timed": self.timed}


def _paired(claim, a, b, kind, values, unit="points", source="paper", margin=MARGIN, note="") -> Decided | None:
    """``values``: ``{run: {seed: value}}``; the paired difference ``a - b`` over the seeds both have."""
    if a not in values or b not in values or not set(values[a]) & set(values[b]):
        return None
    p = evidence.paired_difference(values[a], values[b])
    text = p.text() if unit == "points" else p.text().replace(" points", f" {unit}")
    return Decided(claim, source, f"{a} - {b}{note}", text, evidence.verdict(p, kind, margin))


def _size(mt: pd.DataFrame, v: str) -> str:
    if not {"params", "macs"} <= set(mt.columns):
        return "size not recorded"
    return f"{int(mt.loc[v, 'params']):,} params, {mt.loc[v, 'macs'] / 1e6:,.1f} M MACs"


def accuracy_claims(runs: pd.DataFrame, schedule: str = "switch", margin: float = MARGIN) -> list[Decided]:
    """Claims 1-4 and 9 from the basis stage's per-seed rows (``variant``, ``seed``, ``test_acc`` in [0, 1],
    ``params``, ``macs``, ``train_time``)."""
    acc = {v: dict(zip(g.seed, 100 * g.test_acc)) for v, g in runs.groupby("variant")}
    mt = runs.groupby("variant")[[c for c in ("params", "macs") if c in runs]].first()
    sel, allv = f"selected@{schedule}", f"all_layers@{schedule}"
    out = [_paired("applying basis convolutions to every layer costs accuracy", "baseline", allv, "superiority", acc),
           _paired(f"the sensitivity-selected layers keep accuracy (within {margin:g} point of the baseline)", sel,
                   "baseline", "non-inferiority", acc, margin=margin),
           _paired("the selection beats basis layers on every layer", sel, allv, "superiority", acc)]
    for v in sorted(acc, key=lambda r: (variants.point_of(r), r)):  # the main point first, then each front's
        point = variants.point_of(v)
        s = f"selected{variants.POINT}{point}@{schedule}" if point else sel
        if v.endswith(f"@{schedule}") and variants.variant_of(v).kind == "comparison" and s in mt.index:
            at = f" at the {point} budget" if point else ""
            out.append(_paired(f"the selection{at} beats {variants.variant_of(v).describe} (`{v}`)", s, v,
                               "superiority", acc, note=f" ({_size(mt, s)} vs {_size(mt, v)})"))
    for v in ("selected", "all_layers"):  # the schedules compared on the selection if it was trained both ways
        sw, sc = f"{v}@switch", f"{v}@scratch"
        if sw in acc and sc in acc and "train_time" in runs:
            cost = {r: dict(zip(g.seed, g.train_time)) for r, g in runs.groupby("variant")}
            out += [_paired(f"the switch schedule matches training basis layers from scratch (within {margin:g} "
                            "point)", sw, sc, "equivalence", acc, margin=margin),
                    _paired("the switch schedule costs less training time than scratch", sc, sw, "superiority", cost,
                            unit="s")]
            break
    out.append(_paired(f"bf16 autocast leaves accuracy unchanged (within {margin:g} point)", "baseline",
                       "baseline_fp32", "equivalence", acc, source="package", margin=margin))
    return [d for d in out if d is not None]


def training_time_claim(runs: pd.DataFrame, schedule: str = "switch") -> list[Decided]:
    """Claim 5: epoch time after the switch (``basis_epoch_time``), baseline minus selection, paired over seeds."""
    if "basis_epoch_time" not in runs:
        return []
    sel = f"selected@{schedule}"
    t = {v: {s: x for s, x in zip(g.seed, g.basis_epoch_time) if not math.isnan(x)}
         for v, g in runs.groupby("variant")}
    note = ""
    if "machine" in runs and {"baseline", sel} <= set(t):
        # a pair of epoch times compares only on one machine (same-model CPUs differ about 2x; a resumed pipeline
        # may finish on another machine): seeds whose two runs ran on different machines are left out
        where = {v: dict(zip(g.seed, g.machine)) for v, g in runs.groupby("variant")}
        apart = [s for s in set(t["baseline"]) & set(t[sel]) if where["baseline"].get(s) != where[sel].get(s)]
        for s in apart:
            t["baseline"].pop(s), t[sel].pop(s)
        note = f" ({len(apart)} of the seeds left out: their runs ran on different machines)" if apart else ""
    claim = "selective basis layers reduce training time (time per epoch once the basis layers train)"
    d = _paired(claim, "baseline", sel, "superiority", t, unit="s", note=note)
    if d is None and note:
        d = Decided(claim, "paper", f"baseline - {sel}", "no seed with both runs on one machine", UNDECIDED)
    return [d] if d is not None else []


def speedup_point(m: dict) -> float:
    """The point estimate of a timed model's speedup (a ``bench_models`` row or its summary): the geometric mean of
    its timing rounds' ratios, the centre of its interval, or the ratio of medians where the results lack it."""
    return m.get("speedup_geomean", m["measured_speedup"])


def speed_claims(bench: dict) -> list[Decided]:
    """Claim 6 from the benchmark summary's whole-model timings in the training precision (``models``: key
    ``<model>.<mode>`` -> ``measured_speedup`` and, with repeated rounds, ``speedup_low``/``speedup_high``)."""
    out, models, prec = [], bench.get("models", {}), bench.get("precision", "fp32")
    # the models whose accuracy the other claims report: as the switch schedule trains them (QR-chosen basis);
    # results of code that timed no ``all_layers_switched`` fall back to ``all_layers`` (leading basis channels)
    every = ("all_layers_switched", "basis layers on every layer as the switch schedule trains them")
    if not any(k.startswith("all_layers_switched.") for k in models):
        every = ("all_layers", "basis layers on every layer")
    for model, words in (every,
                         ("selected_switched", "the selected basis layers as the switch schedule trains them")):
        for mode, what in (("train_step", "training step (forward, backward, SGD step)"), ("inference", "inference")):
            m = models.get(f"{model}.{mode}")
            if not m:
                continue
            lo, hi = m.get("speedup_low", math.nan), m.get("speedup_high", math.nan)
            if math.isnan(lo) or math.isnan(hi):
                measured, v = f"{m['measured_speedup']:.2f}x (no interval: one timing round)", UNDECIDED
            else:
                rounds = m.get("repeats", "?")
                # results of code that kept only the ratio of medians show that, named as such
                point = f"{speedup_point(m):.2f}x" + ("" if "speedup_geomean" in m else " (ratio of medians)")
                measured = (f"{point}, 95 % CI [{lo:.2f}x, {hi:.2f}x] over {rounds} "
                            f"interleaved timing rounds; {m['theoretical_speedup']:.2f}x by MACs")
                v = interval_verdict(lo, hi, 1.0)  # faster than the baseline: the speedup exceeds 1
            out.append(Decided(f"{words} speed up the {what}", "paper", f"baseline / {model}, {prec}", measured, v,
                               timed=True))
    return out


def search_claim(sel: dict, baseline: dict) -> list[Decided]:
    """Claim 7: one measurement against a threshold (``CHEAP_FRACTION`` of one baseline training)."""
    if "search_seconds" not in sel or not baseline.get("train_time"):
        return []
    frac = sel["search_seconds"] / baseline["train_time"]
    return [Decided(f"the sensitivity search is cheap next to training (at most {100 * CHEAP_FRACTION:.0f} % of one "
                    "baseline training)", "paper", "sweep / one baseline training",
                    f"{sel['search_seconds']:,.0f} s against {baseline['train_time']:,.0f} s, {100 * frac:.1f} % "
                    "(one timing of each: no interval)",
                    SUPPORTED if frac <= CHEAP_FRACTION else CONTRADICTED)]


def proxy_claim(faith: dict, proxy: str) -> list[Decided]:
    """Claim 8: the selection proxy's Spearman correlation with retrained drops, by its bootstrap interval."""
    v, lo, hi = (faith.get(f"spearman_{proxy}{s}") for s in ("", "_ci_low", "_ci_high"))
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    n = faith.get("n_layers", "?")
    # what the retraining was: the assumption is tested at one ratio and a short retraining, not at every option
    at = "".join([f" at ratio {faith['ratio']:g}" if "ratio" in faith else "",
                  f" for {plural(faith['retrain_epochs'], 'epoch')}" if "retrain_epochs" in faith else ""])
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        measured, verdict = f"Spearman {v:.2f} over {n} layers (no bootstrap interval)", UNDECIDED
    else:
        measured = f"Spearman {v:.2f}, 95 % bootstrap CI [{lo:.2f}, {hi:.2f}] over {n} layers"
        verdict = interval_verdict(lo, hi, 0.0)
    return [Decided(f"the `{proxy}` proxy ranks layers in the same direction as retraining them{at} (rank "
                    "correlation above 0)", "package",
                    f"{proxy} drop vs retrained drop", measured, verdict)]


def verdict_table(r: dict, schedule: str = "switch") -> pd.DataFrame:
    """Every claim the results ``r`` (``basisconv.pipeline.stages.report.load_results``) can decide, one row each:
    claim, source (paper or package), comparison, measured evidence, verdict, and the sentence stating it."""
    runs = r["tables"]["runs"]
    decided = accuracy_claims(runs, schedule) + training_time_claim(runs, schedule)
    decided += speed_claims(r.get("benchmark") or {})
    decided += search_claim(r.get("selection") or {}, r.get("baseline") or {})
    faith = r.get("faithfulness") or {}
    proxy = (r.get("selection") or {}).get("params_resolved", {}).get("sensitivity", {}).get("selection_proxy")
    if proxy:
        decided += proxy_claim(faith, proxy)
    return pd.DataFrame([d.row() for d in decided], columns=COLUMNS)


def accuracy_markdown(runs: pd.DataFrame, schedule: str = "switch") -> str:
    """The accuracy claims alone (what the basis stage can decide by itself), as a verdict table."""
    return verdict_markdown({"tables": {"runs": runs}}, schedule)


def verdict_markdown(r: dict, schedule: str = "switch", table: pd.DataFrame | None = None,
                     extra: pd.DataFrame | None = None) -> str:
    """The verdict table for people: claim, evidence, verdict (the sentences are the report's prose).

    ``table``: the run's verdict table when already computed (``verdict_table(r, schedule)`` otherwise); ``extra``:
    rows of other runs' verdict tables (same columns) appended to the one table, as ``publish`` borrows them."""
    t = verdict_table(r, schedule) if table is None else table
    if extra is not None and len(extra):
        t = pd.concat([t, extra], ignore_index=True)
    if not len(t):
        return "No claim can be decided from this run (too few variants were trained)."
    shown = t.assign(claim=[("" if s == "paper" else "(package) ") + c for c, s in zip(t.claim, t.source)])
    n = int(r["tables"]["runs"].groupby("variant").seed.nunique().min())
    note = ("" if n >= 2 else " With one seed no interval exists, so no accuracy claim can be decided.")
    return (shown[["claim", "comparison", "measured", "verdict"]].to_markdown(index=False)
            + "\n\nAccuracy: test accuracy in points, paired over seeds (same seed, same batch order), 95 % "
            "t-intervals. Speed: ratio of baseline to variant time, geometric mean over interleaved timing rounds "
            "(each round times every model once, in turn, so a slow spell of the machine slows them alike) with the "
            "95 % t-interval of the log ratio; 'by MACs': the same ratio of multiply-accumulates (one image's "
            "forward pass), the speedup the paper's cost analysis predicts. (package): an assumption of this "
            "package's search, not a claim of the paper."
            + note)
