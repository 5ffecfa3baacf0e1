"""Quality filters with the published rules and thresholds.

- Gopher quality and repetition: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
  Training Gopher", appendix A (table A1 for the repetition thresholds).
- C4: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer",
  section 2.2 (line filters, lorem ipsum, curly braces, minimum sentences).

Words are whitespace-separated tokens (with surrounding punctuation stripped where a rule compares words to a
list), so the counts need no tokenizer model. Everything is a native Spark expression except the n-gram
repetition measures, which need counting inside one document: a scalar pandas UDF over numpy does that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from components.curate.marks import Marked, mark
from components.curate.minhash import ngram_keys
from components.curate.steps import words_column

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


@dataclass
class QualityConfig:
    # Gopher quality (published defaults)
    gopher_quality: bool = True
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # "#" and ellipses per word
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    stop_words: tuple[str, ...] = GOPHER_STOP_WORDS
    # Gopher repetition (table A1)
    gopher_repetition: bool = True
    max_dup_line_frac: float = 0.3
    max_dup_para_frac: float = 0.3
    max_dup_line_char_frac: float = 0.2
    max_dup_para_char_frac: float = 0.2
    top_ngram_char_frac: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    dup_ngram_char_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    )
    # C4
    c4: bool = True
    c4_filter_lines: bool = True  # keep only lines ending in terminal punctuation with enough words
    c4_min_words_per_line: int = 3
    c4_min_sentences: int = 5
    c4_drop_lorem_ipsum: bool = True
    c4_drop_curly_brace: bool = True
    c4_drop_javascript_lines: bool = True
    c4_drop_policy_lines: bool = True

    @classmethod
    def from_dict(cls, values: dict) -> QualityConfig:
        pairs = {"top_ngram_char_frac", "dup_ngram_char_frac"}
        converted: dict[str, Any] = {
            k: tuple(tuple(p) for p in v) if k in pairs else tuple(v) if k == "stop_words" else v
            for k, v in values.items()
        }
        return cls(**converted)


def _size(array: Column) -> Column:
    return F.size(array).cast("double")


def _chars(array: Column) -> Column:
    """Total characters of an array of strings."""
    return F.length(F.array_join(array, ""))


def _count(text: Column, pattern: str) -> Column:
    return F.regexp_count(text, F.lit(pattern)).cast("double")


# Regular expressions over the whole text (native and compiled once) instead of per-word lambdas, which Spark
# interprets row by row and which measured ten times slower.
_TOKEN = r"(?<!\S)"  # the start of a whitespace-separated word
_CONTENT_WORD = _TOKEN + r"(?=\S*[^\s\p{P}\p{S}])\S+"  # a word that is not only punctuation or symbols
_SYMBOL_WORD = _TOKEN + r"[\p{P}\p{S}]+(?!\S)"
_ALPHA_WORD = _TOKEN + r"(?=\S*\p{L})\S+"
_BULLET_LINE = "(?m)^[ \t]*[\u2022\u2023\u25e6\u2043\u2219*-]"
_ELLIPSIS_LINE = r"(?m)(\.\.\.|\u2026)[ \t]*$"


def _stop_word_pattern(stop_words: tuple[str, ...]) -> str:
    """A stop word standing alone or between punctuation (what remains of a word once its punctuation is cut)."""
    return r"(?<![^\s\p{P}])(" + "|".join(stop_words) + r")(?![^\s\p{P}])"


# ------------------------------------------------------------------------------------------------ Gopher quality


def gopher_quality(df: DataFrame, cfg: QualityConfig) -> Marked:
    text = F.col("text")
    n_words = _size(words_column())
    n_content = _count(text, _CONTENT_WORD)
    content_chars = F.length(F.regexp_replace(text, _SYMBOL_WORD + r"|\s+", ""))
    mean_length = content_chars / n_content
    symbols = _count(text, "#|\\.\\.\\.|\u2026")
    n_lines = _count(text, "\n") + 1
    stop_words = F.size(
        F.array_distinct(F.regexp_extract_all(F.lower(text), F.lit(_stop_word_pattern(cfg.stop_words)), F.lit(1)))
    )
    reason = (
        F.when(n_content < cfg.min_doc_words, F.lit(f"fewer than {cfg.min_doc_words} words"))
        .when(n_content > cfg.max_doc_words, F.lit(f"more than {cfg.max_doc_words} words"))
        .when(mean_length < cfg.min_mean_word_length, F.lit(f"mean word length < {cfg.min_mean_word_length}"))
        .when(mean_length > cfg.max_mean_word_length, F.lit(f"mean word length > {cfg.max_mean_word_length}"))
        .when(symbols / n_words > cfg.max_symbol_word_ratio, F.lit(f"symbol/word ratio > {cfg.max_symbol_word_ratio}"))
        .when(
            _count(text, _BULLET_LINE) / n_lines > cfg.max_bullet_lines_ratio,
            F.lit(f"bullet lines > {cfg.max_bullet_lines_ratio}"),
        )
        .when(
            _count(text, _ELLIPSIS_LINE) / n_lines > cfg.max_ellipsis_lines_ratio,
            F.lit(f"ellipsis lines > {cfg.max_ellipsis_lines_ratio}"),
        )
        .when(
            _count(text, _ALPHA_WORD) / n_words < cfg.min_alpha_words_ratio,
            F.lit(f"alphabetic words < {cfg.min_alpha_words_ratio}"),
        )
        .when(stop_words < cfg.min_stop_words, F.lit(f"fewer than {cfg.min_stop_words} stop words"))
    )
    return Marked("gopher_quality", mark("gopher_quality", df, reason))


# --------------------------------------------------------------------------------------------- Gopher repetition


def _repeated_chars(keys: np.ndarray, gram_chars: np.ndarray, n: int) -> int:
    """Characters in repeated n-grams, counting a repeat and skipping past it (Gopher's definition)."""
    seen: set[int] = set()
    repeated, index, total = 0, 0, len(keys)
    key_list = keys.tolist()
    while index < total:
        key = key_list[index]
        if key in seen:
            repeated += int(gram_chars[index])
            index += n
        else:
            seen.add(key)
            index += 1
    return repeated


def ngram_repetition_reason(
    text: str, top: tuple[tuple[int, float], ...], dup: tuple[tuple[int, float], ...]
) -> str | None:
    """Why `text` fails Gopher's n-gram repetition rules, or None when it passes."""
    words = text.split()
    if not words:
        return None
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.uint64, count=len(words))
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    cumulative = np.concatenate(([0], np.cumsum(lengths)))
    n_chars = len(text)
    for n, fraction in top:
        if len(words) < n:
            continue
        keys = ngram_keys(ids, n)
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        best = int(np.argmax(counts))
        if counts[best] < 2:
            continue
        start = int(first[best])
        chars = int(cumulative[start + n] - cumulative[start]) + n - 1  # the n-gram joined with spaces
        if chars * int(counts[best]) / n_chars > fraction:
            return f"top {n}-gram chars > {fraction}"
    if dup and len(words) >= dup[0][0]:
        smallest = min(n for n, _ in dup)
        if np.unique(ngram_keys(ids, smallest)).size == len(words) - smallest + 1:
            return None  # no repeated n-gram of the smallest size, so none of any larger size either
    for n, fraction in dup:
        if len(words) < n:
            continue
        gram_chars = cumulative[n:] - cumulative[:-n]
        if _repeated_chars(ngram_keys(ids, n), gram_chars, n) / n_chars > fraction:
            return f"duplicated {n}-gram chars > {fraction}"
    return None


