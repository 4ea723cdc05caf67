"""Every claim of arXiv 2408.06024 this pipeline tests, decided by the run's evidence, and the one sentence allowed
to state each.

A claim is the paper's, not ours: the report states it as the paper's, then what this run decides, in the words its
verdict (``basisconv.core.evidence``) allows and no stronger:

- ``supported``: "holds here";
- ``not decided at this scale``: "is not decided here";
- ``contradicted``: "does not hold here".

``sentence`` is the only place these words are chosen; ``verdict_table`` decides every claim the run's results can
speak to (a claim whose runs were not trained is left out, not guessed), in four groups (``GROUPS``):

1. **training with basis layers** (schedules ``scratch`` and ``switch``): every layer in basis form costs accuracy
   (superiority of the baseline, paired over seeds); the selection keeps accuracy (non-inferiority within
   ``MARGIN`` points: this package's reading of "keeps accuracy", said so); it beats all layers; it beats the
   comparison subsets at its saving (``implied``: the comparisons are this package's); the switch schedule matches
   scratch (equivalence within ``MARGIN``);
2. **late conversion** (schedule ``late``: post-training conversion with a short fine-tune): the same accuracy
   claims, worded as what was tested;
3. **speed**: basis layers speed up the training step and inference (whole models, per precision), and a schedule's
   whole training costs less than dense training and than scratch (training steps and the search, from the
   benchmark's interleaved timing rounds; never from the trainings' epoch times, which carry the machine's drift
   between trainings run hours apart);
4. **the search**: it costs at most ``CHEAP_FRACTION`` of one baseline training (a proxy job and a training step
   timed in the same rounds); its proxy ranks layers as retraining does (``package``: the premise of the search).

Every interval and every verdict is ``basisconv.core.evidence``'s (``t_interval``, ``verdict``, ``interval_verdict``),
decided here, when a page is rendered, from the kept results: a threshold edit re-times nothing. Two run names can
be one model (a subset that comes out as another run's layers and ratios): the basis stage trains it once and marks
the second name's rows (``same_as``); a row whose comparison an earlier row already made with the same models says
so (``repeats``) and is not counted as separate evidence.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace

import pandas as pd

from basisconv.core import evidence
from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED, interval_verdict
from basisconv.perf.bench import speedup_interval
from basisconv.pipeline import display, variants
from basisconv.pipeline.tables import plural
from basisconv.pipeline.variants import RunName, run_name, start_epoch

# the selection "keeps accuracy" when it loses at most this many points against the baseline (non-inferiority), and
# two schedules "match" when they differ by less than this either way (equivalence)
MARGIN = 1.0
# the search is "cheap" when it costs at most this share of one baseline training
CHEAP_FRACTION = 0.10
# the proxy's rank correlation is decided only over this many layers (the percentile bootstrap undercovers below)
MIN_LAYERS = 10

WORDS = {SUPPORTED: "This holds here", UNDECIDED: "This is not decided here", CONTRADICTED: "This does not hold here"}
# who makes a claim: its sentence's opening and its mark in the verdict table
SOURCES = {"paper": ("The paper claims", ""),
           "implied": ("The paper's search implies", "(implied) "),  # a comparison of this package's design
           "package": ("The search assumes", "(package) ")}  # an assumption of this package's search
GROUPS = {"training": "Training with basis layers", "late": "Late conversion (post-training, one epoch of fine-tuning)",
          "speed": "Speed", "search": "The search"}
# ``timed``: a speed claim, decided by timings of this machine's models: ``publish`` never borrows one into another run
# ``repeats``: why a row is not separate evidence, "" for every other row
# ``value``: the evidence in one short cell (mean and interval), for the README's narrow table; an accuracy value is
# always the run minus what it is compared with, the baseline last (``baseline - x`` rows give ``x - baseline``)
COLUMNS = ["group", "claim", "source", "comparison", "measured", "verdict", "sentence", "timed", "repeats", "value"]
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
    """One decided claim: its group, words, where it comes from, what was compared, the evidence and the verdict;
    ``timed``: decided by timing models on this machine (a speed claim); ``repeats``: why the row is not separate
    evidence (it repeats an earlier row's comparison with the same models), else ""."""
    group: str
    claim: str
    source: str
    comparison: str
    measured: str
    verdict: str
    timed: bool = False
    repeats: str = ""
    value: str = ""  # the evidence in one short cell: ``-0.41 [-0.90, +0.08] pts``, ``1.31x [1.12, 1.53]``

    def row(self) -> dict:
        return {"group": self.group, "claim": self.claim, "source": self.source, "comparison": self.comparison,
                "measured": self.measured, "verdict": self.verdict, "timed": self.timed, "repeats": self.repeats,
                "sentence": sentence(self.claim, self.measured, self.verdict, self.source, self.repeats),
                "value": self.value}


def same_models(runs: pd.DataFrame) -> dict[str, str]:
    """``{run: earlier run}`` of the per-run table: every run name the basis stage trained as an earlier run's model
    (its ``same_as``), the one home of the same-model rule being ``plan.trained_twice``."""
    if "same_as" not in runs:
        return {}
    out = {}
    for v, g in runs.groupby("variant", sort=False):  # a random draw can be another run's model on one seed only
        firsts = {s if isinstance(s, str) else "" for s in g.same_as}
        if len(firsts) == 1 and (first := firsts.pop()):
            out[v] = first
    return out


def seed_accuracies(runs: pd.DataFrame) -> dict[str, dict[int, float]]:
    """``{run: {seed: test accuracy in %}}``: the one per-seed table every accuracy claim and sentence reads."""
    return {v: dict(zip(g.seed, 100 * g.test_acc)) for v, g in runs.groupby("variant")}


def _mark_repeats(rows: list[tuple], same: dict[str, str]) -> list[Decided]:
    """The decided rows of ``rows`` (``(a, b, kind, decided)``: the runs compared, ``a - b``, and the kind of
    comparison), given the runs that are another run's model (``same``):

    - a row that an earlier row already decided with the same two models is marked with why it is not separate
      evidence (``repeats``), and the reading of the table does not count it;
    - a row whose two sides are one model compares nothing: it is not decided, and marked as not separate evidence
      (the comparison the claim needs does not exist in this run)."""
    def model(run):
        return same.get(run, run)

    seen, out = {}, []
    for a, b, kind, d in rows:
        if d is None:
            continue
        pair = (model(a), model(b))
        if pair[0] == pair[1]:
            one = f"`{b}` is the same model as `{a}` here" if model(b) == a else f"`{a}` is the same model as `{b}` here"
            d = replace(d, verdict=UNDECIDED, repeats=f"{one} (the same layers at the same ratios, the same "
                                                      "schedule), so this row compares a model with itself")
        elif pair in seen:
            a0, b0 = seen[pair]
            alias = " and ".join(f"`{x}` is the same model as `{y}`" for x, y in ((a, a0), (b, b0)) if x != y)
            d = replace(d, repeats=f"{alias} here (the same layers at the same ratios, the same schedule), so "
                                   f"this row repeats the row `{a0} - {b0}`")
        else:
            seen[pair] = (a, b)
        out.append(d)
    return out


def _size(mt: pd.DataFrame, v: str) -> str:
    return f"{int(mt.loc[v, 'params']):,} params, {mt.loc[v, 'macs'] / 1e6:,.1f} M MACs"


def _paired(group, claim, a, b, kind, acc, source="paper", margin=MARGIN, note="") -> tuple:
    """``(a, b, kind, Decided | None)``: the paired difference ``a - b`` of test accuracy (points) over the seeds
    both have (``acc``: ``seed_accuracies``); None where either was not trained."""
    if a not in acc or b not in acc or not set(acc[a]) & set(acc[b]):
        return a, b, kind, None
    p = evidence.paired_difference(acc[a], acc[b])
    sign = -1 if a == "baseline" else 1  # one direction for every short value: the run minus the reference
    m, lo, hi = (sign * p.mean, *sorted((sign * p.low, sign * p.high)))
    value = f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}] pts" if p.n >= 2 else f"{m:+.2f} pts (1 seed)"
    return a, b, kind, Decided(group, claim, source, f"{a} - {b}{note}", p.text(), evidence.verdict(p, kind, margin),
                               value=value)


