"""Paired intervals and verdicts on constructed inputs with known answers."""
import math

import pytest

from basisconv.core import evidence as ev


@pytest.mark.parametrize("df,q", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (29, 2.0452), (1000, 1.9623)])
def test_t_quantile_matches_tables(df, q):
    assert ev.t_quantile(0.975, df) == pytest.approx(q, abs=2e-4)
    assert ev.t_cdf(q, df) == pytest.approx(0.975, abs=1e-5) and ev.t_cdf(-q, df) == pytest.approx(0.025, abs=1e-5)


def test_paired_difference_known_answer():
    a, b = {0: 90.0, 1: 91.0, 2: 92.0}, {0: 89.0, 1: 89.5, 2: 91.5}
    p = ev.paired_difference(a, b)  # d = 1.0, 1.5, 0.5: mean 1.0, sd 0.5, n 3
    half = 4.302653 * 0.5 / math.sqrt(3)
    assert (p.mean, p.n) == (pytest.approx(1.0), 3)
    assert (p.low, p.high) == (pytest.approx(1.0 - half, abs=1e-4), pytest.approx(1.0 + half, abs=1e-4))
    assert "95 % CI [-0.24, +2.24] over 3 seeds" in p.text()


def test_pairing_removes_the_shared_seed_effect():
    """Seeds move both variants by several points; the paired difference still decides."""
    shift = {0: 0.0, 1: 5.0, 2: -4.0, 3: 2.0}
    a = {s: 90 + v + 0.5 for s, v in shift.items()}
    b = {s: 90 + v + (0.1 if s % 2 else -0.1) for s, v in shift.items()}
    assert ev.verdict(ev.paired_difference(a, b)) == ev.SUPPORTED


def test_one_seed_is_never_decided():
    p = ev.paired_difference({0: 95.0}, {0: 50.0})
    assert p.n == 1 and math.isnan(p.low) and "1 seed: no interval" in p.text()
    assert ev.verdict(p) == ev.UNDECIDED and ev.verdict(p, "non-inferiority", margin=1) == ev.UNDECIDED


@pytest.mark.parametrize("low,high,kind,margin,want", [
    (0.2, 1.0, "superiority", 0, ev.SUPPORTED), (-1.0, -0.1, "superiority", 0, ev.CONTRADICTED),
    (-0.5, 0.5, "superiority", 0, ev.UNDECIDED), (-0.8, 0.4, "non-inferiority", 1.0, ev.SUPPORTED),
    (-2.5, -1.2, "non-inferiority", 1.0, ev.CONTRADICTED), (-1.5, 0.2, "non-inferiority", 1.0, ev.UNDECIDED),
    (-0.6, 0.9, "equivalence", 1.0, ev.SUPPORTED), (-1.2, 0.3, "equivalence", 1.0, ev.UNDECIDED),
    (-0.2, 1.4, "equivalence", 1.0, ev.UNDECIDED), (1.1, 2.0, "equivalence", 1.0, ev.CONTRADICTED),
    (-3.0, -1.0, "equivalence", 1.0, ev.CONTRADICTED), (-2.0, 2.0, "equivalence", 1.0, ev.UNDECIDED),
])
def test_verdict_from_interval(low, high, kind, margin, want):
    assert ev.verdict(ev.Paired((low + high) / 2, low, high, 3, 0.95), kind, margin) == want


def test_errors():
    with pytest.raises(ValueError, match="no common seeds"):
        ev.paired_difference({0: 1.0}, {1: 1.0})
    with pytest.raises(ValueError, match="unknown kind 'better'; valid choices: superiority, non-inferiority, equivalence"):
        ev.verdict(ev.Paired(0, 0, 0, 2, 0.95), "better")


@pytest.mark.parametrize("low,high,bound,want", [
    (0.1, 0.5, 0.0, ev.SUPPORTED), (-0.5, -0.1, 0.0, ev.CONTRADICTED), (-0.1, 0.1, 0.0, ev.UNDECIDED),
    (1.02, 1.3, 1.0, ev.SUPPORTED), (0.7, 0.98, 1.0, ev.CONTRADICTED), (1.0, 1.0, 1.0, ev.UNDECIDED),
    (math.nan, math.nan, 0.0, ev.UNDECIDED), (0.2, math.nan, 0.0, ev.UNDECIDED)])
def test_interval_verdict_is_the_one_rule(low, high, bound, want):
    """The interval-against-a-bound rule every verdict uses (paired seeds, speedups, Spearman intervals)."""
    assert ev.interval_verdict(low, high, bound) == want
