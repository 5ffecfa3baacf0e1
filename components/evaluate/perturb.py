"""Seeded text perturbations for robustness: each is a pure function of (text, seed), so the same seed gives
the same perturbed test set on every machine, whatever order the texts come in."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable


def _rng(text: str, seed: int, kind: str) -> random.Random:
    return random.Random(hashlib.sha256(f"{kind}:{seed}:{text}".encode()).digest())


def typos(text: str, seed: int, rate: float = 0.1) -> str:
    """Swap two adjacent letters inside `rate` of the words that have at least 4 characters."""
    rng = _rng(text, seed, "typo")
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) >= 4 and rng.random() < rate:
            j = rng.randrange(1, len(word) - 2)
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def casing(text: str, seed: int) -> str:
    """Upper-case, lower-case or title-case the whole text (one choice per text)."""
    choice = _rng(text, seed, "casing").randrange(3)
    return (text.upper(), text.lower(), text.title())[choice]


def whitespace(text: str, seed: int, rate: float = 0.3) -> str:
    """Turn `rate` of the single spaces into runs of 2-4 spaces or tabs, and all newlines into spaces."""
    rng = _rng(text, seed, "whitespace")
    out = []
    for char in text.replace("\n", " "):
        if char == " " and rng.random() < rate:
            out.append(rng.choice([" ", "\t"]) * rng.randint(2, 4))
        else:
            out.append(char)
    return "".join(out)


PERTURBATIONS: dict[str, Callable[[str, int], str]] = {"typo": typos, "casing": casing, "whitespace": whitespace}


def perturb(texts: list[str], kind: str, seed: int) -> list[str]:
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; choose one of {', '.join(PERTURBATIONS)}")
    return [PERTURBATIONS[kind](text, seed) for text in texts]
