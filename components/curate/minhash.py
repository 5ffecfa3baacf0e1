"""Fuzzy deduplication: MinHash LSH over word n-grams, then connected components of the candidate pairs.

1. Words (lower case, punctuation removed) are hashed natively (xxhash64); a scalar pandas UDF turns each
   document's word hashes into n-gram keys and `bands * rows` MinHash values with numpy (multiply-shift hashing).
2. Each band of `rows` values is hashed natively; documents that share any band bucket are candidate pairs.
   The probability that a pair with Jaccard similarity J becomes a candidate is 1 - (1 - J**rows)**bands
   (`candidate_probability`); the default 14 bands x 8 rows puts the S-curve's midpoint at ~0.72, so pairs at
   the 0.8 target are found with probability 0.92 and pairs at 0.9 with 0.9996.
3. Each candidate pair is kept only when the signatures agree on at least `threshold` (default 0.8) of their
   values, an unbiased estimate of the pair's Jaccard similarity; this removes the S-curve's false positives.
4. Verified pairs form clusters (connected components, union-find on the driver: the edge list has one entry
   per near-duplicate, not per document); every cluster keeps its smallest id, so reruns keep the same document.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from components.curate.marks import Marked, mark

_MIX = np.uint64(0x9E3779B97F4A7C15)
_CHUNK_DOCS = 64


@dataclass
class MinHashConfig:
    enabled: bool = True
    ngram: int = 5  # words per shingle
    bands: int = 14
    rows: int = 8
    threshold: float = 0.8  # minimum estimated Jaccard similarity of a verified pair
    seed: int = 1


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """Chance that two documents with this Jaccard similarity share at least one LSH band."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def ngram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit key per n-gram of a sequence of 64-bit ids (polynomial hash); a shorter sequence is one n-gram."""
    n = max(1, min(n, len(ids)))
    count = len(ids) - n + 1
    keys = np.zeros(max(count, 1), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(n):
            keys = keys * _MIX + ids[offset : offset + count]
    return keys


def permutations(cfg: MinHashConfig) -> tuple[np.ndarray, np.ndarray]:
    """Odd multipliers and offsets of the `bands * rows` multiply-shift hash functions."""
    rng = np.random.default_rng(cfg.seed)
    size = cfg.bands * cfg.rows
    a = rng.integers(1, 2**63, size=size, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=size, dtype=np.uint64)
    return a, b


def signatures(word_hashes: list[np.ndarray], cfg: MinHashConfig) -> list[np.ndarray]:
    """MinHash signature (int64 values below 2**32) of each document given its word hashes."""
    a, b = permutations(cfg)
    out: list[np.ndarray] = []
    for start in range(0, len(word_hashes), _CHUNK_DOCS):
        keys = [
            ngram_keys(np.asarray(h, dtype=np.int64).view(np.uint64), cfg.ngram)
            for h in word_hashes[start : start + _CHUNK_DOCS]
        ]
        offsets = np.cumsum([0] + [len(k) for k in keys[:-1]])
        with np.errstate(over="ignore"):
            hashed = (np.concatenate(keys)[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)
        out.extend(np.minimum.reduceat(hashed, offsets, axis=0).astype(np.int64))
    return out


def _signature_udf(cfg: MinHashConfig):
    @F.pandas_udf(T.ArrayType(T.LongType()))  # type: ignore[call-overload]  # pyspark stubs lack the return-type-only form
    def signature(word_hashes: pd.Series) -> pd.Series:
        return pd.Series(signatures(list(word_hashes), cfg))

    return signature


def shingle_words(column: str = "text") -> F.Column:
    """Lower-cased words without punctuation, each hashed to 64 bits."""
    cleaned = F.regexp_replace(F.lower(F.col(column)), r"[\p{P}\p{S}]+", " ")
    words = F.array_remove(F.split(F.trim(cleaned), r"\s+"), "")
    return F.transform(words, lambda w: F.xxhash64(w))


def clusters(edges: list[tuple[str, str]]) -> dict[str, str]:
    """Connected components of an edge list: member -> smallest id of its component (members only)."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        root_left, root_right = find(left), find(right)
        if root_left != root_right:
            low, high = sorted((root_left, root_right))
            parent[high] = low
    return {node: find(node) for node in parent}


def fuzzy_dedup(df: DataFrame, cfg: MinHashConfig) -> Marked:
    spark = df.sparkSession
    rows, bands = cfg.rows, cfg.bands
    signed = df.select("id", _signature_udf(cfg)(shingle_words()).alias("sig")).cache()
    band_keys = F.transform(
        F.sequence(F.lit(0), F.lit(bands - 1)), lambda band: F.xxhash64(band, F.slice("sig", band * rows + 1, rows))
    )
    buckets = signed.select("id", F.explode(band_keys).alias("bucket"))
    groups = buckets.groupBy("bucket").agg(F.array_sort(F.collect_set("id")).alias("ids")).filter(F.size("ids") > 1)
    pairs = groups.select(F.col("ids")[0].alias("a"), F.explode(F.slice("ids", 2, 1 << 30)).alias("b")).distinct()
    left, right = signed.alias("l"), signed.alias("r")
    agree = F.size(F.filter(F.zip_with("l.sig", "r.sig", lambda x, y: x == y), lambda same: same))
    verified = (
        pairs.join(left, F.col("a") == F.col("l.id"))
        .join(right, F.col("b") == F.col("r.id"))
        .filter(agree >= F.lit(cfg.threshold * bands * rows))
        .select("a", "b")
    )
    component = clusters([(row.a, row.b) for row in verified.toLocalIterator()])
    signed.unpersist()
    removed = [(member, root) for member, root in component.items() if member != root]
    schema = "_dup_id string, _kept_id string"
    duplicates = spark.createDataFrame(removed, schema) if removed else spark.createDataFrame([], schema)
    out = df.join(F.broadcast(duplicates), F.col("id") == F.col("_dup_id"), "left")
    reason = F.when(F.col("_kept_id").isNotNull(), F.lit("near duplicate"))
    return Marked("fuzzy_dedup", mark("fuzzy_dedup", out, reason))
