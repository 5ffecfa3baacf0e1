"""Contamination check: does evaluation text appear in the pretraining data?

Two tests against the curated documents the base model was trained on: exact matches (by id, or by text up to
whitespace) and word n-gram overlap (13-grams by default, the GPT-3 paper's choice: long enough that a shared
13-gram is almost never chance, short enough to catch a paraphrase that copies a sentence).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from components.adapt.task import TaskData, overlap_with
from components.common.contracts import DOCUMENTS_DIR
from components.common.default_data import text_key
from components.evaluate.metrics import ngram_overlap, word_ngrams

NGRAM = 13


def pretraining_documents(curated_dir: str | Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of the curated documents."""
    folder = Path(curated_dir) / DOCUMENTS_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no curated documents (expected the curation stage's Parquet folder)")
    table = pq.read_table(folder, columns=["id", "text"])
    return table.column("id").to_pylist(), table.column("text").to_pylist()


def contamination_report(
    task: TaskData, curated_dir: str | Path, splits: tuple[str, ...] = ("val", "test"), n: int = NGRAM
) -> dict:
    ids, texts = pretraining_documents(curated_dir)
    reference: set[tuple[str, ...]] = set()
    for text in texts:
        reference |= word_ngrams(text, n)
    exact = overlap_with(
        TaskData(task.name, task.labels, {s: task.splits[s] for s in splits}), set(ids), {text_key(t) for t in texts}
    )
    return {
        "pretraining_documents": len(ids),
        "exact_matches": exact,
        "splits": {split: ngram_overlap([row["text"] for row in task.splits[split]], reference, n) for split in splits},
    }
