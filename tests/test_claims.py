"""Known-answer tests of the claim sentences and the verdict table (issue 20: no sentence stronger than its
verdict): supporting, undecided and contradicting data, and the words each may use."""
import math

import pandas as pd
import pytest

from basisconv.core.evidence import CONTRADICTED, SUPPORTED, UNDECIDED
from basisconv.pipeline import claims


@pytest.mark.parametrize("verdict,must,must_not", [
    (SUPPORTED, "This holds here", ["does not hold", "not decided"]),
    (UNDECIDED, "This is not decided here", ["This holds here", "does not hold"]),
    (CONTRADICTED, "This does not hold here", ["This holds here", "not decided"]),
])
def test_sentence_uses_only_the_words_its_verdict_allows(verdict, must, must_not):
    s = claims.sentence("all layers cost accuracy", "+1.00 points", verdict)
    assert s.startswith("The paper claims that all layers cost accuracy.") and must in s
    assert not any(w in s for w in must_not), s
    assert s.endswith(": +1.00 points.")


def test_sentence_refuses_unknown_verdict_and_source():
    with pytest.raises(ValueError, match="unknown verdict 'maybe'; valid choices: supported, not decided"):
        claims.sentence("x", "y", "maybe")
    with pytest.raises(ValueError, match="unknown source 'blog'; valid choices: paper, implied, package"):
        claims.sentence("x", "y", SUPPORTED, source="blog")
    assert claims.sentence("x", "y", SUPPORTED, source="package").startswith("The search assumes that x.")
    # a comparison the package designed is not put in the paper's mouth
    assert claims.sentence("x", "y", SUPPORTED, source="implied").startswith("The paper's search implies that x.")


def _runs(spec, seeds=(0, 1, 2), shifts=(0.0, 3.0, -2.0)):
    """``spec``: {variant: (accuracy %, per-seed extra or None, params, macs, train_time, basis_epoch_time)}."""
    rows = []
    for s, sh in zip(seeds, shifts):
        for v, (acc, extra, params, macs, tt, et) in spec.items():
            rows.append({"variant": v, "seed": s, "test_acc": (acc + sh + (extra[s] if extra else 0)) / 100,
                         "params": params, "macs": macs, "train_time": tt + s, "basis_epoch_time": et + 0.1 * s})
    return pd.DataFrame(rows)


SPEC = {"baseline": (90.0, None, 1000, 5e6, 100.0, 10.0),
        "all_layers@switch": (85.0, None, 500, 2e6, 90.0, 8.0),
        "selected@switch": (89.8, None, 800, 4e6, 95.0, 9.0),
        "selected@scratch": (89.7, {0: 0.1, 1: -0.1, 2: 0.0}, 800, 4e6, 120.0, 9.0),
        "random0@switch": (88.0, {0: 0.0, 1: 0.5, 2: 0.0}, 800, 3e6, 95.0, 9.0),
        "spectral@switch": (89.8, {0: 0.4, 1: -0.5, 2: 0.1}, 800, 4.5e6, 95.0, 9.0)}


