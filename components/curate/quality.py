"""Quality filters with the published rules and thresholds, and the presets that combine them.

Sources (each preset below says which it follows):
- Gopher quality and repetition: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
  Training Gopher", appendix A (table A1 for the repetition thresholds).
- C4: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer",
  section 2.2, and the code that built the released C4, tensorflow/datasets `text/c4_utils.py` (`clean_page`):
  lines are stripped, a line with a word over 1,000 characters is dropped, citation markers are removed, lines
  ending in "..." are not terminal, and lorem ipsum / curly braces are looked for only in the lines the line
  filter kept.
- FineWeb: Penedo et al. 2024, "The FineWeb Datasets", and datatrove's `examples/fineweb.py`: Gopher repetition,
  Gopher quality, C4 without the terminal-punctuation line filter, then `FineWebQualityFilter`
  (datatrove `pipeline/filters/fineweb_quality_filter.py`).

Words are whitespace-separated tokens (with surrounding punctuation stripped where a rule compares words to a
list), so the counts need no tokenizer model. Everything is a native Spark expression except the n-gram
repetition measures, which need counting inside one document: a scalar pandas UDF over numpy does that.

Every removal carries a stable reason code `<step>.<rule>` and the rule's measured value (see marks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from components.curate.marks import Marked, first_failing, mark, measured_columns
from components.curate.minhash import ngram_keys
from components.curate.sentences import ABBREVIATION, SENTENCE_END
from components.curate.steps import words_column

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
C4_CITATION = r"\[\d*\]|\[edit\]|\[citation needed\]"  # c4_utils.py's citation_regex


@dataclass
class QualityConfig:
    # Gopher quality (Rae et al. 2021, appendix A)
    gopher_quality: bool = True
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_hash_word_ratio: float = 0.1  # "#" per word
    max_ellipsis_word_ratio: float = 0.1  # "..." and "…" per word ("either the hash symbol or the ellipsis")
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
    # C4 (defaults: the released C4's code, c4_utils.py; the paper's text says 3 words per line, 5 sentences)
    c4: bool = True
    c4_terminal_punct: bool = True  # keep only lines ending in an end mark (and not in "...")
    c4_end_marks: str = '.?!"'  # c4_utils.py's _END_MARKS
    c4_min_words_per_line: int = 5  # 0 disables
    c4_max_word_length: int = 1000  # a line with a longer word is dropped; 0 disables
    c4_remove_citations: bool = True
    c4_drop_javascript_lines: bool = True
    c4_drop_policy_lines: bool = True
    c4_min_sentences: int = 3  # counted on the kept lines; 0 disables
    c4_drop_lorem_ipsum: bool = True
    c4_drop_curly_brace: bool = True
    c4_doc_rules_on_kept_lines: bool = True  # lorem ipsum / "{" looked for in the lines the line filter kept
    # FineWeb quality (datatrove FineWebQualityFilter; lines are the non-empty ones)
    fineweb_quality: bool = False
    fineweb_min_line_punct_ratio: float = 0.12  # lines ending in a stop char; removed below this
    fineweb_stop_chars: str = ".!?\u3002\uff01\uff1f\u0964\u061f\u06d4\u203c\u203d\u2047\u2048\u2049"
    fineweb_max_short_line_ratio: float = 0.67  # removed above this
    fineweb_short_line_length: int = 30
    fineweb_max_dup_line_char_ratio: float = 0.01  # characters in repeated lines / characters; removed above
    fineweb_max_newline_word_ratio: float = 0.3  # newlines per word; removed above

    @classmethod
    def from_dict(cls, values: dict) -> QualityConfig:
        pairs = {"top_ngram_char_frac", "dup_ngram_char_frac"}
        fields: dict[str, Any] = {
            k: tuple(tuple(p) for p in v) if k in pairs else tuple(v) if k == "stop_words" else v
            for k, v in values.items()
        }
        return cls(**fields)

    @property
    def c4_filters_lines(self) -> bool:
        """Whether any C4 line rule is on (otherwise the text is left exactly as it is)."""
        return bool(
            self.c4_terminal_punct
            or self.c4_min_words_per_line
            or self.c4_max_word_length
            or self.c4_remove_citations
            or self.c4_drop_javascript_lines
            or self.c4_drop_policy_lines
        )


def _size(array: Column) -> Column:
    return F.size(array).cast("double")


def _chars(array: Column) -> Column:
    """Total characters of an array of strings."""
    return F.length(F.array_join(array, ""))


def _count(text: Column, pattern: str) -> Column:
    return F.regexp_count(text, F.lit(pattern)).cast("double")


def _char_class(chars: str) -> str:
    return "[" + "".join("\\" + c if c in "\\[]^-&" else c for c in chars) + "]"


# Regular expressions over the whole text (native and compiled once) instead of per-word lambdas, which Spark
# interprets row by row and which measured ten times slower.
_TOKEN = r"(?<!\S)"  # the start of a whitespace-separated word
_CONTENT_WORD = _TOKEN + r"(?=\S*[^\s\p{P}\p{S}])\S+"  # a word that is not only punctuation or symbols
_SYMBOL_WORD = _TOKEN + r"[\p{P}\p{S}]+(?!\S)"
_ALPHA_WORD = _TOKEN + r"(?=\S*\p{L})\S+"
_BULLET_LINE = "(?m)^[ \t]*[\u2022\u2023\u25e6\u2043\u2219*-]"
_ELLIPSIS_LINE = r"(?m)(\.\.\.|\u2026)[ \t]*$"


def _stop_word_pattern(stop_words: tuple[str, ...]) -> str:
    """A stop word standing alone or between punctuation (what remains of a word once its punctuation is cut).

    `_` joins words (snake_case, `__init__`), so it is not a boundary even though Unicode files it as punctuation.
    """
    return r"(?<![^\s\p{P}]|_)(" + "|".join(stop_words) + r")(?![^\s\p{P}]|_)"


def sentence_count(text: Column) -> Column:
    """Sentences: end marks followed by a space or the end, less the periods of abbreviations and initials."""
    return F.regexp_count(text, F.lit(SENTENCE_END)) - F.regexp_count(text, F.lit(ABBREVIATION))


# ------------------------------------------------------------------------------------------------ Gopher quality


def gopher_quality(df: DataFrame, cfg: QualityConfig) -> Marked:
    text = F.col("text")
    df, m = measured_columns(
        df,
        "gopher_quality",
        n_words=_size(words_column()),
        n_content=_count(text, _CONTENT_WORD),
        content_chars=F.length(F.regexp_replace(text, _SYMBOL_WORD + r"|\s+", "")),
        hashes=_count(text, "#"),
        ellipses=_count(text, "\\.\\.\\.|\u2026"),
        n_lines=_count(text, "\n") + 1,
        bullets=_count(text, _BULLET_LINE),
        ellipsis_lines=_count(text, _ELLIPSIS_LINE),
        alpha=_count(text, _ALPHA_WORD),
        stop_words=F.size(
            F.array_distinct(F.regexp_extract_all(F.lower(text), F.lit(_stop_word_pattern(cfg.stop_words)), F.lit(1)))
        ),
    )
    n_content, n_lines = m["n_content"], m["n_lines"]
    mean_length = m["content_chars"] / n_content
    hashes, ellipses = m["hashes"] / n_content, m["ellipses"] / n_content
    bullets, ellipsis_lines = m["bullets"] / n_lines, m["ellipsis_lines"] / n_lines
    alpha, stop_words = m["alpha"] / m["n_words"], m["stop_words"]
    reason, value = first_failing(
        "gopher_quality",
        [
            ("short_doc", n_content < cfg.min_doc_words, n_content),
            ("long_doc", n_content > cfg.max_doc_words, n_content),
            ("mean_word_length_low", mean_length < cfg.min_mean_word_length, mean_length),
            ("mean_word_length_high", mean_length > cfg.max_mean_word_length, mean_length),
            ("hash_ratio", hashes > cfg.max_hash_word_ratio, hashes),
            ("ellipsis_ratio", ellipses > cfg.max_ellipsis_word_ratio, ellipses),
            ("bullet_lines", bullets > cfg.max_bullet_lines_ratio, bullets),
            ("ellipsis_lines", ellipsis_lines > cfg.max_ellipsis_lines_ratio, ellipsis_lines),
            ("alpha_words", alpha < cfg.min_alpha_words_ratio, alpha),
            ("stop_words", stop_words < cfg.min_stop_words, stop_words),
        ],
    )
    return Marked("gopher_quality", mark("gopher_quality", df, reason, value=value))


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


def ngram_repetition(
    text: str, top: tuple[tuple[int, float], ...], dup: tuple[tuple[int, float], ...]
) -> tuple[str, float] | None:
    """(rule, measured fraction) of the first n-gram repetition rule `text` fails, or None when it passes.

    The top n-gram is the most frequent one; among equally frequent ones, the one that occurs first (as a
    counter filled in text order would return), so the measure never depends on hash order.
    """
    words = text.split()
    if not words:
        return None
    sizes = [n for n, _ in (*top, *dup)]
    # A repeated n-gram (n >= 2) starts with a repeated pair of words: a text without one passes every rule, and
    # most short documents have none (70% of 50,000 dictionary entries, fortunes and changelog entries, on which
    # this check halves the function's time).
    if not sizes or (min(sizes) >= 2 and len(set(pairwise(words))) == len(words) - 1):
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
        most = int(counts.max())
        if most < 2:
            continue
        start = int(first[counts == most].min())
        chars = int(cumulative[start + n] - cumulative[start]) + n - 1  # the n-gram joined with spaces
        measured = chars * most / n_chars
        if measured > fraction:
            return f"top_{n}_gram", measured
    if dup and len(words) >= dup[0][0]:
        smallest = min(n for n, _ in dup)
        if np.unique(ngram_keys(ids, smallest)).size == len(words) - smallest + 1:
            return None  # no repeated n-gram of the smallest size, so none of any larger size either
    for n, fraction in dup:
        if len(words) < n:
            continue
        gram_chars = cumulative[n:] - cumulative[:-n]
        measured = _repeated_chars(ngram_keys(ids, n), gram_chars, n) / n_chars
        if measured > fraction:
            return f"duplicated_{n}_gram", measured
    return None


def _ngram_udf(cfg: QualityConfig):
    top, dup = cfg.top_ngram_char_frac, cfg.dup_ngram_char_frac

    def encode(text: str) -> str | None:
        failed = ngram_repetition(text, top, dup)
        return None if failed is None else f"{failed[0]} {failed[1]!r}"

    # One string "rule value": Arrow round-trips of struct results fail with this pyspark/pyarrow pair.
    @F.pandas_udf(T.StringType())  # type: ignore[call-overload]  # pyspark stubs lack the return-type-only form
    def ngram_rule(texts: pd.Series) -> pd.Series:
        return texts.map(encode)

    return ngram_rule


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
    para_frac, para_chars = dup_paras / _size(paragraphs), dup_para_chars / n_chars
    line_frac, line_chars = dup_lines / _size(lines), dup_line_chars / n_chars
    reason, value = first_failing(
        "gopher_repetition",
        [
            ("dup_para_frac", para_frac > cfg.max_dup_para_frac, para_frac),
            ("dup_para_char_frac", para_chars > cfg.max_dup_para_char_frac, para_chars),
            ("dup_line_frac", line_frac > cfg.max_dup_line_frac, line_frac),
            ("dup_line_char_frac", line_chars > cfg.max_dup_line_char_frac, line_chars),
        ],
    )
    out = df.withColumn("_ngram", F.when(reason.isNull(), F.split(_ngram_udf(cfg)(text), " ")))
    reason = F.coalesce(reason, F.concat(F.lit("gopher_repetition."), F.col("_ngram")[0]))
    value = F.coalesce(value, F.col("_ngram")[1].cast("double"))
    return Marked("gopher_repetition", mark("gopher_repetition", out, reason, value=value))


# ------------------------------------------------------------------------------------------------------------ C4


def _line_words(line: Column) -> Column:
    return F.regexp_count(line, F.lit(r"\S+"))


def c4(df: DataFrame, cfg: QualityConfig) -> Marked:
    """C4's line filters (which modify the text), then its document rules, in the order of `clean_page`."""
    text = F.col("text")
    if cfg.c4_filters_lines:
        lines = F.transform(F.split(text, "\n"), lambda line: F.regexp_replace(line, r"^\s+|\s+$", ""))
        if cfg.c4_max_word_length:
            lines = F.filter(lines, lambda line: ~line.rlike(rf"\S{{{cfg.c4_max_word_length + 1}}}"))
        if cfg.c4_remove_citations:
            lines = F.transform(lines, lambda line: F.regexp_replace(line, C4_CITATION, ""))
        if cfg.c4_terminal_punct:
            ends = _char_class(cfg.c4_end_marks) + "$"
            lines = F.filter(lines, lambda line: line.rlike(ends) & ~line.endswith("..."))
        if cfg.c4_min_words_per_line:
            lines = F.filter(lines, lambda line: _line_words(line) >= cfg.c4_min_words_per_line)
        candidates = lines  # the lines the document rules look at (clean_page checks them before the rest)

        def dropped_line(line: Column) -> Column:
            low, dropped = F.lower(line), F.lit(False)
            if cfg.c4_drop_javascript_lines:
                dropped = dropped | low.contains("javascript")
            if cfg.c4_drop_policy_lines:
                for phrase in C4_POLICY_PHRASES:
                    dropped = dropped | low.contains(phrase)
            return dropped

        kept = F.regexp_replace(F.array_join(F.filter(candidates, lambda x: ~dropped_line(x)), "\n"), r"^\s+|\s+$", "")
        out = df.withColumn("_c4", kept)
    else:
        candidates = F.array(text)
        out = df.withColumn("_c4", text)
    if not cfg.c4_doc_rules_on_kept_lines:
        candidates = F.array(text)
    javascript = cfg.c4_drop_javascript_lines and cfg.c4_filters_lines and cfg.c4_doc_rules_on_kept_lines
    lorem = F.exists(candidates, lambda line: F.lower(line).contains("lorem ipsum"))

    def braced(line: Column) -> Column:  # clean_page drops a javascript line before it looks for "{"
        return line.contains("{") & ~F.lower(line).contains("javascript") if javascript else line.contains("{")

    brace = F.exists(candidates, braced)
    sentences = sentence_count(F.col("_c4"))
    rules = []
    if cfg.c4_drop_lorem_ipsum:
        rules.append(("lorem_ipsum", lorem, F.lit(None)))
    if cfg.c4_drop_curly_brace:
        rules.append(("curly_bracket", brace, F.lit(None)))
    rules.append(("too_few_sentences", sentences < cfg.c4_min_sentences, sentences))
    rules.append(("no_lines_left", F.col("_c4") == "", F.lit(0)))
    reason, value = first_failing("c4", rules)
    out = mark("c4", out, reason, modified=F.col("_c4") != text, value=value)
    return Marked("c4", out.withColumn("text", F.col("_c4")).drop("_c4"))  # not cached twice by run_step


