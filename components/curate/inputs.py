"""Find and sanity-check input files before any heavy work starts, so bad input fails in seconds.

Every file under the input is accounted for: read (JSONL, Parquet or plain text, the first two optionally
gzip- or zstd-compressed), refused with a one-line error naming it (unreadable, or plainly not what its name
says), or skipped with its reason (an unsupported format, a hidden file) and listed in the curation report.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from components.common.errors import InputError
from components.common.fingerprint import file_sha256, sorted_digest

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".txt": "text"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
REMOTE_SCHEMES = ("s3a://", "s3://", "gs://", "hdfs://", "abfss://", "wasbs://")
_SNIFF_BYTES = 1 << 16
_MAGIC = {b"\x1f\x8b": "gzip-compressed data", b"(\xb5/\xfd": "zstd-compressed data", b"PAR1": "a Parquet file"}


@dataclass(frozen=True)
class InputFile:
    path: str
    format: str  # jsonl | parquet | text
    compression: str | None = None  # gzip | zstd | None


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class InputListing:
    """What was found under the input: the files to read and the ones skipped, with why."""

    root: str
    files: list[InputFile]
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def found(self) -> int:
        return len(self.files) + len(self.skipped)

    def summary(self) -> dict:
        return {
            "found": self.found,
            "read": len(self.files),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE_SCHEMES)


def classify(name: str) -> tuple[str | None, str | None]:
    """(format, compression) from a file name: `a.jsonl.gz` -> ("jsonl", "gzip"); unknown formats -> None."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt == "parquet" and compression:
        return None, None  # Parquet compresses inside the file
    return fmt, compression


def open_binary(path: str | Path, compression: str | None) -> BinaryIO:
    """The file's bytes, decompressed."""
    if compression == "gzip":
        return cast(BinaryIO, gzip.open(path, "rb"))  # a GzipFile reads as a binary file
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def _read_head(item: InputFile) -> bytes:
    try:
        with open_binary(item.path, item.compression) as handle:
            return handle.read(_SNIFF_BYTES)
    except PermissionError as error:
        raise InputError(f"{item.path}: cannot be read ({error.strerror})") from None
    except (OSError, EOFError) as error:  # gzip.BadGzipFile and zstd errors are OSErrors or ZstdErrors
        raise InputError(f"{item.path}: not readable as {item.compression or 'a file'} ({error})") from None
    except Exception as error:  # zstandard.ZstdError is not an OSError
        raise InputError(f"{item.path}: not readable as {item.compression} ({error})") from None


def _sniff_jsonl(item: InputFile) -> None:
    """Refuse a file that is plainly not JSONL; bad lines in a JSONL file are not an error (they are quarantined).

    Only the first byte of each line in the first 64 KiB is looked at, so a long first line (one large
    document) or a line with bad bytes does not make a file "not JSONL".
    """
    head = _read_head(item)
    if not head.strip():
        return  # empty files are allowed
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"{item.path}: {what}, not JSONL (rename it to what it is)")
    if b"\x00" in head:
        raise InputError(f"{item.path}: binary data (NUL bytes; UTF-16 text is not supported), not JSONL")
    starts = [line.lstrip()[:1] for line in head.split(b"\n") if line.strip()]
    if b"{" in starts:
        first = head.lstrip().split(b"\n", 1)[0].strip()
        if first in (b"{", b"[") and len(starts) > 1:
            raise InputError(f"{item.path}: one JSON document spread over lines, not JSONL (one object per line)")
        return
    if all(start == b"[" for start in starts):
        raise InputError(f"{item.path}: JSON arrays, not JSONL objects (one object per line)")
    preview = head.lstrip().split(b"\n", 1)[0][:40].decode("utf-8", errors="replace")
    raise InputError(f"{item.path}: not JSONL (no line in its first 64 KiB starts a JSON object; line 1: {preview!r})")


