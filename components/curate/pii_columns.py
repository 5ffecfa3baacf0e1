"""The PII detectors of components/common/pii.py as native Spark column expressions (no Python UDF on the hot
path), equal to its `redact`: curation redacts with these, the gate checks with the Python ones."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from components.common.pii import DETECTORS, PII_KINDS, Detector


def _luhn_column(candidate: Column) -> Column:
    digits = F.reverse(F.regexp_replace(candidate, "[^0-9]", ""))
    positions = F.sequence(F.lit(0), F.length(digits) - 1)

    def add_digit(total: Column, position: Column) -> Column:
        digit = F.substring(digits, position + 1, 1).cast("int")  # substring is 1-based; a column position is fine
        doubled = F.when(digit > 4, digit * 2 - 9).otherwise(digit * 2)
        return total + F.when(position % 2 == 1, doubled).otherwise(digit)

    checksum = F.aggregate(positions, F.lit(0), add_digit)
    return (F.length(digits) >= 13) & (F.length(digits) <= 19) & (checksum % 10 == 0)


def _matches(text: Column, detector: Detector) -> Column:
    found = F.regexp_extract_all(text, F.lit(detector.pattern), F.lit(0))
    return F.filter(found, _luhn_column) if detector.luhn else found


def _replace_each(matches: Column, text: Column, placeholder: str) -> Column:
    """`text` with every string of the array `matches` replaced, literally, by `placeholder`."""
    return F.aggregate(matches, text, lambda acc, match: F.replace(acc, match, F.lit(placeholder)))


def redact_column(text: Column) -> tuple[Column, dict[str, Column]]:
    """(redacted text, {kind: count column}) as native Spark expressions equal to `redact`.

    Counts of a kind are taken after earlier detectors have replaced their spans, exactly as `redact` does.
    """
    counts: dict[str, Column] = {kind: F.lit(0) for kind in PII_KINDS}
    for detector in DETECTORS:
        matches = _matches(text, detector)
        counts[detector.kind] = counts[detector.kind] + F.size(matches)
        if detector.luhn:
            # Only the Luhn-valid candidates are replaced, each as a literal string (digits, spaces, dashes).
            text = _replace_each(matches, text, detector.placeholder)
        else:
            text = F.regexp_replace(text, detector.pattern, detector.placeholder)
    return text, counts


def pii_count_column(text: Column) -> Column:
    """Total PII spans in `text` (0 for clean text), as a Spark column; the gate counts with `find_pii` in pandas."""
    _, counts = redact_column(text)
    total = F.lit(0)
    for column in counts.values():
        total = total + column
    return total