def test_accuracy_claims_known_answers():
    t = {d.comparison.split(" (")[0]: d for d in claims.accuracy_claims(_runs(SPEC))}
    assert t["baseline - all_layers@switch"].verdict == SUPPORTED  # +5 every seed
    assert t["selected@switch - baseline"].verdict == SUPPORTED  # -0.2, within the 1-point margin
    assert t["selected@switch - random0@switch"].verdict == SUPPORTED
    assert t["selected@switch - spectral@switch"].verdict == UNDECIDED  # 0 on average, spread over seeds
    assert "800 params, 4.0 M MACs vs 800 params, 3.0 M MACs" in t["selected@switch - random0@switch"].comparison
    assert t["selected@switch - selected@scratch"].verdict == SUPPORTED  # equivalence within 1 point
    # the margin is ours, and the claim says so; the comparison subsets are ours, testing what the paper implies
    assert "(read here as: within 1 point of the baseline)" in t["selected@switch - baseline"].claim
    assert {t[k].source for k in ("selected@switch - random0@switch", "selected@switch - spectral@switch")} == \
        {"implied"}
    assert {t[k].source for k in ("baseline - all_layers@switch", "selected@switch - all_layers@switch")} == {"paper"}
    # no claim from training times: trainings run apart carry the machine's drift (schedule_cost_claim times them)
    assert not any(" s, 95 % CI" in d.measured for d in t.values())
    drift = _runs(SPEC).assign(train_time=lambda d: d.train_time * (1 + d.seed), basis_epoch_time=99.0)
    assert [d.row() for d in claims.accuracy_claims(drift)] == [d.row() for d in claims.accuracy_claims(_runs(SPEC))]
    assert "baseline - baseline_fp32" not in t  # no fp32 runs, no bf16 claim
    worse = dict(SPEC, **{"selected@switch": (86.0, None, 800, 4e6, 95.0, 9.0)})
    t2 = {d.comparison.split(" (")[0]: d for d in claims.accuracy_claims(_runs(worse))}
    assert t2["selected@switch - baseline"].verdict == CONTRADICTED  # -4 points every seed
    assert "does not hold here" in t2["selected@switch - baseline"].row()["sentence"]
    one = claims.accuracy_claims(_runs(SPEC, seeds=(0,), shifts=(0.0,)))
    assert one and {d.verdict for d in one} == {UNDECIDED}
    assert all("not decided here" in d.row()["sentence"] for d in one)


def _timed(base, switched, scratch, macs=(100e6, 80e6, 90e6), as_text=False):
    """A benchmark summary with per-round train-step times (ms) of the baseline and both forms of ``selected``."""
    def row(rounds, m):
        return {"round_ms": str(list(rounds)) if as_text else list(rounds), "macs": m, "measured_speedup": 1.0,
                "theoretical_speedup": 1.0, "speedup_low": 0.9, "speedup_high": 1.1, "repeats": len(rounds)}
    return {"precision": "bf16", "models": {"baseline.train_step": row(base, macs[0]),
                                            "selected_switched.train_step": row(switched, macs[1]),
                                            "selected.train_step": row(scratch, macs[2])}}


@pytest.mark.parametrize("switched,scratch,verdict", [
    # 1 dense + 3 basis epochs (cost 100 + 3 * 60 = 280 per round) against 4 basis epochs (4 * 80 = 320): cheaper
    ([60, 61, 59], [80, 80, 81], SUPPORTED),
    # the dense epoch is what a switch pays: with basis steps alike (4 * 60 = 240 < 280) it costs more
    ([60, 61, 59], [60, 60, 61], CONTRADICTED),
    ([60, 80, 40], [70, 55, 75], UNDECIDED),  # the rounds disagree
])
def test_schedule_cost_claim_known_answers(switched, scratch, verdict):
    d, = claims.schedule_cost_claim(_timed([100, 101, 99], switched, scratch), "selected", epochs=4, switch_epoch=1)
    assert d.verdict == verdict and d.timed and d.source == "paper"
    assert d.claim == "the switch schedule costs less training time than scratch"
    assert d.comparison == "selected@scratch / selected@switch by training-step time, bf16"
    assert "over 3 interleaved timing rounds (1 dense + 3 basis epochs against 4 basis epochs)" in d.measured
    assert d.measured.endswith("; 1.06x by MACs")  # 4 * 90 M against 100 M + 3 * 80 M (inverted: 0.94x)
    assert {SUPPORTED: "This holds here", UNDECIDED: "not decided", CONTRADICTED: "does not hold"}[verdict] \
        in d.row()["sentence"]


