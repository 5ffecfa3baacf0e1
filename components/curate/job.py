"""The curation job: input files → curated Parquet, quarantine, step report, tokenizer and token shards."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from components.common.atomic import describe_failed_write, staged_dir, writing
from components.common.contracts import CURATION_REPORT_JSON as REPORT_JSON
from components.common.contracts import CURATION_REPORT_MD as REPORT_MD
from components.common.contracts import (
    DOCUMENTS_DIR,
    OUTPUT_COLUMNS,
    QUARANTINE_FILE,
    REMOVED_COLUMNS,
    REMOVED_DIR,
    TOKENS_DIR,
)
from components.common.errors import InputError, OutputError
from components.common.fingerprint import sorted_digest
from components.common.params import split_list
from components.curate import steps
from components.curate.decontam import DecontamConfig, decontaminate
from components.curate.ingest import locate_quarantined, read_documents
from components.curate.inputs import InputListing, scan_inputs
from components.curate.langid import language_filter
from components.curate.marks import Marked, StepReport, run_step, with_transforms
from components.curate.minhash import MinHashConfig, fuzzy_dedup
from components.curate.quality import DEFAULT_PRESET, QualityConfig, quality_steps
from components.curate.quality import quality_preset as preset
from components.curate.shards import pack_shards, train_tokenizer
from components.curate.spark_session import get_spark

STAGING_DIR = "_staging"  # decompressed zstd inputs, deleted at the end


@dataclass
class CurateConfig:
    min_words: int = 5
    max_words: int = 100_000
    default_license: str = "unknown"
    languages: tuple[str, ...] = ("en",)  # keep these ISO 639-1 codes; empty keeps every language
    min_lang_score: float = 0.0
    quality: QualityConfig = field(default_factory=lambda: preset(DEFAULT_PRESET))  # FineWeb's recipe
    exact_dedup: bool = True
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    pii: bool = True
    vocab_size: int = 4096
    val_fraction: float = 0.05
    shard_tokens: int = 1 << 24
    strict_inputs: bool = False  # a file skipped under the input (unsupported format, hidden) is an error

    @classmethod
    def from_dict(cls, values: dict) -> CurateConfig:
        """Inverse of dataclasses.asdict (JSON round trip: lists back to tuples, nested configs rebuilt)."""
        values = dict(values)
        if "quality" in values:
            values["quality"] = QualityConfig.from_dict(values["quality"])
        if "minhash" in values:
            values["minhash"] = MinHashConfig(**values["minhash"])
        if "decontam" in values:
            values["decontam"] = DecontamConfig(
                **{**values["decontam"], "extra_files": tuple(values["decontam"].get("extra_files", ()))}
            )
        if "languages" in values:
            values["languages"] = tuple(values["languages"])
        return cls(**values)


def pipeline_config(
    min_words: int, vocab_size: int, languages: str, quality_preset: str, builtin_corpus: bool
) -> CurateConfig:
    """The CurateConfig behind the pipeline's parameters (shared by the KFP component and the CLI).

    `languages` is comma-separated (empty keeps every language). `quality_preset` "auto" means "docstrings" for
    the built-in corpus and "fineweb" (FineWeb's recipe) for any other input.
    """
    if quality_preset == "auto":
        quality_preset = "docstrings" if builtin_corpus else DEFAULT_PRESET
    try:
        quality = preset(quality_preset)
    except ValueError as error:
        raise InputError(str(error)) from None
    codes = tuple(split_list(languages))
    return CurateConfig(min_words=min_words, vocab_size=vocab_size, languages=codes, quality=quality)


DEDUP_STEPS = ("exact_dedup", "fuzzy_dedup")


@dataclass
class CurateResult:
    output_dir: str
    documents: int
    quarantined: int
    fingerprint: str
    train_tokens: int
    val_tokens: int
    report: dict
    # Energy records of trackers outside this step's process tree (a SparkApplication's driver pod, every
    # executor): the step sums them with its own (components/carbon/spark_executors.stage_record).
    energy_records: list = field(default_factory=list)

    def mitigation_notes(self) -> dict:
        """For the carbon statement's mitigations: the documents deduplication kept out of training, and the
        tokens a document holds on average (so the statement can say how many tokens that saved)."""
        removed = sum(sum(s["removed"].values()) for s in self.report["steps"] if s["step"] in DEDUP_STEPS)
        return {"dedup_removed_documents": removed, "tokens_per_document": self.train_tokens / max(1, self.documents)}


def dataset_fingerprint(df) -> str:
    """Order-free content hash of the curated records (not of Parquet bytes, which carry writer details)."""
    row_hash = F.sha2(F.concat_ws("\u0001", "id", "text", "source", "license", F.coalesce("metadata", F.lit(""))), 256)
    return sorted_digest(row[0] for row in df.select(row_hash).toLocalIterator())


def planned_steps(config: CurateConfig) -> list[Callable[[DataFrame], Marked]]:
    """The enabled steps, in order; each takes the documents and returns them marked (see marks.py)."""
    plan: list[Callable[[DataFrame], Marked]] = [
        steps.normalize,
        lambda df: steps.length_filter(df, config.min_words, config.max_words),
        lambda df: language_filter(df, config.languages, config.min_lang_score),
    ]
    plan += [partial(step, cfg=config.quality) for step in quality_steps(config.quality)]
    if config.exact_dedup:
        plan.append(steps.exact_dedup)
    if config.minhash.enabled:
        plan.append(lambda df: fuzzy_dedup(df, config.minhash))
    if config.decontam.enabled:
        plan.append(lambda df: decontaminate(df, config.decontam))
    if config.pii:
        plan.append(steps.pii_redact)
    return plan


def run_steps(
    docs: DataFrame,
    plan: list[Callable[[DataFrame], Marked]],
    removed_dir: Path | None = None,
) -> tuple[DataFrame, list[StepReport]]:
    """Run the steps in order; each materializes once (cached) and frees the step before it.

    With `removed_dir`, each step's removed documents are appended there (Parquet, `REMOVED_COLUMNS`).
    """
    reports: list[StepReport] = []
    previous: DataFrame | None = None
    for step in plan:
        marked = step(docs)
        docs, removed, report = run_step(marked)
        if removed_dir is not None and any(report.removed.values()):
            removed.select(*REMOVED_COLUMNS).write.mode("append").parquet(str(removed_dir))
        reports.append(report)
        if previous is not None:
            previous.unpersist()
        previous = marked.frame
    return docs, reports


def _markdown_report(report: dict) -> str:
    files = report["input_files"]
    lines = [
        "# Curation report",
        "",
        f"- Input: `{report['input']}`: {files['found']} files found, {files['read']} read, "
        f"{len(files['skipped'])} skipped",
        f"- Documents read: {report['documents_read']}; quarantined records: {report['quarantined']}",
        f"- Documents kept: {report['documents']}; fingerprint `{report['fingerprint'][:16]}…`",
        f"- Tokens: {report['train_tokens']} train, {report['val_tokens']} validation (vocabulary {report['vocab_size']})",
        f"- PII redacted: {', '.join(f'{k}: {v}' for k, v in report['pii'].items()) or 'none'}",
        f"- Languages kept: {', '.join(f'{k}: {v}' for k, v in report['languages'].items()) or 'none'}",
        "",
        "| step | in | out | removed (by reason) | modified |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for step in report["steps"]:
        removed = ", ".join(f"{reason}: {count}" for reason, count in step["removed"].items()) or "none"
        lines.append(
            f"| {step['step']} | {step['input_docs']} | {step['output_docs']} | {removed} | {step['modified']} |"
        )
    if report["quarantine_reasons"]:
        lines += ["", "Quarantine by reason:", ""]
        lines += [f"- {reason}: {count}" for reason, count in report["quarantine_reasons"].items()]
    if files["skipped"]:
        lines += ["", "Skipped input files:", ""]
        lines += [f"- `{item['path']}`: {item['reason']}" for item in files["skipped"]]
    lines += ["", f"Removed documents, with reason code and measured value: `{REMOVED_DIR}/`."]
    return "\n".join(lines) + "\n"


def curate(
    input_uri: str, output_dir: str | Path, config: CurateConfig | None = None, spark: SparkSession | None = None
) -> CurateResult:
    """Curate `input_uri` into `output_dir` (new, empty, or an earlier curated dataset). The dataset is written
    to a temporary sibling that replaces `output_dir` only when every part is written: a failed run leaves an
    earlier dataset there whole. `spark` defaults to the process's local session."""
    config = config or CurateConfig()
    listing = scan_inputs(input_uri, strict=config.strict_inputs)
    target = Path(output_dir)
    if target.is_dir() and any(target.iterdir()) and not (target / REPORT_JSON).is_file():
        raise InputError(f"{target}: not empty and not a curated dataset (no {REPORT_JSON}); it would be replaced")
    with staged_dir(target) as staging:
        try:
            result = _curate_into(staging, input_uri, listing, config, spark)
        except Exception as error:
            described = describe_failed_write(error, target)
            if described is None:
                raise
            raise OutputError(str(described).replace(str(staging), str(target.absolute()))) from error
    return replace(result, output_dir=str(target))


def _curate_into(
    out: Path, input_uri: str, listing: InputListing, config: CurateConfig, spark: SparkSession | None
) -> CurateResult:
    spark = spark or get_spark()

    docs, quarantined = read_documents(spark, listing.files, config.default_license, out / STAGING_DIR)
    docs = with_transforms(docs).cache()
    documents_read = docs.count()

    quarantine_rows = locate_quarantined([row.asDict() for row in quarantined.toLocalIterator()])
    with writing(out / QUARANTINE_FILE), open(out / QUARANTINE_FILE, "w", encoding="utf-8") as handle:
        for row in quarantine_rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    curated, reports = run_steps(docs, planned_steps(config), out / REMOVED_DIR)
    docs.unpersist()
    if "minhash_cluster_size" not in curated.columns:
        curated = curated.withColumn("minhash_cluster_size", F.lit(None).cast("int"))
    docs = curated.select(*OUTPUT_COLUMNS).orderBy("id").cache()
    docs.write.mode("overwrite").parquet(str(out / DOCUMENTS_DIR))
    kept = docs.count()
    fingerprint = dataset_fingerprint(docs)
    languages = {row["lang"]: row["count"] for row in docs.groupBy("lang").count().orderBy("lang").collect()}
    pii = next((r.counters for r in reports if r.step == "pii_redact"), {})

    ordered = docs.select("id", "text")
    tokenizer = train_tokenizer((row.text for row in ordered.toLocalIterator()), config.vocab_size)
    index = pack_shards(
        tokenizer,
        ((row.id, row.text) for row in ordered.toLocalIterator()),
        out / TOKENS_DIR,
        config.val_fraction,
        config.shard_tokens,
    )
    split_tokens = {split: sum(s["tokens"] for s in shards) for split, shards in index["splits"].items()}

    quarantine_reasons: dict[str, int] = {}
    for row in quarantine_rows:
        quarantine_reasons[row["code"]] = quarantine_reasons.get(row["code"], 0) + 1
    summary = {
        "input": str(input_uri),
        "input_files": listing.summary(),
        "config": asdict(config),
        "documents_read": documents_read,
        "quarantined": len(quarantine_rows),
        "quarantine_reasons": dict(sorted(quarantine_reasons.items())),
        "steps": [r.to_dict() for r in reports],
        "documents": kept,
        "removed": documents_read - kept,
        "pii": pii,
        "languages": languages,
        "fingerprint": fingerprint,
        "train_tokens": split_tokens["train"],
        "val_tokens": split_tokens["val"],
        "vocab_size": index["vocab_size"],
    }
    with writing(out / REPORT_JSON):
        (out / REPORT_JSON).write_text(json.dumps(summary, indent=2))
    with writing(out / REPORT_MD):
        (out / REPORT_MD).write_text(_markdown_report(summary))
    docs.unpersist()
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
    return CurateResult(
        output_dir=str(out),
        documents=kept,
        quarantined=len(quarantine_rows),
        fingerprint=fingerprint,
        train_tokens=split_tokens["train"],
        val_tokens=split_tokens["val"],
        report=summary,
    )