def _when(schedule: str, B: dict, E: int) -> str:
    if schedule == "scratch":
        return f"trained from scratch ({E} of {E} epochs in basis form)"
    e = start_epoch(B, schedule)
    if schedule == "switch":
        return f"trained after a switch at epoch {e} ({E - e} of {E} epochs in basis form)"
    return f"converted after epoch {e} of {E} and fine-tuned for the {plural(E - e, 'epoch')} left"


def accuracy_claims(runs: pd.DataFrame, B: dict, E: int, margin: float = MARGIN) -> list[Decided]:
    """The accuracy claims of every schedule the run trained, from the basis stage's per-seed rows (``variant``,
    ``seed``, ``test_acc`` in [0, 1], ``params``, ``macs``, ``same_as``), grouped: the training schedules, then
    the late conversion."""
    acc = seed_accuracies(runs)
    mt = runs.groupby("variant")[["params", "macs"]].first()
    rows = []
    for schedule in [s for s in variants.SCHEDULES if s in set(runs.get("schedule", []))]:
        group = "late" if schedule == "late" else "training"
        when = _when(schedule, B, E)
        allv, sel = run_name("all_layers", schedule, B=B), run_name("selected", schedule, B=B)
        rows.append(_paired(group, f"basis layers on every layer, {when}, cost accuracy", "baseline", allv,
                            "superiority", acc))
        rows.append(_paired(group, f"the sensitivity-selected layers, {when}, keep accuracy (read here as: within "
                                   f"{margin:g} point of the baseline)", sel, "baseline", "non-inferiority", acc,
                            margin=margin))
        rows.append(_paired(group, f"the selection beats basis layers on every layer, both {when}", sel, allv,
                            "superiority", acc))
        for v in sorted(acc, key=lambda r: (variants.point_of(r), r)):  # the main point's comparisons only
            rv = RunName.parse(v)
            if rv.schedule == schedule and rv.kind == "comparison" and not rv.point and sel in mt.index:
                rows.append(_paired(group, f"the selection beats {display.look(v).describe} (`{v}`), both {when}",
                                    sel, v, "superiority", acc, source="implied",
                                    note=f" ({_size(mt, sel)} vs {_size(mt, v)})"))
    for v in ("selected", "all_layers"):  # the two training schedules against each other
        a, b = run_name(v, "switch", B=B), run_name(v, "scratch", B=B)
        rows.append(_paired("training", f"{'the selection' if v == 'selected' else 'basis layers on every layer'} "
                                        f"trained after a switch at epoch {B['switch_epoch']} matches training them "
                                        f"from scratch (read here as: within {margin:g} point)", a, b, "equivalence",
                            acc, margin=margin))
    rows.append(_paired("training", f"bf16 autocast leaves accuracy unchanged (read here as: within {margin:g} "
                                    "point)", "baseline", "baseline_fp32", "equivalence", acc, source="package",
                        margin=margin))
    return _mark_repeats(rows, same_models(runs))