def test_schedule_cost_claim_edge_cases():
    rounds = ([100, 101, 99], [60, 61, 59], [80, 80, 81])
    text, = claims.schedule_cost_claim(_timed(*rounds, as_text=True), "selected", 4, 1)  # round_ms read from a CSV
    listed, = claims.schedule_cost_claim(_timed(*rounds), "selected", 4, 1)
    assert text == listed
    one, = claims.schedule_cost_claim(_timed([100], [60], [80]), "selected", 4, 1)
    assert one.verdict == UNDECIDED and one.measured.startswith("no interval: 1 timing round(s)")
    old = _timed(*rounds)
    for m in old["models"].values():  # results of code that kept no per-round times
        del m["round_ms"]
    assert claims.schedule_cost_claim(old, "selected", 4, 1)[0].verdict == UNDECIDED
    assert claims.schedule_cost_claim(_timed(*rounds), None, 4, 1) == []  # no variant trained both ways
    assert claims.schedule_cost_claim({"models": {}}, "selected", 4, 1) == []  # nothing timed
    assert claims.schedule_variant(_runs(SPEC)) == "selected"
    assert claims.schedule_variant(_runs({k: v for k, v in SPEC.items() if k != "selected@scratch"})) is None


@pytest.mark.parametrize("low,high,verdict", [(1.02, 1.10, SUPPORTED), (0.95, 1.04, UNDECIDED),
                                              (0.80, 0.97, CONTRADICTED), (math.nan, math.nan, UNDECIDED)])
def test_speed_claims_read_the_interval(low, high, verdict):
    bench = {"precision": "bf16", "models": {"all_layers.train_step": {
        "measured_speedup": (low + high) / 2 if not math.isnan(low) else 1.0, "theoretical_speedup": 1.86,
        "speedup_low": low, "speedup_high": high, "repeats": 3}}}
    d, = claims.speed_claims(bench)
    assert d.verdict == verdict and d.comparison == "baseline / all_layers, bf16"
    assert ("no interval" in d.measured) == math.isnan(low)
    assert d.timed and d.row()["timed"]  # a speed verdict of this machine: publish never borrows it


def test_speed_claims_time_the_models_the_accuracy_claims_report():
    """With ``all_layers_switched`` timed (the QR basis the switch schedule trains), its row is the all-layers claim;
    the fresh ``all_layers`` (leading basis channels) stays in the tables only."""
    row = {"measured_speedup": 1.2, "theoretical_speedup": 1.76, "speedup_low": 1.1, "speedup_high": 1.3, "repeats": 3}
    bench = {"precision": "bf16", "models": {"all_layers.train_step": {**row, "theoretical_speedup": 1.86},
                                             "all_layers_switched.train_step": row}}
    d, = claims.speed_claims(bench)
    assert d.comparison == "baseline / all_layers_switched, bf16" and "1.76x by MACs" in d.measured
    assert d.claim == "basis layers on every layer as the switch schedule trains them speed up the training step " \
                      "(forward, backward, SGD step)"


@pytest.mark.parametrize("seconds,verdict", [(10.0, SUPPORTED), (50.0, CONTRADICTED)])
def test_search_claim_threshold(seconds, verdict):
    d, = claims.search_claim({"search_seconds": seconds}, {"train_time": 200.0})
    assert d.verdict == verdict and f"{100 * seconds / 200:.1f} %" in d.measured


@pytest.mark.parametrize("low,high,verdict", [(0.2, 0.9, SUPPORTED), (-0.3, 0.8, UNDECIDED), (-0.9, -0.1, CONTRADICTED)])
def test_proxy_claim(low, high, verdict):
    f = {"spearman_zero_shot": 0.5, "spearman_zero_shot_ci_low": low, "spearman_zero_shot_ci_high": high,
         "n_layers": 16}
    d, = claims.proxy_claim(f, "zero_shot")
    assert d.verdict == verdict and d.source == "package" and "over 16 layers" in d.measured
    assert d.claim == ("the `zero_shot` proxy ranks layers in the same direction as retraining them (rank correlation "
                       "above 0)")  # results without the retraining's ratio and length: nothing invented
    d, = claims.proxy_claim({**f, "ratio": 0.5, "retrain_epochs": 1}, "zero_shot")
    assert d.claim == ("the `zero_shot` proxy ranks layers in the same direction as retraining them at ratio 0.5 for "
                       "1 epoch (rank correlation above 0)")  # what was tested: one ratio, a short retraining
    assert claims.proxy_claim({}, "zero_shot") == []


