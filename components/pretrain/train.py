"""The training loop: fused AdamW, warmup + cosine schedule, gradient accumulation and clipping, bf16 autocast
and torch.compile on GPU, DDP or FSDP2 across the processes torchrun started (NCCL on GPU, gloo on CPU),
DCP checkpoints every N steps with exact resumption, and a report (JSON + Markdown) with tokens, FLOPs, MFU.

The step loop never waits for the GPU: losses accumulate on the device and are read only every `log_every`
steps, each step's batch travels as one pinned block copied without blocking, checkpoints are written in the
background. Attention runs on the fastest SDPA kernel the GPU offers (cuDNN first on Hopper; the report names
it). Throughput and MFU leave out the first `timing_warmup_steps` steps (compilation, allocator warm-up), and
the final evaluation runs eagerly, so it triggers no recompilation.

Launch under torchrun with `python -m torch.distributed.run ... --module components.pretrain.train
--tokens DIR --model-dir DIR --config '{"model_size": ...}'`; components.pretrain.launch does that for you.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from components.common.contracts import (
    HF_DIR,
    PARENT_SHA256,
    TRAIN_REPORT_JSON,
    TRAIN_REPORT_MD,
    ModelDir,
    load_index,
    read_split,
)
from components.common.fingerprint import file_sha256
from components.common.model_store import resolve
from components.pretrain import resume
from components.pretrain.attention import attention_backend, preferred_attention
from components.pretrain.checkpoint import load_model, save_model
from components.pretrain.config import TrainConfig, TrainResult
from components.pretrain.data import GlobalBatches, consecutive_windows
from components.pretrain.distributed import Dist, gradient_sync, mean_across_ranks, setup, teardown, wrap
from components.pretrain.hf_export import export_llama
from components.pretrain.mfu import mfu, peak_flops
from components.pretrain.model import Transformer, flops_per_token, model_config
from components.pretrain.node_energy import measure_node

FLOPS_FORMULA = (
    "6·N_matmul + 12·L·d·T per token (N_matmul: the weights of every linear layer, the d×V output projection "
    "included even when tied to the embedding table; 12·L·d·T: attention scores and weighted sum, causal mask "
    "not discounted)"
)


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (1 + math.cos(math.pi * min(1.0, progress))) * (cfg.lr - floor)


def autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


@torch.no_grad()
def allow_tf32() -> None:
    """fp32 matmuls and convolutions on CUDA use TF32 tensor cores (what is left in fp32 under bf16 autocast)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def mean_loss(
    model: torch.nn.Module, tokens, seq_len: int, batch_size: int, max_batches: int, device: torch.device
) -> float:
    """Mean next-token cross-entropy over consecutive held-out windows. Runs eagerly (a compiled model would
    recompile for the evaluation's shapes and grad mode) and without autograd."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.compiler.set_stance("force_eager"):
        for x, y in consecutive_windows(tokens, seq_len, batch_size, max_batches):
            with autocast(device):
                loss = model(x.to(device), y.to(device))
            total += loss.item() * x.numel()
            count += x.numel()
    model.train(was_training)
    return total / max(count, 1)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW, fused into one kernel on CUDA and multi-tensor (foreach) elsewhere, which torch only picks by
    itself on CUDA: on CPU it is bit-identical to the per-parameter loop and faster; no weight decay on norms
    (1-D parameters)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cuda = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, fused=cuda, foreach=not cuda)


def train_step(
    step_model: torch.nn.Module,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    micro_batches: list[tuple[torch.Tensor, torch.Tensor]],
    grad_clip: float,
    device: torch.device,
    loss_sum: torch.Tensor,
) -> torch.Tensor:
    """One optimizer step over a rank's micro-batches; adds their losses to `loss_sum` (on the device) and
    returns the gradient norm before clipping, as a tensor: nothing here waits for the GPU."""
    accum = len(micro_batches)
    for i, (x, y) in enumerate(micro_batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with gradient_sync(step_model, sync=i == accum - 1):
            with autocast(device):
                loss = step_model(x, y)
            (loss / accum).backward()
        loss_sum += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    return grad_norm


def run_identity(cfg: TrainConfig, world_size: int) -> dict:
    """What a checkpoint must agree with to be resumed by this run."""
    return {
        "model_size": cfg.model_size,
        "seq_len": cfg.seq_len,
        "seed": cfg.seed,
        "global_batch": cfg.batch_size * cfg.grad_accum * world_size,
    }


@dataclass
class _Run:
    """What the loop works with, set up once per launch."""

    cfg: TrainConfig
    d: Dist
    model: Transformer
    step_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    batches: GlobalBatches
    checkpoints: resume.CheckpointWriter
    checkpoint_dir: Path
    start: int
    val_tokens: object
    index: dict
    warm_start: str
    parent_sha256: str | None  # the weights warm start loaded, for lineage
    compiled: bool
    async_checkpoints: bool
    attention: str


@dataclass
class _Timing:
    """Wall time of the steps that count for throughput (after `timing_warmup_steps`) and of the ones before."""

    history: list[dict] = field(default_factory=list)
    warmup_seconds: float = 0.0
    timed_seconds: float = 0.0
    timed_steps: int = 0


def _set_up(tokens_dir: str | Path, model_dir: str | Path, cfg: TrainConfig) -> _Run:
    d = setup(cfg.device)
    cuda = d.device.type == "cuda"
    if cuda:
        allow_tf32()
    else:
        torch.use_deterministic_algorithms(True)  # bitwise-reproducible checkpoints on CPU
    torch.manual_seed(cfg.seed)

    index = load_index(tokens_dir)
    train_tokens, val_tokens = read_split(tokens_dir, "train"), read_split(tokens_dir, "val")
    model = Transformer(model_config(cfg.model_size, vocab_size=index["vocab_size"], seq_len=cfg.seq_len)).to(d.device)
    warm_start, parent_sha256 = _warm_start(model, cfg.init_from)
    compiled = cfg.compile if cfg.compile is not None else cuda
    step_model = wrap(model, cfg.parallelism, d, compiled)
    optimizer = build_optimizer(model, cfg, d.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, cfg) / cfg.lr)
    checkpoint_dir = Path(cfg.checkpoint_dir or Path(model_dir) / "checkpoints")
    identity = run_identity(cfg, d.world_size)
    start = resume.load_latest(checkpoint_dir, model, optimizer, scheduler, identity, d)
    batches = GlobalBatches(train_tokens, cfg.seq_len, cfg.batch_size, cfg.seed, cfg.grad_accum, d.rank, d.world_size)
    mc = model.cfg
    attention = attention_backend(
        mc.n_heads, mc.n_kv_heads, cfg.seq_len, mc.head_dim, d.device, torch.bfloat16 if cuda else torch.float32
    )
    return _Run(
        cfg=cfg,
        d=d,
        model=model,
        step_model=step_model,
        optimizer=optimizer,
        scheduler=scheduler,
        batches=batches,
        checkpoints=resume.CheckpointWriter(checkpoint_dir, identity, d, cfg.keep_checkpoints),
        checkpoint_dir=checkpoint_dir,
        start=start,
        val_tokens=val_tokens,
        index=index,
        warm_start=warm_start,
        parent_sha256=parent_sha256,
        compiled=compiled,
        async_checkpoints=cfg.async_checkpoints if cfg.async_checkpoints is not None else cuda,
        attention=attention,
    )


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _loop(run: _Run, on_log: Callable[[dict], None] | None) -> _Timing:
    """The optimizer steps from `run.start` to `cfg.steps`, with periodic logs and background checkpoints."""
    cfg, d = run.cfg, run.d
    timing = _Timing()
    tokens_per_step = run.batches.global_batch * cfg.seq_len
    flops_token, peak = flops_per_token(run.model), peak_flops(d.device)
    loss_sum = torch.zeros((), device=d.device)
    warmup_end = min(cfg.steps, run.start + cfg.timing_warmup_steps)
    window_steps = 0
    started = window_start = timed_from = time.perf_counter()
    upcoming = run.batches.micro_batches(run.start, d.device) if run.start < cfg.steps else []
    with preferred_attention():
        for step in range(run.start, cfg.steps):
            grad_norm = train_step(
                run.step_model, run.model, run.optimizer, run.scheduler, upcoming, cfg.grad_clip, d.device, loss_sum
            )
            done, window_steps = step + 1, window_steps + 1
            if done < cfg.steps:  # the host builds the next batch while the device works through this step
                upcoming = run.batches.micro_batches(done, d.device)
            if done == warmup_end and warmup_end < cfg.steps:  # the timed steps start after this one
                _synchronize(d.device)
                timed_from = time.perf_counter()
                timing.warmup_seconds = timed_from - started
            run.checkpoints.poll()
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
                run.checkpoints.save(done, run.model, run.optimizer, run.scheduler, background=run.async_checkpoints)
            if done % cfg.log_every == 0 or done == cfg.steps:
                mean = mean_across_ranks(loss_sum / (window_steps * cfg.grad_accum), d).item()  # waits for the device
                if hasattr(grad_norm, "full_tensor"):  # FSDP: a DTensor
                    grad_norm = grad_norm.full_tensor()
                now = time.perf_counter()
                tps = window_steps * tokens_per_step / (now - window_start)
                utilization = mfu(tps, flops_token, peak, d.world_size)
                entry = {
                    "step": done,
                    "loss": round(mean, 4),
                    "lr": lr_at(step, cfg),
                    "grad_norm": round(float(grad_norm), 4),
                    "tokens_per_second": round(tps, 1),
                    "mfu": None if utilization is None else round(utilization, 4),
                }
                timing.history.append(entry)
                if on_log and d.is_main:
                    on_log(entry)
                loss_sum.zero_()
                window_start, window_steps = time.perf_counter(), 0
    _synchronize(d.device)
    ended = time.perf_counter()
    timed_steps = cfg.steps - warmup_end if warmup_end < cfg.steps else cfg.steps - run.start
    timing.timed_steps = timed_steps
    timing.timed_seconds = ended - (timed_from if warmup_end < cfg.steps else started)
    return timing


def _report(run: _Run, timing: _Timing, val_loss: float) -> dict:
    cfg, d, model = run.cfg, run.d, run.model
    tokens_per_step = run.batches.global_batch * cfg.seq_len
    flops_token, peak = flops_per_token(model), peak_flops(d.device)
    trained_tokens = tokens_per_step * (cfg.steps - run.start)
    timed_tokens = tokens_per_step * timing.timed_steps
    tps = timed_tokens / timing.timed_seconds if timed_tokens and timing.timed_seconds > 0 else 0.0
    overall_mfu = mfu(tps, flops_token, peak, d.world_size)
    return {
        "config": asdict(cfg),
        "model": model.cfg.to_dict(),
        "parameters": model.num_params(),
        "flops_per_token": flops_token,
        "flops_formula": FLOPS_FORMULA,
        "world_size": d.world_size,
        "parallelism": cfg.parallelism if d.world_size > 1 else "none",
        "global_batch_sequences": run.batches.global_batch,
        "tokens_per_step": tokens_per_step,
        "device": torch.cuda.get_device_name(d.device) if d.device.type == "cuda" else "cpu",
        "peak_flops_per_device": peak,
        "compiled": run.compiled,
        "attention_backend": run.attention,
        "torch": torch.__version__,
        "tokens": tokens_per_step * cfg.steps,
        "total_flops": float(flops_token * tokens_per_step * cfg.steps),
        "resumed_from_step": run.start,
        "tokens_this_launch": trained_tokens,
        "seconds": round(timing.warmup_seconds + timing.timed_seconds, 3),
        "warmup_seconds": round(timing.warmup_seconds, 3),
        "timed_steps": timing.timed_steps,
        "tokens_per_second": round(tps, 1),
        "mfu": None if overall_mfu is None else round(overall_mfu, 4),
        "train_loss": timing.history[-1]["loss"] if timing.history else None,
        "val_loss": round(val_loss, 4),
        "val_perplexity": round(math.exp(val_loss), 3),
        "history": timing.history,
        "warm_start": run.warm_start,
        PARENT_SHA256: run.parent_sha256,
        "checkpoint_dir": str(run.checkpoint_dir),
    }


def _export(run: _Run, weights: dict, tokens_dir: str | Path, model_dir: str | Path, report: dict) -> None:
    """Rank 0: the model directory (weights, config, tokenizer), its Hugging Face twin and the report."""
    export = Transformer(run.model.cfg)
    export.load_state_dict(weights)
    tokenizer = Path(tokens_dir) / run.index["tokenizer"]
    report["checkpoint_sha256"] = save_model(export, model_dir, tokenizer, {"training": report["config"]})
    export_llama(export, tokenizer, Path(model_dir) / HF_DIR)
    write_report(Path(model_dir), report)


def train(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> TrainResult:
    cfg = cfg or TrainConfig()
    run = _set_up(tokens_dir, model_dir, cfg)
    timing = _loop(run, on_log)
    if run.start < cfg.steps or resume.latest(run.checkpoint_dir) is None:
        run.checkpoints.save(cfg.steps, run.model, run.optimizer, run.scheduler, background=False)
    else:
        run.checkpoints.wait()
    d = run.d
    # every rank evaluates the same windows, as many as one process with the whole batch would
    val_loss = mean_loss(
        run.model, run.val_tokens, cfg.seq_len, cfg.batch_size * d.world_size, cfg.eval_batches, d.device
    )
    weights = _full_state_dict(run.model, cfg.parallelism, d)
    report = _report(run, timing, val_loss)
    if d.is_main:
        _export(run, weights, tokens_dir, model_dir, report)
    teardown(d)
    return TrainResult.from_report(model_dir, report)


def _full_state_dict(model: Transformer, parallelism: str, d: Dist) -> dict:
    """Unsharded CPU weights on rank 0 (under FSDP every rank takes part in gathering them); {} elsewhere."""
    if d.world_size > 1 and parallelism == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not d.is_main:  # only rank 0 exports
        return {}
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _warm_start(model: Transformer, model_dir: str) -> tuple[str, str | None]:
    """Copy weights from a previous run's model when the shapes match; return what happened, for the report,
    and the sha256 of the weights loaded (None when none were).

    A retrained tokenizer can change the vocabulary size; then the old weights do not fit and training starts
    from random weights rather than failing the retraining run.
    """
    if not model_dir:
        return "none", None
    resolved = resolve(model_dir)
    if resolved is None:
        return f"none: model store {model_dir} is empty", None
    model_dir = str(resolved)
    previous = load_model(model_dir)
    if previous.cfg.to_dict() != model.cfg.to_dict():
        return f"skipped: {model_dir} has a different model config", None
    model.load_state_dict(previous.state_dict())
    return f"loaded from {model_dir}", file_sha256(ModelDir(Path(model_dir)).weights)


def write_report(model_dir: Path, report: dict) -> None:
    (model_dir / TRAIN_REPORT_JSON).write_text(json.dumps(report, indent=2))
    mfu_text = "n/a (no peak for this device)" if report["mfu"] is None else f"{100 * report['mfu']:.1f}%"
    lines = [
        "# Pretraining report",
        "",
        f"- Model: {report['parameters']:,} parameters ({report['model']['n_layers']} layers, "
        f"width {report['model']['dim']}, context {report['model']['seq_len']})",
        f"- Device: {report['device']} × {report['world_size']} ({report['parallelism']}); torch {report['torch']}; "
        f"compiled: {report['compiled']}",
        f"- Global batch: {report['global_batch_sequences']} sequences = {report['tokens_per_step']:,} tokens per step",
        f"- Tokens: {report['tokens']:,}; total {report['total_flops']:.3e} FLOPs "
        f"({report['flops_per_token']:,} per token: {report['flops_formula']})",
        f"- Throughput: {report['tokens_per_second']:,.0f} tokens/s; MFU {mfu_text}",
        f"- Loss: train {report['train_loss']}, validation {report['val_loss']} "
        f"(perplexity {report['val_perplexity']})",
        f"- Resumed from step: {report['resumed_from_step']}; warm start: {report['warm_start']}",
        "",
        "| step | loss | grad norm | tokens/s | MFU |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for h in report["history"]:
        mfu_cell = "n/a" if h["mfu"] is None else f"{100 * h['mfu']:.1f}%"
        lines.append(f"| {h['step']} | {h['loss']} | {h['grad_norm']} | {h['tokens_per_second']:,.0f} | {mfu_cell} |")
    (model_dir / TRAIN_REPORT_MD).write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point of every torchrun worker (local launch and PyTorchJob replicas)."""
    parser = argparse.ArgumentParser(description="greenfm pretraining worker (run under torchrun)")
    parser.add_argument("--tokens", required=True, help="token shards folder (index.json)")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--config", default="{}", help="TrainConfig fields as JSON")
    parser.add_argument("--energy-location", default="", help="Location JSON: measure this node's energy there")
    args = parser.parse_args(argv)

    def work() -> TrainResult:
        return train(
            args.tokens,
            args.model_dir,
            TrainConfig(**json.loads(args.config)),
            on_log=lambda entry: print(json.dumps(entry), flush=True),
        )

    if args.energy_location and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        measure_node(args.model_dir, args.energy_location, work)
    else:
        work()


if __name__ == "__main__":
    main()
