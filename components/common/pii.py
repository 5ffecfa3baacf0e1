"""PII detectors shared by curation (redaction) and the validation gate (residual check).

One set of patterns serves both Python (`re`) and Spark (Java regex), so a document that curation cleaned is
clean by the gate's definition too. Detectors run in order; each replaces its matches with a typed placeholder
such as `<EMAIL>`, which no later detector matches. Credit-card candidates count only when their digits pass
the Luhn check, so most long numbers (ids, timestamps) stay untouched. The Spark expressions of the same
detectors are in components/curate/pii_columns.py (this module stays free of Spark for the gate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
