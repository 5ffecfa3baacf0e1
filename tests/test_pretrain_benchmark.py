"""benchmarks/pretrain.py and benchmarks/gpu_checks.py run end to end on a CPU (the GPU run uses the same code
paths): each measurement in its own process, nanoGPT loaded from a path beside the project, the ratio stated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# third-party code kept beside the checkout (never in it); GREENFM_NANOGPT points elsewhere
NANOGPT = Path(os.environ.get("GREENFM_NANOGPT", ROOT.parent / "shared" / "anchors" / "nanogpt"))


def _run(*args: str, timeout: int = 600) -> None:
    subprocess.run([sys.executable, *args], check=True, capture_output=True, text=True, timeout=timeout)


def test_smoke_mode_measures_greenfm_alone_without_a_reference(tmp_path):
    _run(str(ROOT / "benchmarks" / "pretrain.py"), "--smoke", "--out", str(tmp_path))
    result = json.loads((tmp_path / "pretrain-cpu-smoke.json").read_text())
    assert (
        result["smoke"]
        and result["shape"]["n_layers"] == 2
        and [r["implementation"] for r in result["runs"]] == ["greenfm"]
    )
    greenfm = result["best"]["greenfm"]
    assert greenfm["tokens_per_second"] > 0 and greenfm["tokens_per_step"] == 4 * 64
    assert greenfm["mfu"] is None  # a CPU has no bf16 peak in the table
    assert result["ratio"] is None and not result["meets_goal"]
    assert result["attention_backend"]["greenfm"] in {"FLASH_ATTENTION", "MATH"}
    assert "| greenfm | 4 |" in (tmp_path / "pretrain-cpu-smoke.md").read_text()


@pytest.mark.skipif(not (NANOGPT / "model.py").is_file(), reason=f"no nanoGPT copy at {NANOGPT}")
def test_reference_is_measured_beside_greenfm_and_the_ratio_reported(tmp_path):
    _run(str(ROOT / "benchmarks" / "pretrain.py"), "--smoke", "--reference", str(NANOGPT), "--out", str(tmp_path))
    result = json.loads((tmp_path / "pretrain-cpu-smoke.json").read_text())
    nanogpt, greenfm = result["best"]["nanogpt"], result["best"]["greenfm"]
    assert nanogpt["tokens_per_second"] > 0 and nanogpt["flops_per_token"] > 0
    assert result["ratio"] == pytest.approx(greenfm["tokens_per_second"] / nanogpt["tokens_per_second"], abs=1e-3)
    assert result["ratio_by_batch"] == {"4": result["ratio"]}
    assert not result["meets_goal"]  # never claimed from a smoke run
    assert "greenfm / nanoGPT tokens/s:" in (tmp_path / "pretrain-cpu-smoke.md").read_text()


def test_a_missing_reference_is_recorded_not_fatal(tmp_path):
    _run(
        str(ROOT / "benchmarks" / "pretrain.py"),
        "--smoke",
        "--reference",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path),
    )
    result = json.loads((tmp_path / "pretrain-cpu-smoke.json").read_text())
    failed = next(r for r in result["runs"] if r["implementation"] == "nanogpt")
    assert "error" in failed and result["ratio"] is None and result["best"]["greenfm"]


@pytest.mark.slow
def test_gpu_checks_pass_on_cpu_with_gloo(tmp_path):
    _run(str(ROOT / "benchmarks" / "gpu_checks.py"), "--out", str(tmp_path), "--steps", "6")
    result = json.loads((tmp_path / "gpu-checks-cpu.json").read_text())
    assert result["ddp"]["backend"] == "gloo" and result["ddp"]["wrapped"] == "DistributedDataParallel"
    assert result["ddp"]["learned"] and result["bf16_vs_fp32"]["ok"] and result["ok"]
    assert len(result["bf16_vs_fp32"]["bf16"]) == 6
