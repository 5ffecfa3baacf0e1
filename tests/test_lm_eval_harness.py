"""lm-evaluation-harness scores our Hugging Face export on a local task (tests/fixtures/lm_eval, no hub download),
and its per-choice log-likelihoods are the ones our own model computes: users can put a greenfm model in the
same table as anything else that harness scores.

lm-eval pins packages that clash with ours, so it lives in its own environment, benchmarks/.venv-lmeval, which
benchmarks/lm_eval_env.sh creates (lm-eval[hf] 0.4.13; our torch and transformers reached through a .pth file).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from tokenizers import Tokenizer

from components.common.contracts import HF_DIR
from components.common.contracts import MODEL_TOKENIZER as TOKENIZER
from components.pretrain.checkpoint import load_model

REPO = Path(__file__).resolve().parent.parent
LM_EVAL_PYTHON = REPO / "benchmarks" / ".venv-lmeval" / "bin" / "python"
FIXTURES = REPO / "tests" / "fixtures" / "lm_eval"
TASK = "greenfm_stdlib_package"


def _our_loglikelihood(model, tokenizer: Tokenizer, context: str, continuation: str) -> float:
    """log P(continuation | context) under our Transformer, with the harness's split of the tokens: encode the
    context and the whole string, the continuation is what the whole adds (lm-eval's _encode_pair)."""
    context_ids = tokenizer.encode(context).ids
    whole = tokenizer.encode(context + continuation).ids
    target = whole[len(context_ids) :]
    window = whole[-(model.cfg.seq_len + 1) :][:-1]  # the harness keeps the last max_length tokens, as we do
    with torch.no_grad():
        logprobs = F.log_softmax(model(torch.tensor([window])).float(), dim=-1)[0]
    positions = range(len(window) - len(target), len(window))
    return float(sum(logprobs[p, t] for p, t in zip(positions, target, strict=True)))


@pytest.mark.slow
@pytest.mark.skipif(
    not LM_EVAL_PYTHON.is_file(),
    reason="lm-eval's environment benchmarks/.venv-lmeval is missing: run benchmarks/lm_eval_env.sh",
)
def test_lm_eval_harness_scores_the_hf_export(pretrained, tmp_path):
    hf_dir = Path(pretrained.model_dir) / HF_DIR
    task = yaml.safe_load((FIXTURES / f"{TASK}.yaml").read_text())
    task["dataset_kwargs"]["data_files"]["test"] = str(FIXTURES / "stdlib_package.jsonl")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / f"{TASK}.yaml").write_text(yaml.safe_dump(task))
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [str(LM_EVAL_PYTHON), "-m", "lm_eval", "--model", "hf",
         "--model_args", f"pretrained={hf_dir},dtype=float32", "--tasks", TASK,
         "--include_path", str(tmp_path / "tasks"), "--device", "cpu", "--batch_size", "8",
         "--output_path", str(tmp_path / "out"), "--log_samples"],
        capture_output=True, text=True, timeout=600, env=offline, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    scores = json.loads(results_file.read_text())["results"][TASK]
    (samples_file,) = (tmp_path / "out").rglob(f"samples_{TASK}_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 36 and 0.0 <= scores["acc,none"] <= 1.0

    model, tokenizer = (
        load_model(pretrained.model_dir).eval(),
        Tokenizer.from_file(str(Path(pretrained.model_dir) / TOKENIZER)),
    )
    choices = task["doc_to_choice"]
    hits = 0
    for sample in samples:
        context = f"Docstring: {sample['doc']['text']}\nPackage:"
        theirs = [float(r[0][0]) for r in sample["resps"]]
        ours = [_our_loglikelihood(model, tokenizer, context, " " + c) for c in choices]
        assert ours == pytest.approx(theirs, abs=1e-3), sample["doc"]["id"]
        hits += max(range(len(ours)), key=ours.__getitem__) == sample["doc"]["gold"]
    assert scores["acc,none"] == pytest.approx(hits / len(samples))
