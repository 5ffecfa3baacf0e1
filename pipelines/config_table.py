"""Write RunConfig's parameter table into the README (`python -m pipelines.config_table --write`); without
--write, exit 1 when the README's table is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.config import markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- run-config-table:start -->", "<!-- run-config-table:end -->"


def with_table(text: str) -> str:
    """`text` with the part between the table markers replaced by the current table."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README needs the markers {START} and {END}")
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    wanted = with_table(text)
    if "--write" in argv:
        README.write_text(wanted, encoding="utf-8")
        return 0
    if text != wanted:
        print(f"{README}: the parameter table is out of date; run python -m pipelines.config_table --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
