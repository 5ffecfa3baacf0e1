"""Stage commands call the same functions as the pipeline components."""

import json

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def test_curate_command(spark, tmp_path):
    from tests.synthetic import Generator

    source = tmp_path / "in.jsonl"
    prose = Generator(seed=0)
    source.write_text("\n".join(json.dumps({"id": str(i), "text": prose.prose()}) for i in range(30)) + "\n{oops\n")
    result = runner.invoke(
        app, ["curate", "--input", str(source), "--output", str(tmp_path / "out"), "--vocab-size", "300"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["documents"] == 30 and report["quarantined"] == 1
    assert "Curation report" in result.output


def test_validate_command_passes_and_fails(tmp_path):
    from tests.gate_data import build_dataset

    data = str(build_dataset(tmp_path / "curated"))
    # The data is 20% German; the run's default (`allowed_languages: en`) would fail it.
    store = ["--profile-store", str(tmp_path / "store"), "--allowed-languages", ""]
    ok = runner.invoke(app, ["validate", "--input", data, "--docs", str(tmp_path / "a"), *store])
    assert ok.exit_code == 0, ok.output
    assert "Validation gate: PASSED" in ok.output and "no accepted snapshot" in ok.output
    again = runner.invoke(app, ["validate", "--input", data, "--docs", str(tmp_path / "b"), *store])
    assert again.exit_code == 0 and "| language_tvd | 0.0000 |" in again.output
    bad = runner.invoke(app, ["validate", "--input", data, "--docs", str(tmp_path / "c"), "--min-documents", "1000000"])
    assert bad.exit_code == 1
    assert "expect_table_row_count_to_be_between" in bad.output


def test_validate_command_takes_a_relative_path(tmp_path, monkeypatch):
    from tests.gate_data import build_dataset

    build_dataset(tmp_path / "curated")
    monkeypatch.chdir(tmp_path)  # Data Docs go to curated/validation, relative to here
    result = runner.invoke(app, ["validate", "--input", "curated", "--allowed-languages", "en,de"])
    assert result.exit_code == 0, result.output
    assert any((tmp_path / "curated" / "validation").rglob("index.html"))  # the Data Docs site


def test_validate_command_on_a_missing_folder(tmp_path):
    result = runner.invoke(app, ["validate", "--input", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no such directory" in result.output


def test_compile_command(tmp_path):
    result = runner.invoke(app, ["compile", "--out", str(tmp_path / "p.yaml")])
    assert result.exit_code == 0 and (tmp_path / "p.yaml").is_file()
