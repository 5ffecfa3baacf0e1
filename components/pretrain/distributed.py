"""Process group and data-parallel wrapping: DDP or FSDP2 (`fully_shard`), NCCL on GPU, gloo on CPU.

torchrun (locally or inside a PyTorchJob) sets RANK, LOCAL_RANK and WORLD_SIZE; without them this is one
process and nothing is wrapped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:
    from components.pretrain.model import Transformer

PARALLELISMS = ("ddp", "fsdp")


@dataclass(frozen=True)
class Dist:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Dist:
    """Pick the device and, when torchrun started several processes, join the process group."""
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            dist.init_process_group("nccl", device_id=dev)  # eager NCCL init: communicator errors surface here
        else:
            dist.init_process_group("gloo")
    return Dist(rank, local_rank, world, dev)


def teardown(d: Dist) -> None:
    if d.world_size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap(model: Transformer, parallelism: str, d: Dist, compile_model: bool) -> nn.Module:
    """The module the training step calls. `model` itself stays the handle for state dicts.

    FSDP2 shards every block, then the root (embedding, final norm, tied output), as torchtitan does;
    compiling per block keeps graphs small and lets FSDP overlap its all-gathers with compute.
    One process compiles the model in place; DDP is compiled around the wrapper (dynamo's DDPOptimizer splits
    the graph at gradient-bucket boundaries so communication overlaps the backward pass).
    """
    if parallelism not in PARALLELISMS:
        raise ValueError(f"parallelism {parallelism!r}: expected one of {', '.join(PARALLELISMS)}")
    if d.world_size == 1 and not dist.is_initialized():  # one process, no group: nothing to synchronize
        if compile_model:
            model.compile()  # in place: parameter names (and so checkpoints) stay the same
        return model
    if parallelism == "ddp":
        ddp = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[d.device.index] if d.device.type == "cuda" else None,
            # the only buffers (RoPE tables) are computed, identical on every rank (torch ≥ 2.13 prefers
            # forward_sync_buffers=False, which older releases lack; this flag works on both)
            broadcast_buffers=False,
            gradient_as_bucket_view=True,  # gradients live in the all-reduce buckets: no copy in or out
            static_graph=True,  # the same parameters are used every step: DDP can skip the unused-param search
        )
        # compiling DDP itself lets dynamo split the graph at gradient buckets, so all-reduces overlap backward
        return cast(nn.Module, torch.compile(ddp)) if compile_model else ddp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(d.device.type, (d.world_size,))
    # bf16 compute with fp32 gradient reduction on GPU; plain fp32 on CPU.
    mp = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if d.device.type == "cuda"
        else MixedPrecisionPolicy()
    )
    for index, block in enumerate(model.layers):
        if compile_model:
            block.compile()
        # the last block's parameters are needed again at once for backward: keep them gathered
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=index < len(model.layers) - 1)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model


@contextmanager
def gradient_sync(step_model: nn.Module, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce / reduce-scatter on all but the last micro-batch of an accumulation."""
    ddp = getattr(step_model, "_orig_mod", step_model)  # under torch.compile
    if isinstance(ddp, nn.parallel.DistributedDataParallel) and not sync:
        with ddp.no_sync():
            yield
        return
    if hasattr(step_model, "set_requires_gradient_sync"):  # FSDP2
        cast(Any, step_model).set_requires_gradient_sync(sync)
    yield


def mean_across_ranks(value: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world_size > 1:
        value = value.detach().clone()
        dist.all_reduce(value)  # SUM: gloo has no AVG
        value /= d.world_size
    return value
