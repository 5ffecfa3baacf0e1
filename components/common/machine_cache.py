"""The folder where greenfm keeps what it derives from this machine alone, and a safe way to write there.

What goes here can always be derived again (parsed docstrings, a hardware probe's answer): a missing, stale or
unreadable file only costs the time to derive it, and a read-only home (some pods) is not an error.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$GREENFM_CACHE_DIR, else the user's cache folder (XDG_CACHE_HOME or ~/.cache) / greenfm."""
    if os.environ.get("GREENFM_CACHE_DIR"):
        return Path(os.environ["GREENFM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "greenfm"


def write_cache_file(path: Path, content: str, supersedes: str | None = None) -> None:
    """Write `content` to `path` atomically (a process reading it sees the whole file or none), or not at all
    where the folder cannot be written. `supersedes` is a glob, in the same folder, of the files this one
    replaces (what older code derived): they are removed once it is written, so a cache does not grow with every
    change of the code that fills it."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(content, encoding="utf-8")
        partial.replace(path)
        for old in path.parent.glob(supersedes) if supersedes else ():
            if old != path and not old.name.endswith(".partial"):  # another process's file being written
                old.unlink(missing_ok=True)
    except OSError:
        partial.unlink(missing_ok=True)