def _check_parquet(item: InputFile) -> None:
    """Open the footer only: a file that is not Parquet, or has no string `text` column, is named in one line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(item.path).schema_arrow
    except PermissionError as error:
        raise InputError(f"{item.path}: cannot be read ({error.strerror})") from None
    except (pa.ArrowException, OSError) as error:
        cause = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{item.path}: not a Parquet file ({cause})") from None
    if "text" not in schema.names:
        raise InputError(f"{item.path}: no text column; expected a string column named text")
    kind = schema.field("text").type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputError(f"{item.path}: text column is {kind}; expected a string column named text")


def _walk(root: Path) -> list[Path]:
    """Every non-directory entry under root; an unreadable directory is an error, not a silent gap."""
    unreadable: list[OSError] = []
    entries = []
    for folder, dirs, names in os.walk(root, onerror=unreadable.append, followlinks=True):
        dirs.sort()
        entries += [Path(folder) / name for name in sorted(names)]
    if unreadable:
        error = unreadable[0]
        raise InputError(f"{error.filename}: directory cannot be read ({error.strerror})")
    return entries


def stored_bytes(uri: str | Path) -> int | None:
    """Bytes a local input (a file or a folder) takes on disk; None for a remote URI or one that cannot be read
    (scan_inputs reports that)."""
    uri = str(uri)
    if is_remote(uri):
        return None
    root = Path(uri)
    try:
        if root.is_file():
            return root.stat().st_size
        return sum(path.stat().st_size for path in _walk(root) if path.is_file()) if root.is_dir() else None
    except (OSError, InputError):
        return None


def scan_inputs(uri: str | Path, strict: bool = False) -> InputListing:
    """Every file under `uri`, each to be read or skipped with its reason. Raises InputError naming the path on
    bad input; with `strict`, a skipped file is an error too."""
    uri = str(uri)
    if is_remote(uri):
        fmt, compression = classify(uri.rstrip("/"))
        return InputListing(uri, [InputFile(uri, fmt or "jsonl", compression)])
    root = Path(uri)
    if not root.exists() and not root.is_symlink():
        raise InputError(f"{root}: no such file or directory")
    candidates = [root] if not root.is_dir() else _walk(root)
    if not candidates:
        raise InputError(f"{root}: directory is empty")
    files, skipped = [], []
    for path in candidates:
        fmt, compression = classify(path.name)
        if path != root and path.name.startswith((".", "_")):
            skipped.append(SkippedFile(str(path), "hidden or marker file"))
        elif not path.exists():
            raise InputError(f"{path}: cannot be read (a broken link)")
        elif not path.is_file():
            skipped.append(SkippedFile(str(path), "not a regular file"))
        elif fmt is None:
            skipped.append(SkippedFile(str(path), f"unsupported format {''.join(path.suffixes) or '(no suffix)'}"))
        else:
            files.append(InputFile(str(path), fmt, compression))
    listing = InputListing(str(root), files, skipped)
    if not files:
        names = ", ".join(Path(s.path).name for s in skipped[:3])
        raise InputError(f"{root}: no JSONL, Parquet or .txt files, plain or .gz/.zst (found {names})")
    if strict and skipped:
        first = skipped[0]
        raise InputError(f"{first.path}: skipped ({first.reason}); {len(skipped)} file(s) skipped in all")
    for item in files:
        try:
            if item.compression is None and os.stat(item.path).st_size == 0:
                continue
            with open(item.path, "rb"):
                pass
        except OSError as error:
            raise InputError(f"{item.path}: cannot be read ({error.strerror})") from None
        if item.format == "jsonl":
            _sniff_jsonl(item)
        elif item.format == "parquet":
            _check_parquet(item)
        elif item.compression:
            _read_head(item)
    if all(f.compression is None and Path(f.path).stat().st_size == 0 for f in files):
        raise InputError(f"{root}: every input file is empty")
    return listing


def discover_inputs(uri: str | Path, strict: bool = False) -> list[InputFile]:
    """The input files under `uri` that curation reads (see `scan_inputs` for the skipped ones)."""
    return scan_inputs(uri, strict).files


def input_fingerprint(files: list[InputFile]) -> str:
    """Content hash of the input: changes when any byte of any input file changes, not when files move."""
    if any(is_remote(f.path) for f in files):
        raise InputError("content fingerprints of remote inputs are computed by the data-change watcher")
    return sorted_digest(file_sha256(f.path) for f in files)
