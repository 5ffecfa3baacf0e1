"""Sentences as the C4 rules count them: end marks, less the periods of abbreviations and initials.

Plain regular expressions with no Spark import, in a syntax Java's regex (Spark's regexp_count, in
quality.sentence_count) and Python's `regex` module both read, so the real-text benchmark can hand greenfm's
count to datatrove's C4 filter (count_sentences).
"""

from __future__ import annotations

from functools import lru_cache

# Sentence ends: a run of end marks, optional closing quotes or brackets, then a space or the end.
SENTENCE_END = "[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019\u00bb)\\]]*(?=\\s|\\z)"
# Periods that end an abbreviation or an initial, not a sentence ("St. Paul", "J. R. R. Tolkien", "e.g. this").
ABBREVIATION = (
    r"(?<![\p{L}\p{N}.])(?:Mr|Mrs|Ms|Dr|Prof|St|Sr|Jr|Mt|Ft|Gen|Col|Capt|Lt|Sgt|Rev|Hon|Gov|Sen|Rep|Inc|Ltd|Co|"
    r"Corp|vs|cf|al|approx|Fig|fig|No|Vol|vol|pp|ch|Ch|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|"
    r"e\.g|i\.e|\p{Lu})\.(?=\s|\z)"
)


@lru_cache(maxsize=1)
def _python_patterns() -> tuple:
    import regex  # Python's `re` has no \p{...}; `regex` has, and spells Java's end of input `\z` as `\Z`

    return tuple(regex.compile(pattern.replace(r"\z", r"\Z")) for pattern in (SENTENCE_END, ABBREVIATION))


def count_sentences(text: str) -> int:
    """`text`'s sentences, counted in Python as quality.sentence_count counts them in Spark."""
    ends, abbreviations = _python_patterns()
    return len(ends.findall(text)) - len(abbreviations.findall(text))
