"""PII detectors shared by curation (redaction) and the validation gate (residual check).

One set of patterns serves both Python (`re`) and Spark (Java regex), so a document that curation cleaned is
clean by the gate's definition too. Detectors run in order; each replaces its matches with a typed placeholder
such as `<EMAIL>`, which no later detector matches. Credit-card candidates count only when their digits pass
the Luhn check, so most long numbers (ids, timestamps) stay untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"


@dataclass(frozen=True)
class Detector:
    kind: str
    pattern: str  # valid in both Python `re` and Java regex
    luhn: bool = False  # keep only matches whose digits pass the Luhn checksum

    @property
    def placeholder(self) -> str:
        return f"<{self.kind}>"


DETECTORS: tuple[Detector, ...] = (
    Detector("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    Detector("CREDIT_CARD", r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])", luhn=True),
    Detector("IP_ADDRESS", rf"(?<![0-9.]){_OCTET}(?:\.{_OCTET}){{3}}(?![0-9]|\.[0-9])"),
    Detector("IP_ADDRESS", r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])"),
    Detector(
        "PHONE",
        # not part of a longer run of digits and separators (an id, a number that failed Luhn)
        r"(?<![0-9A-Za-z+])(?<![0-9][ .-])(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{2,4}\)|[0-9]{2,4})[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,4}"
        r"(?![0-9])(?![ .-][0-9])",
    ),
)
PII_KINDS: tuple[str, ...] = tuple(dict.fromkeys(d.kind for d in DETECTORS))
_COMPILED = [(d, re.compile(d.pattern)) for d in DETECTORS]


def luhn_valid(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def redact(text: str) -> tuple[str, dict[str, int]]:
    """The text with every detected PII span replaced by its placeholder, and counts per kind."""
    counts = dict.fromkeys(PII_KINDS, 0)
    for detector, compiled in _COMPILED:

        def replace(match: re.Match, detector: Detector = detector) -> str:
            if detector.luhn and not luhn_valid(match.group(0)):
                return match.group(0)
            counts[detector.kind] += 1
            return detector.placeholder

        text = compiled.sub(replace, text)
    return text, counts


def find_pii(text: str) -> dict[str, int]:
    """Counts per kind of PII in `text` (what `redact` would replace)."""
    return redact(text)[1]


# --- Spark: the same detectors as native column expressions (no Python UDF on the hot path) ---


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
            text = F.aggregate(matches, text, lambda acc, m: F.replace(acc, m, F.lit(detector.placeholder)))
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
