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


B = {"switch_epoch": 12, "late_epoch": 24, "ratio": 0.5}
E = 25


def _runs(spec, seeds=(0, 1, 2), shifts=(0.0, 3.0, -2.0), same=None):
    """``spec``: {run name: (accuracy %, per-seed extra or None)}; ``same``: {run: earlier run} (``same_as``)."""
    rows = []
    for s, sh in zip(seeds, shifts):
        for v, (acc, extra) in spec.items():
            schedule = v.partition("@")[2].rstrip("0123456789") or "-"
            rows.append({"variant": v, "seed": s, "schedule": schedule,
                         "test_acc": (acc + sh + (extra[s] if extra else 0)) / 100, "params": 100, "macs": 1e6,
                         "same_as": (same or {}).get(v, "")})
    return pd.DataFrame(rows)


def _row(decided, comparison):
    (d,) = [d for d in decided if d.comparison.startswith(comparison)]
    return d


def test_accuracy_claims_known_answers():
    """Paired over seeds: the seed shifts cancel, so constant differences give a point interval."""
    runs = _runs({"baseline": (90.0, None), "all_layers@switch12": (87.0, None), "selected@switch12": (89.5, None),
                  "all_layers@scratch": (86.0, None), "selected@scratch": (89.7, None),
                  "random0@switch12": (88.0, {0: 0.5, 1: -0.5, 2: 0.1}), "all_layers@late": (85.0, None),
                  "selected@late": (89.9, None)})
    got = claims.accuracy_claims(runs, B, E)
    assert _row(got, "baseline - all_layers@switch12").verdict == SUPPORTED  # +3.00 over 3 seeds, no spread
    assert _row(got, "selected@switch12 - baseline").verdict == SUPPORTED  # -0.5 within the 1-point margin
    assert _row(got, "selected@switch12 - all_layers@switch12").verdict == SUPPORTED
    assert _row(got, "selected@switch12 - random0@switch12").source == "implied"
    assert _row(got, "selected@switch12 - selected@scratch").verdict == SUPPORTED  # -0.2: equivalent within 1
    assert _row(got, "baseline - all_layers@late").group == "late"
    assert _row(got, "baseline - all_layers@switch12").group == "training"
    assert "after a switch at epoch 12 (13 of 25 epochs in basis form)" in _row(got, "baseline - all_layers@sw").claim


def test_a_twin_is_decided_by_being_one_model():
    """A comparison subset that is the all-layers model: its row says so, and a model does not beat itself."""
    runs = _runs({"baseline": (90.0, None), "all_layers@late": (88.0, None), "selected@late": (89.0, None),
                  "spectral@late": (88.0, None)}, same={"spectral@late": "all_layers@late"})
    d = _row(claims.accuracy_claims(runs, B, E), "selected@late - spectral@late")
    assert d.repeats and "is the same model as" in d.repeats
    assert claims.same_models(runs) == {"spectral@late": "all_layers@late"}


def _bench(base, other, jobs=None, name="selected@switch12"):
    models = {"baseline.train_step": {"round_ms": base}, f"{name}.train_step": {"round_ms": other},
              "all_layers@switch12.train_step": {"round_ms": other}}
    for i, j in enumerate(jobs or []):
        models[f"proxy_job:l{i}.job"] = {"round_ms": j}
    return {"models": models, "models_by_precision": {"bf16": dict(models)}, "sweep_options": 32,
            "train_images": 45_000, "params_resolved": {"benchmark": {"model_batch_size": 100}}}


def test_speed_and_cost_claims_known_answers():
    """Steps twice as fast in every round: speedup 2 exactly; a switch at 12 of 25 costs (12 + 13 / 2) / 25 of dense
    training plus the search."""
    bench = _bench([100.0, 110.0, 90.0], [50.0, 55.0, 45.0], jobs=[[1000.0, 1100.0, 900.0]] * 3)
    speed = claims.speed_claims(bench, B)
    step = _row(speed, "baseline / selected@switch12")
    assert step.verdict == SUPPORTED and step.measured.startswith("2.00x, 95 % CI [2.00x, 2.00x]")
    cost = _row(claims.cost_claims(bench, B, E), "dense / selected@switch12")
    dense = 25 * 450 * 100.0  # E x images per round (45,000 / batch 100) x step ms
    switch = 12 * 450 * 100.0 + 13 * 450 * 50.0 + 32 * 1000.0
    assert cost.measured.startswith(f"{dense / switch:.2f}x") and cost.verdict == SUPPORTED
    (search,) = claims.search_claim(bench, E)
    assert search.measured.startswith(f"{100 * 32 * 1000.0 / dense:.1f} %") and search.verdict == SUPPORTED
    slow = _bench([100.0, 110.0, 90.0], [50.0, 55.0, 45.0], jobs=[[1e5, 1.1e5, 0.9e5]] * 3)
    assert claims.search_claim(slow, E)[0].verdict == CONTRADICTED  # 32 x 100 s against 1,125 s x 25
    assert claims.search_claim({"models": {}}, E)[0].verdict == UNDECIDED  # not timed: not decided


@pytest.mark.parametrize("low,high,verdict", [(0.2, 0.9, SUPPORTED), (-0.3, 0.8, UNDECIDED), (-0.9, -0.1, CONTRADICTED)])
def test_proxy_claim(low, high, verdict):
    faith = {"spearman_finetune": (low + high) / 2, "spearman_finetune_ci_low": low, "spearman_finetune_ci_high": high,
             "n_layers": 16}
    (d,) = claims.proxy_claim(faith, "finetune")
    assert d.verdict == verdict and d.source == "package" and d.group == "search"


def test_verdict_table_groups_its_rows():
    runs = _runs({"baseline": (90.0, None), "all_layers@late": (88.0, None), "selected@switch12": (89.0, None),
                  "all_layers@switch12": (87.0, None)})
    r = {"tables": {"runs": runs}, "basis": {"params_resolved": {"basis": B, "train": {"epochs": E}}},
         "benchmark": _bench([100.0, 110.0, 90.0], [50.0, 55.0, 45.0])}
    t = claims.verdict_table(r)
    assert list(t.columns) == claims.COLUMNS
    order = [list(claims.GROUPS).index(g) for g in t.group]
    assert order == sorted(order)
    md = claims.verdict_markdown(r, table=t)
    assert md.index("**Training with basis layers**") < md.index("**Late conversion") < md.index("**Speed**")
