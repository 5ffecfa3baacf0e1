"""Two correctness checks of pretraining on a GPU (they also run on a CPU, with gloo and CPU autocast):

1. DDP over NCCL: torchrun starts one process per GPU, each joins an NCCL process group and runs a few real
   training steps of the trainer's step (DDP-wrapped even with one process, so NCCL's communicator, DDP's
   buckets and its gradient all-reduce all take part) on token shards of real text.
2. bf16 against fp32: the same model, seed and batches, trained with bf16 autocast and in plain fp32 (TF32
   off): the losses of the first steps must agree within a tolerance (bf16's 8-bit mantissa moves the loss by
   hundredths of a nat, not tenths).

    python benchmarks/gpu_checks.py [--out DIR] [--steps N]

Writes <out>/gpu-checks-<device>.json. Token shards are packed from the standard library's docstrings (the
default corpus), so no data set is needed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.common.contracts import read_split  # noqa: E402
from components.common.default_data import default_corpus_records  # noqa: E402
from components.curate.shards import pack_shards, train_tokenizer  # noqa: E402
from components.pretrain.data import GlobalBatches  # noqa: E402
from components.pretrain.distributed import setup, teardown, wrap  # noqa: E402
from components.pretrain.model import Transformer, model_config  # noqa: E402
from components.pretrain.train import TrainConfig, build_optimizer, train_step  # noqa: E402

BF16_TOLERANCE_NATS = 0.05  # per-step loss difference allowed between bf16 autocast and fp32
GPU_SHAPE = dict(n_layers=4, n_heads=8, n_kv_heads=8, dim=512, seq_len=256)  # small, real GPU work
CPU_SHAPE = dict(n_layers=2, n_heads=2, n_kv_heads=2, dim=64, seq_len=64)  # the same checks in seconds


def check_model(device: torch.device) -> Transformer:
    torch.manual_seed(0)
    shape = GPU_SHAPE if device.type == "cuda" else CPU_SHAPE
    return Transformer(model_config("tiny", vocab_size=4096, **shape)).to(device)


def token_shards(out: Path, documents: int = 2000, vocab: int = 4096) -> Path:
    records = list(itertools.islice(default_corpus_records(), documents))
    tokenizer = train_tokenizer((r["text"] for r in records), vocab)
    pack_shards(tokenizer, ((r["id"], r["text"]) for r in records), out, val_fraction=0.05, shard_tokens=1 << 20)
    return out


def _steps(model: Transformer, step_model, tokens, steps: int, device: torch.device, bf16: bool) -> list[float]:
    """Losses of `steps` optimizer steps on seeded batches (the trainer's data order and step)."""
    cfg = TrainConfig(lr=1e-3, warmup_steps=2, steps=steps)
    optimizer = build_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / cfg.warmup_steps))
    batches = GlobalBatches(tokens, model.cfg.seq_len, 8, seed=7)
    losses = []
    for step in range(steps):
        loss_sum = torch.zeros((), device=device)
        micro = batches.micro_batches(step, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            # train_step applies the trainer's autocast on CUDA; the explicit one also covers a CPU check
            train_step(step_model, model, optimizer, scheduler, micro, 1.0, device, loss_sum)
        losses.append(round(loss_sum.item(), 5))
    return losses


def ddp_worker(shards: str, steps: int) -> None:
    """Run under torchrun: join the process group (NCCL on GPU, gloo on CPU) and train a few DDP steps."""
    import torch.distributed as dist

    d = setup("auto")
    if not dist.is_initialized():  # torchrun with one process: setup() joins no group, the check needs one
        if d.device.type == "cuda":
            dist.init_process_group("nccl", device_id=d.device)
        else:
            dist.init_process_group("gloo")
    model = check_model(d.device)
    ddp = wrap(model, "ddp", d, compile_model=False)
    losses = _steps(model, ddp, read_split(shards, "train"), steps, d.device, bf16=d.device.type == "cuda")
    if d.is_main:
        print(
            json.dumps(
                {
                    "backend": dist.get_backend(),
                    "world_size": dist.get_world_size(),
                    "wrapped": type(ddp).__name__,
                    "losses": losses,
                    "finite": all(map(lambda v: v == v and abs(v) != float("inf"), losses)),
                    "learned": losses[-1] < losses[0],
                }
            ),
            flush=True,
        )
    teardown(d)
    if dist.is_initialized():
        dist.destroy_process_group()


def ddp_check(shards: Path, steps: int) -> dict:
    processes = max(1, torch.cuda.device_count())
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        str(Path(__file__).resolve()),
        "--ddp-worker",
        str(shards),
        "--steps",
        str(steps),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"ok": False, "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:500]}
    result = json.loads(lines[-1])
    result["ok"] = result["finite"] and result["learned"] and result["wrapped"] == "DistributedDataParallel"
    return result


def bf16_check(shards: Path, steps: int) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":  # plain fp32 for the reference: no TF32 either
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    tokens = read_split(shards, "train")
    runs = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        model = check_model(device)
        runs[name] = _steps(model, model, tokens, steps, device, bf16)
    differences = [abs(a - b) for a, b in zip(runs["fp32"], runs["bf16"], strict=True)]
    return {
        **runs,
        "max_difference_nats": round(max(differences), 5),
        "tolerance_nats": BF16_TOLERANCE_NATS,
        "ok": max(differences) <= BF16_TOLERANCE_NATS,
    }


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)  # the torchrun side: shards folder
    args = parser.parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args.ddp_worker, args.steps)
        return None
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as scratch:
        shards = token_shards(Path(scratch) / "tokens")
        result = {
            "device": device,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "nccl": ".".join(map(str, torch.cuda.nccl.version())) if torch.cuda.is_available() else None,
            "ddp": ddp_check(shards, args.steps),
            "bf16_vs_fp32": bf16_check(shards, args.steps),
        }
    result["ok"] = result["ddp"]["ok"] and result["bf16_vs_fp32"]["ok"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"gpu-checks-{re.sub(r'[^a-z0-9]+', '-', device.lower()).strip('-')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(path)
    return result


if __name__ == "__main__":
    main()
