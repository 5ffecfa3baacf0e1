"""Pretraining throughput of greenfm's trainer against nanoGPT, measured side by side in one run on one GPU.

    python benchmarks/pretrain.py --reference PATH/TO/nanogpt   # GPT-2 124M shape: 12 layers, 768 wide,
                                                                # 12 heads, block 1024, vocab 50304, batch 32
    python benchmarks/pretrain.py --smoke [--reference PATH]    # a tiny shape on CPU: checks the script

nanoGPT is not part of greenfm: its `model.py` is loaded from PATH (the folder holding it). Both sides get the
same shape, bf16 autocast, `torch.compile`, fused AdamW, gradient clipping at 1.0, random tokens copied from
pinned host memory each step, the same warm-up and timed steps, and no host synchronization between timed
steps. greenfm's side is `components.pretrain.train.train_step` (the step the trainer runs) under its attention
priority; nanoGPT's is its own model and `configure_optimizers`. Every (implementation, batch size) runs in a
process of its own, so no compiled graph, cache or allocator state carries from one measurement to the next.

FLOPs per token are 6·N_matmul + 12·L·d·T for both, N_matmul counted the same way on both models (the weights
of every nn.Linear, the tied output projection included); MFU divides by the GPU's dense bf16 peak.
Writes benchmarks/results/pretrain-<gpu>.json and .md (or under --out).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.pretrain.attention import attention_backend, preferred_attention  # noqa: E402
from components.pretrain.mfu import mfu, peak_flops  # noqa: E402
from components.pretrain.model import Transformer, flops_per_token, matmul_params, model_config  # noqa: E402
from components.pretrain.train import TrainConfig, allow_tf32, autocast, build_optimizer, train_step  # noqa: E402

GPT2_SHAPE = dict(n_layers=12, n_heads=12, dim=768, seq_len=1024, vocab_size=50304)
SMOKE_SHAPE = dict(n_layers=2, n_heads=2, dim=64, seq_len=64, vocab_size=512)
GOAL_RATIO = 1.25  # greenfm tokens/s over nanoGPT's, same run, same GPU
IMPLEMENTATIONS = ("nanogpt", "greenfm")


def _greenfm(shape: dict, device: torch.device):
    model = Transformer(model_config("gpt2-124m", n_kv_heads=shape["n_heads"], **shape)).to(device)
    optimizer = build_optimizer(model, TrainConfig(lr=6e-4), device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loss_sum = torch.zeros((), device=device)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        train_step(model, model, optimizer, scheduler, [(x, y)], 1.0, device, loss_sum)

    return model, step, loss_sum


def load_nanogpt(reference: str | Path):
    """nanoGPT's model module, loaded from `reference` (a folder with model.py, or model.py itself)."""
    path = Path(reference)
    path = path / "model.py" if path.is_dir() else path
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: cannot load nanoGPT's model.py from there")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nanogpt(shape: dict, device: torch.device, reference: str):
    nanogpt = load_nanogpt(reference)
    config = nanogpt.GPTConfig(
        block_size=shape["seq_len"],
        vocab_size=shape["vocab_size"],
        n_layer=shape["n_layers"],
        n_head=shape["n_heads"],
        n_embd=shape["dim"],
        dropout=0.0,
        bias=False,  # as nanoGPT's bench.py
    )
    model = nanogpt.GPT(config).to(device)
    optimizer = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), device.type)  # fused AdamW on CUDA
    loss_sum = torch.zeros((), device=device)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.contiguous(), y.contiguous()  # its loss views the targets flat; its own loader stacks them so
        with autocast(device):
            _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum.add_(loss.detach())

    return model, step, loss_sum


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(impl: str, shape: dict, batch: int, steps: int, warmup: int, compiled: bool, reference: str) -> dict:
    """One implementation at one batch size: `warmup` untimed steps (compilation), then `steps` timed ones."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        allow_tf32()  # as the trainer does (nanoGPT's bench.py sets the same flags)
    torch.manual_seed(0)
    model, step, loss_sum = _greenfm(shape, device) if impl == "greenfm" else _nanogpt(shape, device, reference)
    if compiled:
        model.compile()
    seq_len = shape["seq_len"]
    host = torch.randint(0, shape["vocab_size"], (warmup + steps, batch, seq_len + 1))
    if device.type == "cuda":
        host = host.pin_memory()
    attention = preferred_attention() if impl == "greenfm" else contextlib.nullcontext()  # nanoGPT: torch's default

    def run_step(i: int) -> None:
        block = host[i].to(device, non_blocking=True)
        step(block[:, :-1], block[:, 1:])

    with attention:
        started = time.perf_counter()
        for i in range(warmup):
            run_step(i)
        _synchronize(device)
        warmup_seconds = time.perf_counter() - started
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        for i in range(warmup, warmup + steps):
            run_step(i)
        mean_loss = (loss_sum / (warmup + steps)).item()  # the one host synchronization
        _synchronize(device)
        seconds = time.perf_counter() - started
    tokens_per_second = batch * seq_len * steps / seconds
    flops = 6 * matmul_params(model) + 12 * shape["n_layers"] * shape["dim"] * seq_len
    utilization = mfu(tokens_per_second, flops, peak_flops(device), 1)
    result = {
        "implementation": impl,
        "batch_size": batch,
        "compiled": compiled,
        "parameters": sum(p.numel() for p in model.parameters()),
        "matmul_parameters": matmul_params(model),
        "flops_per_token": flops,
        "tokens_per_step": batch * seq_len,
        "warmup_seconds": round(warmup_seconds, 2),
        "ms_per_step": round(1000 * seconds / steps, 2),
        "tokens_per_second": round(tokens_per_second, 1),
        "mfu": None if utilization is None else round(utilization, 4),
        "mean_loss": round(mean_loss, 4),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return result


def _measure_in_subprocess(job: dict, timeout: float) -> dict:
    """Run `measure(**job)` in a fresh interpreter; an out-of-memory or crash is recorded, not raised."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"implementation": job["impl"], "batch_size": job["batch"], "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        error = "out of memory" if "OutOfMemoryError" in done.stderr else tail[:300]
        return {"implementation": job["impl"], "batch_size": job["batch"], "error": error}
    return json.loads(lines[-1])


