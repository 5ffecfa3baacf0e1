"""Curation steps that need no model: normalize, length filter, exact dedup, PII redaction.

Each returns a `Marked` frame (see marks.py); the job runs it and collects the step's report.
"""

from __future__ import annotations

import unicodedata

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from components.curate.marks import Marked, first_failing, mark
from components.curate.pii_columns import redact_column

# (pattern, replacement), applied in order as Java regexes (Spark's regexp_replace). Line separators (U+2028,
# U+2029, NEL) become line breaks first, so no later rule (nor a Java `$`, which also matches before them) sees one.
NORMALIZE_RULES: tuple[tuple[str, str], ...] = (
    (r"\r\n?|[\u0085\u2028\u2029]", "\n"),  # one line ending
    (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]", ""),  # control and zero-width characters
    (r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]", " "),  # Unicode spaces
    (r"[ \t]+\n", "\n"),  # trailing spaces
    (r"[ \t]+\z", ""),
    (r"\n{3,}", "\n\n"),  # at most one blank line
    (r"\A\s+|\s+\z", ""),  # leading and trailing blank space of the document
)


@F.pandas_udf(T.StringType())  # type: ignore[call-overload]  # pyspark stubs lack the return-type-only form
def _nfc(texts: pd.Series) -> pd.Series:
    return texts.map(lambda s: s if unicodedata.is_normalized("NFC", s) else unicodedata.normalize("NFC", s))


def normalize(df: DataFrame) -> Marked:
    """NFC, one line ending, no control or zero-width characters, no trailing spaces, at most one blank line.

    Unicode NFC is the one part Spark has no function for (a small pandas UDF); the rules above run as native
    regex replaces. Leading indentation inside the text is kept: code examples and tables depend on it.
    """
    text = _nfc("text")
    for pattern, replacement in NORMALIZE_RULES:
        text = F.regexp_replace(text, pattern, replacement)
    out = df.withColumn("_normalized", text)
    changed = F.col("_normalized") != F.col("text")
    out = mark("normalize", out, modified=changed, checked=False)
    out = out.withColumn("text", F.col("_normalized")).drop("_normalized")
    return Marked("normalize", out.withColumn("_reason", F.when(F.col("text") == "", F.lit("normalize.empty"))))


def words_column(column: str = "text") -> F.Column:
    """Whitespace-separated words (an empty text has none)."""
    return F.array_remove(F.split(F.col(column), r"\s+"), "")


def word_count(column: str = "text") -> F.Column:
    return F.size(words_column(column))


def length_filter(df: DataFrame, min_words: int, max_words: int) -> Marked:
    words = word_count()
    reason, value = first_failing(
        "length", [("short_doc", words < min_words, words), ("long_doc", words > max_words, words)]
    )
    return Marked("length", mark("length", df, reason, value=value))


def dedup_key(column: str = "text") -> F.Column:
    """Hash of the text with case and whitespace differences removed."""
    return F.sha2(F.regexp_replace(F.lower(F.col(column)), r"\s+", " "), 256)


def exact_dedup(df: DataFrame) -> Marked:
    """One document per normalized-content hash: the one with the smallest id, so reruns keep the same one."""
    group = Window.partitionBy("_key").orderBy("id", "source")
    marked = df.withColumn("_key", dedup_key()).withColumn("_rank", F.row_number().over(group))
    marked = marked.withColumn("_first", F.first("id").over(group))
    duplicate = F.col("_rank") > 1
    marked = mark(
        "exact_dedup",
        marked,
        F.when(duplicate, F.lit("exact_dedup.duplicate")),
        detail=F.when(duplicate, F.col("_first")),  # the id of the copy that stays
    ).drop("_key", "_rank", "_first")
    return Marked("exact_dedup", marked)


def pii_redact(df: DataFrame) -> Marked:
    """Replace PII with typed placeholders (components.common.pii); documents are kept, spans counted by kind."""
    redacted, counts = redact_column(F.col("text"))
    out = df.withColumn("_redacted", redacted)
    for kind, column in counts.items():
        out = out.withColumn(f"_pii_{kind}", column)
    out = mark("pii_redact", out, modified=F.col("_redacted") != F.col("text"), checked=False)
    out = out.withColumn("text", F.col("_redacted")).drop("_redacted")
    counters = {kind: F.col(f"_pii_{kind}") for kind in counts}
    return Marked("pii_redact", out, counters)
