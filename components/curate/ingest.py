"""Read JSONL, Parquet and plain-text inputs into one document table; bad records go to quarantine.

gzip files are read by Spark itself (Hadoop's codec); zstd files, which Spark reads only with native Hadoop
libraries, are decompressed to a staging folder first and keep their own name as `origin`.

Document columns: id, text, source, license, metadata (JSON text of any other fields), origin (the file).
Quarantine columns: file, line (JSONL only; 0 where unknown), code (stable: `bad_json`, `invalid_utf8`, ...),
reason (the details), raw (first 500 characters).
"""

from __future__ import annotations

import io
import json
import shutil
from collections import defaultdict, deque
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from components.common.errors import InputError
from components.curate.inputs import InputFile, classify, is_remote, open_binary

DOCUMENT_SCHEMA = T.StructType(
    [
        T.StructField("id", T.StringType()),
        T.StructField("text", T.StringType()),
        T.StructField("source", T.StringType()),
        T.StructField("license", T.StringType()),
        T.StructField("metadata", T.StringType()),
        T.StructField("origin", T.StringType()),
    ]
)
_RESERVED = {"id", "text", "source", "license"}
RAW_PREVIEW = 500


def _invalid_utf8() -> F.Column:
    """Spark's text reader keeps bytes that are not UTF-8 as they are; this finds them."""
    return F.expr("NOT is_valid_utf8(value)")


def _with_defaults(df: DataFrame) -> DataFrame:
    """Derive what a record did not carry: id from file name + content hash, source from the file name."""
    base = F.regexp_extract("origin", r"([^/]+?)(\.[^./]*)?$", 1)
    return df.withColumn(
        "id", F.coalesce("id", F.concat(base, F.lit(":"), F.substring(F.sha2("text", 256), 1, 16)))
    ).withColumn("source", F.coalesce("source", base))


def _read_jsonl(spark: SparkSession, paths: list[str], default_license: str) -> tuple[DataFrame, DataFrame]:
    """Parse and check every line with Spark's own JSON (VARIANT) functions: no Python on the hot path."""
    lines = spark.read.text(paths).withColumn("origin", F.input_file_name())
    lines = lines.filter(F.trim("value") != "").withColumn("v", F.expr("try_parse_json(value)"))
    shape = F.expr("schema_of_variant(v)")
    text_type = F.expr("schema_of_variant(variant_get(v, '$.text', 'variant'))")
    reason = (
        F.when(_invalid_utf8(), F.lit("invalid UTF-8"))
        .when(F.col("v").isNull(), F.lit("bad JSON"))
        .when(~shape.startswith("OBJECT"), F.concat(F.lit("not a JSON object ("), shape, F.lit(")")))
        .when(text_type.isNull() | (text_type == "VOID"), F.lit("missing text"))
        .when(text_type != "STRING", F.concat(F.lit("text is "), text_type, F.lit(", not a string")))
    )
    code = (
        F.when(_invalid_utf8(), F.lit("invalid_utf8"))
        .when(F.col("v").isNull(), F.lit("bad_json"))
        .when(~shape.startswith("OBJECT"), F.lit("not_an_object"))
        .when(text_type.isNull() | (text_type == "VOID"), F.lit("missing_text"))
        .when(text_type != "STRING", F.lit("text_not_a_string"))
    )
    checked = lines.withColumn("reason", reason).withColumn("code", code)

    def field(name: str) -> F.Column:
        return F.expr(f"try_variant_get(v, '$.{name}', 'string')")

    reserved = ", ".join(f"'{name}'" for name in sorted(_RESERVED))
    extra = F.expr(f"map_filter(from_json(value, 'MAP<STRING,STRING>'), (k, x) -> NOT k IN ({reserved}))")
    good = checked.filter(F.col("reason").isNull()).select(
        field("id").alias("id"),
        field("text").alias("text"),
        field("source").alias("source"),
        F.coalesce(field("license"), F.lit(default_license)).alias("license"),
        F.when(F.size(extra) > 0, F.to_json(extra)).alias("metadata"),
        "origin",
    )
    bad = checked.filter(F.col("reason").isNotNull()).select(
        F.col("origin").alias("file"), "code", "reason", F.col("value").alias("raw")
    )
    return good, bad


def _read_parquet(spark: SparkSession, paths: list[str], default_license: str) -> tuple[DataFrame, DataFrame]:
    frames = []
    for path in paths:
        df = spark.read.parquet(path)  # inputs.scan_inputs has checked the footer and the text column
        cols = set(df.columns)
        extra = sorted(cols - _RESERVED)
        frames.append(
            df.select(
                (F.col("id").cast("string") if "id" in cols else F.lit(None).cast("string")).alias("id"),
                "text",
                (F.col("source").cast("string") if "source" in cols else F.lit(None).cast("string")).alias("source"),
                F.coalesce(
                    F.col("license").cast("string") if "license" in cols else F.lit(None).cast("string"),
                    F.lit(default_license),
                ).alias("license"),
                (F.to_json(F.struct(*extra)) if extra else F.lit(None).cast("string")).alias("metadata"),
                F.input_file_name().alias("origin"),
            )
        )
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    bad = df.filter(F.col("text").isNull()).select(
        F.col("origin").alias("file"),
        F.lit("null_text").alias("code"),
        F.lit("text is null").alias("reason"),
        F.to_json(F.struct("*")).alias("raw"),
    )
    return df.filter(F.col("text").isNotNull()), bad