def environment() -> dict:
    """The GPU, its clocks, and the library versions the numbers were measured with."""
    cuda = torch.cuda.is_available()
    info = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())) if cuda else None,
        "python": sys.version.split()[0],
    }
    if cuda:
        query = "clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit,driver_version"
        try:
            out = subprocess.run(
                ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.splitlines()
            info["nvidia_smi"] = dict(zip(query.split(","), (v.strip() for v in out[0].split(",")), strict=True))
        except (OSError, IndexError, ValueError, subprocess.TimeoutExpired) as error:
            info["nvidia_smi"] = {"error": str(error)}
    return info


def _attention_record(shape: dict) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    head_dim = shape["dim"] // shape["n_heads"]
    args = (shape["n_heads"], shape["n_heads"], shape["seq_len"], head_dim, device, dtype)
    return {"greenfm": attention_backend(*args), "nanogpt": _default_backend(*args)}


def _default_backend(heads: int, _kv: int, seq_len: int, head_dim: int, device: torch.device, dtype) -> str:
    """The backend torch's default dispatch takes for nanoGPT's causal SDPA call (no priority set)."""
    from torch.nn.attention import SDPBackend

    q = torch.randn((1, heads, seq_len, head_dim), device=device, dtype=dtype)
    try:  # the dispatcher's own choice; a private function, so its absence is recorded rather than guessed
        return SDPBackend(torch._fused_sdp_choice(q, q, q, is_causal=True)).name
    except (AttributeError, RuntimeError, ValueError) as error:
        return f"unknown ({type(error).__name__})"


def run(args: argparse.Namespace) -> dict:
    shape = SMOKE_SHAPE if args.smoke else GPT2_SHAPE
    compiled = not (args.smoke or args.no_compile)
    implementations = [i for i in IMPLEMENTATIONS if i != "nanogpt" or args.reference]
    runs = []
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for impl in implementations:
            job = dict(
                impl=impl,
                shape=shape,
                batch=batch,
                steps=args.steps,
                warmup=args.warmup,
                compiled=compiled,
                reference=str(args.reference or ""),
            )
            result = _measure_in_subprocess(job, args.timeout)
            runs.append(result)
            print(json.dumps(result), flush=True)
    best = {
        impl: max(
            (r for r in runs if r["implementation"] == impl and "tokens_per_second" in r),
            key=lambda r: r["tokens_per_second"],
            default=None,
        )
        for impl in implementations
    }
    same_batch = {r["batch_size"]: r for r in runs if r["implementation"] == "nanogpt" and "tokens_per_second" in r}
    ratios = {
        str(r["batch_size"]): round(r["tokens_per_second"] / same_batch[r["batch_size"]]["tokens_per_second"], 3)
        for r in runs
        if r["implementation"] == "greenfm" and "tokens_per_second" in r and r["batch_size"] in same_batch
    }
    probe = Transformer(model_config("gpt2-124m", n_kv_heads=shape["n_heads"], **shape))
    ratio = max(ratios.values()) if ratios else None
    return {
        **environment(),
        "smoke": args.smoke,
        "shape": shape,
        "greenfm_model": probe.cfg.to_dict(),
        "flops_formula": "6·N_matmul + 12·L·d·T (N_matmul: weights of every nn.Linear, tied output included)",
        "greenfm_flops_per_token": flops_per_token(probe),
        "peak_flops_per_device": peak_flops(torch.device("cuda")) if torch.cuda.is_available() else None,
        "precision": "bf16 autocast, fp32 master weights" if torch.cuda.is_available() else "fp32",
        "compiled": compiled,
        "attention_backend": _attention_record(shape),
        "steps_timed": args.steps,
        "warmup_steps": args.warmup,
        "reference": str(args.reference) if args.reference else None,
        "runs": runs,
        "best": best,
        "ratio_by_batch": ratios,
        "ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "meets_goal": bool(ratio is not None and not args.smoke and ratio >= GOAL_RATIO),
    }


def write(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", result["device"].lower()).strip("-") + ("-smoke" if result["smoke"] else "")
    json_path, md_path = out_dir / f"pretrain-{slug}.json", out_dir / f"pretrain-{slug}.md"
    json_path.write_text(json.dumps(result, indent=2))
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    shape, attention = result["shape"], result["attention_backend"]
    ratio = result["ratio"]
    lines = [
        f"# Pretraining throughput: {result['device']}",
        "",
        f"- torch {result['torch']}, CUDA {result['cuda']}, cuDNN {result['cudnn']}, NCCL {result['nccl']}; "
        f"{result['precision']}; compiled: {result['compiled']}",
        f"- Clocks and driver: {result.get('nvidia_smi', 'n/a')}",
        f"- Shape: {shape['n_layers']} layers, width {shape['dim']}, {shape['n_heads']} heads, context "
        f"{shape['seq_len']}, vocabulary {shape['vocab_size']}; FLOPs per token {result['flops_formula']}",
        f"- Attention backend: greenfm {attention['greenfm']}, nanoGPT {attention['nanogpt']}",
        f"- {result['warmup_steps']} warm-up steps, {result['steps_timed']} timed steps, one process per measurement",
        f"- greenfm / nanoGPT tokens/s: {'n/a (no nanoGPT measurement)' if ratio is None else f'{ratio:.3f}×'}; goal "
        f"{result['goal_ratio']}×: {'met' if result['meets_goal'] else 'not met'}",
        "",
        "| implementation | batch | ms/step | tokens/s | MFU | peak GiB | warm-up s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["runs"]:
        if "error" in r:
            lines.append(f"| {r['implementation']} | {r['batch_size']} | {r['error']} | | | | |")
        else:
            lines.append(
                f"| {r['implementation']} | {r['batch_size']} | {r['ms_per_step']} | {r['tokens_per_second']:,.0f} "
                f"| {pct(r['mfu'])} | {r.get('peak_memory_gib', '')} | {r['warmup_seconds']} |"
            )
    md_path.write_text("\n".join(lines) + "\n")
    return json_path, md_path


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reference", default=None, help="nanoGPT's folder (holding model.py) to measure beside")
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, eager: a check of this script")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 32; smoke: 4)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30; smoke: 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10; smoke: 1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per measurement process")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one measurement, as JSON arguments
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(**json.loads(args.worker))), flush=True)
        return None
    args.batch_sizes = args.batch_sizes or ("4" if args.smoke else "32")
    args.steps = args.steps or (3 if args.smoke else 30)
    args.warmup = args.warmup or (1 if args.smoke else 10)
    result = run(args)
    for path in write(result, Path(args.out)):
        print(path)
    return result


if __name__ == "__main__":
    main()
