"""Markdown tables for reports and model cards, and Markdown rendered as HTML (markdown-it-py, the parser rich
already ships with), so a report's Markdown and its HTML page say the same thing."""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt


def _cell(value: object) -> str:
    # A pipe would end the cell and a newline the row: escape the one, flatten the other.
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> list[str]:
    """The lines of a GitHub-flavoured Markdown table. `align` holds one letter per column, `l` (left) or `r`
    (right, for numbers); empty: the first column left, the others right."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} must be one of l/r per column ({len(header)} columns)")
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)!r} has {len(row)} cells for {len(header)} columns")
    rule = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
    ]


def curation_steps_table(steps: Sequence[dict]) -> list[str]:
    """The curation report's per-step table (documents in and out, removals by reason code, documents modified),
    as curation's report and the validation datasheet show it."""
    rows = [
        (
            step["step"],
            step["input_docs"],
            step["output_docs"],
            ", ".join(f"{reason}: {count}" for reason, count in step.get("removed", {}).items()) or "none",
            step.get("modified", 0),
        )
        for step in steps
    ]
    return table(("step", "in", "out", "removed (by reason)", "modified"), rows, align="lrrlr")


_RENDERER = MarkdownIt("commonmark", {"html": False}).enable("table")


def to_html(text: str) -> str:
    """Markdown as an HTML fragment (tables included); raw HTML in the text is escaped, not passed through."""
    return _RENDERER.render(text)