# ------------------------------------------------------------------------------------------------------- FineWeb


def fineweb_quality(df: DataFrame, cfg: QualityConfig) -> Marked:
    """FineWeb's line-level document rules (datatrove FineWebQualityFilter) over the non-empty lines."""
    text = F.col("text")
    lines = F.filter(F.split(text, "\n"), lambda line: line.rlike(r"\S"))
    n_lines = _size(lines)
    ends = _char_class(cfg.fineweb_stop_chars) + "$"
    punct = F.size(F.filter(lines, lambda line: line.rlike(ends))) / n_lines
    short = F.size(F.filter(lines, lambda line: F.length(line) <= cfg.fineweb_short_line_length)) / n_lines
    dup_chars = (_chars(lines) - _chars(F.array_distinct(lines))) / F.length(F.regexp_replace(text, "\n", ""))
    newlines = _count(text, "\n") / _size(words_column())
    reason, value = first_failing(
        "fineweb_quality",
        [
            ("empty", n_lines == 0, n_lines),
            ("line_punct_ratio", punct < cfg.fineweb_min_line_punct_ratio, punct),
            ("short_line_ratio", short > cfg.fineweb_max_short_line_ratio, short),
            ("char_dup_ratio", dup_chars > cfg.fineweb_max_dup_line_char_ratio, dup_chars),
            ("list_ratio", newlines > cfg.fineweb_max_newline_word_ratio, newlines),
        ],
    )
    return Marked("fineweb_quality", mark("fineweb_quality", df, reason, value=value))


