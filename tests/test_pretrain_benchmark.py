"""benchmarks/pretrain.py runs end to end in its CPU smoke mode (the GPU run uses the same code paths)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_smoke_mode_measures_and_checks_the_collective(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pretrain.py"), "--smoke", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads((tmp_path / "pretrain-cpu-smoke.json").read_text())
    assert result["smoke"] and result["model"]["n_layers"] == 2
    assert result["best"]["tokens_per_second"] > 0 and result["best"]["tokens_per_step"] == 4 * 64
    assert result["best"]["mfu"] is None  # a CPU has no bf16 peak in the table
    assert result["collective"]["backend"] == "gloo" and result["collective"]["all_reduce_correct"] is True
    assert result["collective"]["world_size"] == 2
    assert not result["meets_goal"]
    assert "| eager | 4 |" in (tmp_path / "pretrain-cpu-smoke.md").read_text()
