"""Curation: quarantine with exact line numbers, normalization, dedup, stable fingerprints and shards."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.curate.job import DOCUMENTS_DIR, QUARANTINE_FILE, TOKENS_DIR, CurateConfig, curate
from components.curate.shards import load_index, read_split
from components.curate.steps import normalize_text


def test_normalize_text():
    assert normalize_text("Cafe\u0301\r\nline\x00 two  \n\n\n\nend\u00a0x") == "Caf\u00e9\nline two\n\nend x"
    assert normalize_text("    indented code\n") == "indented code"
    assert normalize_text("a\n    indented") == "a\n    indented"


def test_malformed_records_are_quarantined_with_line_numbers(spark, tmp_path):
    words = "this document has more than enough words to pass the filter"
    lines = [
        json.dumps({"id": "a", "text": f"first {words}", "license": "CC-BY-4.0", "lang_hint": "en"}),
        "{not json",
        json.dumps({"text": 42}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "no-text"}),
        "",
        json.dumps({"id": "b", "text": f"second {words}"}),
        json.dumps({"id": "c", "text": f"SECOND   {words}"}),  # duplicate of b up to case and spacing
        json.dumps({"id": "d", "text": "too short"}),
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "in" / "empty.jsonl").write_text("")
    result = curate(str(tmp_path / "in"), tmp_path / "out", CurateConfig(vocab_size=300, val_fraction=0.0))

    quarantine = [json.loads(line) for line in (tmp_path / "out" / QUARANTINE_FILE).read_text().splitlines()]
    assert [(q["line"], q["reason"].split(":")[0]) for q in quarantine] == [
        (2, "bad JSON"),
        (3, "text is BIGINT, not a string"),
        (4, "not a JSON object (ARRAY<STRING>)"),
        (5, "missing text"),
    ]
    assert all(q["file"].endswith("part.jsonl") for q in quarantine)
    assert result.quarantined == 4
    steps = {s["step"]: s for s in result.report["steps"]}
    assert steps["length"]["removed"] == {"fewer than 5 words": 1}
    assert steps["exact_dedup"]["removed"] == {"exact duplicate": 1}

    docs = pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).to_pandas().set_index("id")
    assert sorted(docs.index) == ["a", "b"]
    assert docs.loc["a", "license"] == "CC-BY-4.0" and docs.loc["b", "license"] == "unknown"
    assert json.loads(docs.loc["a", "metadata"]) == {"lang_hint": "en"}
    assert docs.loc["a", "source"] == "part"


def test_shards_hold_every_document_once(curated):
    tokens_dir = Path(curated.output_dir) / TOKENS_DIR
    index = load_index(tokens_dir)
    train, val = read_split(tokens_dir, "train"), read_split(tokens_dir, "val")
    assert len(train) == curated.train_tokens and len(val) == curated.val_tokens
    eos = index["eos_id"]
    docs_in_shards = int((train == eos).sum() + (val == eos).sum())
    assert docs_in_shards == curated.documents
    dedup = next(s for s in curated.report["steps"] if s["step"] == "exact_dedup")
    assert dedup["removed"]["exact duplicate"] >= 2  # at least the two injected copies
    assert curated.documents == dedup["output_docs"]
    assert int(np.max(train)) < index["vocab_size"]


def test_rerun_gives_the_same_fingerprint_and_shards(curated, tiny_corpus, tmp_path):
    again = curate(str(tiny_corpus), tmp_path / "again", CurateConfig(vocab_size=512))
    assert again.fingerprint == curated.fingerprint
    first = Path(curated.output_dir) / TOKENS_DIR
    second = tmp_path / "again" / TOKENS_DIR
    for name in ["index.json", "tokenizer.json", "train-00000.bin"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_parquet_without_text_column_names_the_file(spark, tmp_path):
    import pandas as pd

    from components.common.errors import InputError

    pd.DataFrame({"body": ["x"]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(InputError, match="t.parquet: no text column"):
        curate(str(tmp_path / "t.parquet"), tmp_path / "out")
