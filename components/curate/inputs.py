"""Find and sanity-check input files before any heavy work starts, so bad input fails in seconds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from components.common.errors import InputError
from components.common.fingerprint import file_sha256, sorted_digest

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "text"}
REMOTE_SCHEMES = ("s3a://", "s3://", "gs://", "hdfs://", "abfss://", "wasbs://")
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class InputFile:
    path: str
    format: str  # jsonl | parquet | text


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def _sniff_jsonl(path: Path) -> None:
    """Fail when the start of a non-empty file holds no JSON object at all: it is not JSONL.

    Single bad lines in a JSONL file are not an error here: curation quarantines them.
    """
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        return  # empty files are allowed
    lines = head.splitlines()
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut by the sniff window
    first_error = ""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            first_error = first_error or f"line {number}: {error}"
            continue
        if isinstance(record, dict):
            return
        first_error = first_error or f"line {number}: a JSON {type(record).__name__}, not an object"
    raise InputError(f"{path}: not JSONL (no line holds a JSON object; {first_error})")


def discover_inputs(uri: str | Path) -> list[InputFile]:
    """The input files under `uri` with their format. Raises InputError naming the path on bad input."""
    uri = str(uri)
    if is_remote(uri):
        fmt = FORMATS.get(Path(uri.rstrip("/")).suffix.lower(), "jsonl")
        return [InputFile(uri, fmt)]
    root = Path(uri)
    if not root.exists():
        raise InputError(f"{root}: no such file or directory")
    if root.is_file():
        candidates = [root]
    else:
        candidates = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        if not candidates:
            raise InputError(f"{root}: directory is empty")
    found = [InputFile(str(p), FORMATS[p.suffix.lower()]) for p in candidates if p.suffix.lower() in FORMATS]
    if not found:
        names = ", ".join(p.name for p in candidates[:3])
        raise InputError(f"{root}: no JSONL, Parquet or .txt files (found {names})")
    if all(Path(f.path).stat().st_size == 0 for f in found):
        raise InputError(f"{root}: every input file is empty")
    for item in found:
        if item.format == "jsonl":
            _sniff_jsonl(Path(item.path))
    return found


def input_fingerprint(files: list[InputFile]) -> str:
    """Content hash of the input: changes when any byte of any input file changes, not when files move."""
    if any(is_remote(f.path) for f in files):
        raise InputError("content fingerprints of remote inputs are computed by the data-change watcher")
    return sorted_digest(file_sha256(f.path) for f in files)
