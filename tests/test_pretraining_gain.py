"""The pretraining-gain benchmark's summary, on rows computed by hand (its grid runs end to end in
tests/test_pipeline.py, on a real run)."""

from __future__ import annotations

import pytest

from benchmarks.pretraining_gain import _overrides, markdown, summarize


def _row(pretrain_seed: int, adapted: float, scratch: float, verdicts: tuple[str, str]) -> dict:
    difference = {"value": adapted - scratch, "low": -0.01, "high": 0.02, "level": 0.95}
    return {
        "pretrain_seed": pretrain_seed,
        "adapt_seed": 1,
        "base_val_loss": 5.5,
        "adapted_val": adapted + 0.1,
        "scratch_val": scratch,
        "adapted_test": adapted,
        "scratch_test": scratch,
        "bow_test": 0.6,
        "from_scratch_difference": difference,
        "bag_of_words_difference": difference,
        "from_scratch_p": 0.01,
        "bag_of_words_p": 0.2,
        "from_scratch_verdict": verdicts[0],
        "bag_of_words_verdict": verdicts[1],
    }


def test_summary_per_pretraining_seed_and_over_the_grid():
    rows = [
        _row(7, 0.70, 0.60, ("better", "better")),
        _row(7, 0.60, 0.65, ("no detectable difference", "better")),
        _row(3, 0.80, 0.70, ("better", "no detectable difference")),
    ]
    seven, three, everything = summarize(rows)
    # seeds in the order they were run, then the whole grid
    assert (seven["pretrain_seed"], three["pretrain_seed"], everything["pretrain_seed"]) == ("7", "3", "all")
    assert seven["pairs"] == 2 and seven["adapted_test"] == 0.65 and seven["scratch_test"] == 0.625
    assert seven["gain_over_scratch"] == 0.025 and seven["gain_over_scratch_val"] == 0.125
    assert (seven["better_than_from_scratch"], seven["better_than_bag_of_words"], seven["better_than_both"]) == (
        1,
        2,
        1,
    )
    assert everything["pairs"] == 3 and everything["gain_over_scratch"] == pytest.approx(0.05)
    assert (everything["better_than_from_scratch"], everything["better_than_both"]) == (2, 1)

    result = {"measured_at": "2026-12-08 01:00 UTC", "cpus": 2, "run_dir": "/runs/r1", "config": _config()}
    text = markdown({**result, "overrides": {"train_steps": "400"}, "rows": rows})
    assert "train_steps = 400" in text
    assert "| 7 | 5.500 | 1 | 0.800 / 0.600 | 0.700 | 0.600 | 0.600 | +0.100 [-0.010, +0.020], p 0.01 |" in text


def _config() -> dict:
    return {"model_size": "small", "train_steps": 400, "adapt_method": "full", "adapt_steps": 150}


def test_a_parameter_change_must_be_key_equals_value():
    assert _overrides(["train_steps=400", "adapt_lm_loss_weight=0.5"]) == {
        "train_steps": "400",
        "adapt_lm_loss_weight": "0.5",
    }
    with pytest.raises(SystemExit, match="--set 'train_steps': expected KEY=VALUE"):
        _overrides(["train_steps"])
