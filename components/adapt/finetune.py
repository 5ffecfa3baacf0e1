"""Fine-tune a pretrained model on a labelled task: the whole network (`full`) or only the new head (`head`,
a linear probe: far less compute, the green choice when it is accurate enough)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from components.adapt.classifier import Classifier, save_classifier
from components.adapt.task import TaskData, encode, load_default_task
from components.common.fingerprint import file_sha256
from components.curate.shards import PAD
from components.pretrain.checkpoint import TOKENIZER, WEIGHTS, load_model

METHODS = ("full", "head")


@dataclass
class AdaptConfig:
    method: str = "full"
    steps: int = 150
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 1234


@dataclass
class AdaptResult:
    model_dir: str
    method: str
    val_accuracy: float
    trainable_parameters: int
    parent_sha256: str
    model_sha256: str


@torch.no_grad()
def predict(model: Classifier, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Class probabilities for every row."""
    model.eval()
    parts = [
        F.softmax(model(tokens[i : i + batch_size], lengths[i : i + batch_size]).float(), dim=-1)
        for i in range(0, len(tokens), batch_size)
    ]
    return torch.cat(parts)


def adapt(base_model_dir: str | Path, out_dir: str | Path, cfg: AdaptConfig | None = None, task: TaskData | None = None) -> AdaptResult:
    cfg = cfg or AdaptConfig()
    if cfg.method not in METHODS:
        raise ValueError(f"unknown adaptation method {cfg.method!r}; choose one of {', '.join(METHODS)}")
    task = task or load_default_task()
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    base_model_dir = Path(base_model_dir)
    tokenizer = Tokenizer.from_file(str(base_model_dir / TOKENIZER))
    backbone = load_model(base_model_dir)
    model = Classifier(backbone, len(task.labels))
    seq_len, pad_id = backbone.cfg.seq_len, tokenizer.token_to_id(PAD)
    train = encode(task.splits["train"], task.labels, tokenizer, seq_len, pad_id)
    val = encode(task.splits["val"], task.labels, tokenizer, seq_len, pad_id)

    if cfg.method == "head":
        backbone.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    history = []
    model.train()
    for step in range(cfg.steps):
        rows = torch.randint(0, len(train[0]), (cfg.batch_size,), generator=generator)
        logits = model(train[0][rows], train[1][rows])
        loss = F.cross_entropy(logits, train[2][rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.train()
        if (step + 1) % 25 == 0:
            history.append({"step": step + 1, "loss": round(loss.item(), 4)})
    val_accuracy = (predict(model, val[0], val[1]).argmax(-1) == val[2]).float().mean().item()

    parent_sha = file_sha256(base_model_dir / WEIGHTS)
    trainable_count = sum(p.numel() for p in trainable)
    description = {
        "task": task.name,
        "labels": task.labels,
        "method": cfg.method,
        "config": asdict(cfg),
        "parent_sha256": parent_sha,
        "trainable_parameters": trainable_count,
        "val_accuracy": round(val_accuracy, 4),
        "history": history,
    }
    sha = save_classifier(model, out_dir, base_model_dir / TOKENIZER, description)
    (Path(out_dir) / "adapt_report.json").write_text(json.dumps({**description, "model_sha256": sha}, indent=2))
    return AdaptResult(str(out_dir), cfg.method, val_accuracy, trainable_count, parent_sha, sha)
