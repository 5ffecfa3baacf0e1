"""Uncertainty for every compared number: seeded percentile-bootstrap intervals, the exact and mid-p McNemar
test for two classifiers scored on the same examples, a paired-bootstrap interval of their accuracy difference,
and Holm's step-down adjustment when one model is compared with several.

Why these: the test examples are a sample, so an accuracy of 0.75 on 300 examples is 0.75 ± ~0.05. Two models
scored on the same examples are compared pairwise (McNemar looks only at the examples where they disagree),
which is far more sensitive than comparing two independent intervals. The mid-p version of the exact test
keeps the exact test's control of false positives while being less conservative (Fagerland, Lydersen and
Laake 2013, "The McNemar test for binary matched-pairs data: mid-p and asymptotic are better than exact
conditional").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile-bootstrap interval at `level`."""

    value: float
    low: float
    high: float
    level: float = LEVEL

    def to_dict(self) -> dict:
        return asdict(self)


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) row indices drawn with replacement; the same (n, resamples, seed) gives the same draws on
    every machine (numpy's PCG64)."""
    if n <= 0:
        raise ValueError("cannot bootstrap an empty sample")
    return np.random.Generator(np.random.PCG64(seed)).integers(0, n, size=(resamples, n))


def percentile_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` share of a bootstrap distribution (linear interpolation between order statistics)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level} must lie strictly between 0 and 1")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(values, dtype=float), [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Interval:
    """Percentile-bootstrap interval of `statistic`, a function of an index array into the n examples: called
    once with every index (the point estimate) and once per resample."""
    point = statistic(np.arange(n))
    draws = [statistic(rows) for rows in resample_indices(n, resamples, seed)]
    low, high = percentile_interval(draws, level)
    return Interval(float(point), low, high, level)


def mean_interval(values: Sequence[float], seed: int, resamples: int = RESAMPLES, level: float = LEVEL) -> Interval:
    """Bootstrap interval of a mean (accuracy: the mean of 0/1 correctness), vectorized."""
    data = np.asarray(values, dtype=float)
    draws = data[resample_indices(len(data), resamples, seed)].mean(axis=1)
    low, high = percentile_interval(draws, level)
    return Interval(float(data.mean()), low, high, level)


def perplexity_interval(
    window_losses: Sequence[float], seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> Interval:
    """exp(mean cross-entropy) over held-out windows of equal length, with the windows resampled."""
    mean = mean_interval(window_losses, seed, resamples, level)
    return Interval(math.exp(mean.value), math.exp(mean.low), math.exp(mean.high), level)


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the same examples. `a_only`: examples only A gets right; `b_only`: only B."""

    a_only: int
    b_only: int
    n: int
    difference: Interval  # accuracy(A) − accuracy(B), paired bootstrap
    p_exact: float  # two-sided exact McNemar (binomial on the discordant pairs)
    p_mid: float  # two-sided mid-p McNemar: the verdict's test
    p_adjusted: float  # p_mid after Holm's adjustment over the comparisons reported together
    verdict: str

    def to_dict(self) -> dict:
        return {**asdict(self), "difference": self.difference.to_dict()}


def _binomial_cdf_half(k: int, n: int) -> float:
    """P(X ≤ k) for X ~ Binomial(n, 1/2), exactly (integers until the last division)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def mcnemar(a_only: int, b_only: int) -> tuple[float, float]:
    """(exact, mid-p) two-sided McNemar p-values from the discordant counts. Under "no difference" each of the
    d = a_only + b_only discordant examples is A's win with probability 1/2; with k = min(a_only, b_only),
    exact p = min(1, 2·P(X ≤ k)) and mid-p = min(1, 2·P(X ≤ k) − P(X = k)) (the observed outcome counted half).
    No discordant pair: p = 1."""
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be non-negative, got {a_only} and {b_only}")
    d, k = a_only + b_only, min(a_only, b_only)
    if d == 0:
        return 1.0, 1.0
    tail = 2.0 * _binomial_cdf_half(k, d)
    return min(1.0, tail), min(1.0, tail - math.comb(d, k) / 2**d)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the i-th smallest is multiplied by (m − i), made monotone, capped at 1.
    Rejecting where the adjusted p < alpha keeps the chance of any false "better" among m comparisons ≤ alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def verdict(difference: float, p: float, alpha: float = ALPHA) -> str:
    if p >= alpha or difference == 0:
        return "no detectable difference"
    return "better" if difference > 0 else "worse"


def compare(
    correct_a: Sequence[bool],
    others: Mapping[str, Sequence[bool]],
    seed: int,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    alpha: float = ALPHA,
) -> dict[str, PairedComparison]:
    """Model A's per-example correctness against each other model's, on the same examples: McNemar (mid-p,
    Holm-adjusted over `others`) for the verdict, and a paired-bootstrap interval of the accuracy difference
    (the same resampled rows for both models)."""
    a = np.asarray(correct_a, dtype=float)
    rows = resample_indices(len(a), resamples, seed)
    raw = {}
    for name, correct_b in others.items():
        b = np.asarray(correct_b, dtype=float)
        if b.shape != a.shape:
            raise ValueError(f"{name}: {len(b)} outcomes for {len(a)} examples")
        diff = a - b
        low, high = percentile_interval(diff[rows].mean(axis=1), level)
        a_only, b_only = int((diff > 0).sum()), int((diff < 0).sum())
        raw[name] = (a_only, b_only, Interval(float(diff.mean()), low, high, level), *mcnemar(a_only, b_only))
    adjusted = holm([r[4] for r in raw.values()])
    return {
        name: PairedComparison(
            a_only, b_only, len(a), interval, p_exact, p_mid, p_adj, verdict(interval.value, p_adj, alpha)
        )
        for (name, (a_only, b_only, interval, p_exact, p_mid)), p_adj in zip(raw.items(), adjusted, strict=True)
    }
