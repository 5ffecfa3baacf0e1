"""Pretraining throughput: tokens/s and MFU of the training step, plus a collective check.

    python benchmarks/pretrain.py            # the GPU it finds: the GPT-2 124M shape (12 layers, 768 wide,
                                             # seq 1024, vocab 50304), bf16, torch.compile, fused AdamW
    python benchmarks/pretrain.py --smoke    # a tiny shape on CPU, to check the script itself

It times `components.pretrain.train.train_step` (the same step the trainer runs: autocast, accumulation,
clipping, fused AdamW, schedule) on random tokens copied from pinned host memory each step, without any host
synchronization between the timed steps, for each batch size (out-of-memory sizes are recorded and skipped),
and keeps the best. MFU uses components.pretrain.mfu (6·N_matmul + 12·L·d·T FLOPs per token over the GPU's
dense bf16 peak). The collective check initializes NCCL (gloo on CPU) across every GPU (two processes on CPU)
and verifies an all_reduce, reporting its bus bandwidth.

Writes benchmarks/results/pretrain-<device>.json and .md. Reference: nanoGPT's GPT-2 124M on one H100,
~477k tokens/s; the goal here is ≥ 1.25× that.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import socket
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.pretrain.mfu import mfu, peak_flops  # noqa: E402
from components.pretrain.model import Transformer, flops_per_token, model_config  # noqa: E402
from components.pretrain.train import TrainConfig, allow_tf32, build_optimizer, train_step  # noqa: E402

NANOGPT_TOKENS_PER_SECOND = 477_000  # GPT-2 124M, one H100, torch.compile, bf16, batch 32
GOAL = 1.25 * NANOGPT_TOKENS_PER_SECOND
SMOKE_SHAPE = dict(n_layers=2, n_heads=2, n_kv_heads=2, dim=64, seq_len=64, vocab_size=512)


def measure(shape: dict, batch: int, steps: int, warmup: int, device: torch.device, compile_mode: str | None) -> dict:
    """Time `steps` optimizer steps of one batch size after `warmup` (compilation) steps."""
    torch.manual_seed(0)
    model = Transformer(model_config("gpt2-124m", **shape)).to(device)
    if compile_mode:
        model.compile(mode=None if compile_mode == "default" else compile_mode)
    optimizer = build_optimizer(model, TrainConfig(lr=6e-4), device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    cfg = model.cfg
    host = torch.randint(0, cfg.vocab_size, (warmup + steps, batch, cfg.seq_len + 1))
    if device.type == "cuda":
        host = host.pin_memory()
    loss_sum = torch.zeros((), device=device)

    def step(i: int) -> None:
        rows = host[i]
        train_step(model, model, optimizer, scheduler, [(rows[:, :-1], rows[:, 1:])], 1.0, device, loss_sum)

    for i in range(warmup):
        step(i)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    final_loss = (loss_sum / (warmup + steps)).item()  # the one host synchronization
    _sync(device)
    seconds = time.perf_counter() - started
    tokens_per_second = batch * cfg.seq_len * steps / seconds
    flops = flops_per_token(model)
    utilization = mfu(tokens_per_second, flops, peak_flops(device), 1)
    result = {
        "batch_size": batch,
        "tokens_per_step": batch * cfg.seq_len,
        "ms_per_step": round(1000 * seconds / steps, 2),
        "tokens_per_second": round(tokens_per_second, 1),
        "mfu": None if utilization is None else round(utilization, 4),
        "mean_loss": round(final_loss, 4),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _collective_worker(rank: int, world: int, port: int, numel: int, queue) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    started = time.perf_counter()
    if cuda:
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=rank, world_size=world, device_id=device)
    else:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    tensor = torch.full((numel,), float(rank + 1), device=device)
    dist.all_reduce(tensor)  # the first collective creates the communicators
    _sync(device)
    init_seconds = time.perf_counter() - started
    ok = bool(torch.all(tensor == world * (world + 1) / 2).item())
    iterations = 5
    started = time.perf_counter()
    for _ in range(iterations):
        dist.all_reduce(tensor)
    _sync(device)
    seconds = (time.perf_counter() - started) / iterations
    if rank == 0:
        size = numel * tensor.element_size()
        queue.put(
            {
                "backend": dist.get_backend(),
                "world_size": world,
                "all_reduce_correct": ok,
                "init_and_first_all_reduce_s": round(init_seconds, 3),
                "bytes": size,
                "all_reduce_ms": round(1000 * seconds, 3),
                # NCCL-tests convention: bus bandwidth = algorithm bandwidth × 2(n−1)/n
                "bus_bandwidth_gb_s": round(size / seconds * 2 * (world - 1) / world / 1e9, 2) if world > 1 else None,
            }
        )
    dist.destroy_process_group()


def collective_check(numel: int) -> dict:
    """Initialize the process group across every GPU (2 CPU processes without one) and all_reduce."""
    import torch.multiprocessing as mp

    world = torch.cuda.device_count() if torch.cuda.is_available() else 2
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = _free_port()
    processes = [context.Process(target=_collective_worker, args=(r, world, port, numel, queue)) for r in range(world)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=300)
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed or queue.empty():
        return {"world_size": world, "all_reduce_correct": False, "error": f"worker exit codes {failed}"}
    return queue.get()


def run(args: argparse.Namespace) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if device.type == "cuda":
        allow_tf32()  # as the trainer does
    shape = SMOKE_SHAPE if args.smoke else {}
    compile_modes = [None] if args.smoke or args.no_compile else args.compile_modes.split(",")
    runs = []
    for mode in compile_modes:
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            try:
                result = measure(shape, batch, args.steps, args.warmup, device, mode)
            except torch.OutOfMemoryError:
                result = {"batch_size": batch, "error": "out of memory"}
            result["compile_mode"] = mode or "eager"
            runs.append(result)
            print(json.dumps(result), flush=True)
            gc.collect()  # the failed size's model and optimizer must go before the next size starts
            if device.type == "cuda":
                torch.cuda.empty_cache()
    measured = [r for r in runs if "tokens_per_second" in r]
    best = max(measured, key=lambda r: r["tokens_per_second"]) if measured else None
    probe = Transformer(model_config("gpt2-124m", **shape))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "device": name,
        "device_count": torch.cuda.device_count() if device.type == "cuda" else 0,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if device.type == "cuda" else None,
        "smoke": args.smoke,
        "model": asdict(probe.cfg),
        "parameters": probe.num_params(),
        "flops_per_token": flops_per_token(probe),
        "flops_formula": "6·N_matmul + 12·L·d·T",
        "peak_flops_per_device": peak_flops(device),
        "precision": "bf16 autocast, fp32 master weights" if device.type == "cuda" else "fp32",
        "optimizer": "AdamW (fused)" if device.type == "cuda" else "AdamW",
        "steps_timed": args.steps,
        "warmup_steps": args.warmup,
        "runs": runs,
        "best": best,
        "nanogpt_reference_tokens_per_second": NANOGPT_TOKENS_PER_SECOND,
        "goal_tokens_per_second": GOAL,
        "meets_goal": bool(best and not args.smoke and best["tokens_per_second"] >= GOAL),
        "collective": collective_check(args.collective_numel if not args.smoke else 1 << 16),
    }


def write(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", result["device"].lower()).strip("-") + ("-smoke" if result["smoke"] else "")
    json_path, md_path = out_dir / f"pretrain-{slug}.json", out_dir / f"pretrain-{slug}.md"
    json_path.write_text(json.dumps(result, indent=2))
    best, coll, model = result["best"], result["collective"], result["model"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = [
        f"# Pretraining throughput: {result['device']}",
        "",
        f"- torch {result['torch']}, CUDA {result['cuda']}, NCCL {result['nccl']}; {result['precision']}; {result['optimizer']}",
        f"- Model: {result['parameters']:,} parameters, {model['n_layers']} layers, width {model['dim']}, "
        f"context {model['seq_len']}, vocabulary {model['vocab_size']}",
        f"- FLOPs per token: {result['flops_per_token']:,} ({result['flops_formula']}); "
        f"peak {result['peak_flops_per_device']} FLOP/s per device",
        f"- Best: {best['tokens_per_second']:,.0f} tokens/s, MFU {pct(best['mfu'])} (batch {best['batch_size']}, "
        f"compile {best['compile_mode']})"
        if best
        else "- Best: no batch size fit",
        f"- nanoGPT reference {NANOGPT_TOKENS_PER_SECOND:,} tokens/s; goal {GOAL:,.0f}: "
        f"{'met' if result['meets_goal'] else 'not met'}",
        f"- Collective: {coll.get('backend', '?')} × {coll['world_size']}, all_reduce correct: {coll['all_reduce_correct']}, "
        f"init + first all_reduce {coll.get('init_and_first_all_reduce_s')} s",
        "",
        "| compile | batch | ms/step | tokens/s | MFU | peak GiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["runs"]:
        if "error" in r:
            lines.append(f"| {r['compile_mode']} | {r['batch_size']} | {r['error']} | | | |")
        else:
            lines.append(
                f"| {r['compile_mode']} | {r['batch_size']} | {r['ms_per_step']} | {r['tokens_per_second']:,.0f} "
                f"| {pct(r['mfu'])} | {r.get('peak_memory_gib', '')} |"
            )
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, a check of this script")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 16,32,64; smoke: 4)")
    parser.add_argument(
        "--compile-modes",
        default="default",
        help="comma-separated torch.compile modes to try: default, max-autotune-no-cudagraphs, ...",
    )
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30; smoke: 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10; smoke: 1)")
    parser.add_argument("--collective-numel", type=int, default=1 << 26, help="all_reduce size in float32 elements")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    args.batch_sizes = args.batch_sizes or ("4" if args.smoke else "16,32,64")
    args.steps = args.steps or (3 if args.smoke else 30)
    args.warmup = args.warmup or (1 if args.smoke else 10)
    result = run(args)
    for path in write(result, Path(args.out)):
        print(path)
    return result


if __name__ == "__main__":
    main()
