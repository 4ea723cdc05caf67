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
2. the selection stays within ``margin`` points of the baseline (non-inferiority; the margin is this package's
   reading of "keeps accuracy", and the claim says so);
3. the selection beats all layers (the paper's) and every comparison subset (random, largest-first, spectral) saving
   about as many parameters (``implied``: the comparisons are this package's, the claim they test follows from the
   paper's search); the comparison lists both models' parameters and MACs, since the subsets are matched in
   parameters only, and only as near as whole layers allow;
4. the switch schedule matches training basis layers from scratch (equivalence within ``margin``) at lower cost;
5. selective basis layers reduce training time, and the switch schedule costs less than scratch: both decided by
   the benchmark's interleaved timings (claim 6 and ``schedule_cost_claim``), never by the trainings' epoch times:
   trainings run minutes to hours apart, and the machine's speed drifts between them by more than the effect
   (pairing by seed pairs the data, not the time), so epoch times are reported as measurements only;
6. basis layers speed up the forward and backward passes: whole-model training-step and inference speedups in the
   training precision, with the interval over interleaved repeated timings (``basisconv.perf.bench.bench_models``);
7. the search is cheap next to training: the sensitivity sweep costs at most ``CHEAP_FRACTION`` of one baseline
   training (one measurement, so the verdict is the threshold's);
8. the fast proxy ranks layers in the same direction as retraining does (ours, the premise of the search): the
   bootstrap interval of the Spearman correlation between proxy drops and retrained drops lies above 0;
9. bf16 autocast leaves accuracy unchanged (ours; only when ``baseline_fp32`` was trained): equivalence.

Two run names can train one model: a comparison subset may come out as the same layers at the same ratios as another
variant (a spectral subset that is every layer at the all-layers ratio). ``same_models`` finds them in the basis
stage's plan (``basisconv.pipeline.plan``); an accuracy row whose comparison an earlier row already made with the same models says so
(``repeats``) and is not separate evidence: its sentence says it, the verdict table marks it, and the README's
reading line does not count it. A row whose two sides are one model is decided by that fact (``_mark_repeats``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from basisconv.core import evidence
from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED, interval_verdict
from basisconv.perf.bench import speedup_interval
from basisconv.pipeline import display, variants
from basisconv.pipeline.tables import plural

# the selection "keeps accuracy" when it loses at most this many points against the baseline (non-inferiority), and
# two schedules "match" when they differ by less than this either way (equivalence)
MARGIN = 1.0
# the search is "cheap" when it costs at most this share of one baseline training
CHEAP_FRACTION = 0.10

WORDS = {SUPPORTED: "This holds here", UNDECIDED: "This is not decided here", CONTRADICTED: "This does not hold here"}
# who makes a claim: its sentence's opening and its mark in the verdict table
SOURCES = {"paper": ("The paper claims", ""),
           "implied": ("The paper's search implies", "(implied) "),  # a comparison of this package's design
           "package": ("The search assumes", "(package) ")}  # an assumption of this package's search
# ``timed``: a speed claim, decided by timings of this machine's models: ``publish`` never borrows one into another run
# ``repeats``: why a row is not separate evidence (``same_models``), "" for every other row
COLUMNS = ["claim", "source", "comparison", "measured", "verdict", "sentence", "timed", "repeats"]
# the sentence's last words for a row that repeats another row's comparison with the same models
NOT_SEPARATE = "Not separate evidence"


def sentence(claim: str, measured: str, verdict: str, source: str = "paper", repeats: str = "") -> str:
    """The claim as its source's, then this run's verdict in the words it allows, then the evidence; ``repeats``:
    why the row is not separate evidence (``Decided.repeats``), said last.

    >>> sentence("all layers cost accuracy", "+2.10 points, 95 % CI [+1.50, +2.70] over 3 seeds", "supported")
    'The paper claims that all layers cost accuracy. This holds here: +2.10 points, 95 % CI [+1.50, +2.70] over 3 seeds.'
    """
    if verdict not in WORDS:
        raise ValueError(f"unknown verdict {verdict!r}; valid choices: {', '.join(WORDS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid choices: {', '.join(SOURCES)}")
    return f"{SOURCES[source][0]} that {claim}. {WORDS[verdict]}: {measured}." + (
        f" {NOT_SEPARATE}: {repeats}." if repeats else "")


@dataclass(frozen=True)
class Decided:
    """One decided claim: its words, where it comes from, what was compared, the evidence and the verdict;
    ``timed``: decided by timing models on this machine (a speed claim); ``repeats``: why the row is not separate
    evidence (it repeats an earlier row's comparison with the same models), else ""."""
    claim: str
    source: str
    comparison: str
    measured: str
    verdict: str
    timed: bool = False
    repeats: str = ""

    def row(self) -> dict:
        return {"claim": self.claim, "source": self.source, "comparison": self.comparison, "measured": self.measured,
                "verdict": self.verdict, "timed": self.timed, "repeats": self.repeats,
                "sentence": sentence(self.claim, self.measured, self.verdict, self.source, self.repeats)}


def same_models(plan) -> dict[str, str]:
    """``{run: earlier run}`` for every run of the basis stage's plan (``stages.basis.plan``: ``(variant, schedule,
    layers, ratio)`` in training order; ``ratio`` one number for every layer or one per layer) that trains the same
    model as an earlier run: the same layers in the same order at the same ratios, with the same schedule (the rest
    of a run's config is the basis section's, common to all; the order, because layers are converted in it and a
    random initialisation draws in it). Such runs get different training keys, since the config keeps the ratio as
    the plan gives it, but they are one configuration trained twice: their accuracies are one result, not two.

    >>> same_models([("all_layers", "switch", ["a", "b"], 0.5), ("spectral", "switch", ["a", "b"], {"a": .5, "b": .5}),
    ...              ("largest", "switch", ["b", "a"], {"a": 0.5, "b": 0.5})])
    {'spectral@switch': 'all_layers@switch'}
    """
    first, out = {}, {}
    for variant, schedule, layers, ratio in plan:
        if layers is None:  # the baselines: no basis layer
            continue
        name = variants.run_name(variant, schedule)
        model = (schedule, tuple((layer, float(ratio[layer] if isinstance(ratio, dict) else ratio))
                                 for layer in layers))
        if first.setdefault(model, name) != name:
            out[name] = first[model]
    return out


# what a model compared with itself decides, by the kind of comparison: it does not beat itself, and it lies within
# any margin of itself
_SELF = {"superiority": (CONTRADICTED, "a model does not beat itself"),
         "non-inferiority": (SUPPORTED, "a model is within any margin of itself"),
         "equivalence": (SUPPORTED, "a model is within any margin of itself")}


def _mark_repeats(rows: list[tuple], same: dict[str, str]) -> list[Decided]:
    """The decided rows of ``rows`` (``(a, b, kind, decided)``: the runs compared, ``a - b``, and the kind of
    comparison), given the runs that train another run's model (``same``: ``same_models``):

    - a row that an earlier row already decided with the same two models is marked with why it is not separate
      evidence (``repeats``), and the reading of the table does not count it;
    - a row whose two sides are one model is decided by that fact, whatever the seeds' noise: a model does not beat
      itself (``contradicted``) and is within any margin of itself (``supported``); its evidence says so."""
    def model(run):
        return same.get(run, run)

    seen, out = {}, []
    for a, b, kind, d in rows:
        if d is None:
            continue
        pair = (model(a), model(b))
        one = (f"`{b}` is the same model as `{a}` here" if model(b) == a else f"`{a}` is the same model as `{b}` here"
               if model(a) == b else f"`{a}` and `{b}` are the same model here")
        if pair[0] == pair[1]:
            verdict, why = _SELF[kind]
            d = Decided(d.claim, d.source, d.comparison,
                        f"{d.measured}; {one} (the same layers at the same ratios, the same schedule): {why}",
                        verdict, d.timed)
        elif pair in seen:
            a0, b0 = seen[pair]
            alias = " and ".join(f"`{x}` is the same model as `{y}`" for x, y in ((a, a0), (b, b0)) if x != y)
            d = Decided(d.claim, d.source, d.comparison, d.measured, d.verdict, d.timed,
                        f"{alias} here (the same layers at the same ratios, the same schedule), so this row repeats "
                        f"the row `{a0} - {b0}`")
        else:
            seen[pair] = (a, b)
        out.append(d)
    return out


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


def accuracy_claims(runs: pd.DataFrame, schedule: str = "switch", margin: float = MARGIN,
                    same: dict[str, str] | None = None) -> list[Decided]:
    """Claims 1-4 and 9 from the basis stage's per-seed rows (``variant``, ``seed``, ``test_acc`` in [0, 1],
    ``params``, ``macs``, ``train_time``); ``same``: the runs that train another run's model (``same_models``), whose
    rows say that they are not separate evidence."""
    acc = {v: dict(zip(g.seed, 100 * g.test_acc)) for v, g in runs.groupby("variant")}
    mt = runs.groupby("variant")[[c for c in ("params", "macs") if c in runs]].first()
    sel, allv = variants.run_name("selected", schedule), variants.run_name("all_layers", schedule)

    def paired(claim, a, b, kind, **kw):
        return a, b, kind, _paired(claim, a, b, kind, acc, **kw)

    out = [paired("applying basis convolutions to every layer costs accuracy", "baseline", allv, "superiority"),
           paired(f"the sensitivity-selected layers keep accuracy (read here as: within {margin:g} point of the "
                  "baseline)", sel, "baseline", "non-inferiority", margin=margin),
           paired("the selection beats basis layers on every layer", sel, allv, "superiority")]
    for v in sorted(acc, key=lambda r: (variants.point_of(r), r)):  # the main point first, then each front's
        point = variants.point_of(v)
        s = variants.run_name("selected", schedule, point)
        rv = variants.RunName.parse(v)
        if rv.schedule == schedule and rv.kind == "comparison" and s in mt.index:
            at = f" at the {point} budget" if point else ""
            out.append(paired(f"the selection{at} beats {display.look(v).describe} (`{v}`)", s, v,
                              "superiority", source="implied", note=f" ({_size(mt, s)} vs {_size(mt, v)})"))
    v = schedule_variant(runs)
    if v:  # the schedules compared on the selection if it was trained both ways (their cost: schedule_cost_claim)
        out.append(paired(f"the switch schedule matches training basis layers from scratch (read here as: within "
                          f"{margin:g} point)", variants.run_name(v, "switch"), variants.run_name(v, "scratch"),
                          "equivalence", margin=margin))
    out.append(paired(f"bf16 autocast leaves accuracy unchanged (read here as: within {margin:g} point)", "baseline",
                      "baseline_fp32", "equivalence", source="package", margin=margin))
    return _mark_repeats(out, same or {})


def schedule_variant(runs: pd.DataFrame) -> str | None:
    """The variant whose two schedules the claims compare: ``selected`` if it was trained both ways, else
    ``all_layers``, else none."""
    names = set(runs.variant)
    return next((v for v in ("selected", "all_layers")
                 if {variants.run_name(v, "switch"), variants.run_name(v, "scratch")} <= names), None)


def _rounds(m: dict | None) -> list[float]:
    """A timed model's per-round times (``round_ms``: a list, or its text in a CSV); empty when not recorded."""
    r = (m or {}).get("round_ms")
    if isinstance(r, str):
        r = [float(x) for x in r.strip("[]").split(",") if x.strip()]
    return [float(x) for x in r] if isinstance(r, (list, tuple)) else []


def schedule_cost_claim(bench: dict, variant: str | None, epochs: int, switch_epoch: int) -> list[Decided]:
    """Claim 4's cost half, from the benchmark's interleaved training-step timings in the training precision.

    A switch training runs ``S = switch_epoch`` dense epochs and ``E - S`` epochs of the basis model as the switch
    schedule leaves it (``<variant>_switched``: QR-chosen basis); a scratch training runs ``E`` epochs of the basis
    model from its initialisation (``<variant>``: leading basis channels). Per timing round ``r`` (each model timed
    once, in turn, so a slow spell hits all three alike) the cost of one step-epoch is
    ``switch_r = S t_base,r + (E - S) t_switched,r`` and ``scratch_r = E t_variant,r``; the ratio scratch / switch
    (above 1: the switch schedule is cheaper) gets the paired interval of ``bench.speedup_interval``. Data loading
    and evaluation, alike in both schedules, are left out, so the ratio is the training steps' only."""
    models, prec = bench.get("models", {}), bench.get("precision", "fp32")
    if not variant:
        return []
    names = ("baseline", f"{variant}_switched", variant)
    rows = [models.get(f"{m}.train_step") for m in names]
    if any(r is None for r in rows):
        return []
    E, S = int(epochs), int(switch_epoch)
    claim, comparison = ("the switch schedule costs less training time than scratch",
                         f"{variant}@scratch / {variant}@switch by training-step time, {prec}")
    span = f"{S} dense + {E - S} basis epochs against {E} basis epochs"
    macs = [r.get("macs") for r in rows]
    theory = ""
    if all(isinstance(m, (int, float)) and m > 0 for m in macs):
        theory = f"; {E * macs[2] / (S * macs[0] + (E - S) * macs[1]):.2f}x by MACs"
    base, switched, scratch = map(_rounds, rows)
    n = len(base)
    if n < 2 or len(switched) != n or len(scratch) != n:
        measured = f"no interval: {n} timing round(s) recorded ({span})"
        return [Decided(claim, "paper", comparison, measured, UNDECIDED, timed=True)]
    sw = [S * b + (E - S) * w for b, w in zip(base, switched)]
    sc = [E * c for c in scratch]
    point, lo, hi = speedup_interval(sc, sw)
    measured = (f"{point:.2f}x, 95 % CI [{lo:.2f}x, {hi:.2f}x] over {n} interleaved timing rounds ({span})"
                + theory)
    return [Decided(claim, "paper", comparison, measured, interval_verdict(lo, hi, 1.0), timed=True)]


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


SEARCH_CLAIM = (f"the sensitivity search is cheap next to training (read here as: at most {100 * CHEAP_FRACTION:.0f} % "
                "of one baseline training)")
SEARCH_COMPARISON = "sweep / one baseline training"


def search_claim(sel: dict, baseline: dict) -> list[Decided]:
    """Claim 7: one measurement against a threshold (``CHEAP_FRACTION`` of one baseline training)."""
    if "search_seconds" not in sel or not baseline.get("train_time"):
        return []
    frac = sel["search_seconds"] / baseline["train_time"]
    return [Decided(SEARCH_CLAIM, "paper", SEARCH_COMPARISON,
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
    """Every claim the results ``r`` (``basisconv.pipeline.render.load``) can decide, one row each:
    claim, source (paper or package), comparison, measured evidence, verdict, the sentence stating it, whether it
    is timed, and why it is not separate evidence (``r["same_models"]``: ``same_models`` of the basis stage's
    plan)."""
    runs = r["tables"]["runs"]
    decided = accuracy_claims(runs, schedule, same=r.get("same_models"))
    span = (r.get("basis") or {}).get("params_resolved") or {}
    if span:
        decided += schedule_cost_claim(r.get("benchmark") or {}, schedule_variant(runs), span["train"]["epochs"],
                                       span["basis"]["switch_epoch"])
    decided += speed_claims(r.get("benchmark") or {})
    decided += search_claim(r.get("selection") or {}, r.get("baseline") or {})
    faith = r.get("faithfulness") or {}
    proxy = (r.get("selection") or {}).get("params_resolved", {}).get("sensitivity", {}).get("selection_proxy")
    if proxy:
        decided += proxy_claim(faith, proxy)
    return pd.DataFrame([d.row() for d in decided], columns=COLUMNS)


def accuracy_markdown(runs: pd.DataFrame, schedule: str = "switch", same: dict[str, str] | None = None) -> str:
    """The accuracy claims alone (what the basis stage can decide by itself), as a verdict table; ``same``: as for
    ``accuracy_claims``."""
    return verdict_markdown({"tables": {"runs": runs}, "same_models": same or {}}, schedule)


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
    shown = t.assign(claim=[SOURCES[s][1] + c for c, s in zip(t.claim, t.source)],
                     verdict=[f"{v} ({NOT_SEPARATE.lower()}: same model)" if not_separate(x) else v
                              for v, x in zip(t.verdict, t.get("repeats", [""] * len(t)))])
    n = int(r["tables"]["runs"].groupby("variant").seed.nunique().min())
    note = ("" if n >= 2 else " With one seed no interval exists, so no accuracy claim can be decided.")
    return (shown[["claim", "comparison", "measured", "verdict"]].to_markdown(index=False)
            + "\n\nAccuracy: test accuracy in points, paired over seeds (same seed, same batch order), 95 % "
            "t-intervals. Speed: ratio of baseline to variant time, geometric mean over interleaved timing rounds "
            "(each round times every model once, in turn, so a slow spell of the machine slows them alike) with the "
            "95 % t-interval of the log ratio; 'by MACs': the same ratio of multiply-accumulates (one image's "
            "forward pass), the speedup the paper's cost analysis predicts. Training time: decided by these timings, "
            "not by the trainings' epoch times (trainings run at different times carry the machine's drift). "
            "(implied): a comparison this package adds, testing what the paper's search implies; (package): an "
            "assumption of this package's search, not a claim of the paper."
            + (f" '{NOT_SEPARATE.lower()}: same model': the row compares the same two models as an earlier row, one "
               "of them trained under another run name too (the same layers at the same ratios); the claim's "
               "sentence in the report says which, and the reading of the table does not count it."
               if any(map(not_separate, t.get("repeats", []))) else "")
            + note)


def not_separate(x) -> bool:
    """Whether a verdict table's ``repeats`` cell marks its row (a CSV read back gives NaN for "")."""
    return isinstance(x, str) and bool(x)
