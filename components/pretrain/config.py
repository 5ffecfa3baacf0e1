"""What pretraining is asked to do and what it returns: plain data, no torch, so the step that only launches
the workers (here through torchrun, on a cluster as a PyTorchJob or TrainJob) never imports it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.common.contracts import ModelDir


@dataclass
class TrainConfig:
    model_size: str = "small"
    seq_len: int = 128
    batch_size: int = 16  # sequences per rank per micro-step
    grad_accum: int = 1  # micro-steps per optimizer step; global batch = batch_size × grad_accum × ranks
    steps: int = 200
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1234
    eval_batches: int = 20
    log_every: int = 10  # also the only steps where the loop waits for the GPU
    device: str = "auto"  # auto | cpu | cuda
    compile: bool | None = None  # None: compile on CUDA only
    init_from: str = ""  # a model directory to warm-start from (retraining on changed data); empty: random init
    parallelism: str = "ddp"  # ddp | fsdp, when several processes train
    checkpoint_every: int = 0  # DCP checkpoint every N steps (0: only at the end); a restart loses < N steps
    # Write checkpoints in the background (None: on CUDA, where the step time matters). A crash during a write
    # loses that checkpoint too: up to one more interval than a synchronous save.
    async_checkpoints: bool | None = None
    checkpoint_dir: str = ""  # empty: <model_dir>/checkpoints. A run finding a checkpoint there resumes from it
    keep_checkpoints: int = 2
    timing_warmup_steps: int = 3  # left out of tokens/s and MFU: compilation and allocator warm-up


def pipeline_train_config(
    *,
    model_size: str,
    seq_len: int,
    batch_size: int,
    train_steps: int,
    learning_rate: float,
    seed: int,
    grad_accum: int,
    parallelism: str,
    checkpoint_every: int,
    init_from: str = "",
    checkpoint_dir: str = "",
) -> TrainConfig:
    """The TrainConfig behind the pipeline's parameters (the KFP component and RunConfig's builder use it). The
    warmup policy: the first 10% of the optimizer steps, at least one."""
    return TrainConfig(
        model_size=model_size,
        seq_len=seq_len,
        batch_size=batch_size,
        steps=train_steps,
        lr=learning_rate,
        warmup_steps=max(1, train_steps // 10),
        seed=seed,
        init_from=init_from,
        grad_accum=grad_accum,
        parallelism=parallelism,
        checkpoint_every=checkpoint_every,
        checkpoint_dir=checkpoint_dir,
    )


@dataclass
class TrainResult:
    model_dir: str
    train_loss: float | None
    val_loss: float
    tokens: int
    tokens_per_second: float
    total_flops: float
    checkpoint_sha256: str
    report: dict

    @classmethod
    def from_report(cls, model_dir: str | Path, report: dict) -> TrainResult:
        return cls(
            model_dir=str(model_dir),
            train_loss=report["train_loss"],
            val_loss=report["val_loss"],
            tokens=report["tokens"],
            tokens_per_second=report["tokens_per_second"],
            total_flops=report["total_flops"],
            checkpoint_sha256=report.get("checkpoint_sha256", ""),
            report=report,
        )

    @classmethod
    def load(cls, model_dir: str | Path) -> TrainResult | None:
        """The result recorded beside a trained model; None when no report was written there."""
        report = ModelDir(Path(model_dir)).train_report()
        return cls.from_report(model_dir, report) if report else None
