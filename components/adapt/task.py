"""Downstream task data: labelled texts with fixed train/val/test splits, tokenized for a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from components.common.default_data import TASK_LABELS, default_task_examples


@dataclass
class TaskData:
    name: str
    labels: list[str]
    splits: dict[str, list[dict]]  # split -> [{"id", "text", "label"}]


def load_default_task() -> TaskData:
    """Which standard-library package a docstring documents (see components/common/default_data.py)."""
    return TaskData("stdlib-package", list(TASK_LABELS), default_task_examples())


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