def rounds(m: dict | None) -> list[float]:
    """A timed model's per-round times (``round_ms``: a list, or its text in a CSV); empty when not recorded."""
    r = (m or {}).get("round_ms")
    if isinstance(r, str):
        r = [float(x) for x in r.strip("[]").split(",") if x.strip()]
    return [float(x) for x in r] if isinstance(r, (list, tuple)) else []


def _ratio_row(group, claim, comparison, num, den, bound, theory="", unit="x") -> Decided:
    """A claim on the ratio ``num / den`` of two per-round cost series (paired by round), decided by where its
    interval lies against ``bound`` (``evidence.interval_verdict``)."""
    n = len(num)
    if n < 2 or len(den) != n:
        return Decided(group, claim, "paper", comparison, f"no interval: {plural(n, 'timing round')} recorded",
                       UNDECIDED, timed=True, value="not timed")
    point, lo, hi = speedup_interval(num, den)
    measured = (f"{point:.2f}{unit}, 95 % CI [{lo:.2f}{unit}, {hi:.2f}{unit}] over {n} interleaved timing rounds"
                + theory)
    return Decided(group, claim, "paper", comparison, measured, interval_verdict(lo, hi, bound), timed=True,
                   value=f"{point:.2f}{unit} [{lo:.2f}, {hi:.2f}]")


