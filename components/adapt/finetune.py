"""Adapt a pretrained model to a labelled task: full fine-tuning by default (on the default task the one method
where pretraining beats the from-scratch arm), or LoRA (the green choice: a few thousand trained numbers, the
backbone frozen), last-layer tuning, a linear probe, or `auto`
(components/adapt/methods.py). LoRA adapters are merged into the backbone for export, so every adapted model
is a plain Classifier directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import Tokenizer

from components.adapt.classifier import (
    ADAPT_REPORT,
    Classifier,
    classifier_sha256,
    is_classifier,
    load_classifier,
    save_classifier,
)
from components.adapt.lora import DEFAULT_TARGETS, LoraConfig, lora_state_dict, merge_lora
from components.adapt.methods import METHODS, choose_method, estimated_flops, set_trainable
from components.adapt.task import TaskData, data_fingerprint, encode, load_default_task
from components.common.contracts import MODEL_TOKENIZER as TOKENIZER
from components.common.contracts import MODEL_WEIGHTS as WEIGHTS
from components.common.contracts import PAD, special_token_id
from components.common.fingerprint import file_sha256
from components.common.model_store import require_finished
from components.pretrain.checkpoint import load_model, read_config
from components.pretrain.loss import IGNORE_INDEX, linear_cross_entropy

LORA_WEIGHTS = "lora.safetensors"
# Peak learning rate per method: adapters and a fresh head tolerate larger steps than the whole network.
LEARNING_RATES = {"full": 1e-3, "lora": 3e-3, "last-layer": 2e-3, "head": 3e-3}


@dataclass
class AdaptConfig:
    method: str = "full"  # full | lora | last-layer | head | auto
    steps: int = 150
    batch_size: int = 16
    lr: float = 0.0  # 0: the method's default (LEARNING_RATES)
    weight_decay: float = 0.01
    lora_rank: int = 8  # 0 with method auto: chosen from the data size
    lora_alpha: float = 0.0  # 0: 2 × rank
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = DEFAULT_TARGETS
    budget_flops: float = 0.0  # compute budget the `auto` rule respects; 0: none
    # Weight of a next-token loss on the batch's own texts, added to the classification loss: the language-model
    # head stays usable (held-out perplexity does not collapse) and the backbone keeps modelling the task's text
    # (task-adaptive pretraining, Gururangan et al. 2020). 0: classification loss only.
    lm_loss_weight: float = 0.0
    init_from: str = ""  # an earlier adapted model (or a run directory holding one) to warm-start from
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class AdaptResult:
    model_dir: str
    method: str
    val_accuracy: float
    trainable_parameters: int
    parent_sha256: str
    model_sha256: str
    total_parameters: int = 0
    data_fingerprint: str = ""
    estimated_flops: float = 0.0
    warm_start: str = "none"
    details: dict = field(default_factory=dict)


@torch.no_grad()
def predict(model: Classifier, tokens: torch.Tensor, lengths: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Class probabilities for every row (on the model's device; returned on the CPU, in the rows' order).

    Rows go in batches of like length, each batch cut to its longest row: the padding past it changes nothing
    (causal attention, pooling over real tokens only) and would cost as much as the text."""
    model.eval()
    device = next(model.parameters()).device
    probs = torch.empty(len(tokens), model.head.out_features)
    by_length = torch.argsort(lengths, stable=True)
    for start in range(0, len(tokens), batch_size):
        rows = by_length[start : start + batch_size]
        width = max(int(lengths[rows].max()), 1)
        logits = model(tokens[rows, :width].to(device), lengths[rows].to(device))
        probs[rows] = F.softmax(logits.float(), dim=-1).cpu()
    return probs


