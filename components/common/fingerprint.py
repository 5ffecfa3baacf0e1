"""Content fingerprints: the same bytes give the same hash, whatever the file names or write order."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_sha256(root: str | Path, exclude: Iterable[str] = ()) -> str:
    """Hash of every file under `root` by relative path and content; `exclude` holds relative paths to skip."""
    root = Path(root)
    if root.is_file():
        return file_sha256(root)
    skipped = set(exclude)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative in skipped:
            continue
        digest.update(relative.encode())
        digest.update(b"\0")
        digest.update(file_sha256(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def sorted_digest(hexdigests: Iterable[str]) -> str:
    """Order-free hash of a collection: hash of its members' hashes, sorted."""
    digest = hashlib.sha256()
    for item in sorted(hexdigests):
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
