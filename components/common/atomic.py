"""Crash-safe outputs: a file or a folder appears whole, under its final name, or not at all.

Writers put their bytes in a temporary sibling (same folder, so the same filesystem) and rename it into place
only once everything is written and flushed: a reader, a crash or a full disk never leaves a truncated file or
a half-written dataset under the final name, and a failed rewrite keeps the previous version whole. A write
that fails for lack of space or permission raises `OutputError` naming the file and the cause.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from components.common.errors import OutputError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# Errors of the output medium, not of greenfm: reported as one line naming the file.
_MEDIUM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}
# The ones that only a write can cause: found by their message in errors from Java (Spark) or Rust (tokenizers),
# which carry no errno, without mistaking an unreadable input for an unwritable output.
_WRITE_ONLY_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def describe_os_error(error: OSError, path: str | Path) -> OutputError | None:
    """The one-line error for a failed write to `path`, or None when `error` is not one of the medium's."""
    if error.errno not in _MEDIUM_ERRORS:
        return None
    return OutputError(f"{error.filename or path}: cannot write: {os.strerror(error.errno)}")


def describe_failed_write(error: BaseException, path: str | Path) -> OutputError | None:
    """Like `describe_os_error` for any error, including those raised from Java (Spark) or Rust (tokenizers)
    code, which carry the system's message in their text rather than an errno."""
    if isinstance(error, OutputError):
        return error
    if isinstance(error, OSError) and error.errno is not None:
        return describe_os_error(error, path)
    text = str(error)
    for code in _WRITE_ONLY_ERRORS:
        if os.strerror(code) in text:
            return OutputError(f"{path}: cannot write: {os.strerror(code)}")
    return None


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failed write to `path` (disk full, read-only, no permission) into an `OutputError` naming it."""
    try:
        yield
    except OSError as error:
        described = describe_os_error(error, path)
        if described is None:
            raise
        raise described from error


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through a flushed temporary sibling renamed into place."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def replace_dir(staging: Path, target: Path) -> None:
    """Put the finished folder `staging` at `target`, replacing what was there. Where the system can swap two
    paths atomically a reader sees the old folder or the new one; elsewhere the old one is moved aside first."""
    if not target.exists():
        os.replace(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging)  # now holds the previous version
    else:
        previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, previous / target.name)
        os.replace(staging, target)
        shutil.rmtree(previous)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def staged_dir(target: str | Path) -> Iterator[Path]:
    """A temporary sibling of `target` to write a whole output folder into; it replaces `target` only when the
    block finishes without an error. On an error it is removed and `target` (an earlier output) is untouched."""
    target = Path(target).absolute()
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        with writing(target):
            replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