def speed_claims(bench: dict, B: dict) -> list[Decided]:
    """The whole-model speed claims: for each all-layers and selected run at the main point, its training step and
    inference against the baseline's, in every precision timed (``models_by_precision``: ``<model>.<mode>`` ->
    ``round_ms``, ``theoretical_speedup``), decided from the kept rounds."""
    out, layers = [], bench.get("model_layers") or {}
    first_in = {"switch": 0, "scratch": 1, "late": 2}  # of one architecture, the switch's row is the one counted

    def order(key):
        model = key.rpartition(".")[0]
        return first_in.get(RunName.parse(model).schedule, 3) if "@" in model else 3
    for prec, models in (bench.get("models_by_precision") or {}).items():
        seen: dict[tuple, str] = {}  # (mode, the model's layers and ratios) -> the first model timed with them
        for key in sorted(models, key=order):
            model, _, mode = key.rpartition(".")
            if mode not in ("train_step", "inference") or model == "baseline" or "@" not in model:
                continue
            rn = RunName.parse(model)
            if rn.variant not in ("all_layers", "selected") or rn.point:
                continue
            base = models.get(f"baseline.{mode}")
            what = "training step (forward, backward, SGD step)" if mode == "train_step" else "inference"
            who = "basis layers on every layer" if rn.variant == "all_layers" else "the selected basis layers"
            theory = models[key].get("theoretical_speedup")
            d = _ratio_row("speed", f"{who} ({schedule_phrase(rn.schedule, B)}) speed up the {what} in {prec}",
                           f"baseline / {model}, {prec}", rounds(base), rounds(models[key]), 1.0,
                           f"; {theory:.2f}x by MACs" if isinstance(theory, (int, float)) else "")
            arch = tuple(sorted((layers.get(model) or {}).items()))
            first = seen.setdefault((mode, arch), model) if arch else model
            if first != model:  # one architecture under two schedules: one timing claim, measured twice
                d = replace(d, repeats=f"`{model}` has the same layers at the same ratios as `{first}`: the same "
                                       "architecture, timed again")
            elif mode == "inference":  # a model's two passes: one speed claim, counted once
                d = replace(d, repeats=f"`{model}`'s inference is the model of its training-step row, so the reading "
                                       "counts the two once")
            out.append(d)
    return out


def schedule_phrase(schedule: str, B: dict) -> str:
    """A schedule in a few words: ``scratch``, ``switch at epoch 12``, ``late conversion``."""
    return {"scratch": "scratch", "switch": f"switch at epoch {B['switch_epoch']}",
            "late": "late conversion"}[schedule]


def search_rounds(bench: dict) -> list[float]:
    """One search's cost per timing round (ms): the sweep's options times the mean of the proxy jobs timed in that
    round (a job at the first, middle and last candidate layer: its cost grows with depth)."""
    jobs = [rounds(m) for k, m in (bench.get("models") or {}).items() if k.endswith(".job")]
    n = bench.get("sweep_options")
    if not jobs or not n or len({len(j) for j in jobs}) != 1:
        return []
    return [n * statistics.fmean(js) for js in zip(*jobs)]


def timed_model(bench: dict, run: str, mode: str = "train_step") -> str:
    """The name ``run``'s ``mode`` timing is kept under: its own, or the earlier run's model it was timed as
    (``timed_as``)."""
    return run if f"{run}.{mode}" in (bench.get("models") or {}) else (bench.get("timed_as") or {}).get(run, run)


def timed_names(r: dict) -> dict[str, str]:
    """``{run: the model it was timed as}`` of the results ``r``: the benchmark's ``timed_as``, and the runs' twins
    (``same_models``) where the benchmark recorded none."""
    return {**same_models(r["tables"]["runs"]), **(r["benchmark"].get("timed_as") or {})}


def training_rounds(bench: dict, model: str, epochs: int) -> list[float]:
    """``epochs`` epochs of training steps of ``model`` per timing round (ms): the training split's images at the
    step time per image of the benchmark's batch (evaluation passes, alike in every schedule, left out). A run that
    is an earlier run's model was timed under that name (``timed_as``)."""
    m = (bench.get("models") or {}).get(f"{timed_model(bench, model)}.train_step")
    n, bs = bench.get("train_images"), bench.get("params_resolved", {}).get("benchmark", {}).get("model_batch_size")
    if not m or not n or not bs:
        return []
    return [epochs * n / bs * t for t in rounds(m)]


