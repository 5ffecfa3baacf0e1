"""Errors a user can act on. The CLI prints their message on one line and exits non-zero, without a traceback."""


class GreenfmError(Exception):
    """A failure caused by input or configuration, not by a bug in greenfm."""


class InputError(GreenfmError):
    """The input data cannot be read: missing path, empty directory, wrong format."""


class GateFailed(GreenfmError):
    """The validation gate rejected the curated data."""


class OutputError(GreenfmError):
    """An output cannot be written: the disk is full, the folder is read-only or not ours."""
