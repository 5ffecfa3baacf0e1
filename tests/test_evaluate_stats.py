"""The evaluation's statistics on hand-computed examples (bootstrap intervals, McNemar exact and mid-p, Holm,
paired comparison) and the Markdown-table helper."""

import math

import numpy as np
import pytest

from components.common.markdown import table, to_html
from components.evaluate.stats import (
    bootstrap,
    compare,
    holm,
    mcnemar,
    mean_interval,
    percentile_interval,
    perplexity_interval,
    resample_indices,
    verdict,
)


def test_mcnemar_exact_and_mid_p_by_hand():
    # 7 discordant pairs, 1 of them B's: P(X <= 1) = (1 + 7) / 128, exact = 2 * 8/128, mid-p = exact - 7/128.
    assert mcnemar(6, 1) == (pytest.approx(0.125), pytest.approx(9 / 128))
    assert mcnemar(1, 6) == mcnemar(6, 1)  # two-sided
    # 5 discordant, all A's: exact = 2/32, mid-p = 2/32 - 1/32.
    assert mcnemar(5, 0) == (pytest.approx(0.0625), pytest.approx(0.03125))
    # A tie is no evidence either way; no discordant pair neither.
    assert mcnemar(3, 3) == (1.0, 1.0) and mcnemar(0, 0) == (1.0, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar(-1, 2)


def test_mcnemar_exact_matches_scipy_binomial_test():
    stats = pytest.importorskip("scipy.stats")
    for a_only, b_only in [(6, 1), (12, 30), (40, 41), (0, 9)]:
        exact, _ = mcnemar(a_only, b_only)
        assert exact == pytest.approx(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue, rel=1e-9)


def test_holm_by_hand():
    # sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04, raised to 0.06 (monotone).
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.9, 0.5]) == pytest.approx([1.0, 1.0])  # capped
    assert holm([0.02]) == [0.02]


def test_percentile_interval_by_hand():
    assert percentile_interval([0, 1, 2, 3, 4], level=0.5) == (1.0, 3.0)
    assert percentile_interval([0, 10], level=0.9) == pytest.approx((0.5, 9.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile_interval([1, 2], level=1.0)


def test_bootstrap_of_two_outcomes_follows_the_binomial():
    # Resampling [1, 0] gives mean 0, 0.5, 1 with probability 1/4, 1/2, 1/4.
    draws = np.array([1.0, 0.0])[resample_indices(2, 20000, seed=7)].mean(axis=1)
    shares = [np.mean(draws == v) for v in (0.0, 0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.015)
    # So the 95% interval of the mean spans everything and the 40% interval is the middle value.
    assert mean_interval([1, 0], seed=7, resamples=20000).to_dict() == {
        "value": 0.5,
        "low": 0.0,
        "high": 1.0,
        "level": 0.95,
    }
    middle = mean_interval([1, 0], seed=7, resamples=20000, level=0.4)
    assert (middle.low, middle.high) == (0.5, 0.5)


def test_bootstrap_is_seeded_and_generic_matches_vectorized():
    outcomes = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 5
    first, again = mean_interval(outcomes, seed=3), mean_interval(outcomes, seed=3)
    assert first == again and first.value == pytest.approx(0.7)
    assert first.low < 0.7 < first.high
    assert mean_interval(outcomes, seed=4) != first
    data = np.asarray(outcomes, dtype=float)
    generic = bootstrap(lambda rows: data[rows].mean(), len(data), seed=3)
    assert generic.low == pytest.approx(first.low) and generic.high == pytest.approx(first.high)
    assert mean_interval([1] * 12, seed=1).to_dict() == {"value": 1.0, "low": 1.0, "high": 1.0, "level": 0.95}
    with pytest.raises(ValueError, match="empty"):
        mean_interval([], seed=1)


def test_perplexity_interval_by_hand():
    # Windows with loss ln 2 and ln 8: perplexity exp(mean) = 4; resampled means are ln 2, ln 4, ln 8.
    interval = perplexity_interval([math.log(2), math.log(8)], seed=5)
    assert (interval.value, interval.low, interval.high) == pytest.approx((4.0, 2.0, 8.0))


def test_paired_comparison_by_hand():
    a = [True] * 6 + [False, True]
    b = [False] * 6 + [True, True]
    result = compare(a, {"b": b}, seed=1)["b"]
    assert (result.a_only, result.b_only, result.n) == (6, 1, 8)
    assert result.difference.value == pytest.approx(5 / 8)  # 7/8 − 2/8
    assert (result.p_exact, result.p_mid) == pytest.approx((0.125, 9 / 128))
    assert result.verdict == "no detectable difference"  # 0.07 ≥ 0.05
    # Ten examples A gets right and B gets wrong: mid-p 1/1024, adjusted ×2 by Holm over two comparisons.
    strong = compare([True] * 10, {"weak": [False] * 10, "equal": [True] * 10}, seed=1)
    assert strong["weak"].p_mid == pytest.approx(1 / 1024) and strong["weak"].p_adjusted == pytest.approx(2 / 1024)
    assert strong["weak"].verdict == "better" and strong["equal"].verdict == "no detectable difference"
    assert compare([False] * 10, {"strong": [True] * 10}, seed=1)["strong"].verdict == "worse"
    assert strong["weak"].difference.low == 1.0  # every resample: A right, B wrong
    with pytest.raises(ValueError, match="3 outcomes for 2 examples"):
        compare([True, False], {"x": [True, True, False]}, seed=1)


def test_verdict_words():
    assert verdict(0.1, 0.01) == "better" and verdict(-0.1, 0.01) == "worse"
    assert verdict(0.1, 0.05) == "no detectable difference"


def test_markdown_table_and_html():
    assert table(["model", "accuracy"], [["a|b", 0.5], ["c\nd", 1]]) == [
        "| model | accuracy |",
        "| --- | ---: |",
        "| a\\|b | 0.5 |",
        "| c d | 1 |",
    ]
    assert table(["x", "y"], [], align="ll")[1] == "| --- | --- |"
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        table(["a", "b", "c"], [[1, 2]])
    with pytest.raises(ValueError, match="align"):
        table(["a"], [], align="c")
    rendered = to_html("# Title\n\n" + "\n".join(table(["model", "n"], [["a|b", 3]])) + "\n\n<script>x</script>")
    assert "<h1>Title</h1>" in rendered and "<td>a|b</td>" in rendered and 'style="text-align:right"' in rendered
    assert "<script>" not in rendered


def test_headline_metrics_leave_out_what_kfp_cannot_serialize():
    """KFP's Metrics artifact refuses NaN: a run without a from-scratch arm logs every other number."""
    import dataclasses

    from components.evaluate.report import EvalResult

    values = {f.name: 0.5 for f in dataclasses.fields(EvalResult) if f.name != "details"}
    result = EvalResult(**{**values, "from_scratch_accuracy": float("nan"), "p_value_vs_from_scratch": float("nan")})
    metrics = result.metrics()
    assert "from_scratch_accuracy" not in metrics and "p_value_vs_from_scratch" not in metrics
    assert set(metrics) == set(values) - {"from_scratch_accuracy", "p_value_vs_from_scratch"}
