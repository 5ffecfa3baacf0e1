"""What every curation step shares: the per-step report, and a runner that turns a marked frame into one.

A step returns a `Marked` frame: the documents with `_reason` (null: keep; otherwise the stable reason code
`<step>.<rule>`, e.g. `gopher_quality.short_doc`), `_value` (the rule's measured value: a ratio, a count),
`_detail` (free text such as the kept duplicate's id) and `_modified` (whether the step changed the document;
other `_`-prefixed helper columns are dropped), plus optional extra counters summed over the kept documents (PII
found per kind, for instance). `run_step` materializes it once, counts everything in a single aggregation, and
returns the kept documents, the removed ones (for the `removed/` dataset) and the step's report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


@dataclass
class StepReport:
    step: str
    input_docs: int
    output_docs: int
    removed: dict[str, int] = field(default_factory=dict)
    modified: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the step's materialization

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Marked:
    step: str
    frame: DataFrame  # the documents plus `_reason` and `_modified`
    counters: dict[str, Column] = field(default_factory=dict)  # summed over kept documents


def with_transforms(df: DataFrame) -> DataFrame:
    """Ingested documents with an empty `transforms` list, which every step appends to (see `mark`)."""
    return df.withColumn("transforms", F.array().cast("array<string>"))


REMOVED_COLUMNS = ("step", "reason", "value", "detail")


def measured_columns(df: DataFrame, step: str, **measures: Column) -> tuple[DataFrame, dict[str, Column]]:
    """`df` with each measure in a helper column of its own, and a reference to each.

    A rule reads its measure twice (condition and value) and several rules share one (a word count): written
    inline, Spark evaluates each occurrence inside the CASE WHEN again and generates code for all of them (Gopher
    quality's first run: 6.9 s, 5.0 s with columns). A column is computed once: Spark does not inline a costly
    column that is read twice.
    """
    names = {name: f"_{step}_{name}" for name in measures}
    df = df.withColumns({names[name]: column for name, column in measures.items()})
    return df, {name: F.col(column) for name, column in names.items()}


def first_failing(step: str, rules: list[tuple[str, Column, Column]]) -> tuple[Column, Column]:
    """(reason code, measured value) of the first rule whose condition holds, from (rule, condition, value).

    A condition that is null (a ratio over zero lines, say) does not hold.
    """
    reason = value = None
    for rule, failed, measured in rules:
        holds = F.coalesce(failed, F.lit(False))
        code, number = F.lit(f"{step}.{rule}"), measured.cast("double")
        reason = F.when(holds, code) if reason is None else reason.when(holds, code)
        value = F.when(holds, number) if value is None else value.when(holds, number)
    if reason is None or value is None:
        raise ValueError(f"{step}: a step needs at least one rule")
    return reason, value


def mark(
    step: str,
    df: DataFrame,
    reason: Column | None = None,
    modified: Column | None = None,
    checked: bool = True,
    value: Column | None = None,
    detail: Column | None = None,
) -> DataFrame:
    """Add `_reason` / `_value` / `_detail` / `_modified` and record the step in `transforms`.

    A checking step (a filter) is recorded on every document it keeps; a modifying step only on the documents it
    changed.
    """
    reason = reason if reason is not None else F.lit(None).cast("string")
    modified = modified if modified is not None else F.lit(False)
    record = F.lit(True) if checked else modified
    return (
        df.withColumn("_reason", reason)
        .withColumn("_value", value.cast("double") if value is not None else F.lit(None).cast("double"))
        .withColumn("_detail", detail.cast("string") if detail is not None else F.lit(None).cast("string"))
        .withColumn("_modified", F.coalesce(modified, F.lit(False)))
        .withColumn(
            "transforms", F.when(record, F.array_append("transforms", F.lit(step))).otherwise(F.col("transforms"))
        )
    )


def run_step(marked: Marked) -> tuple[DataFrame, DataFrame, StepReport]:
    """Materialize the marked frame (cached), count removals by reason, modifications and extra counters.

    Returns (kept documents, removed documents with step/reason/value/detail, report); both frames read the
    cached one, so use them before it is unpersisted.
    """
    started = time.perf_counter()
    frame = marked.frame.cache()
    kept_only = lambda column: F.sum(F.when(F.col("_reason").isNull(), column).otherwise(0))  # noqa: E731
    rows = (
        frame.groupBy("_reason")
        .agg(
            F.count(F.lit(1)).alias("_n"),
            F.sum(F.col("_modified").cast("long")).alias("_mod"),
            *[kept_only(column).alias(name) for name, column in marked.counters.items()],
        )
        .collect()
    )
    removed_counts = {row["_reason"]: row["_n"] for row in rows if row["_reason"] is not None}
    kept = next((row for row in rows if row["_reason"] is None), None)
    report = StepReport(
        step=marked.step,
        input_docs=sum(row["_n"] for row in rows),
        output_docs=kept["_n"] if kept else 0,
        removed=dict(sorted(removed_counts.items())),
        modified=sum(row["_mod"] or 0 for row in rows),
        counters={name: int(kept[name] or 0) if kept else 0 for name in marked.counters},
        seconds=round(time.perf_counter() - started, 3),
    )
    kept_docs = frame.filter(F.col("_reason").isNull())
    removed = frame.filter(F.col("_reason").isNotNull()).select(
        *[c for c in frame.columns if not c.startswith("_")],
        F.lit(marked.step).alias("step"),
        F.col("_reason").alias("reason"),
        F.col("_value").alias("value"),
        F.col("_detail").alias("detail"),
    )
    return kept_docs.drop(*[c for c in kept_docs.columns if c.startswith("_")]), removed, report
