"""One evaluation report per run (JSON + Markdown + HTML): intrinsic perplexity of the base and adapted models;
task accuracy against majority, bag-of-words and zero-shot baselines; calibration; robustness to seeded
perturbations; slices with the worst-slice gap; efficiency with measured energy; contamination."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer

from components.adapt.classifier import Classifier, load_classifier
from components.adapt.finetune import predict
from components.adapt.task import TaskData, encode, load_default_task
from components.carbon.tracking import Location, measure
from components.common.contracts import MODEL_TOKENIZER as TOKENIZER
from components.common.contracts import PAD, TOKENS_DIR, read_split
from components.evaluate import metrics as M
from components.evaluate.baselines import BagOfWords, zero_shot_proba
from components.evaluate.contamination import contamination_report
from components.evaluate.perturb import PERTURBATIONS, perturb
from components.evaluate.render import write_reports
from components.pretrain.checkpoint import load_model
from components.pretrain.train import mean_loss

REPORT_JSON = "eval_report.json"
REPORT_MD = "eval_report.md"
REPORT_HTML = "eval_report.html"


@dataclass
class EvalConfig:
    seed: int = 1234  # perturbations
    max_batches: int = 20  # perplexity: at most this many batches of 16 held-out windows
    calibration_bins: int = 10
    ngram: int = 13  # contamination check
    energy_seconds: float = 2.0  # predict repeatedly for at least this long when measuring energy
    latency_examples: int = 32  # examples timed one at a time for latency


@dataclass
class EvalResult:
    """The headline numbers (logged as KFP metrics); `details` holds the full report."""

    base_perplexity: float
    adapted_perplexity: float
    task_accuracy: float
    baseline_accuracy: float  # majority class
    bow_accuracy: float
    zero_shot_accuracy: float
    expected_calibration_error: float
    worst_slice_gap: float
    min_perturbed_accuracy: float
    tokens_per_second: float
    latency_ms: float
    energy_kwh_per_1k_predictions: float
    contamination_rate: float  # test examples sharing a 13-gram with pretraining data
    test_examples: int
    predictions_per_second: float
    details: dict = field(default_factory=dict, repr=False)

    def metrics(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k != "details"}


def _accuracy(proba: torch.Tensor, targets: torch.Tensor) -> float:
    return M.accuracy(proba.argmax(-1).tolist(), targets.tolist())


def _efficiency(
    classifier: Classifier, tokens: torch.Tensor, lengths: torch.Tensor, cfg: EvalConfig, location: Location
) -> dict:
    """Throughput and energy from repeated batched prediction; latency from one example at a time."""

    def repeat() -> tuple[int, float]:
        done, started = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - started < cfg.energy_seconds:
            predict(classifier, tokens, lengths)
            done += len(tokens)
        return done, time.perf_counter() - started

    (predictions, seconds), energy = measure("evaluate-predictions", location, repeat)
    timings = []
    for i in range(min(cfg.latency_examples, len(tokens))):
        started = time.perf_counter()
        predict(classifier, tokens[i : i + 1], lengths[i : i + 1])
        timings.append(time.perf_counter() - started)
    real_tokens = int(lengths.sum()) * predictions // len(tokens)
    return {
        "predictions": predictions,
        "seconds": round(seconds, 3),
        "predictions_per_second": round(predictions / seconds, 1),
        "tokens_per_second": round(real_tokens / seconds, 1),
        "latency_ms_median": round(1000 * statistics.median(timings), 3),
        "energy_kwh": energy["energy_kwh"],
        "energy_kwh_per_1k_predictions": energy["energy_kwh"] / predictions * 1000,
        "cpu_power_method": energy["cpu_power_method"],
        "device": str(next(classifier.parameters()).device),
    }


def _slices(predicted: list[int], targets: list[int], groups: dict[str, list[str]], overall: float) -> dict:
    out = {}
    for grouping, keys in groups.items():
        slices = M.slice_accuracies(predicted, targets, keys)
        worst, gap = M.worst_slice_gap(overall, slices)
        out[grouping] = {"slices": slices, "worst": worst, "gap": gap}
    return out


def evaluate(
    base_model_dir: str | Path,
    adapted_model_dir: str | Path,
    curated_dir: str | Path,
    out_dir: str | Path,
    task: TaskData | None = None,
    cfg: EvalConfig | None = None,
    location: Location | None = None,
) -> EvalResult:
    cfg = cfg or EvalConfig()
    task = task or load_default_task()
    location = location or Location()
    cpu = torch.device("cpu")
    val_tokens = read_split(Path(curated_dir) / TOKENS_DIR, "val")
    base = load_model(base_model_dir)
    classifier, task_info = load_classifier(adapted_model_dir)
    seq_len = base.cfg.seq_len
    base_ppl = M.perplexity(mean_loss(base, val_tokens, seq_len, 16, cfg.max_batches, cpu))
    adapted_ppl = M.perplexity(mean_loss(classifier.backbone, val_tokens, seq_len, 16, cfg.max_batches, cpu))

    tokenizer = Tokenizer.from_file(str(Path(adapted_model_dir) / TOKENIZER))
    pad_id = tokenizer.token_to_id(PAD)
    test = task.splits["test"]
    texts = [x["text"] for x in test]
    tokens, lengths, targets = encode(test, task.labels, tokenizer, seq_len, pad_id)
    proba = predict(classifier, tokens, lengths)
    predicted = proba.argmax(-1).tolist()
    task_accuracy = _accuracy(proba, targets)
    confidence = proba.max(-1).values.tolist()
    correct = [p == t for p, t in zip(predicted, targets.tolist(), strict=True)]
    bins = M.calibration_bins(confidence, correct, cfg.calibration_bins)
    ece = M.expected_calibration_error(confidence, correct, cfg.calibration_bins)

    train = task.splits["train"]
    majority = M.majority_label([x["label"] for x in train])
    bow = BagOfWords([x["text"] for x in train], [x["label"] for x in train], task.labels)
    base_tokenizer = Tokenizer.from_file(str(Path(base_model_dir) / TOKENIZER))
    baselines = {
        "majority class": M.accuracy([majority] * len(test), [x["label"] for x in test]),
        "bag-of-words (naive Bayes, 1-2 grams)": _accuracy(bow.predict_proba(texts), targets),
        "base model zero-shot (label-name PMI)": _accuracy(
            zero_shot_proba(base, base_tokenizer, texts, task.labels), targets
        ),
    }

    robustness = {"clean": task_accuracy}
    for kind in PERTURBATIONS:
        rows = [{**x, "text": t} for x, t in zip(test, perturb(texts, kind, cfg.seed), strict=True)]
        p_tokens, p_lengths, _ = encode(rows, task.labels, tokenizer, seq_len, pad_id)
        robustness[kind] = _accuracy(predict(classifier, p_tokens, p_lengths), targets)

    groups = {
        "label": [x["label"] for x in test],
        "length": [M.length_bucket(int(n)) for n in lengths],
    }
    if all("kind" in x for x in test):
        groups["docstring kind"] = [x["kind"] for x in test]
    slices = _slices(predicted, targets.tolist(), groups, task_accuracy)
    efficiency = _efficiency(classifier, tokens, lengths, cfg, location)
    contamination = contamination_report(task, curated_dir, n=cfg.ngram)

    result = EvalResult(
        base_perplexity=round(base_ppl, 4),
        adapted_perplexity=round(adapted_ppl, 4),
        task_accuracy=round(task_accuracy, 4),
        baseline_accuracy=round(baselines["majority class"], 4),
        bow_accuracy=round(baselines["bag-of-words (naive Bayes, 1-2 grams)"], 4),
        zero_shot_accuracy=round(baselines["base model zero-shot (label-name PMI)"], 4),
        expected_calibration_error=round(ece, 4),
        worst_slice_gap=round(max(s["gap"] for s in slices.values()), 4),
        min_perturbed_accuracy=round(min(v for k, v in robustness.items() if k != "clean"), 4),
        tokens_per_second=efficiency["tokens_per_second"],
        latency_ms=efficiency["latency_ms_median"],
        energy_kwh_per_1k_predictions=efficiency["energy_kwh_per_1k_predictions"],
        contamination_rate=round(contamination["splits"]["test"]["text_overlap_rate"], 4),
        test_examples=len(test),
        predictions_per_second=efficiency["predictions_per_second"],
    )
    result.details = {
        "task": task.name,
        "labels": task.labels,
        "method": task_info["method"],
        "trainable_parameters": task_info.get("trainable_parameters"),  # task.json holds the adaptation's description
        "total_parameters": task_info.get("total_parameters"),
        "perplexity": {
            "base": base_ppl,
            "adapted": adapted_ppl,
            "held_out": "curated validation tokens",
            "windows_of": seq_len,
        },
        "accuracy": {"adapted": task_accuracy, **baselines},
        "calibration": {
            "ece": ece,
            "bins": [
                {"confidence": sum(c for c, _ in b) / len(b), "accuracy": sum(ok for _, ok in b) / len(b), "n": len(b)}
                for b in bins
                if b
            ],
        },
        "robustness": {"seed": cfg.seed, "accuracy": robustness},
        "slices": slices,
        "efficiency": efficiency,
        "contamination": contamination,
    }
    write_reports(result, Path(out_dir), REPORT_JSON, REPORT_MD, REPORT_HTML)
    return result
