"""Claims decided by evidence: paired differences over seeds, their t-interval, and a verdict (arXiv 2408.06024).

Every comparison of the basis stage is paired: variant A and variant B are trained with the same seed, so the same
initial batches and augmentation stream, and the per-seed difference ``d_s = acc_A(s) - acc_B(s)`` removes the
seed-to-seed spread both share. Over ``n`` seeds

    d_bar +/- t_{(1+c)/2, n-1} * sd(d) / sqrt(n)                    (paired t-interval, confidence c)

and a claim gets a verdict from where the interval lies:

- superiority (``A > B``): ``supported`` if the interval is above 0, ``contradicted`` if below 0;
- non-inferiority (``A`` no worse than ``B`` by more than ``margin`` points): ``supported`` if the interval is above
  ``-margin``, ``contradicted`` if it is below ``-margin``;
- equivalence (``A`` within ``margin`` points of ``B`` either way, two one-sided tests): ``supported`` if the interval
  lies inside ``(-margin, margin)``, ``contradicted`` if it lies wholly outside it;
- otherwise, and always with fewer than two seeds: ``not decided at this scale``.

Per-example pairs (the sensitivity sweep's control and converted model scored on the same validation images) get
``paired_interval``: a normal interval on the mean of per-example differences of correctness (as in McNemar's test).
Rank agreement (the proxy against retraining) gets ``spearman`` with a percentile ``bootstrap_spearman`` interval.
This module is the home of the package's statistics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

SUPPORTED, CONTRADICTED, UNDECIDED = "supported", "contradicted", "not decided at this scale"
KINDS = ("superiority", "non-inferiority", "equivalence")


def t_cdf(x: float, df: int) -> float:
    """Student's t CDF: the regularised incomplete beta function by its continued fraction (Lentz)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    z = df / (df + x * x)
    ib = _betainc(df / 2, 0.5, z)  # P(|T| > |x|)
    return 1 - ib / 2 if x >= 0 else ib / 2


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x > (a + 1) / (a + b + 2):  # the continued fraction converges fast on this side only
        return 1 - _betainc(b, a, 1 - x)
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + num * d
        d = tiny if abs(d) < tiny else d
        d = 1 / d
        c = 1 + num / c
        c = tiny if abs(c) < tiny else c
        f *= c * d
        if abs(1 - c * d) < 1e-14:
            break
    return math.exp(lbeta) * (f - 1) / a


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on ``t_cdf``)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)``: the one t-interval of the package, ``mean +/- t_{(1+c)/2, n-1} sd / sqrt(n)`` (sd
    with ``n - 1``) over ``values`` (NaNs dropped); NaN bounds when ``n < 2``, NaN everything when ``n == 0``.
    Paired differences over seeds, log speedups over timing rounds and the figures' seed intervals all use it."""
    v = [float(x) for x in values if not math.isnan(float(x))]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(v) / n
    if n < 2:
        return mean, math.nan, math.nan, n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = t_quantile((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n


@dataclass(frozen=True)
class Paired:
    """A paired difference over ``n`` seeds (points): mean and ``confidence`` t-interval (NaN when ``n < 2``)."""
    mean: float
    low: float
    high: float
    n: int
    confidence: float

    def text(self) -> str:
        if self.n < 2:
            return f"{self.mean:+.2f} points (1 seed: no interval)"
        return (f"{self.mean:+.2f} points, {100 * self.confidence:.0f} % CI [{self.low:+.2f}, {self.high:+.2f}] "
                f"over {self.n} seeds")


def paired_difference(a: dict, b: dict, confidence: float = 0.95) -> Paired:
    """``a``, ``b``: ``{seed: accuracy in %}``; the difference ``a - b`` over the seeds both have."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError(f"no common seeds: {sorted(a)} vs {sorted(b)}")
    mean, low, high, n = t_interval([a[s] - b[s] for s in seeds], confidence)
    return Paired(mean, low, high, n, confidence)


def interval_verdict(low: float, high: float, bound: float) -> str:
    """The one rule for a one-sided claim "the quantity exceeds ``bound``" from its interval ``[low, high]``:
    ``supported`` if the whole interval is above ``bound``, ``contradicted`` if it is wholly below, otherwise (and for
    a NaN interval) ``not decided at this scale``."""
    if math.isnan(low) or math.isnan(high):
        return UNDECIDED
    if low > bound:
        return SUPPORTED
    if high < bound:
        return CONTRADICTED
    return UNDECIDED


def verdict(p: Paired, kind: str = "superiority", margin: float = 0.0) -> str:
    """``supported`` / ``contradicted`` / ``not decided at this scale`` for the claim ``A > B`` (superiority),
    ``A >= B - margin`` (non-inferiority) or ``|A - B| < margin`` (equivalence); see the module docstring."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid choices: {', '.join(KINDS)}")
    if p.n < 2 or math.isnan(p.low):
        return UNDECIDED
    if kind == "equivalence":
        if -margin < p.low and p.high < margin:
            return SUPPORTED
        return CONTRADICTED if p.low >= margin or p.high <= -margin else UNDECIDED
    return interval_verdict(p.low, p.high, 0.0 if kind == "superiority" else -margin)


def paired_interval(control: torch.Tensor, converted: torch.Tensor, confidence: float = 0.95) -> tuple[float, float]:
    """Interval (points) for ``100 * (mean(control) - mean(converted))`` from per-example correctness (bool (N,)).

    Per example ``d_i = control_i - converted_i`` in {-1, 0, 1}; the mean's standard error is ``std(d) / sqrt(N)``.
    """
    if control.shape != converted.shape or control.ndim != 1 or len(control) < 2:
        raise ValueError(f"need two equal 1-D correctness vectors of length >= 2, got {tuple(control.shape)} "
                         f"and {tuple(converted.shape)}")
    d = control.double() - converted.double()
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * d.std(unbiased=True).item() / math.sqrt(len(d))
    return 100 * (d.mean().item() - half), 100 * (d.mean().item() + half)


def _ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks of ``a``, ties given their average rank (pandas' ``rank()``, scipy's ``rankdata``)."""
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based position of each distinct value's first occurrence
    return (first + (counts + 1) / 2)[inv]


def spearman(x, y) -> float:
    """Spearman rank correlation (average ranks for ties); ``nan`` when undefined (< 3 points or a constant)."""
    x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if len(x) != len(y):
        raise ValueError(f"spearman needs equal lengths, got {len(x)} and {len(y)}")
    if len(x) < 3:
        return math.nan
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_spearman(x, y, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``spearman(x, y)``: layers resampled with replacement ``n_boot`` times
    (seeded), resamples where the correlation is undefined (constant ranks) skipped. ``(nan, nan)`` below 3 points.

    With few layers the interval is wide and itself rough (the percentile bootstrap undercovers at n < 10); it says
    how little a handful of layers can establish, which a bare coefficient hides.
    """
    x, y = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if len(x) != len(y):
        raise ValueError(f"bootstrap_spearman needs equal lengths, got {len(x)} and {len(y)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if len(x) < 3:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    rhos = [spearman(x[i], y[i]) for i in rng.integers(0, len(x), size=(n_boot, len(x)))]
    rhos = np.array([r for r in rhos if not math.isnan(r)])
    if len(rhos) < n_boot / 2:  # mostly degenerate resamples: no meaningful interval
        return math.nan, math.nan
    a = (1 - confidence) / 2
    return float(np.quantile(rhos, a)), float(np.quantile(rhos, 1 - a))
