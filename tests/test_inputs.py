"""Bad input fails fast with a one-line error naming the path."""

import subprocess
import sys
from pathlib import Path

import pytest

from components.common.errors import InputError
from components.curate.inputs import discover_inputs, input_fingerprint


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path / "nope")):
        discover_inputs(tmp_path / "nope")


def test_empty_directory(tmp_path):
    with pytest.raises(InputError, match="directory is empty"):
        discover_inputs(tmp_path)


def test_not_jsonl(tmp_path):
    bad = tmp_path / "data.jsonl"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(InputError, match="not JSONL"):
        discover_inputs(bad)


def test_unrecognized_files_only(tmp_path):
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"no JSONL, Parquet or \.txt files"):
        discover_inputs(tmp_path)


def test_all_files_empty(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(InputError, match="every input file is empty"):
        discover_inputs(tmp_path)


def test_some_bad_lines_are_not_an_input_error(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text('{broken\n{"text": "fine"}\n')
    assert [f.format for f in discover_inputs(tmp_path)] == ["jsonl"]


def test_fingerprint_follows_content_not_names(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    first = input_fingerprint(discover_inputs(tmp_path))
    (tmp_path / "a.jsonl").rename(tmp_path / "b.jsonl")
    assert input_fingerprint(discover_inputs(tmp_path)) == first
    (tmp_path / "b.jsonl").write_text('{"text": "y"}\n')
    assert input_fingerprint(discover_inputs(tmp_path)) != first


@pytest.mark.parametrize("case", ["missing", "empty", "not-jsonl"])
def test_cli_bad_input_is_one_line_without_traceback(tmp_path, case):
    target = tmp_path / "input"
    if case == "empty":
        target.mkdir()
    elif case == "not-jsonl":
        target = tmp_path / "input.jsonl"
        target.write_text("this is a plain sentence, not JSON\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--input", str(target), "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and str(target) in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_builtin_corpus_run_uses_the_docstrings_preset(tmp_path):
    """`greenfm run` without --input writes the built-in corpus to a file; curation must still treat it as the
    built-in corpus (the published Gopher/C4 thresholds keep only ~5% of docstrings)."""
    from pipelines.config import RunConfig
    from pipelines.local_run import prepare_input

    builtin = prepare_input(RunConfig(), tmp_path / "a")
    assert Path(builtin.input_uri).is_file() and builtin.data_fingerprint
    assert builtin.quality_preset == "docstrings"
    corpus = tmp_path / "mine"
    corpus.mkdir()
    (corpus / "d.jsonl").write_text('{"text": "hello world"}\n')
    assert prepare_input(RunConfig(input_uri=str(corpus)), tmp_path / "b").quality_preset == "auto"