def find_adapted_model(path: str | Path) -> Path:
    """An adapted model directory, or the single adapted model inside a run directory (of a succeeded run)."""
    path = Path(path)
    if is_classifier(path):
        return require_finished(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such adapted model or run directory")
    found = sorted({p.parent for p in path.rglob("task.json") if is_classifier(p.parent)})
    if len(found) != 1:
        raise ValueError(f"{path}: expected one adapted model inside, found {len(found)}")
    return require_finished(found[0])


def _shape(model: Classifier) -> dict:
    # An earlier LoRA run may have untied the output projection (components/adapt/lora.py): same shapes otherwise.
    return {k: v for k, v in model.backbone.cfg.to_dict().items() if k != "tie_embeddings"}


def _warm_start(model: Classifier, labels: list[str], source: str) -> tuple[Classifier, str, str | None]:
    """An earlier adapted model in place of `model` when it fits; return (the model to train, what happened,
    the earlier model's hash or None)."""
    if not source:
        return model, "none", None
    model_dir = find_adapted_model(source)
    previous, task_info = load_classifier(model_dir)
    if _shape(previous) != _shape(model) or task_info["labels"] != labels:
        return model, f"skipped: {model_dir} has a different model config or label set", None
    return previous, f"loaded from {model_dir}", classifier_sha256(model_dir)


def next_tokens(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Next-token targets for right-padded rows (B, T - 1): position i predicts token i + 1 of its own text;
    positions past a text's last token are ignored."""
    targets = tokens[:, 1:].clone()
    targets[torch.arange(1, tokens.shape[1], device=tokens.device)[None, :] >= lengths[:, None]] = IGNORE_INDEX
    return targets


GROUP_COST_TOKENS = 256  # what one more forward/backward pass costs, in padded tokens (CPU, small model)


def length_groups(lengths: torch.Tensor, group_cost: int = GROUP_COST_TOKENS) -> list[torch.Tensor]:
    """Positions of a batch's rows in groups of like length, each run cut to its longest row, so the padding
    past a text is not computed. The split minimizes Σ rows × width + group_cost per group (exact, over the
    rows sorted by length). The batch's loss is the same sum over rows: the groups only skip padding, which
    changes nothing (causal attention; pooling over real tokens only). `predict` cuts its batches the same way,
    over a whole split sorted by length."""
    order = torch.argsort(lengths, stable=True)
    widths = lengths[order].clamp(min=1).tolist()
    best, cut = [0] + [0] * len(widths), [0] * (len(widths) + 1)
    for end in range(1, len(widths) + 1):
        choices = [(best[start] + group_cost + (end - start) * widths[end - 1], start) for start in range(end)]
        best[end], cut[end] = min(choices)
    groups, end = [], len(widths)
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def backward_batch(
    model: Classifier,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    labels: torch.Tensor,
    lm_loss_weight: float,
    device: torch.device,
    group_cost: int = GROUP_COST_TOKENS,
) -> torch.Tensor:
    """Back-propagate one batch's loss (mean classification cross-entropy, plus `lm_loss_weight` × the mean
    next-token loss over the texts' tokens) in length groups (`length_groups`); returns the loss."""
    batch_loss = torch.zeros((), device=device)
    if lm_loss_weight > 0:  # the batch's next-token targets, which each group's mean is a share of
        lm_targets = (next_tokens(tokens, lengths) != IGNORE_INDEX).sum().clamp(min=1).to(device)
    for group in length_groups(lengths, group_cost):
        width = max(int(lengths[group].max()), 2)
        rows, row_lengths = tokens[group, :width].to(device), lengths[group].to(device)
        hidden = model.backbone.hidden_states(rows)
        logits = model.classify(hidden, row_lengths)
        loss = F.cross_entropy(logits, labels[group].to(device), reduction="sum") / len(lengths)
        if lm_loss_weight > 0:
            targets = next_tokens(rows, row_lengths)
            share = (targets != IGNORE_INDEX).sum() / lm_targets  # the group's part of the batch's mean
            lm_loss = linear_cross_entropy(hidden[:, :-1], model.backbone.output.weight, targets) * share
            loss = loss + lm_loss_weight * lm_loss
        loss.backward()
        batch_loss += loss.detach()
    return batch_loss


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def adapt(
    base_model_dir: str | Path, out_dir: str | Path, cfg: AdaptConfig | None = None, task: TaskData | None = None
) -> AdaptResult:
    cfg = cfg or AdaptConfig()
    if cfg.method not in (*METHODS, "auto"):
        raise ValueError(f"unknown adaptation method {cfg.method!r}; choose one of {', '.join(METHODS)} or auto")
    task = task or load_default_task()
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    base_model_dir = Path(base_model_dir)
    tokenizer = Tokenizer.from_file(str(base_model_dir / TOKENIZER))
    backbone = load_model(base_model_dir)
    model = Classifier(backbone, len(task.labels))
    seq_len, pad_id = backbone.cfg.seq_len, special_token_id(tokenizer, PAD)
    train = encode(task.splits["train"], task.labels, tokenizer, seq_len, pad_id)
    val = encode(task.splits["val"], task.labels, tokenizer, seq_len, pad_id)

    backbone_params = backbone.num_params()
    run_tokens = int(cfg.steps * cfg.batch_size * train[1].float().mean().item())
    method, rank, reason = cfg.method, cfg.lora_rank, f"configured: {cfg.method}"
    if method == "auto":
        choice = choose_method(len(train[0]), backbone_params, run_tokens, cfg.budget_flops)
        method, rank, reason = choice.method, cfg.lora_rank or choice.lora_rank, f"auto: {choice.reason}"
    model, warm_start, warm_sha = _warm_start(model, task.labels, cfg.init_from)
    backbone = model.backbone
    lora = LoraConfig(
        rank=rank, alpha=cfg.lora_alpha or 2.0 * rank, dropout=cfg.lora_dropout, targets=tuple(cfg.lora_targets)
    )
    adapted_modules = set_trainable(backbone, method, lora)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    lr = cfg.lr or LEARNING_RATES[method]
    # multi-tensor (foreach), which torch picks by itself only on CUDA: on CPU bit-identical to the loop, faster
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=cfg.weight_decay, foreach=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    history = []
    model.train()
    for step in range(cfg.steps):
        rows = torch.randint(0, len(train[0]), (cfg.batch_size,), generator=generator)
        batch_loss = backward_batch(model, train[0][rows], train[1][rows], train[2][rows], cfg.lm_loss_weight, device)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % 25 == 0:
            history.append({"step": step + 1, "loss": round(batch_loss.item(), 4)})
    val_accuracy = (predict(model, val[0], val[1]).argmax(-1) == val[2]).float().mean().item()
    trainable_count = sum(p.numel() for p in trainable)
    total_count = sum(p.numel() for p in model.parameters())

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if method == "lora":
        save_file(lora_state_dict(model), str(out_dir / LORA_WEIGHTS))
        merge_lora(model)  # export a plain model: no adapter code needed to serve it
    base_sha = file_sha256(base_model_dir / WEIGHTS)
    parent_sha = warm_sha or base_sha
    description: dict[str, Any] = {
        "task": task.name,
        "labels": task.labels,
        "method": method,
        "method_reason": reason,
        "lora": asdict(lora) if method == "lora" else None,
        "adapted_modules": adapted_modules,
        "config": {**asdict(cfg), "lr": lr},
        "parent_sha256": parent_sha,
        "base_model_sha256": base_sha,
        "init": read_config(base_model_dir).get("init", "pretrained"),  # "random" for the from-scratch arm
        "warm_start": warm_start,
        "data_fingerprint": data_fingerprint(task),
        "trainable_parameters": trainable_count,
        "total_parameters": total_count,
        "tokens_seen": run_tokens,
        "estimated_flops": estimated_flops(method, backbone_params, run_tokens),
        "device": str(device),
        "val_accuracy": round(val_accuracy, 4),
        "history": history,
    }
    sha = save_classifier(model.cpu(), out_dir, base_model_dir / TOKENIZER, description)
    (out_dir / ADAPT_REPORT).write_text(json.dumps({**description, "model_sha256": sha}, indent=2))
    return AdaptResult(
        model_dir=str(out_dir),
        method=method,
        val_accuracy=val_accuracy,
        trainable_parameters=trainable_count,
        parent_sha256=parent_sha,
        model_sha256=sha,
        total_parameters=total_count,
        data_fingerprint=description["data_fingerprint"],
        estimated_flops=description["estimated_flops"],
        warm_start=warm_start,
        details=description,
    )
