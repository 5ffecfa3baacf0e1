"""One evaluation report per run (JSON + Markdown + HTML): intrinsic perplexity of the base and adapted models;
task accuracy of the adapted model against the from-scratch arm and the majority, bag-of-words and zero-shot
baselines, each with a bootstrap interval and a paired test; calibration; robustness to seeded perturbations;
slices with the worst-slice gap; efficiency with measured energy; contamination.

Every compared number carries a seeded bootstrap interval (components/evaluate/stats.py); the report's
dictionaries are keyed by stable names (MODELS), display labels live in the renderer."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from components.adapt.classifier import Classifier, load_classifier
from components.adapt.finetune import predict
from components.adapt.task import TaskData, encode, load_default_task
from components.carbon.records import EnergyRecord
from components.carbon.tracking import Location, measure
from components.common.contracts import MODEL_TOKENIZER as TOKENIZER
from components.common.contracts import PAD, TOKENS_DIR, read_split, special_token_id
from components.evaluate import metrics as M
from components.evaluate import stats
from components.evaluate.baselines import BagOfWords, zero_shot_proba
from components.evaluate.contamination import contamination_report
from components.evaluate.perturb import PERTURBATIONS, perturb
from components.evaluate.render import write_reports
from components.pretrain.checkpoint import load_model
from components.pretrain.data import consecutive_windows
from components.pretrain.model import Transformer

REPORT_JSON = "eval_report.json"
REPORT_MD = "eval_report.md"
REPORT_HTML = "eval_report.html"
ADAPTED = "adapted"
FROM_SCRATCH = "from_scratch"
BASELINES = ("majority", "bag_of_words", "zero_shot")


@dataclass
class EvalConfig:
    seed: int = 1234  # perturbations and bootstrap resamples
    max_batches: int = 20  # perplexity: at most this many batches of 16 held-out windows
    calibration_bins: int = 10
    ngram: int = 13  # contamination check
    energy_seconds: float = 2.0  # predict repeatedly for at least this long when measuring energy
    latency_examples: int = 32  # examples timed one at a time for latency
    resamples: int = 1000  # bootstrap resamples per interval
    level: float = 0.95  # interval coverage
    alpha: float = 0.05  # significance level of the paired tests
    min_slice_examples: int = 30  # smaller slices are reported but marked too small to judge

    def __post_init__(self) -> None:
        if self.resamples < 100:
            raise ValueError(f"resamples {self.resamples}: at least 100 are needed for a stable interval")
        if not 0 < self.level < 1 or not 0 < self.alpha < 1:
            raise ValueError(f"level {self.level} and alpha {self.alpha} must lie strictly between 0 and 1")


@dataclass
class EvalResult:
    """The headline numbers (logged as KFP metrics); `details` holds the full report."""

    base_perplexity: float
    adapted_perplexity: float
    task_accuracy: float
    task_accuracy_low: float
    task_accuracy_high: float
    from_scratch_accuracy: float  # nan when the run has no from-scratch arm
    baseline_accuracy: float  # majority class
    bow_accuracy: float
    zero_shot_accuracy: float
    p_value_vs_bow: float  # Holm-adjusted mid-p McNemar
    p_value_vs_from_scratch: float
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
        """The finite headline numbers: KFP's Metrics artifact cannot hold NaN (a run without a from-scratch arm,
        a slice gap with no slice to judge), so those stay in the report only."""
        return {k: v for k, v in asdict(self).items() if k != "details" and math.isfinite(v)}


@dataclass
class TestSet:
    """The test split encoded for the adapted model's tokenizer."""

    rows: list[dict]
    tokens: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor

    @property
    def texts(self) -> list[str]:
        return [x["text"] for x in self.rows]


def window_losses(model: Transformer, tokens: np.ndarray, batch_size: int, max_batches: int) -> list[float]:
    """Mean next-token cross-entropy of every consecutive held-out window (the perplexity interval resamples
    windows)."""
    model.eval()
    losses: list[float] = []
    with torch.no_grad():
        for x, y in consecutive_windows(tokens, model.cfg.seq_len, batch_size, max_batches):
            logits = model(x).float()
            per_token = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
            losses += per_token.mean(dim=1).tolist()
    return losses


