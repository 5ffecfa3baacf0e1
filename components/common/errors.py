"""Errors a user can act on. The CLI prints their message on one line and exits non-zero, without a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterable


class GreenfmError(Exception):
    """A failure caused by input or configuration, not by a bug in greenfm."""


class InputError(GreenfmError):
    """The input data cannot be read: missing path, empty directory, wrong format."""


class GateFailed(GreenfmError):
    """The validation gate rejected the curated data."""


class OutputError(GreenfmError):
    """An output cannot be written: the disk is full, the folder is read-only or not ours."""


# "module.Type: message" as Python prints an exception's last line (prefixes such as torchrun's "[rank0]:" aside).
_EXCEPTION_LINE = re.compile(
    r"^(?:\[[\w-]+\]:\s*)?((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Failed|Exit|Interrupt)): (.+)$"
)
# Exceptions that only say that a child process failed; the child's own exception is the cause.
WRAPPERS = ("ChildFailedError", "CalledProcessError")


def exception_message(line: str) -> tuple[str, str] | None:
    """(type, message) when `line` is the last line of a printed traceback, else None."""
    match = _EXCEPTION_LINE.match(line.strip())
    return (match.group(1).rsplit(".", 1)[-1], match.group(2).strip()) if match else None


def root_cause(lines: Iterable[str]) -> str | None:
    """The message of the last exception printed in `lines` that is not a mere wrapper of a child's failure."""
    found = [m for m in map(exception_message, lines) if m and m[0] not in WRAPPERS]
    return found[-1][1] if found else None
