"""Downstream task data: labelled texts with fixed train/val/test splits, tokenized for a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from components.common.default_data import TASK_LABELS, default_task_examples, text_key
from components.common.fingerprint import sorted_digest, text_sha256


@dataclass
class TaskData:
    name: str
    labels: list[str]
    splits: dict[str, list[dict]]  # split -> [{"id", "text", "label"}]


def load_default_task() -> TaskData:
    """Which standard-library package a docstring documents (see components/common/default_data.py)."""
    task = TaskData("stdlib-package", list(TASK_LABELS), default_task_examples())
    check_splits(task)
    return task


def check_splits(task: TaskData) -> None:
    """Splits must not share an example id or a text, and every label must be known."""
    seen: dict[str, str] = {}
    for split, rows in task.splits.items():
        for row in rows:
            if row["label"] not in task.labels:
                raise ValueError(f"task {task.name}: {split} example {row['id']} has unknown label {row['label']!r}")
            for key in (f"id:{row['id']}", f"text:{text_sha256(text_key(row['text']))}"):
                if seen.setdefault(key, split) != split:
                    raise ValueError(f"task {task.name}: example {row['id']} is in both {seen[key]} and {split}")


def data_fingerprint(task: TaskData) -> str:
    """Order-free hash of the task: every example's split, id, label and text."""
    return sorted_digest(
        text_sha256(f"{split}\u0001{row['id']}\u0001{row['label']}\u0001{row['text']}")
        for split, rows in task.splits.items()
        for row in rows
    )


def overlap_with(task: TaskData, ids: set[str], texts: set[str]) -> list[str]:
    """Task example ids that also occur in another dataset (e.g. pretraining data), by id or by text (compared
    up to whitespace: `texts` holds text_key() forms)."""
    return sorted(
        row["id"] for rows in task.splits.values() for row in rows if row["id"] in ids or text_key(row["text"]) in texts
    )


def encode(
    examples: list[dict], labels: list[str], tokenizer: Tokenizer, seq_len: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens, lengths, label ids): texts cut to seq_len tokens and right-padded."""
    label_ids = {label: i for i, label in enumerate(labels)}
    encoded = [e.ids[:seq_len] for e in tokenizer.encode_batch([x["text"] for x in examples])]
    tokens = torch.full((len(encoded), seq_len), pad_id, dtype=torch.long)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    lengths = torch.tensor([max(1, len(ids)) for ids in encoded])
    targets = torch.tensor([label_ids[x["label"]] for x in examples])
    return tokens, lengths, targets
