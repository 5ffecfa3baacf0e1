"""Metric functions, each small enough to check by hand."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def perplexity(mean_cross_entropy: float) -> float:
    return math.exp(mean_cross_entropy)


def accuracy(predicted: Sequence, expected: Sequence) -> float:
    if len(predicted) != len(expected):
        raise ValueError(f"{len(predicted)} predictions for {len(expected)} labels")
    if not expected:
        return float("nan")
    return sum(p == e for p, e in zip(predicted, expected, strict=True)) / len(expected)


def majority_label(train_labels: Sequence) -> str:
    """The most frequent training label; ties go to the label that sorts first, so the choice is stable."""
    counts = Counter(train_labels)
    return min(counts, key=lambda label: (-counts[label], label))


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """ECE: Σ_b (|b| / n) · |accuracy(b) − mean confidence(b)| over equal-width confidence bins (0, 1/n_bins],
    …; a confidence of exactly 0 falls in the first bin."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences for {len(correct)} outcomes")
    if not confidences:
        return float("nan")
    total = 0.0
    for members in calibration_bins(confidences, correct, n_bins):
        if members:
            accuracy_b = sum(ok for _, ok in members) / len(members)
            confidence_b = sum(c for c, _ in members) / len(members)
            total += len(members) / len(confidences) * abs(accuracy_b - confidence_b)
    return total


def calibration_bins(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> list[list[tuple[float, bool]]]:
    """(confidence, correct) pairs grouped into equal-width bins; bin i holds (i/n, (i+1)/n]."""
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for confidence, ok in zip(confidences, correct, strict=True):
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence {confidence} is outside [0, 1]")
        bins[max(0, math.ceil(confidence * n_bins) - 1)].append((confidence, bool(ok)))
    return bins


def slice_accuracies(predicted: Sequence, expected: Sequence, groups: Sequence[str]) -> dict[str, dict]:
    """Accuracy and size of every group, sorted by group name."""
    members: dict[str, list[bool]] = {}
    for p, e, g in zip(predicted, expected, groups, strict=True):
        members.setdefault(g, []).append(p == e)
    return {g: {"accuracy": sum(hits) / len(hits), "n": len(hits)} for g, hits in sorted(members.items())}


def worst_slice_gap(overall_accuracy: float, slices: dict[str, dict]) -> tuple[str, float]:
    """The slice with the lowest accuracy and how far it falls below the overall accuracy."""
    worst = min(slices, key=lambda g: (slices[g]["accuracy"], g))
    return worst, overall_accuracy - slices[worst]["accuracy"]


def length_bucket(n_tokens: int, edges: Sequence[int] = (16, 64)) -> str:
    """'short' (< edges[0] tokens), 'medium' (< edges[1]) or 'long'."""
    if n_tokens < edges[0]:
        return f"short (<{edges[0]} tokens)"
    if n_tokens < edges[1]:
        return f"medium ({edges[0]}-{edges[1] - 1} tokens)"
    return f"long (≥{edges[1]} tokens)"


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Lower-cased whitespace-separated word n-grams of a text."""
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def ngram_overlap(texts: Sequence[str], reference: set[tuple[str, ...]], n: int) -> dict:
    """How much of `texts` appears in `reference` (a set of word n-grams): the share of texts with at least one
    shared n-gram, and the share of all their n-grams that are shared. Texts shorter than n words have none."""
    flagged, shared, total = 0, 0, 0
    for text in texts:
        grams = word_ngrams(text, n)
        hits = len(grams & reference)
        flagged += hits > 0
        shared += hits
        total += len(grams)
    return {
        "n": n,
        "texts": len(texts),
        "texts_with_overlap": flagged,
        "text_overlap_rate": flagged / len(texts) if texts else 0.0,
        "ngram_overlap_rate": shared / total if total else 0.0,
    }
