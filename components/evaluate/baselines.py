"""Baselines the adapted model must beat.

- majority: always the most frequent training label.
- bag-of-words: multinomial naive Bayes over lower-cased word unigrams and bigrams with add-one smoothing,
  trained on the training split; a strong, cheap n-gram baseline.
- zero-shot: the base language model with no training examples at all. A classifier has no zero-shot mode, so
  the base model scores each label by how much the text raises the likelihood of the label's name:
  score(label) = log P(name | text + "\\n") − log P(name | "\\n") (pointwise mutual information; subtracting the
  unconditional term removes the model's prior preference for some names). The prediction is the best score;
  a softmax over the scores gives the probabilities.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from components.common.contracts import EOS, PAD
from components.pretrain.model import Transformer


def _features(text: str) -> list[str]:
    words = text.lower().split()
    return words + [f"{a} {b}" for a, b in pairwise(words)]


class BagOfWords:
    """Multinomial naive Bayes over word unigrams and bigrams."""

    def __init__(self, texts: list[str], labels: list[str], label_names: list[str]):
        self.labels = label_names
        counts: dict[str, Counter[str]] = {label: Counter() for label in label_names}
        for text, label in zip(texts, labels, strict=True):
            counts[label].update(_features(text))
        vocab = set().union(*counts.values())
        prior = Counter(labels)
        self.log_prior = {
            label: math.log((prior[label] + 1) / (len(labels) + len(label_names))) for label in label_names
        }
        self.log_likelihood = {}
        self.unseen = {}
        for label in label_names:
            total = sum(counts[label].values()) + len(vocab)
            self.log_likelihood[label] = {w: math.log((c + 1) / total) for w, c in counts[label].items()}
            self.unseen[label] = math.log(1 / total)
        self.vocab = vocab

    def scores(self, text: str) -> list[float]:
        features = [f for f in _features(text) if f in self.vocab]  # unseen features carry no evidence
        return [
            self.log_prior[label] + sum(self.log_likelihood[label].get(f, self.unseen[label]) for f in features)
            for label in self.labels
        ]

    def predict_proba(self, texts: list[str]) -> torch.Tensor:
        return F.softmax(torch.tensor([self.scores(t) for t in texts], dtype=torch.float64), dim=-1).float()


@torch.no_grad()
def _label_log_likelihood(model: Transformer, contexts: list[list[int]], label_ids: list[int]) -> torch.Tensor:
    """log P(label_ids | context) for every context, keeping each context's last tokens that fit.

    Rows are batched by length (each batch as wide as its longest row, not the longest of all), and only the
    positions that predict a label token go through the vocabulary-wide output layer: the same numbers as the
    whole forward pass at a fraction of its cost."""
    room = model.cfg.seq_len - len(label_ids)
    rows = [ctx[-room:] + label_ids for ctx in contexts]
    labels = torch.tensor(label_ids)
    scores = torch.empty(len(rows))
    by_length = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    for start in range(0, len(rows), 64):
        batch = by_length[start : start + 64]
        tokens = torch.zeros(len(batch), len(rows[batch[-1]]), dtype=torch.long)
        for j, i in enumerate(batch):
            tokens[j, : len(rows[i])] = torch.tensor(rows[i])
        hidden = model.hidden_states(tokens)
        # position p predicts token p + 1: the label's tokens are predicted from the last context token on
        first = torch.tensor([len(rows[i]) - len(label_ids) - 1 for i in batch])
        positions = first[:, None] + torch.arange(len(label_ids))[None, :]
        predicting = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
        logprobs = F.log_softmax(model.output(predicting).float(), dim=-1)
        scores[batch] = logprobs.gather(-1, labels.expand(len(batch), -1)[..., None]).sum((1, 2))
    return scores


@torch.no_grad()
def zero_shot_proba(model: Transformer, tokenizer: Tokenizer, texts: list[str], label_names: list[str]) -> torch.Tensor:
    """Label probabilities from label-name PMI under the base language model (module docstring)."""
    model.eval()
    eos = tokenizer.token_to_id(EOS)
    if eos is None or tokenizer.token_to_id(PAD) is None:
        raise ValueError("the tokenizer lacks the end-of-text or padding token the curation stage adds")
    contexts = [[eos, *e.ids] for e in tokenizer.encode_batch([t + "\n" for t in texts])]
    empty = [[eos, *tokenizer.encode("\n").ids]]
    columns = []
    for name in label_names:
        label_ids = tokenizer.encode(name).ids
        conditional = _label_log_likelihood(model, contexts, label_ids)
        columns.append(conditional - _label_log_likelihood(model, empty, label_ids)[0])
    return F.softmax(torch.stack(columns, dim=1), dim=-1)