def _perplexities(models: dict[str, Transformer], curated_dir: Path, cfg: EvalConfig) -> dict:
    val_tokens = read_split(Path(curated_dir) / TOKENS_DIR, "val")
    losses = {name: window_losses(model, val_tokens, 16, cfg.max_batches) for name, model in models.items()}
    return {
        "models": {
            name: stats.perplexity_interval(values, cfg.seed, cfg.resamples, cfg.level).to_dict()
            for name, values in losses.items()
        },
        "held_out": "curated validation tokens",
        "windows": len(next(iter(losses.values()))),
        "window_tokens": next(iter(models.values())).cfg.seq_len,
    }


def encode_test(task: TaskData, model_dir: Path, seq_len: int) -> TestSet:
    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER))
    rows = task.splits["test"]
    return TestSet(rows, *encode(rows, task.labels, tokenizer, seq_len, special_token_id(tokenizer, PAD)))


def _correctness(proba: torch.Tensor, targets: torch.Tensor) -> list[bool]:
    return (proba.argmax(-1) == targets).tolist()


def classifier_outcomes(classifier: Classifier, task: TaskData, model_dir: Path, seq_len: int) -> list[bool]:
    """Per-example correctness of an adapted model on the test split (tokenized with its own tokenizer)."""
    test = encode_test(task, model_dir, seq_len)
    return _correctness(predict(classifier, test.tokens, test.lengths), test.targets)


def baseline_outcomes(task: TaskData, test: TestSet, base: Transformer, base_dir: Path) -> dict[str, list[bool]]:
    """Per-example correctness of each baseline on the test split."""
    train = task.splits["train"]
    majority = M.majority_label([x["label"] for x in train])
    bow = BagOfWords([x["text"] for x in train], [x["label"] for x in train], task.labels)
    tokenizer = Tokenizer.from_file(str(base_dir / TOKENIZER))
    return {
        "majority": [x["label"] == majority for x in test.rows],
        "bag_of_words": _correctness(bow.predict_proba(test.texts), test.targets),
        "zero_shot": _correctness(zero_shot_proba(base, tokenizer, test.texts, task.labels), test.targets),
    }


def accuracy_section(outcomes: dict[str, list[bool]], cfg: EvalConfig) -> dict:
    """Every model's accuracy with its interval, and the adapted model against each of the others."""
    intervals = {
        name: stats.mean_interval(hits, cfg.seed, cfg.resamples, cfg.level).to_dict() for name, hits in outcomes.items()
    }
    others = {name: hits for name, hits in outcomes.items() if name != ADAPTED}
    comparisons = stats.compare(outcomes[ADAPTED], others, cfg.seed, cfg.resamples, cfg.level, cfg.alpha)
    return {
        "models": intervals,
        "comparisons": {name: c.to_dict() for name, c in comparisons.items()},
        "test": "two-sided mid-p McNemar, Holm-adjusted over the comparisons; difference: paired bootstrap",
        "alpha": cfg.alpha,
    }


def _calibration(proba: torch.Tensor, correct: list[bool], cfg: EvalConfig) -> dict:
    confidence = np.asarray(proba.max(-1).values.tolist())
    hits = np.asarray(correct)
    interval = stats.bootstrap(
        lambda rows: M.expected_calibration_error(confidence[rows].tolist(), hits[rows].tolist(), cfg.calibration_bins),
        len(hits),
        cfg.seed,
        cfg.resamples,
        cfg.level,
    )
    bins = M.calibration_bins(confidence.tolist(), hits.tolist(), cfg.calibration_bins)
    return {
        "ece": interval.to_dict(),
        "bins": [
            {"confidence": sum(c for c, _ in b) / len(b), "accuracy": sum(ok for _, ok in b) / len(b), "n": len(b)}
            for b in bins
            if b
        ],
    }


