"""The pretraining engine: data slices, gradient accumulation, DCP checkpoints and exact resumption, MFU,
and torchrun launches on CPU (gloo): DDP and FSDP2 across two nodes, a killed worker that resumes."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
from dataclasses import replace

import psutil
import pytest
import torch

from components.carbon.tracking import aggregate_ranks
from components.common.contracts import read_split
from components.common.errors import GreenfmError
from components.pretrain import resume
from components.pretrain.config import TrainConfig
from components.pretrain.data import GlobalBatches
from components.pretrain.launch import LaunchConfig, run_local, torchrun_command
from components.pretrain.mfu import mfu, peak_flops_for
from components.pretrain.node_energy import node_energy_records
from components.pretrain.train import train

TINY = TrainConfig(model_size="tiny", seq_len=32, batch_size=8, steps=12, warmup_steps=2, log_every=2, eval_batches=2)


def losses(result) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in result.report["history"]}


def test_global_batch_is_the_same_for_any_split_across_ranks(shards):
    tokens = read_split(shards, "train")
    whole = GlobalBatches(tokens, 16, batch_size=8, seed=3).micro_batches(5)[0][0]
    parts = [
        x
        for rank in range(2)
        for x, _ in GlobalBatches(tokens, 16, 2, seed=3, grad_accum=2, rank=rank, world_size=2).micro_batches(5)
    ]
    assert torch.equal(torch.cat(parts), whole)
    assert not torch.equal(GlobalBatches(tokens, 16, 8, seed=3).micro_batches(6)[0][0], whole)  # steps differ


def test_gradient_accumulation_matches_the_whole_batch(shards, tmp_path):
    whole = train(shards, tmp_path / "whole", TINY)
    accumulated = train(shards, tmp_path / "accum", replace(TINY, batch_size=4, grad_accum=2))
    for step, loss in losses(whole).items():
        assert losses(accumulated)[step] == pytest.approx(loss, abs=1e-4)
    assert accumulated.report["global_batch_sequences"] == whole.report["global_batch_sequences"] == 8


def test_report_states_tokens_flops_and_formula(shards, tmp_path):
    result = train(shards, tmp_path / "m", TINY)
    report = json.loads((tmp_path / "m" / "train_report.json").read_text())
    assert report["tokens"] == 12 * 8 * 32 == result.tokens
    assert report["total_flops"] == report["flops_per_token"] * report["tokens"]
    assert "6·N_matmul + 12·L·d·T" in report["flops_formula"]
    assert report["mfu"] is None  # no peak for a CPU
    markdown = (tmp_path / "m" / "train_report.md").read_text()
    assert "FLOPs" in markdown and "| 12 |" in markdown


@pytest.mark.parametrize("background", [False, True])  # synchronous saves; dcp.async_save (the GPU default)
def test_resume_continues_exactly(shards, tmp_path, background):
    """A run restarted from its step-6 checkpoint ends bit-identical to one that never stopped."""
    config = replace(TINY, checkpoint_every=3, keep_checkpoints=0, async_checkpoints=background)
    full = train(shards, tmp_path / "full", config)
    saved = sorted(p.name for p in (tmp_path / "full" / "checkpoints").glob("step-*"))
    assert saved == ["step-00000003", "step-00000006", "step-00000009", "step-00000012"]
    assert resume.latest(tmp_path / "full" / "checkpoints").name == "step-00000012"
    restarted = tmp_path / "restarted" / "checkpoints"
    restarted.mkdir(parents=True)
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-00000006", restarted / "step-00000006")
    (restarted / "latest").write_text("step-00000006")
    again = train(shards, tmp_path / "restarted", config)
    assert again.report["resumed_from_step"] == 6
    assert losses(again) == {step: loss for step, loss in losses(full).items() if step > 6}
    assert again.checkpoint_sha256 == full.checkpoint_sha256


def test_only_the_newest_checkpoints_are_kept(shards, tmp_path):
    train(shards, tmp_path / "m", replace(TINY, checkpoint_every=3))  # keep_checkpoints=2
    assert sorted(p.name for p in (tmp_path / "m" / "checkpoints").glob("step-*")) == ["step-00000009", "step-00000012"]


def test_resume_refuses_a_different_run(shards, tmp_path):
    train(shards, tmp_path / "m", replace(TINY, steps=2))
    with pytest.raises(GreenfmError, match=r"checkpoints/step-00000002: cannot resume a different run \(seed"):
        train(shards, tmp_path / "m", replace(TINY, steps=4, seed=99))


def test_finished_run_is_not_retrained(shards, tmp_path):
    first = train(shards, tmp_path / "m", replace(TINY, steps=4))
    again = train(shards, tmp_path / "m", replace(TINY, steps=4))
    assert again.report["resumed_from_step"] == 4 and again.report["history"] == []
    assert again.checkpoint_sha256 == first.checkpoint_sha256


def test_mfu_peak_table_and_formula():
    assert peak_flops_for("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops_for("NVIDIA H100 PCIe") == 756e12
    assert peak_flops_for("NVIDIA H200") == 989e12
    assert peak_flops_for("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops_for("Some Future GPU") is None
    assert mfu(500_000, 850e6, 989e12, 1) == pytest.approx(0.4297, abs=1e-4)
    assert mfu(1.0, 1.0, None, 1) is None


def test_torchrun_command_and_launch_validation():
    standalone = torchrun_command("t", "m", TINY, LaunchConfig(procs_per_node=2))
    assert "--standalone" in standalone and standalone[standalone.index("--nproc-per-node") + 1] == "2"
    multi = torchrun_command("t", "m", TINY, LaunchConfig(nodes=2, procs_per_node=1, rdzv_endpoint="10.0.0.1:29400"))
    assert multi[multi.index("--rdzv-backend") + 1] == "c10d" and "10.0.0.1:29400" in multi
    assert multi[-8:-6] == ["--module", "components.pretrain.train"]
    with pytest.raises(GreenfmError, match="rdzv_endpoint"):
        LaunchConfig(nodes=2)
    with pytest.raises(GreenfmError, match="expected one of"):
        LaunchConfig(backend="slurm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_fsdp_match_one_process(shards, tmp_path):
    """Two torchrun 'nodes' (one process each, gloo, c10d rendezvous on 127.0.0.1) with FSDP2 and half the
    batch each train on exactly the data one process with the whole batch sees: same losses."""
    single = train(shards, tmp_path / "single", TINY)
    config = replace(TINY, batch_size=4, parallelism="fsdp")
    launch = LaunchConfig(
        nodes=2,
        procs_per_node=1,
        rdzv_endpoint=f"127.0.0.1:{free_port()}",
        rdzv_id="test-2n",
        energy_location=json.dumps({"country_iso_code": "FRA"}),
    )
    results: list = [None, None]
    errors: list = []

    def node(i: int) -> None:
        try:
            results[i] = run_local(shards, tmp_path / "multi", config, launch)
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    multi = next(r for r in results if r is not None)
    assert multi.report["world_size"] == 2 and multi.report["parallelism"] == "fsdp"
    assert losses(multi).keys() == losses(single).keys()
    for step, loss in losses(single).items():
        assert losses(multi)[step] == pytest.approx(loss, abs=2e-3), step
    assert multi.val_loss == pytest.approx(single.val_loss, abs=2e-3)
    # Each node measured itself once (machine mode). Here both "nodes" are this machine: it counts once.
    records = node_energy_records(tmp_path / "multi")
    assert sorted(r.stage for r in records) == ["pretrain-node0", "pretrain-node1"]
    assert all(r.energy_kwh > 0 and r.location == "FRA" and r.tracking_mode == "machine" for r in records)
    assert len({r.host for r in records}) == 1
    once = aggregate_ranks(records)
    assert once.ranks == 1 and once.energy_kwh == max(r.energy_kwh for r in records)
    assert [d["host"] for d in once.notes["left_out_double_counts"]] == [records[0].host]
    # On two machines, the stage's energy is their sum.
    for i, record in enumerate(records):
        record.host = f"node-{i}"
    total = aggregate_ranks(records)
    assert total.energy_kwh == pytest.approx(sum(r.energy_kwh for r in records)) and total.ranks == 2


@pytest.mark.slow
def test_killed_worker_resumes_from_last_checkpoint(shards, tmp_path):
    """SIGKILL one of two DDP workers mid-run; torchrun restarts them, they resume from the last checkpoint,
    lose fewer than `checkpoint_every` steps, and log the losses an uninterrupted run logs."""
    every = 4
    config = replace(TINY, steps=40, log_every=1, batch_size=4, checkpoint_every=every)
    reference = train(shards, tmp_path / "reference", replace(config, batch_size=8))
    seen: list[int] = []
    killed: dict = {}

    def on_log(entry: dict) -> None:
        seen.append(entry["step"])
        if entry["step"] == 10 and not killed:
            agent = next(p for p in psutil.Process().children() if "torch.distributed.run" in " ".join(p.cmdline()))
            worker = [p for p in agent.children() if "components.pretrain.train" in " ".join(p.cmdline())][-1]
            worker.send_signal(signal.SIGKILL)
            killed.update(pid=worker.pid, after_step=entry["step"])

    result = run_local(shards, tmp_path / "killed", config, LaunchConfig(procs_per_node=2, max_restarts=1), on_log)
    assert killed, "the run ended before a worker could be killed"
    resumed = result.report["resumed_from_step"]
    restart = next(i for i in range(1, len(seen)) if seen[i] <= seen[i - 1])  # the log starts over
    assert seen[restart] == resumed + 1 and resumed % every == 0
    assert 0 <= seen[restart - 1] - resumed < every  # steps done after the last checkpoint: lost, fewer than N
    for step, loss in losses(result).items():
        assert loss == pytest.approx(losses(reference)[step], abs=2e-3), step
    assert result.val_loss == pytest.approx(reference.val_loss, abs=2e-3)


def test_fused_loss_trains_as_the_whole_logits_loss_did(shards, tmp_path, monkeypatch):
    """The same seed and data with the loss computed the previous way (whole logits, then cross-entropy): the
    logged losses and the validation loss agree within float tolerance."""
    fused = train(shards, tmp_path / "fused", TINY)
    from components.pretrain import model as model_module

    def whole_logits(hidden, weight, targets):
        logits = (hidden @ weight.T).float()
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.reshape(-1), ignore_index=-100)

    monkeypatch.setattr(model_module, "linear_cross_entropy", whole_logits)
    previous = train(shards, tmp_path / "previous", TINY)
    for step, loss in losses(previous).items():
        assert losses(fused)[step] == pytest.approx(loss, abs=1e-4), step
    assert fused.val_loss == pytest.approx(previous.val_loss, abs=1e-4)
