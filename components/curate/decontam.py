"""Decontamination: drop training documents that share a long word n-gram with an evaluation set.

Words are compared the way MinHash sees them (lower case, punctuation removed, xxhash64 per word, computed by
Spark for both sides); n-grams are 64-bit keys of `n` consecutive words (a text shorter than `n` words is one
n-gram). The evaluation sets' keys are gathered once on the driver, sorted, and checked per document with
numpy's sorted search inside a scalar pandas UDF.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from components.common.errors import InputError
from components.curate.marks import Marked, mark
from components.curate.minhash import ngram_keys, shingle_words


@dataclass
class DecontamConfig:
    enabled: bool = True
    ngram: int = 13
    default_task: bool = True  # the downstream task the pipeline adapts and evaluates on
    extra_files: tuple[str, ...] = field(default_factory=tuple)  # JSONL (a "text" per line) or plain-text files


def evaluation_texts(cfg: DecontamConfig) -> list[str]:
    """Every evaluation text the pipeline uses: the default task's examples plus the configured files."""
    texts: list[str] = []
    if cfg.default_task:
        from components.common.default_data import default_task_examples  # what components.adapt.task loads

        texts += [example["text"] for split in default_task_examples().values() for example in split]
    for name in cfg.extra_files:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"{path}: evaluation file for decontamination not found")
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    texts.append(str(json.loads(line)["text"]))
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise InputError(f"{path}:{number}: expected a JSON object with a text field ({error})") from None
        else:
            texts.append(path.read_text(encoding="utf-8"))
    return texts


def evaluation_keys(spark: SparkSession, texts: list[str], n: int) -> np.ndarray:
    """Sorted unique n-gram keys of the evaluation texts."""
    if not texts:
        return np.zeros(0, dtype=np.uint64)
    frame = spark.createDataFrame([(t,) for t in texts], "text string").select(shingle_words().alias("h"))
    keys = [
        ngram_keys(np.asarray(row.h, dtype=np.int64).view(np.uint64), n) for row in frame.toLocalIterator() if row.h
    ]
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.uint64)


def _overlap_udf(eval_keys: np.ndarray, n: int):
    @F.pandas_udf(T.BooleanType())  # type: ignore[call-overload]  # pyspark stubs lack the return-type-only form
    def overlaps(word_hashes: pd.Series) -> pd.Series:
        def hit(hashes: np.ndarray) -> bool:
            if len(hashes) == 0:
                return False
            keys = ngram_keys(np.asarray(hashes, dtype=np.int64).view(np.uint64), n)
            found = np.searchsorted(eval_keys, keys).clip(max=len(eval_keys) - 1)
            return bool(np.any(eval_keys[found] == keys))

        return word_hashes.map(hit)

    return overlaps


def decontaminate(df: DataFrame, cfg: DecontamConfig) -> Marked:
    spark = df.sparkSession
    eval_keys = evaluation_keys(spark, evaluation_texts(cfg), cfg.ngram)
    if len(eval_keys) == 0:
        return Marked("decontam", mark("decontam", df))  # nothing to compare with: every document passes
    shared = _overlap_udf(eval_keys, cfg.ngram)(shingle_words())
    reason = F.when(shared, F.lit("decontam.shared_ngram"))
    return Marked("decontam", mark("decontam", df, reason))
