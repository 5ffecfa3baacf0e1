"""The gate between curation and training: GX expectation suites over the curated documents and the token
shards; Data Docs written to a folder; a pass/fail verdict with one reason per failed expectation."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from components.common.errors import InputError
from components.curate.job import DOCUMENTS_DIR, TOKENS_DIR
from components.curate.shards import load_index

REQUIRED_COLUMNS = ("id", "text", "source", "license", "transforms")
SUMMARY_MD = "summary.md"
RESULT_JSON = "result.json"


@dataclass
class ValidateConfig:
    min_documents: int = 100
    min_words: int = 5
    max_words: int = 100_000
    min_tokens: int = 10_000
    license_allowlist: list[str] = field(default_factory=list)  # empty: any license


@dataclass
class GateResult:
    passed: bool
    failures: list[str]
    checks: list[dict]
    documents: int

    def summary_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"# Validation gate: {verdict}", "", f"Documents checked: {self.documents}", ""]
        lines += ["| suite | expectation | target | result | detail |", "| --- | --- | --- | --- | --- |"]
        for check in self.checks:
            mark = "pass" if check["success"] else "**FAIL**"
            lines.append(f"| {check['suite']} | {check['expectation']} | {check['target']} | {mark} | {check['detail']} |")
        if self.failures:
            lines += ["", "Failed:", ""] + [f"- {failure}" for failure in self.failures]
        return "\n".join(lines) + "\n"


def _documents_frame(curated_dir: Path) -> pd.DataFrame:
    documents = curated_dir / DOCUMENTS_DIR
    if not documents.is_dir():
        raise InputError(f"{curated_dir}: no {DOCUMENTS_DIR}/ folder; is this a curated dataset?")
    frame = pq.read_table(documents).to_pandas()
    if "text" in frame.columns:
        frame["words"] = frame["text"].fillna("").str.split().str.len()
    return frame


def shard_stats(curated_dir: Path) -> pd.DataFrame:
    """One row per shard: tokens the index claims, tokens on disk, largest token id, vocabulary size."""
    tokens_dir = curated_dir / TOKENS_DIR
    if not (tokens_dir / "index.json").is_file():
        raise InputError(f"{curated_dir}: no {TOKENS_DIR}/index.json; is this a curated dataset?")
    index = load_index(tokens_dir)
    rows = []
    for split, shards in index["splits"].items():
        for shard in shards:
            path = tokens_dir / shard["file"]
            on_disk = np.memmap(path, dtype=index["dtype"], mode="r") if path.is_file() else np.zeros(0, "u2")
            rows.append(
                {
                    "split": split,
                    "file": shard["file"],
                    "index_tokens": shard["tokens"],
                    "disk_tokens": int(on_disk.size),
                    "max_token_id": int(on_disk.max()) if on_disk.size else -1,
                    "vocab_size": index["vocab_size"],
                }
            )
    return pd.DataFrame(rows, columns=["split", "file", "index_tokens", "disk_tokens", "max_token_id", "vocab_size"])


def _suites(config: ValidateConfig, documents: pd.DataFrame, shards: pd.DataFrame) -> dict[str, list]:
    import great_expectations as gx

    E = gx.expectations
    doc_checks = [E.ExpectColumnToExist(column=c) for c in REQUIRED_COLUMNS]
    doc_checks.append(E.ExpectTableRowCountToBeBetween(min_value=config.min_documents))
    if "text" in documents.columns:
        doc_checks += [
            E.ExpectColumnValuesToNotBeNull(column="text"),
            E.ExpectColumnValuesToBeBetween(column="words", min_value=config.min_words, max_value=config.max_words),
        ]
    if "id" in documents.columns:
        doc_checks += [E.ExpectColumnValuesToNotBeNull(column="id"), E.ExpectColumnValuesToBeUnique(column="id")]
    if config.license_allowlist and "license" in documents.columns:
        doc_checks.append(E.ExpectColumnValuesToBeInSet(column="license", value_set=config.license_allowlist))
    shard_checks = [
        E.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val"]),
        E.ExpectColumnPairValuesToBeEqual(column_A="index_tokens", column_B="disk_tokens"),
        E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="vocab_size", column_B="max_token_id"),
        E.ExpectColumnSumToBeBetween(column="disk_tokens", min_value=config.min_tokens),
    ]
    return {"documents": doc_checks, "token_shards": shard_checks}


def _describe(result, frame: pd.DataFrame) -> tuple[str, str]:
    kwargs = {k: v for k, v in result.expectation_config.kwargs.items() if k not in ("batch_id", "result_format")}
    target = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    outcome = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        return target, result.exception_info.get("exception_message", "error")
    if "unexpected_count" in outcome:
        detail = f"{outcome['unexpected_count']} unexpected"
        sample = outcome.get("partial_unexpected_list") or []
        if sample:
            detail += f", e.g. {sample[:3]}"
        if "id" in frame.columns and outcome.get("partial_unexpected_index_list"):
            ids = frame.loc[outcome["partial_unexpected_index_list"][:5], "id"].tolist()
            detail += f"; record ids {ids}"
        return target, detail
    if "observed_value" in outcome:
        return target, f"observed {outcome['observed_value']}"
    return target, ""


def validate(curated_dir: str | Path, docs_dir: str | Path, config: ValidateConfig | None = None) -> GateResult:
    """Run the suites; write Data Docs to `docs_dir` and the summary beside them; return the verdict."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    config = config or ValidateConfig()
    curated_dir, docs_dir = Path(curated_dir), Path(docs_dir)
    frames = {"documents": _documents_frame(curated_dir), "token_shards": shard_stats(curated_dir)}

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="greenfm",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = context.data_sources.add_pandas("greenfm")
    checks: list[dict] = []
    for name, expectations in _suites(config, *frames.values()).items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}_gate",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["greenfm"])],
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": 5},
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": frames[name]})
        for validation in run.run_results.values():
            for result in validation.results:
                target, detail = _describe(result, frames[name])
                checks.append(
                    {
                        "suite": name,
                        "expectation": result.expectation_config.type,
                        "target": target,
                        "success": bool(result.success),
                        "detail": detail,
                    }
                )
    failures = [f"{c['suite']}: {c['expectation']}({c['target']}): {c['detail']}" for c in checks if not c["success"]]
    gate = GateResult(passed=not failures, failures=failures, checks=checks, documents=len(frames["documents"]))
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / SUMMARY_MD).write_text(gate.summary_markdown())
    (docs_dir / RESULT_JSON).write_text(json.dumps(asdict(gate), indent=2, default=str))
    return gate