def _ngram_udf(cfg: QualityConfig):
    top, dup = cfg.top_ngram_char_frac, cfg.dup_ngram_char_frac

    @F.pandas_udf(T.StringType())  # type: ignore[call-overload]  # pyspark stubs lack the return-type-only form
    def ngram_reason(texts: pd.Series) -> pd.Series:
        return texts.map(lambda text: ngram_repetition_reason(text, top, dup))

    return ngram_reason


def _duplicates(parts: Column) -> tuple[Column, Column]:
    """(repeated elements, characters in repeated elements) of an array of strings."""
    distinct = F.array_distinct(parts)
    return F.size(parts) - F.size(distinct), _chars(parts) - _chars(distinct)


def gopher_repetition(df: DataFrame, cfg: QualityConfig) -> Marked:
    text = F.col("text")
    n_chars = F.length(text).cast("double")
    paragraphs = F.split(F.trim(text), r"\n{2,}")
    dup_paras, dup_para_chars = _duplicates(paragraphs)
    lines = F.array_remove(F.split(text, r"\n+"), "")
    dup_lines, dup_line_chars = _duplicates(lines)
    reason = (
        F.when(
            dup_paras / _size(paragraphs) > cfg.max_dup_para_frac,
            F.lit(f"duplicate paragraphs > {cfg.max_dup_para_frac}"),
        )
        .when(
            dup_para_chars / n_chars > cfg.max_dup_para_char_frac,
            F.lit(f"duplicate paragraph chars > {cfg.max_dup_para_char_frac}"),
        )
        .when(dup_lines / _size(lines) > cfg.max_dup_line_frac, F.lit(f"duplicate lines > {cfg.max_dup_line_frac}"))
        .when(
            dup_line_chars / n_chars > cfg.max_dup_line_char_frac,
            F.lit(f"duplicate line chars > {cfg.max_dup_line_char_frac}"),
        )
        .otherwise(_ngram_udf(cfg)(text))
    )
    return Marked("gopher_repetition", mark("gopher_repetition", df, reason))


