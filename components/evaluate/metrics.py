"""Metric functions, each small enough to check by hand."""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence


def perplexity(mean_cross_entropy: float) -> float:
    return math.exp(mean_cross_entropy)


def accuracy(predicted: Sequence, expected: Sequence) -> float:
    if len(predicted) != len(expected):
        raise ValueError(f"{len(predicted)} predictions for {len(expected)} labels")
    if not expected:
        return float("nan")
    return sum(p == e for p, e in zip(predicted, expected)) / len(expected)


def majority_label(train_labels: Sequence) -> str:
    """The most frequent training label; ties go to the label that sorts first, so the choice is stable."""
    counts = Counter(train_labels)
    return min(counts, key=lambda label: (-counts[label], label))