# ---------------------------------------------------------------------------------------------------------- presets

_C4_OFF: dict[str, Any] = dict(c4=False)
# What FineWeb ran (datatrove examples/fineweb.py): C4QualityFilter(filter_no_terminal_punct=False) with
# datatrove's defaults, which are the paper's 3 words per line and 5 sentences; then FineWebQualityFilter.
_FINEWEB = QualityConfig(c4_terminal_punct=False, c4_min_words_per_line=3, c4_min_sentences=5, fineweb_quality=True)

# "fineweb" (the default for any input): FineWeb's recipe, above. On hard-wrapped prose or text without line
# breaks C4's terminal-punctuation line filter deletes whole documents; FineWeb's ablations turned it off.
# "c4": the rules that built the released C4 (c4_utils.py: 5 words per line, 3 sentences), no Gopher.
# "gopher": Gopher quality and repetition only (Rae et al. 2021).
# "docstrings": for the built-in corpus of standard-library docstrings, which are short, hard-wrapped (most lines
# end mid-sentence) and quote code: Gopher's 50-word minimum would keep 5% of them and C4's line rules would cut
# them apart, so the Gopher minimum is 5 words, C4 keeps every line, allows curly braces and asks for one
# sentence; every other threshold stays published.
QUALITY_PRESETS: dict[str, QualityConfig] = {
    "fineweb": _FINEWEB,
    "c4": QualityConfig(gopher_quality=False, gopher_repetition=False),
    "gopher": QualityConfig(**_C4_OFF),
    "docstrings": QualityConfig(
        min_doc_words=5,
        c4_terminal_punct=False,
        c4_min_words_per_line=0,
        c4_max_word_length=0,
        c4_remove_citations=False,
        c4_drop_javascript_lines=False,
        c4_drop_policy_lines=False,
        c4_drop_curly_brace=False,
        c4_min_sentences=1,
    ),
}
DEFAULT_PRESET = "fineweb"


def quality_preset(name: str) -> QualityConfig:
    if name not in QUALITY_PRESETS:
        raise ValueError(f"unknown quality preset {name!r}; known: {', '.join(QUALITY_PRESETS)}")
    return replace(QUALITY_PRESETS[name])


def quality_steps(cfg: QualityConfig) -> list:
    """The enabled quality steps in FineWeb's order: repetition, quality, C4, FineWeb."""
    chosen = [
        (cfg.gopher_repetition, gopher_repetition),
        (cfg.gopher_quality, gopher_quality),
        (cfg.c4, c4),
        (cfg.fineweb_quality, fineweb_quality),
    ]
    return [step for enabled, step in chosen if enabled]
