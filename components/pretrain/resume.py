"""Training checkpoints with torch.distributed.checkpoint (DCP): every rank writes its own shards in parallel,
and a checkpoint saved by N ranks loads on M (DCP reshards). Layout:

    <checkpoint_dir>/step-00000100/   DCP files: model, optimizer, scheduler, trainer state (step, config)
    <checkpoint_dir>/step-00000100/rng-rank<r>.pt   each rank's RNG states
    <checkpoint_dir>/latest            name of the newest complete checkpoint (written last, atomically)

The data position is the step number (see data.py), so model + optimizer + scheduler + step + RNG is all a
restarted run needs to continue exactly where the checkpoint left off.

Checkpoints during training can be written in the background (`CheckpointWriter`, `dcp.async_save`): the
step waits only while the state is staged into host memory. A checkpoint becomes `latest` only once every rank
has written it; the loop checks after each step, so a crash loses at most `checkpoint_every` steps plus the
write still in flight (the next save waits for it).
"""

from __future__ import annotations

import os
import random
import shutil
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from components.common.errors import GreenfmError
from components.pretrain.distributed import Dist

LATEST = "latest"
# Changing any of these between a checkpoint and its resumption would silently train a different run.
MUST_MATCH = ("model_size", "seq_len", "seed", "global_batch")


def _rng_state(device: torch.device) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _state(model, optimizer, scheduler, step: int, run: dict) -> dict:
    model_state, optim_state = get_state_dict(model, optimizer)
    return {
        "model": model_state,
        "optim": optim_state,
        "scheduler": scheduler.state_dict(),
        "trainer": {"step": step, "run": dict(run)},
    }


class CheckpointWriter:
    """Saves the checkpoints of one training run; every rank makes one and calls `save` at the same steps."""

    def __init__(self, directory: str | Path, run: dict, d: Dist, keep: int = 2):
        self.directory, self.run, self.d, self.keep = Path(directory), dict(run), d, keep
        self.pending: tuple[Future, Path] | None = None
        # the background write's collectives run on their own (gloo) group, never interleaved with training's
        self.group = dist.new_group(backend="gloo") if d.world_size > 1 else None

    def save(self, step: int, model, optimizer, scheduler, background: bool = True) -> Path:
        """Collective. With `background`, returns once the state is staged; the files are written meanwhile."""
        self.wait()  # one write at a time: its files and the `latest` marker stay in order
        path = self.directory / f"step-{step:08d}"
        path.mkdir(parents=True, exist_ok=True)
        torch.save(_rng_state(self.d.device), path / f"rng-rank{self.d.rank}.pt")
        state = _state(model, optimizer, scheduler, step, self.run)
        no_dist = self.d.world_size == 1
        if background:
            saved = dcp.async_save(state, checkpoint_id=str(path), process_group=self.group, no_dist=no_dist)
            self.pending = (saved if isinstance(saved, Future) else saved.upload_completion, path)
        else:
            dcp.save(state, checkpoint_id=str(path), no_dist=no_dist)  # ends with a collective
            self._completed(path)
        return path

    def poll(self) -> None:
        """Publish the write in flight if it has finished; never waits."""
        if self.pending and self.pending[0].done():
            self.wait()

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk, then publish it."""
        if self.pending:
            future, path = self.pending
            self.pending = None
            future.result()  # re-raises a failed write
            self._completed(path)

    def _completed(self, path: Path) -> None:
        if not self.d.is_main:
            return
        tmp = self.directory / f".{LATEST}.tmp"
        tmp.write_text(path.name)
        os.replace(tmp, self.directory / LATEST)
        for old in sorted(self.directory.glob("step-*"))[: -self.keep] if self.keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)


def latest(directory: str | Path) -> Path | None:
    marker = Path(directory) / LATEST
    return Path(directory) / marker.read_text().strip() if marker.is_file() else None


def load_latest(directory: str | Path, model, optimizer, scheduler, run: dict, d: Dist) -> int:
    """Restore the newest checkpoint in place; return its step (0 when there is none)."""
    path = latest(directory)
    if path is None:
        return 0
    state = _state(model, optimizer, scheduler, 0, run)
    dcp.load(state, checkpoint_id=str(path), no_dist=d.world_size == 1)
    saved = state["trainer"]["run"]
    changed = [key for key in MUST_MATCH if saved.get(key) != run.get(key)]
    if changed:
        details = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, now {run.get(k)!r}" for k in changed)
        raise GreenfmError(f"{path}: cannot resume a different run ({details}); use another checkpoint_dir")
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    scheduler.load_state_dict(state["scheduler"])
    rng = path / f"rng-rank{d.rank}.pt"
    if rng.is_file():  # absent when resuming on more ranks than saved: those keep their seeded state
        _set_rng_state(torch.load(rng, weights_only=False), d.device)
    return int(state["trainer"]["step"])
