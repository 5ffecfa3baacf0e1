"""Train a byte-level BPE tokenizer on the curated text and pack documents into token shards.

Shard format (what pretraining reads): flat little-endian uint16 (or uint32 for vocabularies over 65,535)
token files, each document followed by the end-of-text token, listed in `index.json` with token counts.
Documents go to the validation split by a hash of their id, so the split is stable across reruns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from components.common.atomic import writing
from components.common.contracts import EOS, INDEX_FILE, INDEX_FORMAT, PAD, special_token_id, token_dtype_name

_ENCODE_BATCH = 1024


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def is_validation(doc_id: str, val_fraction: float) -> bool:
    bucket = int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:4], "big") / 2**32
    return bucket < val_fraction


@dataclass
class _ShardWriter:
    directory: Path
    split: str
    dtype: np.dtype
    shard_tokens: int

    def __post_init__(self) -> None:
        self.shards: list[dict] = []
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._docs = 0

    def add(self, ids: list[int]) -> None:
        self._buffer.append(np.asarray(ids, dtype=self.dtype))
        self._buffered += len(ids)
        self._docs += 1
        if self._buffered >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self._buffered:
            return
        name = f"{self.split}-{len(self.shards):05d}.bin"
        with writing(self.directory / name):
            np.concatenate(self._buffer).tofile(self.directory / name)
        self.shards.append({"file": name, "tokens": self._buffered, "docs": self._docs})
        self._buffer, self._buffered, self._docs = [], 0, 0


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(token_dtype_name(vocab_size)).newbyteorder("<")


def pack_shards(
    tokenizer: Tokenizer,
    documents: Iterator[tuple[str, str]],
    out_dir: str | Path,
    val_fraction: float,
    shard_tokens: int,
) -> dict:
    """Tokenize (id, text) pairs in the given order into train/val shards; write and return the index."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size = tokenizer.get_vocab_size()
    dtype = token_dtype(vocab_size)
    eos_id = special_token_id(tokenizer, EOS)
    writers = {split: _ShardWriter(out, split, dtype, shard_tokens) for split in ("train", "val")}

    def flush_batch(batch: list[tuple[str, str]]) -> None:
        for (doc_id, _), encoding in zip(batch, tokenizer.encode_batch([text for _, text in batch]), strict=True):
            writers["val" if is_validation(doc_id, val_fraction) else "train"].add([*encoding.ids, eos_id])

    batch: list[tuple[str, str]] = []
    for item in documents:
        batch.append(item)
        if len(batch) == _ENCODE_BATCH:
            flush_batch(batch)
            batch = []
    flush_batch(batch)
    for writer in writers.values():
        writer.flush()
    with writing(out / "tokenizer.json"):
        tokenizer.save(str(out / "tokenizer.json"))
    index = {
        "format": INDEX_FORMAT,
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "pad_id": tokenizer.token_to_id(PAD),
        "tokenizer": "tokenizer.json",
        "splits": {split: writer.shards for split, writer in writers.items()},
    }
    with writing(out / INDEX_FILE):
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2))
    return index
