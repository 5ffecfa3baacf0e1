"""The tables the expectation suites run on: curated documents with computed check columns, the Parquet
schema, and per-shard token statistics. Every table has an `id` column naming its records, so a failed
expectation can name the offending ones."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from components.common.errors import InputError
from components.common.pii import find_pii
from components.curate.job import DOCUMENTS_DIR, TOKENS_DIR
from components.curate.shards import load_index

# The curated-dataset contract: column -> Arrow type. `lang` and `lang_score` are written by language
# identification; the gate requires them only when language checks are configured.
CONTRACT_COLUMNS: dict[str, str] = {
    "id": "string",
    "text": "string",
    "source": "string",
    "license": "string",
    "metadata": "string",
    "transforms": "list<string>",
    "lang": "string",
    "lang_score": "double",
}
LANGUAGE_COLUMNS = ("lang", "lang_score")
_WHITESPACE = re.compile(r"\s+")


def _type_name(arrow_type: pa.DataType) -> str:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list<{_type_name(arrow_type.value_type)}>"
    if pa.types.is_large_string(arrow_type):
        return "string"
    return str(arrow_type)


def dedup_key(text: str) -> str:
    """Hash of the lower-cased text with whitespace runs collapsed (the key curation deduplicates on)."""
    return hashlib.sha256(_WHITESPACE.sub(" ", text.lower()).encode()).hexdigest()


def read_documents(curated_dir: Path) -> tuple[pd.DataFrame, pa.Schema]:
    documents = curated_dir / DOCUMENTS_DIR
    if not documents.is_dir():
        raise InputError(f"{curated_dir}: no {DOCUMENTS_DIR}/ folder; is this a curated dataset?")
    try:
        table = pq.read_table(documents)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(f"{documents}: not readable as Parquet ({error})") from None
    return table.to_pandas(), table.schema


def schema_frame(schema: pa.Schema, required: list[str]) -> pd.DataFrame:
    """One row per contract column present or required: expected and actual Arrow type."""
    actual = {name: _type_name(schema.field(name).type) for name in schema.names}
    rows = [
        {"id": name, "expected_type": expected, "actual_type": actual.get(name, "missing")}
        for name, expected in CONTRACT_COLUMNS.items()
        if name in actual or name in required
    ]
    return pd.DataFrame(rows, columns=["id", "expected_type", "actual_type"])


def documents_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The documents plus the computed columns the suite checks: words, pii_count, duplicate_of,
    provenance_ok (source and license non-empty) and transforms_count."""
    frame = frame.reset_index(drop=True).copy()
    if "text" in frame.columns:
        texts = frame["text"].map(lambda t: t if isinstance(t, str) else "")
        frame["words"] = texts.str.split().str.len()
        frame["pii_count"] = texts.map(lambda t: sum(find_pii(t).values()))
        keys = texts.map(dedup_key)
        first = pd.Series(frame["id"] if "id" in frame.columns else frame.index.astype(str), index=frame.index)
        first_of_key = first.groupby(keys).transform("first")
        frame["duplicate_of"] = first_of_key.where(keys.duplicated(), None)
    if {"source", "license"} <= set(frame.columns):
        filled = lambda column: frame[column].map(lambda v: isinstance(v, str) and bool(v.strip()))  # noqa: E731
        frame["provenance_ok"] = filled("source") & filled("license")
    if "transforms" in frame.columns:
        frame["transforms_count"] = frame["transforms"].map(lambda v: 0 if v is None else len(v))
    return frame


def shard_stats(curated_dir: Path) -> tuple[pd.DataFrame, dict]:
    """One row per shard (id = file name): tokens the index claims, tokens on disk, whether the file size is a
    whole number of tokens, largest token id, vocabulary size. Also returns the index."""
    tokens_dir = curated_dir / TOKENS_DIR
    if not (tokens_dir / "index.json").is_file():
        raise InputError(f"{curated_dir}: no {TOKENS_DIR}/index.json; is this a curated dataset?")
    index = load_index(tokens_dir)
    vocab_size = int(index["vocab_size"])
    expected_dtype = np.dtype("<u2") if vocab_size <= 2**16 - 1 else np.dtype("<u4")
    try:
        dtype = np.dtype(index["dtype"])
    except TypeError:
        raise InputError(f"{tokens_dir / 'index.json'}: unknown dtype {index['dtype']!r}") from None
    rows = []
    for split, shards in index["splits"].items():
        for shard in shards:
            path = tokens_dir / shard["file"]
            size = path.stat().st_size if path.is_file() else 0
            whole = size - size % dtype.itemsize
            tokens = np.fromfile(path, dtype=dtype, count=whole // dtype.itemsize) if whole else np.zeros(0, dtype)
            rows.append(
                {
                    "id": shard["file"],
                    "split": split,
                    "present": path.is_file(),
                    "dtype": dtype.name,
                    "expected_dtype": expected_dtype.name,
                    "index_tokens": int(shard["tokens"]),
                    "disk_tokens": int(tokens.size),
                    "partial_bytes": int(size % dtype.itemsize),
                    "max_token_id": int(tokens.max()) if tokens.size else -1,
                    "vocab_size": vocab_size,
                }
            )
    columns = ["id", "split", "present", "dtype", "expected_dtype", "index_tokens", "disk_tokens", "partial_bytes",
               "max_token_id", "vocab_size"]
    return pd.DataFrame(rows, columns=columns), index