def cost_claims(bench: dict, B: dict, E: int) -> list[Decided]:
    """What a whole training costs, from the benchmark's interleaved rounds: per round ``r``,

        dense_r   = E t_base,r
        switch_r  = S t_base,r + (E - S) t_switch,r + search_r      (the selection searched at epoch S)
        scratch_r = S t_base,r + E t_scratch,r + search_r           (its search needed S dense epochs first)
        late_r    = E t_base,r + (E - L) t_late,r + search_r     (its selection is searched on the trained model)

    for the selection of each schedule (``search_r``: ``search_rounds``); all layers need no search. Each schedule's
    cost against dense training and the switch's against scratch are ratios paired by round, decided against 1
    (above 1: the schedule is cheaper)."""
    if not bench.get("models"):
        return []
    base = training_rounds(bench, "baseline", 1)
    search = search_rounds(bench)
    cost, out = {}, []
    for schedule in variants.SCHEDULES:
        for v in ("selected", "all_layers"):
            name = run_name(v, schedule, B=B)
            steps = training_rounds(bench, name, 1)
            if not steps or not base:
                continue
            e = start_epoch(B, schedule)
            # the dense epochs the run needs before its basis layers: for the selection, those its search needed too
            # (scratch: the switch-epoch snapshot it is searched on; late: the trained model, all E epochs)
            dense_before = ({"scratch": B["switch_epoch"], "late": E}.get(schedule, e) if v == "selected" else e)
            extra = search if v == "selected" else [0.0] * len(base)
            if len(extra) != len(base):
                continue
            cost[name] = [dense_before * b + (E - e) * t + s for b, t, s in zip(base, steps, extra)]
            if v == "all_layers" and schedule == "scratch":
                continue  # E basis epochs against E dense ones: the training-step speed row already says it
            dense = [E * b for b in base]
            what = ("the selection" if v == "selected" else "basis layers on every layer")
            search_words = (f", counting its search and the {plural(dense_before, 'dense epoch')} it needed"
                            if v == "selected" else "")
            out.append(_ratio_row("speed", f"training {what} ({schedule_phrase(schedule, B)}) costs less than "
                                           f"dense training{search_words}", f"dense / {name}, training steps",
                                  dense, cost[name], 1.0))
    for v in ("selected", "all_layers"):
        a, b = run_name(v, "switch", B=B), run_name(v, "scratch", B=B)
        if a in cost and b in cost:
            out.append(_ratio_row("speed", f"the switch schedule costs less training time than scratch "
                                           f"({'the selection' if v == 'selected' else 'every layer'})",
                                  f"{b} / {a}, training steps", cost[b], cost[a], 1.0))
    return out


SEARCH_CLAIM = (f"the sensitivity search is cheap next to training (read here as: at most {100 * CHEAP_FRACTION:.0f} % "
                "of one baseline training)")


def search_claim(bench: dict, E: int) -> list[Decided]:
    """The search's cost against one baseline training, paired by timing round: supported when the interval of
    training / search lies above ``1 / CHEAP_FRACTION``; "not decided" until both were timed in the same rounds."""
    search, train = search_rounds(bench), training_rounds(bench, "baseline", E)
    if not search or not train:
        return [Decided("search", SEARCH_CLAIM, "paper", "one sweep / one baseline training",
                        "not timed in the benchmark's rounds (no proxy job timed beside a training step)", UNDECIDED,
                        timed=True, value="not timed")]
    d = _ratio_row("search", SEARCH_CLAIM, "one baseline training / one sweep, timing rounds", train, search,
                   1 / CHEAP_FRACTION)
    if len(search) >= 2 and len(train) == len(search):
        frac, lo, hi = (1 / x for x in speedup_interval(train, search))
        n, imgs = bench.get("sweep_options"), bench.get("search_images")
        d = Decided(d.group, d.claim, d.source, "one sweep / one baseline training, timing rounds",
                    f"{100 * frac:.1f} %, 95 % CI [{100 * hi:.1f} %, {100 * lo:.1f} %] over {len(search)} interleaved "
                    f"timing rounds ({n} options of the selection proxy on {imgs or 0:,} images, costed at the mean of "
                    "jobs at the first, middle and last candidate layer, an approximation the interval does not "
                    "cover)", d.verdict, timed=True, value=f"{100 * frac:.1f} % [{100 * hi:.1f}, {100 * lo:.1f}]")
    return [d]


