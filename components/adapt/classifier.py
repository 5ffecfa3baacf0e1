"""A sequence classifier on top of the pretrained transformer: mean of the final hidden states over real
(non-padding) tokens, then one linear layer."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from components.common.contracts import ADAPT_REPORT, HEAD_WEIGHTS, LINEAGE, TASK_CONFIG
from components.common.fingerprint import tree_sha256
from components.pretrain.checkpoint import load_model, save_model
from components.pretrain.model import Transformer

# Records written beside the weights; the model's identity (its hash) is the weights, config and tokenizer.
RECORDS = (ADAPT_REPORT, LINEAGE)


class Classifier(nn.Module):
    def __init__(self, backbone: Transformer, n_labels: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.cfg.dim, n_labels)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone.hidden_states(tokens), lengths)

    def classify(self, hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Label logits from the backbone's final hidden states (B, T, dim) of texts `lengths` tokens long."""
        mask = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]).to(hidden.dtype)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(pooled)


def save_classifier(model: Classifier, model_dir: str | Path, tokenizer_path: str | Path, task: dict) -> str:
    """Write backbone + head + task description; return the model's hash (classifier_sha256)."""
    model_dir = Path(model_dir)
    save_model(model.backbone, model_dir, tokenizer_path, {"task": task})
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, str(model_dir / HEAD_WEIGHTS))
    (model_dir / TASK_CONFIG).write_text(json.dumps(task, indent=2, sort_keys=True))
    return classifier_sha256(model_dir)


def classifier_sha256(model_dir: str | Path) -> str:
    """Hash of an adapted model directory, leaving out the records written beside it."""
    return tree_sha256(model_dir, exclude=RECORDS)


def is_classifier(model_dir: str | Path) -> bool:
    return (Path(model_dir) / TASK_CONFIG).is_file() and (Path(model_dir) / HEAD_WEIGHTS).is_file()


def load_classifier(model_dir: str | Path, device: str = "cpu") -> tuple[Classifier, dict]:
    model_dir = Path(model_dir)
    task = json.loads((model_dir / TASK_CONFIG).read_text())
    model = Classifier(load_model(model_dir, device), len(task["labels"]))
    model.head.load_state_dict(load_file(str(model_dir / HEAD_WEIGHTS), device=device))
    return model.to(device), task
