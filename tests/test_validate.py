"""The validation gate passes a clean dataset and fails each deliberately broken one for its named reason."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from components.common.errors import GreenfmError
from components.curate.job import TOKENS_DIR
from components.validate.component import gate_failed_op
from components.validate.config import ValidateConfig, from_params
from components.validate.datasheet import REQUIRED_SECTIONS, sections_frame
from components.validate.gate import gate_metrics, validate
from components.validate.profile import DATASHEET_FILE, PROFILE_FILE, psi, tvd
from tests.gate_data import SCHEMA, build_dataset, read_documents, write_documents

SMALL = {"min_documents": 50, "min_tokens": 1000}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("clean") / "curated")


@pytest.fixture
def data(clean, tmp_path) -> Path:
    """A private copy of the clean dataset to break."""
    return Path(shutil.copytree(clean, tmp_path / "curated"))


def _failures(data: Path, tmp_path: Path, **config) -> list[str]:
    gate = validate(data, tmp_path / "docs", ValidateConfig(**{**SMALL, **config}))
    assert not gate.passed
    return gate.failures


def test_clean_dataset_passes_and_stores_its_profile(clean, tmp_path):
    store = tmp_path / "store"
    config = ValidateConfig(
        **SMALL, allowed_languages=["en", "de"], language_bounds={"de": (0.05, 0.4)}, profile_store=store.as_uri()
    )  # a URI, as for s3:// or gs://
    gate = validate(clean, tmp_path / "docs", config)
    assert gate.passed, gate.failures
    assert not gate.warnings and not gate.drift
    suites = {check["suite"] for check in gate.checks}
    assert suites == {"schema", "documents", "languages", "token_shards", "datasheet"}
    docs = tmp_path / "docs"
    assert (docs / "index.html").is_file() and "PASSED" in (docs / "summary.md").read_text()
    sheet = (docs / "datasheet.md").read_text()
    assert "| PSF-2.0 | 300 | 100.0% |" in sheet and "| length_filter |" in sheet and "too short: 3" in sheet
    stored = json.loads((store / PROFILE_FILE).read_text())
    assert stored == gate.profile and set(stored["languages"]) == {"en", "de"}
    assert (store / DATASHEET_FILE).read_text() == sheet


def test_residual_pii_fails_naming_the_record(data, tmp_path):
    frame = read_documents(data)
    frame.loc[3, "text"] += " Write to jane.doe@example.org for details."
    write_documents(data, frame)
    (failure,) = _failures(data, tmp_path)
    assert "column=pii_count" in failure and frame.loc[3, "id"] in failure


def test_missing_language_column_fails_naming_it_when_languages_are_checked(data, tmp_path):
    write_documents(data, read_documents(data).drop(columns=["lang"]), SCHEMA.remove(SCHEMA.get_field_index("lang")))
    failures = _failures(data, tmp_path, allowed_languages=["en"])
    assert any("expect_column_to_exist(column=lang)" in f for f in failures)
    assert any(f.startswith("schema:") and "'lang'" in f and "missing" in f for f in failures)
    # Without language checks the column is optional.
    assert validate(data, tmp_path / "docs2", ValidateConfig(**SMALL)).passed


def test_wrong_column_type_fails_naming_the_column(data, tmp_path):
    frame = read_documents(data)
    frame["lang_score"] = frame["lang_score"].astype(str)
    schema = SCHEMA.set(SCHEMA.get_field_index("lang_score"), pa.field("lang_score", pa.string()))
    write_documents(data, frame, schema)
    failures = _failures(data, tmp_path)
    assert failures[0].startswith("schema:") and "'lang_score'" in failures[0] and "('double', 'string')" in failures[0]


def test_drifted_languages_fail_or_warn_per_config(clean, data, tmp_path):
    store = str(tmp_path / "store")
    assert validate(clean, tmp_path / "first", ValidateConfig(**SMALL, profile_store=store, drift_mode="fail")).passed
    frame = read_documents(data)
    frame.loc[frame.index % 3 == 0, "lang"] = "fr"
    write_documents(data, frame)

    failing = validate(data, tmp_path / "second", ValidateConfig(**SMALL, profile_store=store, drift_mode="fail"))
    assert not failing.passed and failing.drift["language_tvd"] > 0.1
    (failure,) = failing.failures
    assert failure.startswith("drift:") and "language_tvd" in failure
    assert "language_tvd" in (tmp_path / "second" / "summary.md").read_text()

    warning = validate(data, tmp_path / "third", ValidateConfig(**SMALL, profile_store=store, drift_mode="warn"))
    assert warning.passed and len(warning.warnings) == 1 and "language_tvd" in warning.warnings[0]
    assert "## Warnings" in (tmp_path / "third" / "summary.md").read_text()
    stored = json.loads((tmp_path / "store" / PROFILE_FILE).read_text())
    assert stored["languages"]["fr"] > 0.3  # the accepted (warned) snapshot is the new baseline


def test_language_share_below_bound_fails_naming_records(data, tmp_path):
    frame = read_documents(data)
    frame.loc[:40, "lang"] = "xx"
    frame.loc[41, "lang"] = None
    write_documents(data, frame)
    failures = _failures(data, tmp_path, allowed_languages=["en", "de"], language_bounds={"en": (0.9, 1.0)})
    assert any("column=lang," in f and "mostly=0.95" in f and frame.loc[0, "id"] in f for f in failures)
    assert any("expect_column_values_to_not_be_null(column=lang)" in f and frame.loc[41, "id"] in f for f in failures)
    assert any(f.startswith("languages:") and "'en'" in f for f in failures)


@pytest.mark.parametrize("damage", ["truncated", "id_beyond_vocab", "missing_file"])
def test_corrupted_shard_fails(data, tmp_path, damage):
    shard = data / TOKENS_DIR / "train-00000.bin"
    tokens = np.fromfile(shard, dtype="<u2")
    if damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:-3])  # half a token short
        expected = ["column=partial_bytes", "column_A=index_tokens, column_B=disk_tokens"]
    elif damage == "id_beyond_vocab":
        tokens[:5] = 65535
        tokens.tofile(shard)
        expected = ["column_A=vocab_size, column_B=max_token_id"]
    else:
        shard.unlink()
        expected = ["column=present"]
    failures = _failures(data, tmp_path)
    assert all(f.startswith("token_shards:") and "train-00000.bin" in f for f in failures)
    for reason in expected:
        assert any(reason in f for f in failures), (reason, failures)


def test_wrong_shard_dtype_fails(data, tmp_path):
    index = json.loads((data / TOKENS_DIR / "index.json").read_text())
    index["dtype"] = "uint32"
    (data / TOKENS_DIR / "index.json").write_text(json.dumps(index))
    failures = _failures(data, tmp_path)
    assert any("column_A=dtype, column_B=expected_dtype" in f and "('uint32', 'uint16')" in f for f in failures)


def test_shard_index_not_matching_the_documents_fails(data, tmp_path):
    index = json.loads((data / TOKENS_DIR / "index.json").read_text())
    index["splits"]["train"][0]["docs"] -= 2
    (data / TOKENS_DIR / "index.json").write_text(json.dumps(index))
    (failure,) = _failures(data, tmp_path)
    assert "column=index_docs" in failure and "observed 298" in failure


def test_unreadable_index_is_a_clear_error(data, tmp_path):
    (data / TOKENS_DIR / "index.json").write_text("{oops")
    with pytest.raises(GreenfmError, match=r"tokens/index.json: not valid JSON"):
        validate(data, tmp_path / "docs", ValidateConfig(**SMALL))


def test_license_outside_allowlist_fails_and_the_run_ends_naming_it(data, tmp_path):
    frame = read_documents(data)
    frame.loc[7, "license"] = "proprietary"
    write_documents(data, frame)
    gate = validate(data, tmp_path / "docs", ValidateConfig(**SMALL, license_allowlist=["PSF-2.0", "MIT"]))
    (failure,) = gate.failures
    assert "column=license" in failure and "proprietary" in failure and frame.loc[7, "id"] in failure
    metrics = gate_metrics(gate)
    assert metrics["gate_passed"] == 0 and metrics["failed_expectations"] == 1
    assert metrics["failed/documents/expect_column_values_to_be_in_set/license"] == 1
    with pytest.raises(RuntimeError, match=r"1 expectation\(s\)[\s\S]*proprietary"):
        gate_failed_op.python_func(failures="\n".join(gate.failures))


def test_duplicates_over_the_bound_fail(data, tmp_path):
    frame = read_documents(data)
    frame.loc[10:19, "text"] = frame.loc[0, "text"].upper()  # same text after normalization
    write_documents(data, frame)
    (failure,) = _failures(data, tmp_path, max_duplicate_rate=0.02)
    assert "column=duplicate_of" in failure and frame.loc[10, "id"] in failure
    assert validate(data, tmp_path / "lenient", ValidateConfig(**SMALL, max_duplicate_rate=0.05)).passed


def test_duplicate_ids_fail_with_the_offending_id(data, tmp_path):
    frame = read_documents(data)
    frame.loc[1, "id"] = frame.loc[0, "id"]
    write_documents(data, frame)
    (failure,) = _failures(data, tmp_path)
    assert "expect_column_values_to_be_unique" in failure and frame.loc[0, "id"] in failure


def test_missing_provenance_fails(data, tmp_path):
    frame = read_documents(data)
    frame.loc[4, "source"] = ""
    frame.at[5, "transforms"] = []
    write_documents(data, frame)
    failures = _failures(data, tmp_path)
    assert len(failures) == 2
    assert any("column=provenance_ok" in f and frame.loc[4, "id"] in f for f in failures)
    assert any("column=transforms_count" in f and frame.loc[5, "id"] in f for f in failures)


def test_datasheet_sections_are_checked(tmp_path):
    sheet = tmp_path / "datasheet.md"
    sheet.write_text("# Datasheet\n\n## Motivation\n\nText.\n\n## Sources\n\n")
    present = sections_frame(sheet).set_index("id")["present"]
    assert present["Motivation"] and not present["Sources"] and not present["Licenses"]
    assert not sections_frame(tmp_path / "absent.md")["present"].any()
    assert list(sections_frame(sheet)["id"]) == list(REQUIRED_SECTIONS)


def test_drift_measures():
    assert psi([10, 10, 0], [10, 10, 0]) == 0 and psi([10, 10, 0], [0, 10, 10]) > 1
    assert tvd({"en": 1.0}, {"en": 0.5, "fr": 0.5}) == pytest.approx(0.5)


def test_params_are_parsed_and_checked():
    config = from_params(10, "MIT, PSF-2.0", "en,de", 0.9, "en=0.5:1,de=0:0.2", "fail", "/tmp/p")
    assert config.license_allowlist == ["MIT", "PSF-2.0"] and config.allowed_languages == ["en", "de"]
    assert config.language_bounds == {"en": (0.5, 1.0), "de": (0.0, 0.2)} and config.checks_languages
    with pytest.raises(GreenfmError, match="drift_mode"):
        from_params(10, drift_mode="sometimes")
    with pytest.raises(GreenfmError, match=r"'en=1:0\.5'"):
        from_params(10, language_share_bounds="en=1:0.5")
    with pytest.raises(GreenfmError, match="not CODE=MIN:MAX"):
        from_params(10, language_share_bounds="en")


def test_gate_step_is_never_served_from_cache(tmp_path):
    import yaml

    from pipelines.compile import compile_pipeline
    from pipelines.tasks import task_key

    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    task = spec["root"]["dag"]["tasks"][task_key("validate")]
    assert not task.get("cachingOptions", {}).get("enableCache")
    assert {"allowed_languages", "drift_mode", "profile_store"} <= set(task["inputs"]["parameters"])