def proxy_claim(faith: dict, proxy: str) -> list[Decided]:
    """The selection proxy's Spearman correlation with retrained drops, by its bootstrap interval."""
    v, lo, hi = (faith.get(f"spearman_{proxy}{s}") for s in ("", "_ci_low", "_ci_high"))
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    n = faith.get("n_layers", "?")
    at = "".join([f" at ratio {faith['ratio']:g}" if "ratio" in faith else "",
                  f" for {plural(faith['retrain_epochs'], 'epoch')}" if "retrain_epochs" in faith else ""])
    value = f"rho {v:.2f}" + ("" if lo is None or hi is None or math.isnan(lo) or math.isnan(hi)
                              else f" [{lo:.2f}, {hi:.2f}]")
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        measured, verdict = f"Spearman {v:.2f} over {n} layers (no bootstrap interval)", UNDECIDED
    elif not isinstance(n, int) or n < MIN_LAYERS:
        measured = (f"Spearman {v:.2f}, 95 % bootstrap CI [{lo:.2f}, {hi:.2f}] over {n} layers: too few layers for "
                    f"the percentile bootstrap (it undercovers below {MIN_LAYERS})")
        verdict = UNDECIDED
    else:
        measured = f"Spearman {v:.2f}, 95 % bootstrap CI [{lo:.2f}, {hi:.2f}] over {n} layers"
        verdict = interval_verdict(lo, hi, 0.0)
    return [Decided("search", f"the `{proxy}` proxy ranks layers in the same direction as retraining them{at} (rank "
                    "correlation above 0)", "package", f"{proxy} drop vs retrained drop", measured, verdict,
                    value=value)]


def verdict_table(r: dict) -> pd.DataFrame:
    """Every claim the results ``r`` (``basisconv.pipeline.render.load``) can decide, one row each, in the order of
    ``GROUPS``: group, claim, source, comparison, measured evidence, verdict, the sentence stating it, whether it is
    timed, and why it is not separate evidence."""
    runs = r["tables"]["runs"]
    P = (r.get("basis") or {}).get("params_resolved") or {}
    decided = []
    if P:
        B, E = P["basis"], P["train"]["epochs"]
        decided += accuracy_claims(runs, B, E)
        bench = r.get("benchmark") or {}
        decided += speed_claims(bench, B) + cost_claims(bench, B, E) + search_claim(bench, E)
    faith = r.get("faithfulness") or {}
    proxy = (r.get("selection") or {}).get("params_resolved", {}).get("sensitivity", {}).get("selection_proxy")
    if proxy:
        decided += proxy_claim(faith, proxy)
    order = {g: i for i, g in enumerate(GROUPS)}
    decided = sorted(decided, key=lambda d: order[d.group])  # stable: each group keeps its rows' order
    return pd.DataFrame([d.row() for d in decided], columns=COLUMNS)


TABLE_NOTE = ("Accuracy: test accuracy in points, paired over seeds (same seed, same batch order), 95 % t-intervals. "
              "Speed and cost: ratios of the baseline's (or dense training's) time to the variant's, geometric mean "
              "over interleaved timing rounds (each round times every model once, in turn, so a slow spell of the "
              "machine slows them alike) with the 95 % t-interval of the log ratio; 'by MACs': the same ratio of "
              "multiply-accumulates, the speedup the paper's cost analysis predicts. A whole training's cost is its "
              "epochs of training steps at these step times plus, for the selection, one search (its proxy jobs "
              "timed in the same rounds); evaluation passes, alike in every schedule, are left out. (implied): a "
              "comparison this package adds, testing what the paper's search implies; (package): an assumption of "
              "this package's search, not a claim of the paper.")


