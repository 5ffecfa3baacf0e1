"""The gate between curation and training: GX expectation suites over the curated dataset (schema, documents,
languages, token shards, drift from the last accepted snapshot, datasheet); Data Docs, a summary and the
datasheet written to a folder; a pass/fail verdict with one reason per failed expectation."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from components.validate import datasheet, frames, profile
from components.validate.config import ValidateConfig

SUMMARY_MD = "summary.md"
RESULT_JSON = "result.json"
BASE_COLUMNS = ("id", "text", "source", "license", "transforms")
__all__ = ["RESULT_JSON", "SUMMARY_MD", "GateResult", "ValidateConfig", "gate_metrics", "validate"]


@dataclass
class GateResult:
    passed: bool
    failures: list[str]
    warnings: list[str]
    checks: list[dict]
    documents: int
    profile: dict
    drift: dict[str, float] = field(default_factory=dict)  # empty: no accepted snapshot to compare with
    drift_baseline: str = ""  # where the compared profile came from

    def summary_markdown(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"# Validation gate: {verdict}",
            "",
            f"Documents checked: {self.documents}; tokens: {self.profile['tokens']}",
            "",
        ]
        if self.failures:
            lines += ["## Failed", ""] + [f"- {failure}" for failure in self.failures] + [""]
        if self.warnings:
            lines += ["## Warnings", ""] + [f"- {warning}" for warning in self.warnings] + [""]
        lines += ["## Drift", ""]
        if self.drift:
            lines += [
                f"Against the accepted snapshot in `{self.drift_baseline}`:",
                "",
                "| measure | value |",
                "| --- | ---: |",
            ]
            lines += [f"| {name} | {value:.4f} |" for name, value in self.drift.items()]
        else:
            lines.append(f"Not measured: {self.drift_baseline or 'no profile store configured'}.")
        lines += [
            "",
            "## Expectations",
            "",
            "| suite | expectation | target | result | detail |",
            "| --- | --- | --- | --- | --- |",
        ]
        for check in self.checks:
            mark = "pass" if check["success"] else ("warn" if check["severity"] == "warning" else "**FAIL**")
            lines.append(
                f"| {check['suite']} | {check['expectation']} | {check['target']} | {mark} | {check['detail']} |"
            )
        return "\n".join(lines) + "\n"


def gate_metrics(gate: GateResult) -> dict[str, float]:
    """The verdict as numbers (KFP Metrics): pass/fail, counts, drift measures, and one `failed/<suite>/<check>`
    entry per failed expectation holding its unexpected count (1 when it has none)."""
    numbers: dict[str, float] = {
        "gate_passed": int(gate.passed),
        "failed_expectations": len(gate.failures),
        "warnings": len(gate.warnings),
        "documents": gate.documents,
        "tokens": gate.profile["tokens"],
    }
    numbers.update({f"drift/{name}": value for name, value in gate.drift.items()})
    for check in gate.checks:
        if not check["success"]:
            key = "/".join(
                filter(
                    None,
                    [
                        "failed" if check["severity"] == "failure" else "warned",
                        check["suite"],
                        check["expectation"],
                        check["column"],
                    ],
                )
            )
            numbers[key] = check["unexpected"] or 1
    return numbers


def _required_columns(config: ValidateConfig) -> list[str]:
    return list(BASE_COLUMNS) + (list(frames.LANGUAGE_COLUMNS) if config.checks_languages else [])


def _documents_suite(E, config: ValidateConfig, documents: pd.DataFrame) -> list:
    checks = [E.ExpectColumnToExist(column=c) for c in _required_columns(config)]
    checks.append(E.ExpectTableRowCountToBeBetween(min_value=config.min_documents))
    present = set(documents.columns)
    if "id" in present:
        checks += [E.ExpectColumnValuesToNotBeNull(column="id"), E.ExpectColumnValuesToBeUnique(column="id")]
    if "text" in present:
        checks += [
            E.ExpectColumnValuesToNotBeNull(column="text"),
            E.ExpectColumnValuesToBeBetween(column="words", min_value=config.min_words, max_value=config.max_words),
            E.ExpectColumnValuesToBeBetween(column="pii_count", min_value=0, max_value=0),
            E.ExpectColumnValuesToBeNull(column="duplicate_of", mostly=1.0 - config.max_duplicate_rate),
        ]
    if "provenance_ok" in present:
        checks.append(E.ExpectColumnValuesToBeInSet(column="provenance_ok", value_set=[True]))
    if "transforms_count" in present:
        checks.append(E.ExpectColumnValuesToBeBetween(column="transforms_count", min_value=1))
    if config.license_allowlist and "license" in present:
        checks.append(E.ExpectColumnValuesToBeInSet(column="license", value_set=config.license_allowlist))
    if config.checks_languages:
        checks += [E.ExpectColumnValuesToNotBeNull(column=c) for c in frames.LANGUAGE_COLUMNS if c in present]
    if config.allowed_languages and "lang" in present:
        checks.append(
            E.ExpectColumnValuesToBeInSet(
                column="lang", value_set=config.allowed_languages, mostly=config.min_language_share
            )
        )
    if "lang_score" in present:
        checks.append(E.ExpectColumnValuesToBeBetween(column="lang_score", min_value=0.0, max_value=1.0))
    return checks


def _language_frame(config: ValidateConfig, shares: dict[str, float]) -> pd.DataFrame:
    rows = [
        {"id": code, "share": shares.get(code, 0.0), "min_share": low, "max_share": high}
        for code, (low, high) in sorted(config.language_bounds.items())
    ]
    return pd.DataFrame(rows, columns=["id", "share", "min_share", "max_share"])


def _drift_frame(config: ValidateConfig, measures: dict[str, float]) -> pd.DataFrame:
    bounds = {
        "length_psi": config.max_length_psi,
        "language_tvd": config.max_language_tvd,
        "source_tvd": config.max_source_tvd,
        "token_change": config.max_token_change,
    }
    rows = [{"id": name, "value": value, "bound": bounds[name]} for name, value in measures.items()]
    return pd.DataFrame(rows, columns=["id", "value", "bound"])


def _suites(config: ValidateConfig, tables: dict[str, pd.DataFrame]) -> dict[str, list]:
    import great_expectations as gx

    E = gx.expectations
    documents = len(tables["documents"])
    suites = {
        "schema": [E.ExpectColumnPairValuesToBeEqual(column_A="expected_type", column_B="actual_type")],
        "documents": _documents_suite(E, config, tables["documents"]),
        "token_shards": [
            E.ExpectTableRowCountToBeBetween(min_value=1),
            E.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val"]),
            E.ExpectColumnValuesToBeInSet(column="present", value_set=[True]),
            E.ExpectColumnPairValuesToBeEqual(column_A="dtype", column_B="expected_dtype"),
            E.ExpectColumnValuesToBeBetween(column="partial_bytes", min_value=0, max_value=0),
            E.ExpectColumnPairValuesToBeEqual(column_A="index_tokens", column_B="disk_tokens"),
            E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="vocab_size", column_B="max_token_id"),
            E.ExpectColumnSumToBeBetween(column="disk_tokens", min_value=config.min_tokens),
            # every curated document was packed exactly once
            E.ExpectColumnSumToBeBetween(column="index_docs", min_value=documents, max_value=documents),
        ],
        "datasheet": [E.ExpectColumnValuesToBeInSet(column="present", value_set=[True])],
    }
    if "languages" in tables:
        suites["languages"] = [
            E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="share", column_B="min_share", or_equal=True),
            E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="max_share", column_B="share", or_equal=True),
        ]
    if "drift" in tables:
        suites["drift"] = [E.ExpectColumnPairValuesAToBeGreaterThanB(column_A="bound", column_B="value", or_equal=True)]
    return suites


# What the `id` column of each suite's table names, for failure messages.
ID_NOUNS = {
    "schema": "columns",
    "documents": "record ids",
    "languages": "languages",
    "token_shards": "shard files",
    "drift": "measures",
    "datasheet": "sections",
}


def _describe(result, frame: pd.DataFrame, noun: str) -> tuple[str, str]:
    kwargs = {k: v for k, v in result.expectation_config.kwargs.items() if k not in ("batch_id", "result_format")}
    target = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    outcome = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        return target, result.exception_info.get("exception_message", "error")
    if "unexpected_count" in outcome:
        detail = f"{outcome['unexpected_count']} unexpected ({outcome.get('unexpected_percent') or 0:.2f}%)"
        sample = outcome.get("partial_unexpected_list") or []
        if sample:
            detail += f", e.g. {sample[:3]}"
        if "id" in frame.columns and outcome.get("partial_unexpected_index_list"):
            ids = frame.loc[outcome["partial_unexpected_index_list"][:5], "id"].tolist()
            detail += f"; {noun} {ids}"
        return target, detail
    if "observed_value" in outcome:
        return target, f"observed {outcome['observed_value']}"
    if result.expectation_config.type == "expect_column_to_exist" and not result.success:
        return target, "column is missing"
    return target, ""


def _run_suites(config: ValidateConfig, tables: dict[str, pd.DataFrame], docs_dir: Path) -> list[dict]:
    """Run every suite through a GX checkpoint, then build Data Docs; one dict per expectation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="greenfm",
        site_config={
            "class_name": "SiteBuilder",
            # GX refuses a relative Data Docs directory
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = context.data_sources.add_pandas("greenfm")
    checks: list[dict] = []
    for name, expectations in _suites(config, tables).items():
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}_gate",
                validation_definitions=[definition],
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": 5},
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": tables[name]})
        severity = "warning" if name == "drift" and config.drift_mode == "warn" else "failure"
        for validation in run.run_results.values():
            for result in validation.results:
                target, detail = _describe(result, tables[name], ID_NOUNS[name])
                expectation = result.expectation_config
                assert expectation is not None  # GX sets it on every result of a suite run
                kwargs = expectation.kwargs
                checks.append(
                    {
                        "suite": name,
                        "expectation": expectation.type,
                        "target": target,
                        "column": next((str(v) for k, v in kwargs.items() if k.startswith("column")), ""),
                        "success": bool(result.success),
                        "severity": severity,
                        "detail": detail,
                        "unexpected": int((result.result or {}).get("unexpected_count") or 0),
                    }
                )
    context.build_data_docs(site_names=["greenfm"])  # once, over every stored validation result
    return checks


