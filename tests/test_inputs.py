"""Bad input fails fast with a one-line error naming the path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.common.errors import InputError
from components.curate.inputs import discover_inputs, input_fingerprint, scan_inputs


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


def _gzip(path: Path, data: bytes) -> None:
    import gzip

    path.write_bytes(gzip.compress(data))


def _zstd(path: Path, data: bytes) -> None:
    import zstandard

    path.write_bytes(zstandard.ZstdCompressor().compress(data))


def test_every_file_is_read_or_listed_as_skipped(tmp_path):
    record = b'{"text": "a line of text"}\n'
    _gzip(tmp_path / "a.jsonl.gz", record)
    _zstd(tmp_path / "b.jsonl.zst", record)
    (tmp_path / "c.txt").write_text("plain text")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.jsonl").write_bytes(record)
    (tmp_path / "sub" / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "_SUCCESS").write_text("")
    listing = scan_inputs(tmp_path)
    assert [(Path(f.path).name, f.format, f.compression) for f in listing.files] == [
        ("a.jsonl.gz", "jsonl", "gzip"),
        ("b.jsonl.zst", "jsonl", "zstd"),
        ("c.txt", "text", None),
        ("d.jsonl", "jsonl", None),
    ]
    summary = listing.summary()
    assert (summary["found"], summary["read"]) == (6, 4)
    assert [(Path(s["path"]).name, s["reason"]) for s in summary["skipped"]] == [
        ("_SUCCESS", "hidden or marker file"),
        ("table.csv", "unsupported format .csv"),
    ]
    with pytest.raises(InputError, match=r"_SUCCESS: skipped \(hidden or marker file\); 2 file\(s\) skipped"):
        scan_inputs(tmp_path, strict=True)


def test_bad_records_do_not_make_a_file_not_jsonl(tmp_path):
    only_line_bad = tmp_path / "utf8.jsonl"
    only_line_bad.write_bytes(b'{"text": "caf\xe9"}\n')
    long_first = tmp_path / "long.jsonl"
    long_first.write_text('{"text": "' + "word " * 40_000 + '"}\n{"text": "short"}\n')  # first line 200 KB
    bad_first = tmp_path / "first.jsonl"
    bad_first.write_bytes(b'\xff\xfe{broken\n{"text": "fine"}\n')
    for path in (only_line_bad, long_first, bad_first):
        assert [f.format for f in discover_inputs(path)] == ["jsonl"], path


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"a,b,c\n1,2,3\n", "not JSONL"),
        (b'["a", "b"]\n["c"]\n', "JSON arrays"),
        (b'{\n  "text": "pretty"\n}\n', "one JSON document spread over lines"),
        ('{"text": "x"}\n'.encode("utf-16"), "binary data"),
        (b"PAR1\x00\x00", "a Parquet file"),
    ],
)
def test_a_file_that_is_plainly_something_else_is_refused_by_name(tmp_path, content, cause):
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=cause) as error:
        discover_inputs(tmp_path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_parquet_that_is_not_parquet_is_one_line(tmp_path):
    (tmp_path / "t.parquet").write_text('{"text": "I am JSON"}\n')
    with pytest.raises(InputError, match=r"t.parquet: not a Parquet file") as error:
        discover_inputs(tmp_path)
    assert "\n" not in str(error.value)


def test_unreadable_inputs_are_named(tmp_path, monkeypatch):
    (tmp_path / "good.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match=r"gone.jsonl: cannot be read \(a broken link\)"):
        discover_inputs(tmp_path)
    (tmp_path / "gone.jsonl").unlink()
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path):  # as root, chmod cannot make a directory unreadable: the OS refusal is simulated here
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(InputError, match=r"locked: directory cannot be read \(Permission denied\)"):
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