# ------------------------------------------------------------------------------------------------------------ C4


def c4(df: DataFrame, cfg: QualityConfig) -> Marked:
    """C4's line filters (which modify the text), then its document rules on what is left."""
    text = F.col("text")
    lowered = F.lower(text)
    out = df
    if cfg.c4_filter_lines:

        def keep(line: Column) -> Column:
            stripped = F.trim(line)
            low = F.lower(stripped)
            ok = stripped.rlike(r"[.!?\"]$") & (F.size(F.split(stripped, r"\s+")) >= cfg.c4_min_words_per_line)
            if cfg.c4_drop_javascript_lines:
                ok = ok & ~low.contains("javascript")
            if cfg.c4_drop_policy_lines:
                for phrase in C4_POLICY_PHRASES:
                    ok = ok & ~low.contains(phrase)
            return ok

        out = out.withColumn("_c4", F.array_join(F.filter(F.split(text, "\n"), keep), "\n"))
    else:
        out = out.withColumn("_c4", text)
    reason = F.when(F.col("_c4") == "", F.lit("no line left after the C4 line filters"))
    if cfg.c4_drop_lorem_ipsum:
        reason = reason.when(lowered.contains("lorem ipsum"), F.lit("lorem ipsum"))
    if cfg.c4_drop_curly_brace:
        reason = reason.when(text.contains("{"), F.lit("curly brace"))
    sentences = F.regexp_count(F.col("_c4"), F.lit(r"[.!?]+[\"')\]]*(?=\s|$)"))
    reason = reason.when(sentences < cfg.c4_min_sentences, F.lit(f"fewer than {cfg.c4_min_sentences} sentences"))
    out = mark("c4", out, reason, modified=F.col("_c4") != text)
    return Marked("c4", out.withColumn("text", F.col("_c4")).drop("_c4"))  # not cached twice by run_step


# "published": the papers' values (the default). "docstrings": for the built-in corpus of standard-library
# docstrings, which are short, hard-wrapped (most lines end mid-sentence) and quote code: Gopher's 50-word minimum
# would keep 5% of them and C4's line filter would cut sentences apart, so those two rules are relaxed and
# curly braces are allowed; every other threshold stays published.
QUALITY_PRESETS: dict[str, QualityConfig] = {
    "published": QualityConfig(),
    "docstrings": QualityConfig(min_doc_words=5, c4_filter_lines=False, c4_drop_curly_brace=False, c4_min_sentences=1),
}


def quality_preset(name: str) -> QualityConfig:
    if name not in QUALITY_PRESETS:
        raise ValueError(f"unknown quality preset {name!r}; known: {', '.join(QUALITY_PRESETS)}")
    return QualityConfig(**vars(QUALITY_PRESETS[name]))


def quality_steps(cfg: QualityConfig) -> list:
    """The enabled quality steps in FineWeb's order: repetition, quality, C4."""
    chosen = [(cfg.gopher_repetition, gopher_repetition), (cfg.gopher_quality, gopher_quality), (cfg.c4, c4)]
    return [step for enabled, step in chosen if enabled]
