"""PII detectors: what each finds, the Luhn check, and Spark agreeing with Python on the same texts."""

import pytest

from components.common.pii import PII_KINDS, find_pii, luhn_valid, redact
from components.curate.pii_columns import pii_count_column, redact_column

CASES = [
    ("Write to jane.doe+news@mail.example.co.uk today.", "Write to <EMAIL> today.", {"EMAIL": 1}),
    ("Card 4111 1111 1111 1111 expires soon", "Card <CREDIT_CARD> expires soon", {"CREDIT_CARD": 1}),
    ("Card 4111-1111-1111-1112 fails Luhn", "Card 4111-1111-1111-1112 fails Luhn", {}),
    ("Server at 192.168.10.254, backup 10.0.0.1.", "Server at <IP_ADDRESS>, backup <IP_ADDRESS>.", {"IP_ADDRESS": 2}),
    ("v6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up", "v6 <IP_ADDRESS> up", {"IP_ADDRESS": 1}),
    ("Not an IP: 999.1.1.1 or version 1.2.3", "Not an IP: 999.1.1.1 or version 1.2.3", {}),
    ("Call (555) 123-4567 or +44 20 7946 0958.", "Call <PHONE> or <PHONE>.", {"PHONE": 2}),
    ("Call 555.123.4567 now", "Call <PHONE> now", {"PHONE": 1}),
    ("The year 2024 had 365 days and 12 months.", "The year 2024 had 365 days and 12 months.", {}),
    ("", "", {}),
]


@pytest.mark.parametrize("text,expected,counts", CASES)
def test_redact_replaces_each_kind_with_its_placeholder(text, expected, counts):
    redacted, found = redact(text)
    assert redacted == expected
    assert found == {kind: counts.get(kind, 0) for kind in PII_KINDS}
    assert find_pii(redacted) == dict.fromkeys(PII_KINDS, 0)  # redacting is idempotent


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5500 0000 0000 0004")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("0000 0000 00")  # too short for a card


def test_spark_expressions_agree_with_python(spark):
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(text,) for text, _, _ in CASES], "text string")
    redacted, counts = redact_column(F.col("text"))
    rows = frame.select(
        "text",
        redacted.alias("redacted"),
        pii_count_column(F.col("text")).alias("total"),
        *[column.alias(kind) for kind, column in counts.items()],
    ).collect()
    for row in rows:
        expected_text, expected_counts = redact(row["text"])
        assert row["redacted"] == expected_text
        assert {kind: row[kind] for kind in PII_KINDS} == expected_counts
        assert row["total"] == sum(expected_counts.values())
