"""The validation gate passes clean data and names the reason when it fails."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from components.curate.job import DOCUMENTS_DIR, TOKENS_DIR
from components.validate.gate import ValidateConfig, validate


def _copy(curated, tmp_path) -> Path:
    target = tmp_path / "curated"
    shutil.copytree(curated.output_dir, target)
    return target


def test_clean_dataset_passes(curated, tmp_path):
    gate = validate(curated.output_dir, tmp_path / "docs", ValidateConfig())
    assert gate.passed, gate.failures
    assert (tmp_path / "docs" / "index.html").is_file()
    assert "PASSED" in (tmp_path / "docs" / "summary.md").read_text()


def test_duplicate_ids_fail_with_the_offending_id(curated, tmp_path):
    data = _copy(curated, tmp_path)
    frame = pq.read_table(data / DOCUMENTS_DIR).to_pandas()
    frame.loc[1, "id"] = frame.loc[0, "id"]
    shutil.rmtree(data / DOCUMENTS_DIR)
    (data / DOCUMENTS_DIR).mkdir()
    frame.to_parquet(data / DOCUMENTS_DIR / "part-0.parquet")
    gate = validate(data, tmp_path / "docs")
    assert not gate.passed
    assert len(gate.failures) == 1 and "expect_column_values_to_be_unique" in gate.failures[0]
    assert frame.loc[0, "id"] in gate.failures[0]


def test_corrupted_shard_fails(curated, tmp_path):
    data = _copy(curated, tmp_path)
    shard = data / TOKENS_DIR / "train-00000.bin"
    tokens = np.fromfile(shard, dtype="<u2")
    tokens[:5] = 65535  # ids beyond the vocabulary, and a truncated file
    tokens[:-7].tofile(shard)
    failures = " ".join(validate(data, tmp_path / "docs").failures)
    assert "expect_column_pair_values_to_be_equal" in failures  # index count != tokens on disk
    assert "expect_column_pair_values_a_to_be_greater_than_b" in failures  # token id >= vocab size


def test_license_outside_allowlist_fails(curated, tmp_path):
    gate = validate(curated.output_dir, tmp_path / "docs", ValidateConfig(license_allowlist=["MIT"]))
    assert not gate.passed and "license" in gate.failures[0] and "PSF-2.0" in gate.failures[0]


def test_missing_column_fails(curated, tmp_path):
    data = _copy(curated, tmp_path)
    frame = pq.read_table(data / DOCUMENTS_DIR).to_pandas().drop(columns=["source"])
    shutil.rmtree(data / DOCUMENTS_DIR)
    (data / DOCUMENTS_DIR).mkdir()
    pd.DataFrame(frame).to_parquet(data / DOCUMENTS_DIR / "part-0.parquet")
    failures = validate(data, tmp_path / "docs").failures
    assert any("expect_column_to_exist(column=source)" in f for f in failures)
