"""The tables the expectation suites run on: curated documents with computed check columns, the Parquet
schema, and per-shard token statistics. Every table has an `id` column naming its records, so a failed
expectation can name the offending ones."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from components.common.contracts import DOCUMENTS_DIR, INDEX_FILE, TOKENS_DIR, load_index, token_dtype_name
from components.common.errors import InputError
from components.common.pii import find_pii

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


def _filled(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def documents_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The documents plus the computed columns the suite checks: words, pii_count, duplicate_of,
    provenance_ok (source and license non-empty) and transforms_count."""
    frame = frame.reset_index(drop=True).copy()
    if "text" in frame.columns:
        texts = frame["text"].map(lambda t: t if isinstance(t, str) else "")
        frame["words"] = texts.str.split().str.len()
        frame["pii_count"] = texts.map(lambda t: sum(find_pii(t).values()))
        keys = texts.map(dedup_key)
        names = frame["id"] if "id" in frame.columns else pd.Series(frame.index.astype(str), index=frame.index)
        frame["duplicate_of"] = names.groupby(keys).transform("first").where(keys.duplicated(), None)
    if {"source", "license"} <= set(frame.columns):
        frame["provenance_ok"] = frame["source"].map(_filled) & frame["license"].map(_filled)
    if "transforms" in frame.columns:
        frame["transforms_count"] = frame["transforms"].map(lambda v: 0 if v is None else len(v))
    return frame


def _load_index(tokens_dir: Path) -> dict:
    path = tokens_dir / "index.json"
    try:
        index = load_index(tokens_dir)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    missing = [key for key in ("dtype", "vocab_size", "splits") if key not in index]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}")
    try:
        np.dtype(index["dtype"])
    except TypeError:
        raise InputError(f"{path}: unknown dtype {index['dtype']!r}") from None
    return index


def shard_stats(curated_dir: Path) -> pd.DataFrame:
    """One row per shard (id = file name): whether the file is there, its dtype and the one the vocabulary needs,
    tokens and documents the index claims, tokens on disk, bytes beyond the last whole token, largest token id,
    vocabulary size."""
    tokens_dir = curated_dir / TOKENS_DIR
    if not (tokens_dir / INDEX_FILE).is_file():
        raise InputError(f"{curated_dir}: no {TOKENS_DIR}/{INDEX_FILE}; is this a curated dataset?")
    index = _load_index(tokens_dir)
    vocab_size = int(index["vocab_size"])
    expected_dtype = np.dtype(token_dtype_name(vocab_size))
    dtype = np.dtype(index["dtype"])
    rows = []
    for split, shards in index["splits"].items():
        for shard in shards:
            path = tokens_dir / shard["file"]
            size = path.stat().st_size if path.is_file() else 0
            count = size // dtype.itemsize
            tokens = np.fromfile(path, dtype=dtype, count=count) if count else np.zeros(0, dtype)
            rows.append(
                {
                    "id": shard["file"],
                    "split": split,
                    "present": path.is_file(),
                    "dtype": dtype.name,
                    "expected_dtype": expected_dtype.name,
                    "index_tokens": int(shard["tokens"]),
                    "index_docs": int(shard.get("docs", 0)),
                    "disk_tokens": int(tokens.size),
                    "partial_bytes": int(size % dtype.itemsize),
                    "max_token_id": int(tokens.max()) if tokens.size else -1,
                    "vocab_size": vocab_size,
                }
            )
    columns = [
        "id",
        "split",
        "present",
        "dtype",
        "expected_dtype",
        "index_tokens",
        "index_docs",
        "disk_tokens",
        "partial_bytes",
        "max_token_id",
        "vocab_size",
    ]
    return pd.DataFrame(rows, columns=columns)