def _read_text(spark: SparkSession, paths: list[str], default_license: str) -> tuple[DataFrame, DataFrame]:
    docs = spark.read.text(paths, wholetext=True).withColumn("origin", F.input_file_name())
    docs = docs.filter(F.trim("value") != "")
    good = docs.filter(~_invalid_utf8()).select(
        F.lit(None).cast("string").alias("id"),
        F.col("value").alias("text"),
        F.lit(None).cast("string").alias("source"),
        F.lit(default_license).alias("license"),
        F.lit(None).cast("string").alias("metadata"),
        "origin",
    )
    bad = docs.filter(_invalid_utf8()).select(
        F.col("origin").alias("file"),
        F.lit("invalid_utf8").alias("code"),
        F.lit("invalid UTF-8").alias("reason"),
        F.col("value").alias("raw"),
    )
    return good, bad


_READERS = {"jsonl": _read_jsonl, "parquet": _read_parquet, "text": _read_text}


def _uri(path: str) -> str:
    return path if is_remote(path) else Path(path).resolve().as_uri()


def stage_zstd(files: list[InputFile], staging: Path) -> tuple[list[InputFile], dict[str, str]]:
    """Decompress zstd files into `staging` (streamed); returns the files to read and staged URI -> original."""
    out, origins = [], {}
    for index, item in enumerate(files):
        if item.compression != "zstd":
            out.append(item)
            continue
        staging.mkdir(parents=True, exist_ok=True)
        name = Path(item.path).name.removesuffix(Path(item.path).suffix)
        target = staging / f"{index:05d}-{name}"
        with open_binary(item.path, "zstd") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        out.append(InputFile(str(target), item.format))
        origins[_uri(str(target))] = _uri(item.path)
    return out, origins


def read_documents(
    spark: SparkSession, files: list[InputFile], default_license: str, staging: Path | None = None
) -> tuple[DataFrame, DataFrame]:
    """(documents, quarantined) over every input file, whatever its format; zstd files are staged in `staging`."""
    origins: dict[str, str] = {}
    if any(f.compression == "zstd" for f in files):
        if staging is None:
            raise InputError("zstd inputs need a staging folder")
        files, origins = stage_zstd(files, staging)
    goods, bads = [], []
    for fmt, reader in _READERS.items():
        paths = [_uri(f.path) for f in files if f.format == fmt]
        if paths:
            good, bad = reader(spark, paths, default_license)
            goods.append(good)
            bads.append(bad)
    docs, quarantined = goods[0], bads[0]
    for good, bad in zip(goods[1:], bads[1:], strict=True):
        docs, quarantined = docs.unionByName(good), quarantined.unionByName(bad)
    if origins:
        mapping = F.create_map(*[F.lit(x) for pair in origins.items() for x in pair])
        docs = docs.withColumn("origin", F.coalesce(F.element_at(mapping, F.col("origin")), F.col("origin")))
        quarantined = quarantined.withColumn("file", F.coalesce(F.element_at(mapping, F.col("file")), F.col("file")))
    return _with_defaults(docs).select(*DOCUMENT_SCHEMA.fieldNames()), quarantined


def _json_error(raw: str) -> str:
    try:
        json.loads(raw)
    except json.JSONDecodeError as error:
        return f"bad JSON: {error.msg} at column {error.colno}"
    return "bad JSON"


def locate_quarantined(rows: list[dict]) -> list[dict]:
    """Add the line number of each quarantined JSONL line by scanning its file once.

    Spark's line reader does not expose line numbers; quarantine is rare, so a second look at the few files
    that have bad lines is cheap and gives exact numbers. Identical bad lines get successive numbers.
    """
    pending: dict[str, dict[str, deque]] = defaultdict(lambda: defaultdict(deque))
    for row in rows:
        row["file"] = unquote(row["file"].removeprefix("file://"))
        row["line"] = 0
        pending[row["file"]][row["raw"]].append(row)
    for path, queues in pending.items():
        fmt, compression = classify(Path(path).name)
        if fmt != "jsonl" or not Path(path).is_file():
            continue
        with io.TextIOWrapper(open_binary(path, compression), encoding="utf-8", errors="replace", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                queue = queues.get(line.rstrip("\r\n"))
                if queue:
                    queue.popleft()["line"] = number
    for row in rows:
        if row["reason"] == "bad JSON":
            row["reason"] = _json_error(row["raw"])
    located = [{**row, "raw": row["raw"][:RAW_PREVIEW]} for row in rows]
    return sorted(located, key=lambda r: (r["file"], r["line"]))
