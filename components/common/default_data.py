"""The default corpus and the default downstream task, both cut from the standard library's docstrings.

Task: name the package a docstring comes from (one of TASK_LABELS). Half of those packages' docstrings,
chosen by a hash of their text, form the task; the task's own train/validation/test split is also by a hash
of the text. Hashing the text (not the id) matters: the standard library repeats docstrings (inherited
methods, aliases), and a repeated text must land on one side only. So the task keeps one example per
distinct text, and the pretraining corpus leaves out every docstring whose text is a task text, whatever
package it comes from. Everything is a pure function of the Python version, so the parsed docstrings are kept
on disk (`docstrings_cache_file`): every step of a run needs them, and parsing the library costs seconds.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import astuple
from functools import lru_cache
from pathlib import Path

from components.common import stdlib_text
from components.common.machine_cache import cache_dir, write_cache_file
from components.common.stdlib_text import STDLIB_LICENSE, Docstring, iter_stdlib_docstrings, stdlib_root

TASK_LABELS = ("asyncio", "email", "logging", "tkinter", "unittest", "xml")
TASK_SHARE = 0.5
# Ranges of the split hash, in order. Few labelled examples is the setting pretraining exists for: with a quarter
# of the task for training, pretraining beats the from-scratch arm on every adaptation seed tried, with 40% it
# did not (components/adapt/README.md has the numbers), and the larger test split lets the paired tests tell such
# a gain from noise. The test split has two ranges because the validation range chose the training share: the
# examples that left the training split went to the test split, and no example that chose the shares is tested.
TASK_SPLITS = (("test", 0.15), ("train", 0.25), ("val", 0.1), ("test", 0.5))
MIN_WORDS = 8


def _bucket(key: str, salt: str) -> float:
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:4], "big") / 2**32


def text_key(text: str) -> str:
    """Texts equal up to whitespace are the same text (curation collapses whitespace too)."""
    return " ".join(text.split())


def in_task(doc: Docstring) -> bool:
    return doc.package in TASK_LABELS and _bucket(text_key(doc.text), "task") < TASK_SHARE


def task_split(text: str) -> str:
    point, edge = _bucket(text_key(text), "split"), 0.0
    for name, share in TASK_SPLITS:
        edge += share
        if point < edge:
            return name
    return TASK_SPLITS[-1][0]


def _task_docs(docs: list[Docstring]) -> list[Docstring]:
    """Task docstrings, one per distinct text (the first in stdlib order)."""
    seen: set[str] = set()
    chosen = []
    for doc in docs:
        if in_task(doc) and text_key(doc.text) not in seen:
            seen.add(text_key(doc.text))
            chosen.append(doc)
    return chosen


@lru_cache(maxsize=1)
def _docstrings_keys() -> tuple[str, str]:
    """What the parsed docstrings depend on, as two keys: the interpreter (its version and standard library) and
    the code that parses and selects them (a changed rule makes a new file, which replaces the old one of the
    same interpreter). Fixed for the life of a process."""

    def digest(*parts: str) -> str:
        return hashlib.sha256(b"\0".join(part.encode() for part in parts)).hexdigest()[:16]

    code = (Path(__file__).read_text(), Path(stdlib_text.__file__).read_text())
    return digest(sys.version, str(stdlib_root())), digest(*code)


_DOCSTRINGS_FILE = "stdlib-docstrings-{interpreter}-{code}.json"


def docstrings_cache_file() -> Path:
    """The parsed docstrings of this Python, in the cache folder, named by `_docstrings_keys`."""
    interpreter, code = _docstrings_keys()
    return cache_dir() / _DOCSTRINGS_FILE.format(interpreter=interpreter, code=code)


def _read_docstrings_cache(path: Path) -> tuple[tuple[Docstring, ...], tuple[Docstring, ...]] | None:
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        docs = tuple(Docstring(*fields) for fields in cached["docs"])
        return docs, tuple(docs[i] for i in cached["task"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # absent, or not what this code writes: parse again (and write it anew)


def _write_docstrings_cache(path: Path, docs: tuple[Docstring, ...], task_docs: tuple[Docstring, ...]) -> None:
    position = {id(doc): i for i, doc in enumerate(docs)}
    content = json.dumps({"docs": [astuple(doc) for doc in docs], "task": [position[id(doc)] for doc in task_docs]})
    interpreter, _ = _docstrings_keys()
    # A read-only home (some pods) only costs the next step a parse; another Python's file stays.
    write_cache_file(path, content, supersedes=_DOCSTRINGS_FILE.format(interpreter=interpreter, code="*"))


@lru_cache(maxsize=1)
def _stdlib_and_task_docs() -> tuple[tuple[Docstring, ...], tuple[Docstring, ...]]:
    """Every docstring and the task's (both depend only on this Python): read from the cache file, else parsed
    and written there; once per process either way."""
    path = docstrings_cache_file()
    cached = _read_docstrings_cache(path)
    if cached is not None:
        return cached
    docs = tuple(iter_stdlib_docstrings(MIN_WORDS))
    task_docs = tuple(_task_docs(list(docs)))
    _write_docstrings_cache(path, docs, task_docs)
    return docs, task_docs


def default_corpus_records() -> Iterator[dict]:
    docs, task_docs = _stdlib_and_task_docs()
    task_texts = {text_key(doc.text) for doc in task_docs}
    for doc in docs:
        if text_key(doc.text) not in task_texts:
            yield {
                "id": f"stdlib:{doc.id}",
                "text": doc.text,
                "source": f"python-stdlib/{doc.module}",
                "license": STDLIB_LICENSE,
                "kind": doc.kind,
            }


@lru_cache(maxsize=1)
def _task_docs_alone() -> tuple[Docstring, ...]:
    """The task's docstrings without the rest of the library: parsing only the task packages' files gives the
    same list (only their docstrings can be task docstrings, and first occurrences keep their order) in a third
    of the time, which every step that only reads the task (decontamination, adapt, evaluate) saves where the
    cache file is not there yet."""
    if _stdlib_and_task_docs.cache_info().currsize or docstrings_cache_file().is_file():
        return _stdlib_and_task_docs()[1]
    return tuple(_task_docs(list(iter_stdlib_docstrings(MIN_WORDS, packages=TASK_LABELS))))


def default_task_examples() -> dict[str, list[dict]]:
    splits: dict[str, list[dict]] = {name: [] for name, _ in TASK_SPLITS}
    for doc in _task_docs_alone():
        splits[task_split(doc.text)].append(
            {"id": f"stdlib:{doc.id}", "text": doc.text, "label": doc.package, "kind": doc.kind}
        )
    return splits


def write_default_corpus(directory: str | Path) -> Path:
    """Write the default pretraining corpus as JSONL into `directory`; return the file."""
    path = Path(directory) / "python-stdlib-docstrings.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for record in default_corpus_records():
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