def test_verdict_table_and_markdown():
    r = {"tables": {"runs": _runs(SPEC)}, "benchmark": {}, "baseline": {"train_time": 100.0},
         "selection": {"search_seconds": 5.0, "params_resolved": {"sensitivity": {"selection_proxy": "zero_shot"}}},
         "faithfulness": {"spearman_zero_shot": 0.5, "spearman_zero_shot_ci_low": 0.1,
                          "spearman_zero_shot_ci_high": 0.8, "n_layers": 4}}
    t = claims.verdict_table(r)
    assert list(t.columns) == claims.COLUMNS and len(t) == 8
    assert not t.timed.any()  # no benchmark in these results: no speed claim, no schedule cost
    assert all(s.startswith(("The paper claims that", "The search assumes that", "The paper's search implies that"))
               for s in t.sentence)
    assert not any("epoch" in c and "time" in c for c in t.claim)  # epoch times decide nothing
    # with the benchmark's rounds and the basis stage's span, the schedules' cost is decided by timing
    timed = claims.verdict_table({**r, "benchmark": _timed([100, 101, 99], [60, 61, 59], [80, 80, 81]),
                                  "basis": {"params_resolved": {"train": {"epochs": 4},
                                                                "basis": {"switch_epoch": 1}}}})
    cost = timed[timed.claim == "the switch schedule costs less training time than scratch"]
    assert len(cost) == 1 and cost.timed.all() and (cost.verdict == SUPPORTED).all()
    md = claims.verdict_markdown(r)
    assert "(package) the `zero_shot` proxy ranks layers" in md and "| verdict" in md
    assert "(implied) the selection beats random layers" in md
    empty = {"tables": {"runs": pd.DataFrame(columns=["variant", "seed", "test_acc", "params", "macs",
                                                      "train_time"])}}
    assert "No claim can be decided" in claims.verdict_markdown(empty)
    # rows of another run append to the one table, under the same reading notes
    other = t.iloc[:1].assign(claim="a claim only the other run decides", source="package")
    both = claims.verdict_markdown(r, table=t, extra=other)
    assert len(both.split("\n\n")[0].splitlines()) == len(md.split("\n\n")[0].splitlines()) + 1
    assert "| (package) a claim only the other run decides" in both
    assert both.split("\n\n", 1)[1] == md.split("\n\n", 1)[1]
    assert claims.verdict_markdown(r, table=t, extra=t.iloc[:0]) == md


@pytest.mark.timeout(60)
def test_front_points_compare_within_their_budget():
    """A front's comparison subset is matched to the selection at its own budget, so it is compared with that one."""
    spec = dict(SPEC, **{"selected~ml2@switch": (88.0, None, 600, 3e6, 95.0, 9.0),
                         "random0~ml2@switch": (85.0, None, 600, 2e6, 95.0, 9.0)})
    t = {d.comparison.split(" (")[0]: d for d in claims.accuracy_claims(_runs(spec))}
    d = t["selected~ml2@switch - random0~ml2@switch"]
    assert d.verdict == SUPPORTED and d.claim.startswith("the selection at the ml2 budget beats")
    assert "selected@switch - random0~ml2@switch" not in t


def test_speed_claim_point_is_the_centre_of_its_interval():
    """The point shown is the rounds' geometric mean (the interval's centre on the log scale); results without it
    name the ratio of medians they show instead."""
    row = {"measured_speedup": 1.39, "speedup_geomean": 1.15, "theoretical_speedup": 1.76, "speedup_low": 0.69,
           "speedup_high": 1.91, "repeats": 3}
    d, = claims.speed_claims({"precision": "bf16", "models": {"all_layers.inference": row}})
    assert d.measured.startswith("1.15x, 95 % CI [0.69x, 1.91x]") and "1.39" not in d.measured
    old = {k: v for k, v in row.items() if k != "speedup_geomean"}
    d, = claims.speed_claims({"precision": "bf16", "models": {"all_layers.inference": old}})
    assert d.measured.startswith("1.39x (ratio of medians), 95 % CI")