def verdict_markdown(r: dict, table: pd.DataFrame | None = None, extra: pd.DataFrame | None = None) -> str:
    """The verdict table for people, one table per group: claim, evidence, verdict (the sentences are the report's
    prose). ``table``: the run's verdict table when already computed; ``extra``: rows of other runs' verdict tables
    (same columns) appended, as ``publish`` borrows them."""
    t = verdict_table(r) if table is None else table
    if extra is not None and len(extra):
        t = pd.concat([t, extra], ignore_index=True)
    if not len(t):
        return "No claim can be decided from this run (too few variants were trained)."
    shown = t.assign(claim=[SOURCES[s][1] + c for c, s in zip(t.claim, t.source)],
                     verdict=[f"{v} ({NOT_SEPARATE.lower()}: same model)" if not_separate(x) else v
                              for v, x in zip(t.verdict, t.get("repeats", [""] * len(t)))])
    parts = []
    for g, title in GROUPS.items():
        rows = shown[shown.get("group", pd.Series(["training"] * len(shown))) == g]
        if len(rows):
            parts.append(f"**{title}**\n\n" + rows[["claim", "comparison", "measured", "verdict"]].to_markdown(
                index=False))
    n = int(r["tables"]["runs"].groupby("variant").seed.nunique().min())
    note = ("" if n >= 2 else " With one seed no interval exists, so no accuracy claim can be decided.")
    repeats = (f" '{NOT_SEPARATE.lower()}: same model': the row compares the same two models as an earlier row, one "
               "of them trained under another run name too (the same layers at the same ratios); the claim's "
               "sentence in the report says which, and the reading of the table does not count it."
               if any(map(not_separate, t.get("repeats", []))) else "")
    return "\n\n".join(parts) + "\n\n" + TABLE_NOTE + repeats + note


HEADLINE_ROWS = 12  # the README's table: the paper's main claims, one row each; the report holds every row


def headline(t: pd.DataFrame, B: dict, precision: str, timed_as: dict | None = None) -> pd.DataFrame:
    """The rows of the verdict table ``t`` that the README shows, at most ``HEADLINE_ROWS``, each with a short name
    (``short``) and its short evidence (``measured``: an accuracy difference is the run minus what it is compared
    with): what converting every layer costs under each schedule, whether the selection keeps accuracy under the
    training schedules, the selection against every layer and the matched subsets after the
    switch, switch against scratch, the selection's training-step speedup and whole-training speedup in the training
    ``precision``, and the search's cost. A row the run did not decide is left out; the full table is the report's.
    ``timed_as``: ``{run: the model it was timed as}`` (the benchmark's, or the runs' twins), since a speed row names
    the model that was timed."""
    def r(v, s):
        return run_name(v, s, B=B)
    S = B["switch_epoch"]
    sel, allv = r("selected", "switch"), r("all_layers", "switch")
    timed = (timed_as or {}).get(sel, sel)
    m = f"{MARGIN:g} pt"
    wanted = [  # (short name, comparison prefix, words the claim holds)
        ("every layer, from scratch: costs accuracy", f"baseline - {r('all_layers', 'scratch')}", ""),
        (f"every layer, switch at epoch {S}: costs accuracy", f"baseline - {allv}", ""),
        (f"selection, from scratch: at most {m} below dense", f"{r('selected', 'scratch')} - baseline", ""),
        (f"selection, switch at epoch {S}: at most {m} below dense", f"{sel} - baseline", ""),
        ("selection beats every layer (switch)", f"{sel} - {allv}", ""),
        ("selection beats largest-first (switch)", f"{sel} - {r('largest', 'switch')}", ""),
        ("selection beats random layers (switch)", f"{sel} - {r('random0', 'switch')}", ""),
        (f"switch within {m} of scratch (selection)", f"{sel} - {r('selected', 'scratch')}", ""),
        ("every layer, late conversion: costs accuracy", f"baseline - {r('all_layers', 'late')}", ""),
        (f"selection's train step faster than dense, in {precision}", f"baseline / {timed}, {precision}",
         "training step"),
        ("switch training cheaper than dense, search included", f"dense / {timed}, training steps", ""),
        ("search costs at most 10 % of one training", "one sweep / one baseline training", ""),
    ]
    rows = []
    for short, prefix, words in wanted:
        hit = t[t.comparison.str.startswith(prefix) & t.claim.str.contains(words, regex=False)]
        if len(hit):
            row = hit.iloc[0].to_dict()
            rows.append(row | {"short": short, "measured": str(row["value"])})
    return pd.DataFrame(rows[:HEADLINE_ROWS], columns=[*t.columns, "short"])


def not_separate(x) -> bool:
    """Whether a verdict table's ``repeats`` cell marks its row (a CSV read back gives NaN for "")."""
    return isinstance(x, str) and bool(x)
