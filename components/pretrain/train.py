"""The training loop: AdamW, warmup + cosine schedule, gradient accumulation and clipping, bf16 autocast and
torch.compile on GPU, data parallel when launched by torchrun (NCCL on GPU, gloo on CPU)."""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from components.common.model_store import resolve
from components.curate.shards import load_index, read_split
from components.pretrain.checkpoint import load_model, save_model
from components.pretrain.data import RandomWindows, consecutive_windows
from components.pretrain.model import Transformer, flops_per_token, model_config

# Dense bf16 peak per GPU, for MFU. Unknown GPUs report no MFU rather than a guessed one.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10G": 70e12}


@dataclass
class TrainConfig:
    model_size: str = "small"
    seq_len: int = 128
    batch_size: int = 16  # sequences per rank per micro-step
    grad_accum: int = 1
    steps: int = 300
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    eval_batches: int = 20
    log_every: int = 10
    device: str = "auto"  # auto | cpu | cuda
    compile: bool | None = None  # None: compile on CUDA only
    init_from: str = ""  # a model directory to warm-start from (retraining on changed data); empty: random init


@dataclass
class TrainResult:
    model_dir: str
    train_loss: float
    val_loss: float
    tokens: int
    tokens_per_second: float
    total_flops: float
    checkpoint_sha256: str
    report: dict


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (1 + math.cos(math.pi * min(1.0, progress))) * (cfg.lr - floor)


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


@torch.no_grad()
def mean_loss(
    model: torch.nn.Module, tokens, seq_len: int, batch_size: int, max_batches: int, device: torch.device
) -> float:
    """Mean next-token cross-entropy over consecutive held-out windows."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in consecutive_windows(tokens, seq_len, batch_size, max_batches):
        with _autocast(device):
            _, loss = model(x.to(device), y.to(device))
        total += loss.item() * x.numel()
        count += x.numel()
    model.train(was_training)
    return total / max(count, 1)


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")


def _distributed() -> tuple[int, int, int]:
    """(rank, local_rank, world_size); joins the process group when torchrun started several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def train(
    tokens_dir: str | Path,
    model_dir: str | Path,
    cfg: TrainConfig | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> TrainResult:
    cfg = cfg or TrainConfig()
    rank, local_rank, world = _distributed()
    if cfg.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        torch.use_deterministic_algorithms(True)  # bitwise-reproducible checkpoints on CPU
    torch.manual_seed(cfg.seed)

    index = load_index(tokens_dir)
    train_tokens, val_tokens = read_split(tokens_dir, "train"), read_split(tokens_dir, "val")
    model = Transformer(model_config(cfg.model_size, vocab_size=index["vocab_size"], seq_len=cfg.seq_len)).to(device)
    warm_start = _warm_start(model, cfg.init_from)
    optimizer = _optimizer(model, cfg, device)
    compiled = cfg.compile if cfg.compile is not None else device.type == "cuda"
    step_model = torch.compile(model) if compiled else model
    if world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    batches = RandomWindows(train_tokens, cfg.seq_len, cfg.batch_size, cfg.seed, rank)

    tokens_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum * world
    flops_token = flops_per_token(model)
    peak = peak_flops(device)
    history: list[dict] = []
    started = time.perf_counter()
    window_start, window_tokens = started, 0
    for step in range(cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        step_loss = 0.0
        for micro in range(cfg.grad_accum):
            x, y = (t.to(device, non_blocking=True) for t in batches.next())
            sync = world == 1 or micro == cfg.grad_accum - 1
            context = nullcontext() if sync else step_model.no_sync()
            with context, _autocast(device):
                _, loss = step_model(x, y)
                (loss / cfg.grad_accum).backward()
            step_loss += loss.item() / cfg.grad_accum
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip).item()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window_tokens += tokens_per_step
        if (step + 1) % cfg.log_every == 0 or step == cfg.steps - 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            tps = window_tokens / (now - window_start)
            entry = {
                "step": step + 1,
                "loss": round(step_loss, 4),
                "lr": lr_at(step, cfg),
                "grad_norm": round(grad_norm, 4),
                "tokens_per_second": round(tps, 1),
                "mfu": None if peak is None else round(tps * flops_token / (peak * world), 4),
            }
            history.append(entry)
            if on_log and rank == 0:
                on_log(entry)
            window_start, window_tokens = now, 0
    elapsed = time.perf_counter() - started
    total_tokens = tokens_per_step * cfg.steps
    val_loss = mean_loss(model, val_tokens, cfg.seq_len, cfg.batch_size, cfg.eval_batches, device)

    sha = ""
    report = {
        "config": asdict(cfg),
        "model": model.cfg.to_dict(),
        "parameters": model.num_params(),
        "flops_per_token": flops_token,
        "flops_formula": "6·N_matmul + 12·L·d·T per token (N_matmul: all weights but the embedding table, "
        "plus the tied d×V output projection)",
        "world_size": world,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "tokens": total_tokens,
        "total_flops": float(flops_token * total_tokens),
        "seconds": round(elapsed, 3),
        "tokens_per_second": round(total_tokens / elapsed, 1),
        "train_loss": history[-1]["loss"],
        "val_loss": round(val_loss, 4),
        "val_perplexity": round(math.exp(val_loss), 3),
        "history": history,
        "warm_start": warm_start,
    }
    if rank == 0:
        sha = save_model(model, model_dir, Path(tokens_dir) / index["tokenizer"], {"training": report["config"]})
        report["checkpoint_sha256"] = sha
        _write_report(Path(model_dir), report)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(
        model_dir=str(model_dir),
        train_loss=report["train_loss"],
        val_loss=report["val_loss"],
        tokens=total_tokens,
        tokens_per_second=report["tokens_per_second"],
        total_flops=report["total_flops"],
        checkpoint_sha256=sha,
        report=report,
    )


def _warm_start(model: Transformer, model_dir: str) -> str:
    """Copy weights from a previous run's model when the shapes match; say what happened, for the report.

    A retrained tokenizer can change the vocabulary size; then the old weights do not fit and training starts
    from random weights rather than failing the retraining run.
    """
    if not model_dir:
        return "none"
    resolved = resolve(model_dir)
    if resolved is None:
        return f"none: model store {model_dir} is empty"
    model_dir = str(resolved)
    previous = load_model(model_dir)
    if previous.cfg.to_dict() != model.cfg.to_dict():
        return f"skipped: {model_dir} has a different model config"
    model.load_state_dict(previous.state_dict())
    return f"loaded from {model_dir}"


def _write_report(model_dir: Path, report: dict) -> None:
    (model_dir / "train_report.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# Pretraining report",
        "",
        f"- Model: {report['parameters']:,} parameters ({report['model']['n_layers']} layers, "
        f"width {report['model']['dim']}, context {report['model']['seq_len']})",
        f"- Device: {report['device']} × {report['world_size']}; torch {report['torch']}",
        f"- Tokens: {report['tokens']:,}; {report['tokens_per_second']:,.0f} tokens/s; "
        f"{report['total_flops']:.3e} FLOPs ({report['flops_formula']})",
        f"- Loss: train {report['train_loss']}, validation {report['val_loss']} "
        f"(perplexity {report['val_perplexity']})",
        f"- Warm start: {report['warm_start']}",
        "",
        "| step | loss | tokens/s | MFU |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for h in report["history"]:
        mfu = "n/a" if h["mfu"] is None else f"{100 * h['mfu']:.1f}%"
        lines.append(f"| {h['step']} | {h['loss']} | {h['tokens_per_second']:,.0f} | {mfu} |")
    (model_dir / "train_report.md").write_text("\n".join(lines) + "\n")
