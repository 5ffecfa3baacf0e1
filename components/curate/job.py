"""The curation job: input files → curated Parquet, quarantine, step report, tokenizer and token shards."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from pyspark.sql import functions as F

from components.common.fingerprint import sorted_digest
from components.curate import steps
from components.curate.ingest import locate_quarantined, read_documents
from components.curate.inputs import discover_inputs
from components.curate.shards import pack_shards, train_tokenizer
from components.curate.spark_session import get_spark

DOCUMENTS_DIR = "documents"
TOKENS_DIR = "tokens"
QUARANTINE_FILE = "quarantine.jsonl"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"


@dataclass
class CurateConfig:
    min_words: int = 5
    max_words: int = 100_000
    default_license: str = "unknown"
    vocab_size: int = 4096
    val_fraction: float = 0.05
    shard_tokens: int = 1 << 24
    spark_master: str | None = None  # None: $GREENFM_SPARK_MASTER or local[*]


@dataclass
class CurateResult:
    output_dir: str
    documents: int
    quarantined: int
    fingerprint: str
    train_tokens: int
    val_tokens: int
    report: dict


def dataset_fingerprint(df) -> str:
    """Order-free content hash of the curated records (not of Parquet bytes, which carry writer details)."""
    row_hash = F.sha2(
        F.concat_ws("\u0001", "id", "text", "source", "license", F.coalesce("metadata", F.lit(""))), 256
    )
    return sorted_digest(row[0] for row in df.select(row_hash).toLocalIterator())


def _markdown_report(report: dict) -> str:
    lines = [
        "# Curation report",
        "",
        f"- Input: `{report['input']}` ({report['input_files']} files)",
        f"- Documents read: {report['documents_read']}; quarantined records: {report['quarantined']}",
        f"- Documents kept: {report['documents']}; fingerprint `{report['fingerprint'][:16]}…`",
        f"- Tokens: {report['train_tokens']} train, {report['val_tokens']} validation (vocabulary {report['vocab_size']})",
        "",
        "| step | in | out | removed (by reason) | modified |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for step in report["steps"]:
        removed = ", ".join(f"{reason}: {count}" for reason, count in step["removed"].items()) or "none"
        lines.append(f"| {step['step']} | {step['input_docs']} | {step['output_docs']} | {removed} | {step['modified']} |")
    if report["quarantine_reasons"]:
        lines += ["", "Quarantine by reason:", ""]
        lines += [f"- {reason}: {count}" for reason, count in report["quarantine_reasons"].items()]
    return "\n".join(lines) + "\n"


def curate(input_uri: str, output_dir: str | Path, config: CurateConfig | None = None) -> CurateResult:
    config = config or CurateConfig()
    files = discover_inputs(input_uri)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    spark = get_spark(config.spark_master)

    docs, quarantined = read_documents(spark, files, config.default_license)
    docs = docs.withColumn("transforms", F.array().cast("array<string>")).cache()
    documents_read = docs.count()

    quarantine_rows = locate_quarantined([row.asDict() for row in quarantined.toLocalIterator()])
    with open(out / QUARANTINE_FILE, "w", encoding="utf-8") as handle:
        for row in quarantine_rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    reports = []
    docs, report = steps.normalize(docs)
    reports.append(report)
    docs, report = steps.length_filter(docs, config.min_words, config.max_words)
    reports.append(report)
    docs, report = steps.exact_dedup(docs)
    reports.append(report)

    docs = docs.orderBy("id").cache()
    docs.write.mode("overwrite").parquet(str(out / DOCUMENTS_DIR))
    kept = docs.count()
    fingerprint = dataset_fingerprint(docs)

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
        quarantine_reasons[row["reason"]] = quarantine_reasons.get(row["reason"], 0) + 1
    summary = {
        "input": str(input_uri),
        "input_files": len(files),
        "config": asdict(config),
        "documents_read": documents_read,
        "quarantined": len(quarantine_rows),
        "quarantine_reasons": dict(sorted(quarantine_reasons.items())),
        "steps": [r.to_dict() for r in reports],
        "documents": kept,
        "fingerprint": fingerprint,
        "train_tokens": split_tokens["train"],
        "val_tokens": split_tokens["val"],
        "vocab_size": index["vocab_size"],
    }
    (out / REPORT_JSON).write_text(json.dumps(summary, indent=2))
    (out / REPORT_MD).write_text(_markdown_report(summary))
    return CurateResult(
        output_dir=str(out),
        documents=kept,
        quarantined=len(quarantine_rows),
        fingerprint=fingerprint,
        train_tokens=split_tokens["train"],
        val_tokens=split_tokens["val"],
        report=summary,
    )
