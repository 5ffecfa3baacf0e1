"""Dataset profile and drift against the last accepted snapshot.

A profile summarises what later runs compare against: document length (word-count quantiles and a
histogram over fixed log-spaced bins), language shares, source shares and token count. When the gate accepts
a dataset its profile is saved as `accepted_profile.json` in the profile store (a local folder or a
pyarrow-supported URI such as s3://bucket/greenfm/profile), and the next run measures drift from it:

- length: population stability index (PSI) between the two histograms,
- languages and sources: total variation distance (TVD, half the L1 distance between share vectors),
- tokens: relative change of the total token count.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from components.common.atomic import writing
from components.common.errors import InputError

PROFILE_FILE = "accepted_profile.json"
DATASHEET_FILE = "accepted_datasheet.md"  # the accepted dataset's datasheet, kept beside its profile
PROFILE_VERSION = 1
# Word-count bin edges: 1, 2, 4, ... 2^20 words, then everything longer.
LENGTH_BINS = [0] + [2**k for k in range(21)] + [math.inf]
_QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
_PSI_FLOOR = 1e-4  # share given to an empty bin so PSI stays finite


def value_counts(values: pd.Series) -> pd.Series:
    """Documents per value, most frequent first; nulls counted as "<missing>"."""
    return values.fillna("<missing>").astype(str).value_counts()


def _shares(values: pd.Series) -> dict[str, float]:
    counts = value_counts(values)
    return {str(k): round(float(v) / len(values), 6) for k, v in sorted(counts.items())} if len(values) else {}


def build_profile(documents: pd.DataFrame, tokens: int) -> dict:
    """The profile of a documents frame (from `frames.documents_frame`) and its total token count."""
    words = documents["words"] if "words" in documents.columns else pd.Series(dtype=float)
    histogram: list[int] = np.histogram(words.to_numpy(dtype=float), bins=LENGTH_BINS)[0].tolist() if len(words) else []
    return {
        "version": PROFILE_VERSION,
        "documents": len(documents),
        "tokens": int(tokens),
        "length": {
            "quantiles": {str(q): float(words.quantile(q)) for q in _QUANTILES} if len(words) else {},
            "histogram": [int(c) for c in histogram],
        },
        "languages": _shares(documents["lang"]) if "lang" in documents.columns else {},
        "sources": _shares(documents["source"]) if "source" in documents.columns else {},
    }


def psi(expected: list[int], actual: list[int]) -> float:
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.sum() == 0 or a.sum() == 0:
        return 0.0 if e.sum() == a.sum() else math.inf
    e = np.maximum(e / e.sum(), _PSI_FLOOR)
    a = np.maximum(a / a.sum(), _PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def tvd(expected: dict[str, float], actual: dict[str, float]) -> float:
    keys = set(expected) | set(actual)
    return 0.5 * sum(abs(expected.get(k, 0.0) - actual.get(k, 0.0)) for k in keys)


def drift(previous: dict, current: dict) -> dict[str, float]:
    """Drift measures of `current` against the accepted `previous` profile (a measure whose inputs are
    absent from either profile, e.g. languages before language identification, is left out)."""
    measures = {"length_psi": psi(previous["length"]["histogram"], current["length"]["histogram"])}
    for name in ("languages", "sources"):
        if previous.get(name) and current.get(name):
            measures[f"{name[:-1]}_tvd"] = tvd(previous[name], current[name])
    if previous.get("tokens"):
        measures["token_change"] = abs(current["tokens"] - previous["tokens"]) / previous["tokens"]
    return {k: round(v, 6) for k, v in measures.items()}


def _filesystem(store: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(store) if "://" in store else (pafs.LocalFileSystem(), store)
    except (pafs.ArrowInvalid, ValueError) as error:
        raise InputError(f"{store}: unusable profile store ({error})") from None


class ProfileUnreadable(InputError):
    """The profile store holds an accepted profile that cannot be used (truncated, not JSON, another version)."""


def load_accepted(store: str) -> dict | None:
    """The accepted profile in `store`, or None when nothing was accepted there yet. Raises ProfileUnreadable,
    naming the file and what is wrong with it, when the file is there but unusable."""
    fs, root = _filesystem(store)
    path = f"{root.rstrip('/')}/{PROFILE_FILE}"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as handle:
        data = handle.read()
    try:
        profile = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        state = "empty" if not data.strip() else f"truncated or not JSON ({len(data)} bytes; {error})"
        raise ProfileUnreadable(f"{store}/{PROFILE_FILE}: {state}") from None
    if not isinstance(profile, dict) or profile.get("version") != PROFILE_VERSION:
        found = profile.get("version") if isinstance(profile, dict) else type(profile).__name__
        raise ProfileUnreadable(f"{store}/{PROFILE_FILE}: profile version {found}, expected {PROFILE_VERSION}")
    missing = [key for key in ("documents", "tokens", "length", "languages", "sources") if key not in profile]
    if missing or "histogram" not in profile["length"]:
        raise ProfileUnreadable(f"{store}/{PROFILE_FILE}: missing {', '.join(missing) or 'length.histogram'}")
    return profile


def save_accepted(store: str, files: dict[str, str]) -> None:
    """Write `files` ({name: text}, the profile and the datasheet) into the profile store, each through a
    temporary name moved into place, so a reader (a concurrent gate) or a crash never sees a partial file."""
    fs, root = _filesystem(store)
    root = root.rstrip("/")
    with writing(store):
        fs.create_dir(root, recursive=True)
    for name in sorted(files, key=lambda n: n == PROFILE_FILE):  # the profile last: it is what readers look for
        final, temporary = f"{root}/{name}", f"{root}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            with writing(f"{store}/{name}"), fs.open_output_stream(temporary) as handle:
                handle.write(files[name].encode())
            fs.move(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError):
                fs.delete_file(temporary)
            raise