def _robustness(
    classifier: Classifier, task: TaskData, test: TestSet, model_dir: Path, clean: list[bool], cfg: EvalConfig
) -> dict:
    accuracy = {"clean": sum(clean) / len(clean)}
    for kind in PERTURBATIONS:
        rows = [{**x, "text": t} for x, t in zip(test.rows, perturb(test.texts, kind, cfg.seed), strict=True)]
        perturbed = encode_test(TaskData(task.name, task.labels, {"test": rows}), model_dir, test.tokens.shape[1])
        hits = _correctness(predict(classifier, perturbed.tokens, perturbed.lengths), test.targets)
        accuracy[kind] = sum(hits) / len(hits)
    return {"seed": cfg.seed, "accuracy": accuracy}


def _slices(correct: list[bool], test: TestSet, cfg: EvalConfig) -> dict:
    """Accuracy per slice with an interval; slices under cfg.min_slice_examples are marked too small and left out
    of the worst-slice gap."""
    groups = {
        "label": [x["label"] for x in test.rows],
        "length": [M.length_bucket(int(n)) for n in test.lengths],
    }
    if all("kind" in x for x in test.rows):
        groups["docstring_kind"] = [x["kind"] for x in test.rows]
    overall = sum(correct) / len(correct)
    out = {}
    for grouping, keys in groups.items():
        slices = {}
        for key in sorted(set(keys)):
            hits = [ok for ok, k in zip(correct, keys, strict=True) if k == key]
            judged = len(hits) >= cfg.min_slice_examples
            slices[key] = {
                **stats.mean_interval(hits, cfg.seed, cfg.resamples, cfg.level).to_dict(),
                "n": len(hits),
                "too_small": not judged,
            }
        judged_slices = {k: {"accuracy": s["value"]} for k, s in slices.items() if not s["too_small"]}
        worst, gap = M.worst_slice_gap(overall, judged_slices) if judged_slices else (None, float("nan"))
        out[grouping] = {"slices": slices, "worst": worst, "gap": gap}
    return {"groups": out, "min_examples": cfg.min_slice_examples}


def _efficiency(classifier: Classifier, test: TestSet, cfg: EvalConfig, location: Location) -> dict:
    """Throughput and energy from repeated batched prediction; latency from one example at a time."""

    def repeat() -> tuple[int, float]:
        done, started = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - started < cfg.energy_seconds:
            predict(classifier, test.tokens, test.lengths)
            done += len(test.tokens)
        return done, time.perf_counter() - started

    (predictions, seconds), energy = measure("evaluate-predictions", location, repeat)
    timings = []
    for i in range(min(cfg.latency_examples, len(test.tokens))):
        started = time.perf_counter()
        predict(classifier, test.tokens[i : i + 1], test.lengths[i : i + 1])
        timings.append(time.perf_counter() - started)
    real_tokens = int(test.lengths.sum()) * predictions // len(test.tokens)
    return {
        "predictions": predictions,
        "seconds": round(seconds, 3),
        "predictions_per_second": round(predictions / seconds, 1),
        "tokens_per_second": round(real_tokens / seconds, 1),
        "latency_ms_median": round(1000 * statistics.median(timings), 3),
        "energy_kwh": energy.energy_kwh,
        "energy_kwh_per_1k_predictions": energy.energy_kwh / predictions * 1000,
        "cpu_power_method": energy.cpu_power_method,
        "device": str(next(classifier.parameters()).device),
    }


def _arm(model_dir: Path) -> dict:
    """What an adapted model is, from its task.json (parameter counts, method)."""
    _, info = load_classifier(model_dir)
    return {
        "method": info["method"],
        "trainable_parameters": info.get("trainable_parameters"),
        "total_parameters": info.get("total_parameters"),
        "init": info.get("init", "pretrained"),
        "lm_loss_weight": info.get("config", {}).get("lm_loss_weight", 0.0),
    }


