"""Curation steps. Each takes a document DataFrame and returns the kept rows plus a report of what it removed
(by reason) or modified; `transforms` records on every document which modifying steps changed it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T


@dataclass
class StepReport:
    step: str
    input_docs: int
    output_docs: int
    removed: dict[str, int] = field(default_factory=dict)
    modified: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]")
_UNICODE_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_TRAILING = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFC, one line ending, no control or zero-width characters, no trailing spaces, at most one blank line.

    Leading indentation is kept: code examples and tables depend on it.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _UNICODE_SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text + "\n")
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


@F.pandas_udf(T.StringType())
def _normalize_udf(texts: pd.Series) -> pd.Series:
    return texts.map(normalize_text)


def _count_reasons(marked: DataFrame) -> tuple[int, dict[str, int]]:
    counts = {row["_reason"]: row["count"] for row in marked.groupBy("_reason").count().collect()}
    kept = counts.pop(None, 0)
    return kept, dict(sorted(counts.items()))


def _filter_step(name: str, marked: DataFrame) -> tuple[DataFrame, StepReport]:
    """Keep rows whose `_reason` is null; count the others by reason."""
    marked = marked.cache()
    kept, removed = _count_reasons(marked)
    report = StepReport(name, kept + sum(removed.values()), kept, removed)
    return marked.filter(F.col("_reason").isNull()).drop("_reason"), report


def normalize(df: DataFrame) -> tuple[DataFrame, StepReport]:
    out = df.withColumn("_normalized", _normalize_udf("text"))
    changed = F.col("_normalized") != F.col("text")
    out = out.withColumn(
        "transforms", F.when(changed, F.array_append("transforms", F.lit("normalize"))).otherwise(F.col("transforms"))
    ).withColumn("_changed", changed)
    out = out.withColumn("text", F.col("_normalized")).drop("_normalized")
    out = out.withColumn("_reason", F.when(F.col("text") == "", F.lit("empty after normalization"))).cache()
    modified = out.filter("_changed").count()
    kept, report = _filter_step("normalize", out.drop("_changed"))
    report.modified = modified
    return kept, report


def word_count(column: str = "text") -> F.Column:
    return F.size(F.split(F.trim(F.col(column)), r"\s+"))


def length_filter(df: DataFrame, min_words: int, max_words: int) -> tuple[DataFrame, StepReport]:
    words = word_count()
    reason = F.when(words < min_words, F.lit(f"fewer than {min_words} words")).when(
        words > max_words, F.lit(f"more than {max_words} words")
    )
    return _filter_step("length", df.withColumn("_reason", reason))


def dedup_key(column: str = "text") -> F.Column:
    """Hash of the text with case and whitespace differences removed."""
    return F.sha2(F.regexp_replace(F.lower(F.col(column)), r"\s+", " "), 256)


def exact_dedup(df: DataFrame) -> tuple[DataFrame, StepReport]:
    """One document per normalized-content hash: the one with the smallest id, so reruns keep the same one."""
    rank = F.row_number().over(Window.partitionBy("_key").orderBy("id", "source"))
    marked = df.withColumn("_key", dedup_key()).withColumn(
        "_reason", F.when(rank > 1, F.lit("exact duplicate"))
    ).drop("_key")
    return _filter_step("exact_dedup", marked)
