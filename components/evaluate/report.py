"""One evaluation report per run: perplexity of the base and adapted models on held-out pretraining tokens,
task accuracy on the test split against a majority-class baseline."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from components.adapt.classifier import load_classifier
from components.adapt.finetune import predict
from components.adapt.task import TaskData, encode, load_default_task
from components.curate.job import TOKENS_DIR
from components.curate.shards import PAD, read_split
from components.evaluate.metrics import accuracy, majority_label, perplexity
from components.pretrain.checkpoint import TOKENIZER, load_model
from components.pretrain.train import mean_loss

REPORT_JSON = "eval_report.json"
REPORT_MD = "eval_report.md"


@dataclass
class EvalResult:
    base_perplexity: float
    adapted_perplexity: float
    task_accuracy: float
    baseline_accuracy: float
    test_examples: int
    predictions_per_second: float

    def markdown(self, task: str, method: str) -> str:
        return "\n".join(
            [
                "# Evaluation report",
                "",
                "| metric | base model | adapted model | baseline |",
                "| --- | ---: | ---: | ---: |",
                f"| held-out perplexity (curated validation tokens) | {self.base_perplexity:.2f} | "
                f"{self.adapted_perplexity:.2f} | |",
                f"| {task} test accuracy ({self.test_examples} examples) | | {self.task_accuracy:.3f} | "
                f"{self.baseline_accuracy:.3f} (majority class) |",
                "",
                f"Adaptation method: {method}. Throughput: {self.predictions_per_second:.0f} predictions/s on CPU.",
                "",
            ]
        )


def evaluate(
    base_model_dir: str | Path,
    adapted_model_dir: str | Path,
    curated_dir: str | Path,
    out_dir: str | Path,
    task: TaskData | None = None,
    max_batches: int = 20,
) -> EvalResult:
    task = task or load_default_task()
    val_tokens = read_split(Path(curated_dir) / TOKENS_DIR, "val")
    base = load_model(base_model_dir)
    classifier, task_info = load_classifier(adapted_model_dir)
    seq_len = base.cfg.seq_len
    cpu = torch.device("cpu")
    base_ppl = perplexity(mean_loss(base, val_tokens, seq_len, 16, max_batches, cpu))
    adapted_ppl = perplexity(mean_loss(classifier.backbone, val_tokens, seq_len, 16, max_batches, cpu))

    tokenizer = Tokenizer.from_file(str(Path(adapted_model_dir) / TOKENIZER))
    tokens, lengths, targets = encode(task.splits["test"], task.labels, tokenizer, seq_len, tokenizer.token_to_id(PAD))
    started = time.perf_counter()
    predicted = predict(classifier, tokens, lengths).argmax(-1)
    elapsed = time.perf_counter() - started
    baseline = majority_label([x["label"] for x in task.splits["train"]])
    result = EvalResult(
        base_perplexity=round(base_ppl, 4),
        adapted_perplexity=round(adapted_ppl, 4),
        task_accuracy=round(accuracy(predicted.tolist(), targets.tolist()), 4),
        baseline_accuracy=round(accuracy([baseline] * len(task.splits["test"]), [x["label"] for x in task.splits["test"]]), 4),
        test_examples=len(targets),
        predictions_per_second=round(len(targets) / elapsed, 1),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_JSON).write_text(json.dumps({**asdict(result), "task": task.name, "method": task_info["method"]}, indent=2))
    (out / REPORT_MD).write_text(result.markdown(task.name, task_info["method"]))
    return result
