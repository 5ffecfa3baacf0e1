"""The artifacts stages hand each other, in one dependency-light module (standard library only; numpy is imported
by the one reader that returns arrays): a stage reads another's output through these layouts, never by importing
that stage's implementation.

    curated dataset/                     (curate → validate, pretrain, evaluate)
        documents/*.parquet              the curated records (OUTPUT_COLUMNS)
        tokens/index.json, *.bin         token shards (load_index, read_split)
        removed/*.parquet                every removed document (REMOVED_COLUMNS)
        quarantine.jsonl                 malformed and rejected input records, with file, line, code and reason
        report.json, report.md           what every curation step removed and why
    model/                               (pretrain → adapt, evaluate)
        model.safetensors, config.json, tokenizer.json, train_report.json/.md, hf/ (Hugging Face export)
    adapted model/                       (adapt → evaluate, lineage)
        head.safetensors, task.json, adapt_report.json, lineage.json, plus the backbone's model files
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Token shards: special tokens, index format, element type.
EOS = "<|endoftext|>"
PAD = "<|pad|>"
INDEX_FORMAT = "greenfm-tokens-v1"
INDEX_FILE = "index.json"


def special_token_id(tokenizer: Any, token: str) -> int:
    """The id of EOS or PAD in a curated tokenizer (a `tokenizers.Tokenizer`); a one-line error without it."""
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise ValueError(f"the tokenizer lacks {token}, which curation adds to every vocabulary")
    return int(token_id)


def token_dtype_name(vocab_size: int) -> str:
    """The shard element type: uint16 while every id fits, else uint32 (the gate checks shards against this)."""
    return "uint16" if vocab_size <= 2**16 - 1 else "uint32"


def load_index(tokens_dir: str | Path) -> dict[str, Any]:
    """tokens/index.json: format, dtype, vocab_size, eos_id, pad_id, tokenizer file, splits -> shard list."""
    return json.loads((Path(tokens_dir) / INDEX_FILE).read_text())


def read_split(tokens_dir: str | Path, split: str) -> np.ndarray:
    """All tokens of one split, memory-mapped and concatenated in shard order."""
    import numpy as np

    tokens_dir = Path(tokens_dir)
    index = load_index(tokens_dir)
    arrays = [np.memmap(tokens_dir / s["file"], dtype=index["dtype"], mode="r") for s in index["splits"][split]]
    if not arrays:
        return np.zeros(0, dtype=index["dtype"])
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


# Curated dataset.
DOCUMENTS_DIR = "documents"
TOKENS_DIR = "tokens"
QUARANTINE_FILE = "quarantine.jsonl"
CURATION_REPORT_JSON = "report.json"
CURATION_REPORT_MD = "report.md"
REMOVED_DIR = "removed"  # every removed document, with step, reason code, measured value and detail
OUTPUT_COLUMNS = (
    "id",
    "text",
    "source",
    "license",
    "metadata",
    "origin",
    "transforms",
    "lang",
    "lang_score",
    "minhash_cluster_size",  # near-duplicate cluster size of the kept document (FineWeb-2); null without fuzzy dedup
)
REMOVED_COLUMNS = (
    "id",
    "text",
    "source",
    "license",
    "metadata",
    "origin",
    "transforms",
    "step",  # the step that removed it
    "reason",  # stable reason code, e.g. gopher_quality.short_doc
    "value",  # the rule's measured value
    "detail",  # the language, or the id of the duplicate that stays
)


@dataclass(frozen=True)
class CuratedDataset:
    root: Path

    @property
    def documents(self) -> Path:
        return Path(self.root) / DOCUMENTS_DIR

    @property
    def tokens(self) -> Path:
        return Path(self.root) / TOKENS_DIR

    @property
    def quarantine(self) -> Path:
        return Path(self.root) / QUARANTINE_FILE

    @property
    def report_json(self) -> Path:
        return Path(self.root) / CURATION_REPORT_JSON

    @property
    def report_md(self) -> Path:
        return Path(self.root) / CURATION_REPORT_MD


# Pretrained model directory.
MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
MODEL_TOKENIZER = "tokenizer.json"
MODEL_FORMAT = "greenfm-transformer-v1"
TRAIN_REPORT_JSON = "train_report.json"
TRAIN_REPORT_MD = "train_report.md"
HF_DIR = "hf"  # the same weights as a Hugging Face LlamaForCausalLM checkpoint
ENERGY_DIR = "energy"  # per-node energy records of distributed workers (node<N>-attempt<K>.json)
# train_report.json key: sha256 of the weights pretraining started from (a warm start), or null.
PARENT_SHA256 = "parent_sha256"


@dataclass(frozen=True)
class ModelDir:
    root: Path

    @property
    def weights(self) -> Path:
        return Path(self.root) / MODEL_WEIGHTS

    @property
    def train_report_json(self) -> Path:
        return Path(self.root) / TRAIN_REPORT_JSON

    def train_report(self) -> dict[str, Any]:
        """The training report, {} when the directory has none (a model trained elsewhere)."""
        path = self.train_report_json
        return json.loads(path.read_text()) if path.is_file() else {}


# Adapted model directory (a classifier on a backbone).
HEAD_WEIGHTS = "head.safetensors"
TASK_CONFIG = "task.json"
ADAPT_REPORT = "adapt_report.json"
LINEAGE = "lineage.json"


@dataclass(frozen=True)
class AdaptedModelDir:
    root: Path

    @property
    def lineage_file(self) -> Path:
        return Path(self.root) / LINEAGE

    def lineage(self) -> dict[str, Any]:
        return json.loads(self.lineage_file.read_text())
