"""Small curated datasets in the curation contract's layout, built without Spark, for the validation gate's
tests: real standard-library docstrings, PII redacted, language labels, token shards from the real packer."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import unicodedata
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from components.common.default_data import default_corpus_records
from components.common.pii import redact
from components.curate.job import DOCUMENTS_DIR, REPORT_JSON, TOKENS_DIR
from components.curate.shards import pack_shards, train_tokenizer
from components.validate import frames
from components.validate.frames import dedup_key

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("license", pa.string()),
        ("metadata", pa.string()),
        ("transforms", pa.list_(pa.string())),
        ("lang", pa.string()),
        ("lang_score", pa.float64()),
    ]
)


def _lang(doc_id: str) -> str:
    """A stable language label: about 80% "en", 20% "de" (by a hash of the id)."""
    return "de" if hashlib.sha256(doc_id.encode()).digest()[0] < 52 else "en"


def clean_frame(documents: int = 300) -> pd.DataFrame:
    rows, seen = [], set()
    for record in itertools.islice(default_corpus_records(), documents * 2):
        text, _ = redact(unicodedata.normalize("NFC", record["text"]).strip())  # curation-like text, no Spark
        key = dedup_key(text)
        if len(text.split()) < 5 or key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "id": record["id"],
                "text": text,
                "source": record["source"],
                "license": record["license"],
                "metadata": None,
                "transforms": ["normalize", "langid", "pii_redact"],
                "lang": _lang(record["id"]),
                "lang_score": 0.9,
            }
        )
        if len(rows) == documents:
            break
    return pd.DataFrame(rows).sort_values("id", ignore_index=True)


def write_documents(curated_dir: Path, frame: pd.DataFrame, schema: pa.Schema = SCHEMA) -> None:
    """Replace the dataset's documents with `frame`, written with `schema`."""
    target = Path(curated_dir) / DOCUMENTS_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), target / "part-00000.parquet")


def build_dataset(curated_dir: Path, documents: int = 300, vocab_size: int = 400) -> Path:
    """A clean curated dataset: documents Parquet and token shards (with tokenizer and index.json)."""
    frame = clean_frame(documents)
    write_documents(curated_dir, frame)
    tokenizer = train_tokenizer(frame["text"], vocab_size)
    index = pack_shards(
        tokenizer, zip(frame["id"], frame["text"], strict=True), Path(curated_dir) / TOKENS_DIR, 0.1, 1 << 24
    )
    report = {  # the shape curation writes
        "input": "docs.jsonl",
        "input_files": 1,
        "documents_read": len(frame) + 4,
        "quarantined": 1,
        "quarantine_reasons": {"invalid JSON": 1},
        "steps": [
            {
                "step": "normalize",
                "input_docs": len(frame) + 3,
                "output_docs": len(frame) + 3,
                "removed": {},
                "modified": 7,
            },
            {
                "step": "length_filter",
                "input_docs": len(frame) + 3,
                "output_docs": len(frame),
                "removed": {"too short": 3},
                "modified": 0,
            },
        ],
        "documents": len(frame),
        "pii": {"EMAIL": 2},
        "vocab_size": index["vocab_size"],
    }
    (Path(curated_dir) / REPORT_JSON).write_text(json.dumps(report))
    return Path(curated_dir)


def read_documents(curated_dir: Path) -> pd.DataFrame:
    return frames.read_documents(Path(curated_dir))[0]
