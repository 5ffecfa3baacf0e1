"""Batches from token shards: random windows for training, consecutive windows for evaluation.

Each data-parallel rank draws from its own generator seeded by (seed, rank), so the stream is the same on
every rerun and resuming only needs the step number.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch


class RandomWindows:
    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, seed: int, rank: int = 0):
        if len(tokens) < seq_len + 2:
            raise ValueError(f"{len(tokens)} tokens cannot fill one window of {seq_len} + 1")
        self.tokens, self.seq_len, self.batch_size = tokens, seq_len, batch_size
        self.seed, self.rank = seed, rank
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + rank)

    def skip(self, batches: int) -> None:
        """Advance the stream as if `batches` batches had been drawn (used on resume)."""
        for _ in range(batches):
            self._starts()

    def _starts(self) -> torch.Tensor:
        return torch.randint(0, len(self.tokens) - self.seq_len - 1, (self.batch_size,), generator=self.generator)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.stack([self.tokens[s : s + self.seq_len + 1] for s in self._starts().tolist()]).astype(np.int64)
        batch = torch.from_numpy(rows)
        return batch[:, :-1], batch[:, 1:]


def consecutive_windows(
    tokens: np.ndarray, seq_len: int, batch_size: int, max_batches: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows from the start of `tokens`, for a deterministic held-out loss."""
    n_windows = (len(tokens) - 1) // seq_len
    for index, first in enumerate(range(0, n_windows, batch_size)):
        if max_batches is not None and index >= max_batches:
            return
        rows = [tokens[w * seq_len : w * seq_len + seq_len + 1] for w in range(first, min(first + batch_size, n_windows))]
        batch = torch.from_numpy(np.stack(rows).astype(np.int64))
        yield batch[:, :-1], batch[:, 1:]