def _reason(check: dict) -> str:
    return f"{check['suite']}: {check['expectation']}({check['target']}): {check['detail']}"


def validate(curated_dir: str | Path, docs_dir: str | Path, config: ValidateConfig | None = None) -> GateResult:
    """Run the suites; write Data Docs, the summary and the datasheet to `docs_dir`; return the verdict. When
    the gate passes and a profile store is configured, the dataset's profile and datasheet are stored there
    as the snapshot the next run is compared with."""
    config = config or ValidateConfig()
    curated_dir, docs_dir = Path(curated_dir), Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    raw, schema = frames.read_documents(curated_dir)
    documents = frames.documents_frame(raw)
    shards = frames.shard_stats(curated_dir)
    current = profile.build_profile(documents, tokens=int(shards["disk_tokens"].sum()))
    tables = {
        "schema": frames.schema_frame(schema, _required_columns(config)),
        "documents": documents,
        "token_shards": shards,
    }
    if config.language_bounds and "lang" in documents.columns:
        tables["languages"] = _language_frame(config, current["languages"])

    measures: dict[str, float] = {}
    baseline = unusable = ""
    if config.profile_store and config.drift_mode != "off":
        try:
            previous = profile.load_accepted(config.profile_store)
            baseline = config.profile_store if previous else f"no accepted snapshot in {config.profile_store} yet"
        except profile.ProfileUnreadable as error:  # reported, and replaced when this dataset is accepted
            previous, unusable = None, str(error)
            baseline = f"the accepted snapshot is unusable ({unusable})"
        if previous:
            measures = profile.drift(previous, current)
            tables["drift"] = _drift_frame(config, measures)
    elif config.profile_store:
        baseline = "drift_mode is off"

    notes = (
        ["Drift from the last accepted snapshot: " + ", ".join(f"{k} {v:.4f}" for k, v in measures.items())]
        if measures
        else []
    )
    sheet = datasheet.render(curated_dir, documents, current, notes)
    (docs_dir / datasheet.DATASHEET_MD).write_text(sheet)
    tables["datasheet"] = datasheet.sections_frame(docs_dir / datasheet.DATASHEET_MD)

    checks = _run_suites(config, tables, docs_dir)
    failures = [_reason(c) for c in checks if not c["success"] and c["severity"] == "failure"]
    warnings = [_reason(c) for c in checks if not c["success"] and c["severity"] == "warning"]
    if unusable:
        warnings.append(
            f"drift not measured, the accepted snapshot is unusable: {unusable}; a passing gate replaces it"
        )
    gate = GateResult(not failures, failures, warnings, checks, len(documents), current, measures, baseline)
    if gate.passed and config.profile_store:
        profile.save_accepted(
            config.profile_store,
            {profile.PROFILE_FILE: json.dumps(current, indent=2), profile.DATASHEET_FILE: sheet},
        )
    (docs_dir / SUMMARY_MD).write_text(gate.summary_markdown())
    (docs_dir / RESULT_JSON).write_text(json.dumps(asdict(gate), indent=2, default=str))
    return gate
