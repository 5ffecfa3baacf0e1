"""Adaptation beats the majority baseline; metrics match hand-computed values."""

import math

import pytest

from components.adapt.finetune import AdaptConfig, adapt
from components.adapt.task import load_default_task
from components.common.default_data import default_corpus_records
from components.evaluate.metrics import accuracy, majority_label, perplexity
from components.evaluate.report import evaluate


def test_metrics_by_hand():
    assert accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 0.75
    assert majority_label(["x", "y", "y", "x", "z"]) == "x"  # tie broken by sort order
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_task_splits_are_disjoint_from_pretraining_and_each_other():
    task = load_default_task()
    ids = {name: {x["id"] for x in rows} for name, rows in task.splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    corpus_ids = {r["id"] for r in default_corpus_records()}
    assert not corpus_ids & set().union(*ids.values())
    assert {x["label"] for x in task.splits["test"]} == set(task.labels)


def test_adapted_model_beats_majority_baseline(pretrained, curated, tmp_path):
    result = adapt(pretrained.model_dir, tmp_path / "adapted", AdaptConfig(method="full", steps=60, seed=7))
    assert result.parent_sha256 == pretrained.checkpoint_sha256
    report = evaluate(pretrained.model_dir, tmp_path / "adapted", curated.output_dir, tmp_path / "eval")
    assert report.task_accuracy > report.baseline_accuracy + 0.1
    assert report.base_perplexity < 512  # better than uniform
    assert (tmp_path / "eval" / "eval_report.md").read_text().count("|") > 10


def test_head_only_adaptation_trains_only_the_head(pretrained, tmp_path):
    result = adapt(pretrained.model_dir, tmp_path / "probe", AdaptConfig(method="head", steps=5))
    task = load_default_task()
    dim = 64  # tiny model width
    assert result.trainable_parameters == dim * len(task.labels) + len(task.labels)
