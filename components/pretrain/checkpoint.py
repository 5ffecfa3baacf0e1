"""Save and load a trained model as one directory: weights (safetensors), config and tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model as load_safetensors
from safetensors.torch import save_model as save_safetensors

from components.common.contracts import MODEL_CONFIG as CONFIG
from components.common.contracts import MODEL_FORMAT as FORMAT
from components.common.contracts import MODEL_TOKENIZER as TOKENIZER
from components.common.contracts import MODEL_WEIGHTS as WEIGHTS
from components.common.fingerprint import file_sha256
from components.pretrain.model import ModelConfig, Transformer


def save_model(model: Transformer, model_dir: str | Path, tokenizer_path: str | Path, extra: dict | None = None) -> str:
    """Write the model directory; return the weights' sha256."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    save_safetensors(model, str(model_dir / WEIGHTS))  # stores the tied embedding/output weight once
    config = {"format": FORMAT, "model": model.cfg.to_dict(), **(extra or {})}
    (model_dir / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    if Path(tokenizer_path).resolve() != (model_dir / TOKENIZER).resolve():
        shutil.copyfile(tokenizer_path, model_dir / TOKENIZER)
    return file_sha256(model_dir / WEIGHTS)


def read_config(model_dir: str | Path) -> dict:
    return json.loads((Path(model_dir) / CONFIG).read_text())


def load_model(model_dir: str | Path, device: str | torch.device = "cpu") -> Transformer:
    config = read_config(model_dir)
    if config.get("format") != FORMAT:
        raise ValueError(f"{model_dir}: not a greenfm model directory (format {config.get('format')!r})")
    model = Transformer(ModelConfig(**config["model"]))
    load_safetensors(model, str(Path(model_dir) / WEIGHTS), device=str(device))
    return model.to(device)