def _headline(details: dict, n_test: int) -> EvalResult:
    acc, ppl = details["accuracy"], details["perplexity"]["models"]
    models, comparisons = acc["models"], acc["comparisons"]
    nan = float("nan")
    gaps = [g["gap"] for g in details["slices"]["groups"].values() if g["gap"] == g["gap"]]
    robustness = details["robustness"]["accuracy"]
    eff = details["efficiency"]
    return EvalResult(
        base_perplexity=round(ppl["base"]["value"], 4),
        adapted_perplexity=round(ppl[ADAPTED]["value"], 4),
        task_accuracy=round(models[ADAPTED]["value"], 4),
        task_accuracy_low=round(models[ADAPTED]["low"], 4),
        task_accuracy_high=round(models[ADAPTED]["high"], 4),
        from_scratch_accuracy=round(models[FROM_SCRATCH]["value"], 4) if FROM_SCRATCH in models else nan,
        baseline_accuracy=round(models["majority"]["value"], 4),
        bow_accuracy=round(models["bag_of_words"]["value"], 4),
        zero_shot_accuracy=round(models["zero_shot"]["value"], 4),
        p_value_vs_bow=comparisons["bag_of_words"]["p_adjusted"],
        p_value_vs_from_scratch=comparisons[FROM_SCRATCH]["p_adjusted"] if FROM_SCRATCH in comparisons else nan,
        expected_calibration_error=round(details["calibration"]["ece"]["value"], 4),
        worst_slice_gap=round(max(gaps), 4) if gaps else nan,
        min_perturbed_accuracy=round(min(v for k, v in robustness.items() if k != "clean"), 4),
        tokens_per_second=eff["tokens_per_second"],
        latency_ms=eff["latency_ms_median"],
        energy_kwh_per_1k_predictions=eff["energy_kwh_per_1k_predictions"],
        contamination_rate=round(details["contamination"]["splits"]["test"]["text_overlap_rate"], 4),
        test_examples=n_test,
        predictions_per_second=eff["predictions_per_second"],
        details=details,
    )


def evaluate(
    base_model_dir: str | Path,
    adapted_model_dir: str | Path,
    curated_dir: str | Path,
    out_dir: str | Path,
    task: TaskData | None = None,
    cfg: EvalConfig | None = None,
    location: Location | None = None,
    scratch_model_dir: str | Path | None = None,
    scratch_energy: EnergyRecord | None = None,
) -> EvalResult:
    """Evaluate the adapted model (and the from-scratch arm, when given) against the baselines; write the
    report into out_dir. `scratch_energy` is the arm's energy record, shown beside its accuracy."""
    cfg, task, location = cfg or EvalConfig(), task or load_default_task(), location or Location()
    base_dir, adapted_dir = Path(base_model_dir), Path(adapted_model_dir)
    base = load_model(base_dir)
    classifier, _ = load_classifier(adapted_dir)
    test = encode_test(task, adapted_dir, base.cfg.seq_len)
    proba = predict(classifier, test.tokens, test.lengths)
    outcomes = {ADAPTED: _correctness(proba, test.targets)}
    backbones = {"base": base, ADAPTED: classifier.backbone}
    arms = {ADAPTED: _arm(adapted_dir)}
    if scratch_model_dir is not None:
        scratch, _ = load_classifier(scratch_model_dir)
        outcomes[FROM_SCRATCH] = classifier_outcomes(scratch, task, Path(scratch_model_dir), base.cfg.seq_len)
        backbones[FROM_SCRATCH] = scratch.backbone
        energy = json.loads(scratch_energy.dumps()) if scratch_energy is not None else None  # as the report stores it
        arms[FROM_SCRATCH] = {**_arm(Path(scratch_model_dir)), "energy": energy}
    outcomes.update(baseline_outcomes(task, test, base, base_dir))
    details = {
        "task": task.name,
        "labels": task.labels,
        "arms": arms,
        "perplexity": _perplexities(backbones, Path(curated_dir), cfg),
        "accuracy": accuracy_section(outcomes, cfg),
        "calibration": _calibration(proba, outcomes[ADAPTED], cfg),
        "robustness": _robustness(classifier, task, test, adapted_dir, outcomes[ADAPTED], cfg),
        "slices": _slices(outcomes[ADAPTED], test, cfg),
        "efficiency": _efficiency(classifier, test, cfg, location),
        "contamination": contamination_report(task, curated_dir, n=cfg.ngram),
        "bootstrap": {"seed": cfg.seed, "resamples": cfg.resamples, "level": cfg.level},
    }
    result = _headline(details, len(test.rows))
    write_reports(result, Path(out_dir), REPORT_JSON, REPORT_MD, REPORT_HTML)
    return result