def test_same_models_finds_one_model_under_two_run_names():
    """The basis stage's plan: a comparison subset that is every layer at the all-layers ratio is the all-layers
    model (the ratio given as one number or per layer), only with the same schedule and the layers in the same order
    (layers are converted, and randomly initialised, in that order)."""
    layers = ["a", "b", "c"]
    plan = [("baseline", "-", None, None), ("all_layers", "switch", layers, 0.5),
            ("all_layers", "scratch", layers, 0.5), ("selected", "switch", ["a", "c"], {"a": 0.5, "c": 0.25}),
            ("random0", "switch", ["a", "c"], {"c": 0.25, "a": 0.5}), ("random1", "switch", ["c", "a"],
                                                                        {"a": 0.5, "c": 0.25}),
            ("largest", "switch", ["a"], {"a": 0.5}),
            ("spectral", "switch", layers, {"a": 0.5, "b": 0.5, "c": 0.5}),
            ("spectral", "scratch", layers, {"a": 0.5, "b": 0.5, "c": 0.25})]
    assert claims.same_models(plan) == {"random0@switch": "selected@switch", "spectral@switch": "all_layers@switch"}
    assert claims.same_models(plan[:4]) == {}


def test_a_row_with_the_same_models_is_not_separate_evidence():
    """Known answers: the spectral subset equal to all layers repeats the row against all layers, and a subset equal
    to the selection compares a model with itself; both say so, and the others do not change."""
    spec = dict(SPEC, **{"spectral@switch": SPEC["all_layers@switch"]})
    plain = {d.comparison.split(" (")[0]: d for d in claims.accuracy_claims(_runs(spec))}
    t = {d.comparison.split(" (")[0]: d for d in
         claims.accuracy_claims(_runs(spec), same={"spectral@switch": "all_layers@switch"})}
    rep = t["selected@switch - spectral@switch"]
    assert rep.repeats == ("`spectral@switch` is the same model as `all_layers@switch` here (the same layers at the "
                           "same ratios, the same schedule), so this row repeats the row "
                           "`selected@switch - all_layers@switch`")
    assert rep.row()["sentence"].endswith(f"over 3 seeds. Not separate evidence: {rep.repeats}.")
    assert (rep.measured, rep.verdict) == (t["selected@switch - all_layers@switch"].measured, SUPPORTED)
    assert {k for k, d in t.items() if d.repeats} == {"selected@switch - spectral@switch"}
    assert {k: (d.measured, d.verdict) for k, d in t.items()} == {k: (d.measured, d.verdict) for k, d in plain.items()}
    assert not any(d.repeats for d in plain.values())  # without the plan's twins nothing is marked
    # a subset that is the selection's own model: decided by that fact (it does not beat itself), and counted
    own = {d.comparison.split(" (")[0]: d for d in
           claims.accuracy_claims(_runs(spec), same={"random0@switch": "selected@switch"})}
    d = own["selected@switch - random0@switch"]
    assert (d.verdict, d.repeats) == (CONTRADICTED, "")  # +1.80 points measured, but one model on both sides
    assert d.measured.endswith("; `random0@switch` is the same model as `selected@switch` here (the same layers at "
                               "the same ratios, the same schedule): a model does not beat itself")
    twin = {d.comparison.split(" (")[0]: d for d in claims.accuracy_claims(
        _runs(dict(SPEC, **{"selected@scratch": SPEC["selected@switch"]})), same={"selected@scratch": "selected@switch"})}
    assert twin["selected@switch - selected@scratch"].verdict == SUPPORTED  # within any margin of itself
    # the table marks the row and says what the mark means; its reading notes do not mention it otherwise
    r = {"tables": {"runs": _runs(spec)}, "same_models": {"spectral@switch": "all_layers@switch"}}
    md = claims.verdict_markdown(r)
    row = next(line for line in md.splitlines() if "`spectral@switch`)" in line)
    assert row.rstrip(" |").endswith("supported (not separate evidence: same model)")
    assert "'not separate evidence: same model': the row compares the same two models as an earlier row" in md
    assert "not separate evidence" not in claims.verdict_markdown({"tables": {"runs": _runs(spec)}})
    assert claims.not_separate(float("nan")) is False and claims.not_separate("") is False
