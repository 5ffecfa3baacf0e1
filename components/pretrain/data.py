"""Batches from token shards: seeded random windows for training, consecutive windows for evaluation.

Training draws one *global* batch per optimizer step: `batch_size × grad_accum × world_size` window starts from
a generator seeded by (seed, step). Rank r takes its own contiguous slice of those windows and splits it into
`grad_accum` micro-batches, reading only its rows from the memory-mapped shards. So:

- the data a step sees depends only on (seed, step) and the global batch size, not on how many ranks or
  accumulation steps share it: one process with batch 8 sees exactly what two ranks with batch 4 see;
- the data position is the step number, so resuming from a checkpoint needs nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class GlobalBatches:
    def __init__(
        self,
        tokens: np.ndarray,
        seq_len: int,
        batch_size: int,
        seed: int,
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ):
        if len(tokens) < seq_len + 2:
            raise ValueError(f"{len(tokens)} tokens cannot fill one window of {seq_len} + 1")
        self.tokens, self.seq_len, self.seed = tokens, seq_len, seed
        self.batch_size, self.grad_accum = batch_size, grad_accum
        self.rank, self.world_size = rank, world_size

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world_size

    def starts(self, step: int) -> torch.Tensor:
        """Window starts of step `step`'s whole global batch (identical on every rank)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return torch.randint(0, len(self.tokens) - self.seq_len - 1, (self.global_batch,), generator=generator)

    def micro_batches(self, step: int, device: torch.device | str = "cpu") -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's `grad_accum` (inputs, targets) pairs of step `step`, each `batch_size` rows, on `device`.

        The rank's rows travel as one contiguous block (pinned, copied without blocking, when `device` is a
        GPU) and are sliced there: one transfer per step, and no host wait for slices of pinned memory."""
        per_rank = self.batch_size * self.grad_accum
        mine = self.starts(step)[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()
        rows = np.stack([self.tokens[s : s + self.seq_len + 1] for s in mine]).astype(np.int64)
        block = torch.from_numpy(rows)
        if torch.device(device).type == "cuda":
            block = block.pin_memory().to(device, non_blocking=True)
        return [(b[:, :-1], b[:, 1:]) for b in block.split(self.batch_size)]


def consecutive_windows(
    tokens: np.ndarray, seq_len: int, batch_size: int, max_batches: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows from the start of `tokens`, for a deterministic held-out loss."""
    n_windows = (len(tokens) - 1) // seq_len
    for index, first in enumerate(range(0, n_windows, batch_size)):
        if max_batches is not None and index >= max_batches:
            return
        rows = [
            tokens[w * seq_len : w * seq_len + seq_len + 1] for w in range(first, min(first + batch_size, n_windows))
        ]
        batch = torch.from_numpy(np.stack(rows).astype(np.int64))
        yield batch[:, :-1], batch[:, 1:]
