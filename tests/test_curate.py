"""Curation: quarantine with exact line numbers, normalization, dedup, stable fingerprints and shards."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.common.contracts import REMOVED_DIR, load_index, read_split
from components.curate.job import DOCUMENTS_DIR, QUARANTINE_FILE, TOKENS_DIR, CurateConfig, curate, pipeline_config
from components.curate.marks import with_transforms
from components.curate.quality import quality_preset
from components.curate.steps import normalize
from tests.synthetic import Generator


def _light(**changes) -> CurateConfig:
    """Docstring-level quality rules, no decontamination against the task: small, fast cases."""
    config = CurateConfig(vocab_size=300, val_fraction=0.0, quality=quality_preset("docstrings"), **changes)
    config.decontam.default_task = False
    return config


def test_normalize_runs_in_spark(spark):
    """The Spark step itself: NFC, line endings (U+2028/U+2029 too), controls, spaces, blank lines, indentation."""
    cases = {
        "mixed": ("Cafe\u0301\r\nline\x00 two  \n\n\n\nend\u00a0x", "Caf\u00e9\nline two\n\nend x"),
        "leading": ("    indented code\n", "indented code"),
        "indented": ("a\n    indented", "a\n    indented"),
        "separators": (
            "first line\u2028second line  \u2029\u2029\u2029third\u2028",
            "first line\nsecond line\n\nthird",
        ),
        "empty": (" \u2028\t\ufeff", ""),
    }
    frame = spark.createDataFrame([(k, v[0]) for k, v in cases.items()], "id string, text string")
    marked = normalize(with_transforms(frame)).frame.select("id", "text", "_reason").collect()
    assert {row.id: row.text for row in marked} == {k: v[1] for k, v in cases.items()}
    assert {row.id: row._reason for row in marked}["empty"] == "normalize.empty"


def test_malformed_records_are_quarantined_with_line_numbers(spark, tmp_path):
    words = "this document has more than enough words to pass the filter."
    lines = [
        json.dumps({"id": "a", "text": f"first {words}", "license": "CC-BY-4.0", "lang_hint": "en"}).encode(),
        b"{not json",
        json.dumps({"text": 42}).encode(),
        json.dumps(["a", "list"]).encode(),
        json.dumps({"id": "no-text"}).encode(),
        b"",
        json.dumps({"id": "b", "text": f"second {words}"}).encode(),
        json.dumps({"id": "c", "text": f"SECOND   {words}"}).encode(),  # duplicate of b up to case and spacing
        json.dumps({"id": "d", "text": "too short"}).encode(),
        b'{"id": "e", "text": "caf\xe9 is not UTF-8 here"}',
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "in" / "empty.jsonl").write_text("")
    result = curate(str(tmp_path / "in"), tmp_path / "out", _light(minhash=_no_minhash()))

    quarantine = [json.loads(line) for line in (tmp_path / "out" / QUARANTINE_FILE).read_text().splitlines()]
    assert [(q["line"], q["code"], q["reason"].split(":")[0]) for q in quarantine] == [
        (2, "bad_json", "bad JSON"),
        (3, "text_not_a_string", "text is BIGINT, not a string"),
        (4, "not_an_object", "not a JSON object (ARRAY<STRING>)"),
        (5, "missing_text", "missing text"),
        (10, "invalid_utf8", "invalid UTF-8"),
    ]
    assert all(q["file"].endswith("part.jsonl") for q in quarantine)
    assert result.quarantined == 5
    steps = {s["step"]: s for s in result.report["steps"]}
    assert steps["length"]["removed"] == {"length.short_doc": 1}
    assert steps["exact_dedup"]["removed"] == {"exact_dedup.duplicate": 1}
    assert result.report["quarantine_reasons"] == {
        "bad_json": 1,
        "invalid_utf8": 1,
        "missing_text": 1,
        "not_an_object": 1,
        "text_not_a_string": 1,
    }
    assert result.report["input_files"] == {"found": 2, "read": 2, "skipped": []}
    removed = pq.read_table(tmp_path / "out" / REMOVED_DIR).to_pandas().set_index("id")
    assert removed.loc["d", ["step", "reason", "value"]].tolist() == ["length", "length.short_doc", 2.0]
    assert removed.loc["c", ["reason", "detail"]].tolist() == ["exact_dedup.duplicate", "b"]

    docs = pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).to_pandas().set_index("id")
    assert sorted(docs.index) == ["a", "b"]
    assert docs.loc["a", "license"] == "CC-BY-4.0" and docs.loc["b", "license"] == "unknown"
    assert json.loads(docs.loc["a", "metadata"]) == {"lang_hint": "en"}
    assert docs.loc["a", "source"] == "part"
    assert list(docs.loc["a", "transforms"]) == [
        "length",
        "langid",
        "gopher_repetition",
        "gopher_quality",
        "c4",
        "exact_dedup",
        "decontam",
    ]
    assert docs.loc["a", "lang"] == "en" and 0 < docs.loc["a", "lang_score"] <= 1


def _no_minhash():
    from components.curate.minhash import MinHashConfig

    return MinHashConfig(enabled=False)


def test_text_and_parquet_inputs_keep_their_fields(spark, tmp_path):
    import pandas as pd

    prose = Generator(seed=3)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "story.txt").write_text(prose.prose())
    (tmp_path / "in" / "empty.txt").write_text("")
    pd.DataFrame(
        {"id": ["p1", "p2"], "text": [prose.prose(), None], "license": ["MIT", "MIT"], "year": [2020, 2021]}
    ).to_parquet(tmp_path / "in" / "table.parquet")
    result = curate(str(tmp_path / "in"), tmp_path / "out", _light())
    docs = pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).to_pandas().set_index("id")
    assert result.quarantined == 1  # the null text
    assert docs.loc["p1", "license"] == "MIT" and json.loads(docs.loc["p1", "metadata"]) == {"year": 2020}
    (story,) = [i for i in docs.index if i.startswith("story:")]
    assert docs.loc[story, "source"] == "story" and docs.loc[story, "license"] == "unknown"


def test_pii_is_redacted_and_counted_and_the_document_kept(spark, tmp_path):
    text = (
        Generator(seed=5).prose()
        + "\n\nWrite to jane.doe@example.com or call (555) 123-4567. Card 4111 1111 1111 1111."
    )
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "x", "text": text}) + "\n")
    result = curate(str(tmp_path / "in.jsonl"), tmp_path / "out", _light())
    docs = pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).to_pandas()
    (redacted,) = docs.text
    assert "<EMAIL>" in redacted and "<PHONE>" in redacted and "<CREDIT_CARD>" in redacted
    assert "jane.doe" not in redacted and "4111" not in redacted
    assert result.report["pii"] == {"EMAIL": 1, "CREDIT_CARD": 1, "IP_ADDRESS": 0, "PHONE": 1}
    assert list(docs.transforms[0])[-1] == "pii_redact"


def test_decontamination_drops_documents_sharing_a_13_gram(spark, tmp_path):
    prose = Generator(seed=9)
    evaluation = prose.prose()
    leaked = prose.prose() + "\n\n" + " ".join(evaluation.split()[10:24]) + "."
    clean = prose.prose()
    (tmp_path / "eval.jsonl").write_text(json.dumps({"text": evaluation}) + "\n")
    (tmp_path / "in.jsonl").write_text(
        "\n".join(json.dumps({"id": i, "text": t}) for i, t in [("leak", leaked), ("ok", clean)])
    )
    config = _light()
    config.decontam.extra_files = (str(tmp_path / "eval.jsonl"),)
    result = curate(str(tmp_path / "in.jsonl"), tmp_path / "out", config)
    assert pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).column("id").to_pylist() == ["ok"]
    (step,) = [s for s in result.report["steps"] if s["step"] == "decontam"]
    assert step["removed"] == {"decontam.shared_ngram": 1}


def test_pipeline_config_resolves_presets_and_languages():
    from components.common.errors import InputError

    builtin = pipeline_config(5, 512, "en, fr", "auto", builtin_corpus=True)
    assert builtin.languages == ("en", "fr") and builtin.quality.min_doc_words == 5
    assert pipeline_config(5, 512, "", "auto", builtin_corpus=False).quality == quality_preset("fineweb")
    assert pipeline_config(5, 512, "", "auto", builtin_corpus=False).languages == ()
    with pytest.raises(InputError, match="unknown quality preset 'web'"):
        pipeline_config(5, 512, "en", "web", builtin_corpus=False)


def test_config_survives_a_json_round_trip():
    from dataclasses import asdict

    config = pipeline_config(5, 512, "en", "docstrings", builtin_corpus=True)
    assert CurateConfig.from_dict(json.loads(json.dumps(asdict(config)))) == config


def test_shards_hold_every_document_once(curated):
    tokens_dir = Path(curated.output_dir) / TOKENS_DIR
    index = load_index(tokens_dir)
    train, val = read_split(tokens_dir, "train"), read_split(tokens_dir, "val")
    assert len(train) == curated.train_tokens and len(val) == curated.val_tokens
    eos = index["eos_id"]
    docs_in_shards = int((train == eos).sum() + (val == eos).sum())
    assert docs_in_shards == curated.documents
    dedup = next(s for s in curated.report["steps"] if s["step"] == "exact_dedup")
    assert dedup["removed"]["exact_dedup.duplicate"] >= 2  # at least the two injected copies
    assert curated.documents == curated.report["steps"][-1]["output_docs"]
    assert int(np.max(train)) < index["vocab_size"]


def test_rerun_gives_the_same_fingerprint_and_shards(curated, tiny_corpus, tmp_path):
    again = curate(
        str(tiny_corpus), tmp_path / "again", CurateConfig(vocab_size=512, quality=quality_preset("docstrings"))
    )
    assert again.fingerprint == curated.fingerprint
    first = Path(curated.output_dir) / TOKENS_DIR
    second = tmp_path / "again" / TOKENS_DIR
    for name in ["index.json", "tokenizer.json", "train-00000.bin"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_parquet_without_text_column_names_the_file(spark, tmp_path):
    import pandas as pd

    from components.common.errors import InputError

    pd.DataFrame({"body": ["x"]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"t\.parquet: no text column"):
        curate(str(tmp_path / "t.parquet"), tmp_path / "out")


def test_compressed_and_mixed_inputs_are_read_with_their_origin(spark, tmp_path):
    import gzip

    import pandas as pd
    import zstandard

    prose = Generator(seed=21)
    texts = {name: prose.prose() for name in ("gz", "zst", "txt", "pq")}
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl.gz").write_bytes(gzip.compress((json.dumps({"id": "gz", "text": texts["gz"]}) + "\n").encode()))
    zst_lines = json.dumps({"id": "zst", "text": texts["zst"]}) + "\n{broken\n"
    (folder / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(zst_lines.encode()))
    (folder / "c.txt").write_text(texts["txt"])
    pd.DataFrame({"id": ["pq"], "text": [texts["pq"]]}).to_parquet(folder / "d.parquet")
    (folder / "notes.md").write_text("# not an input format")
    result = curate(str(folder), tmp_path / "out", _light(minhash=_no_minhash()))
    docs = pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).to_pandas()
    origins = {row.id.split(":")[0]: Path(row.origin.removeprefix("file://")).name for row in docs.itertuples()}
    assert origins == {"gz": "a.jsonl.gz", "zst": "b.jsonl.zst", "c": "c.txt", "pq": "d.parquet"}
    quarantine = [json.loads(line) for line in (tmp_path / "out" / QUARANTINE_FILE).read_text().splitlines()]
    assert [(Path(q["file"]).name, q["line"], q["code"]) for q in quarantine] == [("b.jsonl.zst", 2, "bad_json")]
    files = result.report["input_files"]
    assert (files["found"], files["read"]) == (5, 4) and files["skipped"][0]["reason"] == "unsupported format .md"
    assert "1 skipped" in (tmp_path / "out" / "report.md").read_text()
    assert not (tmp_path / "out" / "_staging").exists()
