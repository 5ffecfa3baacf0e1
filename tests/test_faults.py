"""Faults done for real: kill -9 of a run (by pid and by its process group) at curation and at pretraining, a
full output disk, a failed rewrite of an existing dataset, concurrent runs into one folder, a tampered profile
store, a failed step's message, repeated tracebacks, reruns whose manifests must compare equal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from components.common.atomic import atomic_write_text, staged_dir
from components.common.errors import OutputError
from components.common.run_status import (
    FAILED,
    INTERRUPTED,
    RUN_STATUS,
    RUNNING,
    SUCCEEDED,
    finished_ok,
    read_status,
    write_status,
)

TINY = {
    "vocab_size": 512,
    "min_documents": 50,
    "model_size": "tiny",
    "seq_len": 64,
    "batch_size": 8,
    "train_steps": 30,
    "adapt_steps": 30,
    "quality_preset": "docstrings",
}


# ---------------------------------------------------------------- atomic outputs


def test_a_failed_rewrite_keeps_the_previous_folder_whole(tmp_path):
    target = tmp_path / "dataset"
    with staged_dir(target) as staging:
        (staging / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_dir(target) as staging:
        (staging / "new.txt").write_text("half")
        raise RuntimeError("the job failed half way")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no staging left behind
    with staged_dir(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): the full-disk case needs one")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    _tmpfs(mount, "1m")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_names_the_file_and_leaves_no_partial_file(small_disk):
    target = small_disk / "profile.json"
    atomic_write_text(target, "previous\n")
    with pytest.raises(OutputError, match=rf"{target}: cannot write: No space left on device"):
        atomic_write_text(target, "x" * 2_000_000)
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["profile.json"]


@pytest.mark.slow
def test_curating_onto_a_full_disk_fails_in_one_line_and_keeps_the_old_dataset(spark, tiny_corpus, tmp_path):
    from components.common.fingerprint import tree_sha256
    from components.curate.job import CurateConfig, curate
    from components.curate.quality import quality_preset

    config = CurateConfig(vocab_size=512, quality=quality_preset("docstrings"))
    probe = curate(str(tiny_corpus), tmp_path / "probe", config)
    size = sum(p.stat().st_size for p in Path(probe.output_dir).rglob("*") if p.is_file())
    disk = tmp_path / "disk"
    _tmpfs(disk, str(int(size * 1.5) // 4096 * 4096))  # room for one dataset, not for a second beside it
    try:
        first = curate(str(tiny_corpus), disk / "curated", config)
        before = tree_sha256(first.output_dir)
        with pytest.raises(OutputError) as failure:
            curate(str(tiny_corpus), disk / "curated", config)
        message = str(failure.value)
        assert "\n" not in message and "No space left on device" in message
        assert message.startswith(str(disk / "curated")), message  # names the output, not a staging folder
        assert tree_sha256(disk / "curated") == before  # the old dataset is whole
        assert sorted(p.name for p in disk.iterdir()) == ["curated"]  # and no half-written one beside it
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ---------------------------------------------------------------- bad values


def test_a_negative_vocabulary_size_is_one_line_before_spark_starts(tmp_path, tiny_corpus):
    from typer.testing import CliRunner

    from pipelines.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["curate", "--input", str(tiny_corpus), "--output", str(out), "--vocab-size", "-1"]
    )
    assert result.exit_code == 2, result.output
    assert "vocab_size" in result.output and "-1" in result.output and "Traceback" not in result.output
    assert not out.exists()


# ---------------------------------------------------------------- profile store


def test_a_truncated_accepted_profile_is_reported_and_does_not_fail_every_gate(curated, tmp_path):
    from components.validate.config import ValidateConfig
    from components.validate.gate import validate
    from components.validate.profile import PROFILE_FILE, load_accepted

    store = tmp_path / "store"
    config = ValidateConfig(min_documents=10, profile_store=str(store))
    assert validate(curated.output_dir, tmp_path / "docs1", config).passed
    accepted = (store / PROFILE_FILE).read_bytes()
    (store / PROFILE_FILE).write_bytes(accepted[: len(accepted) // 2])  # a copy cut short

    gate = validate(curated.output_dir, tmp_path / "docs2", config)
    assert gate.passed, gate.failures
    (warning,) = [w for w in gate.warnings if "drift not measured" in w]
    assert f"{store}/{PROFILE_FILE}: truncated or not JSON" in warning
    assert "unusable" in gate.summary_markdown()
    assert load_accepted(str(store)) is not None  # the passing gate replaced it
    assert sorted(p.name for p in store.iterdir()) == ["accepted_datasheet.md", PROFILE_FILE]  # no temporaries


# ---------------------------------------------------------------- run status and the reaper


def test_running_with_a_dead_owner_reads_as_interrupted(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    write_status(tmp_path, RUNNING, pid=child.pid)
    assert read_status(tmp_path).status == RUNNING or child.poll() is not None
    child.wait()
    assert read_status(tmp_path).status == INTERRUPTED
    assert not finished_ok(tmp_path / "artifacts" / "model")
    write_status(tmp_path, SUCCEEDED)
    assert finished_ok(tmp_path / "artifacts" / "model")
    write_status(tmp_path, FAILED, "boom")
    assert not finished_ok(tmp_path / "artifacts" / "model")


_TREE = """
import subprocess, sys, time
from pathlib import Path
from pipelines.reaper import supervised
run_dir = Path(sys.argv[1])
with supervised(run_dir):
    sleeper = [sys.executable, "-c", "import time; time.sleep(300)"]
    subprocess.Popen(["sh", "-c", " ".join(sleeper[:2]) + ' "import time; time.sleep(300)" & wait'])
    subprocess.Popen(sleeper, start_new_session=True)  # escapes the process group, as torchrun workers may
    (run_dir / "ready").write_text("")
    time.sleep(300)
"""


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _assert_all_gone(processes: list[psutil.Process], timeout: float = 20) -> None:
    def gone() -> bool:
        return not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    _wait_for(gone, timeout, "the run's processes to end")


@pytest.mark.parametrize("target", ["pid", "group"])
def test_kill_9_of_a_supervised_process_ends_its_whole_tree(tmp_path, target):
    owner = subprocess.Popen([sys.executable, "-c", _TREE, str(tmp_path)], start_new_session=True)
    _wait_for(lambda: (tmp_path / "ready").exists(), 30, "the tree to start")
    tree = _descendants(owner.pid)
    assert len([p for p in tree if "time.sleep(300)" in " ".join(p.cmdline())]) >= 2
    os.kill(owner.pid, signal.SIGKILL) if target == "pid" else os.killpg(owner.pid, signal.SIGKILL)
    owner.wait()
    _assert_all_gone(tree)
    _wait_for(lambda: read_status(tmp_path).status == INTERRUPTED, 10, "RUN_STATUS to say interrupted")
    assert json.loads((tmp_path / RUN_STATUS).read_text())["status"] == INTERRUPTED  # written, not only inferred


def _run_with_model(run_dir: Path, model: Path, status: str) -> Path:
    import shutil

    target = run_dir / "artifacts" / "greenfm-1" / "pretrain-op" / "model"
    shutil.copytree(model, target)
    (run_dir / "pipeline.log").write_text("")
    owner = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    write_status(run_dir, status, pid=owner.pid)
    owner.communicate(b"")  # the owner ends: a "running" status is now an interrupted run
    return target


def test_no_model_is_taken_from_an_unfinished_run(pretrained, tmp_path):
    from rich.console import Console

    from components.adapt.lineage import find_models, lineage_tree
    from components.common.errors import GreenfmError
    from components.common.model_store import publish, resolve

    model = Path(pretrained.model_dir)
    done = _run_with_model(tmp_path / "runs" / "done", model, SUCCEEDED)
    killed = _run_with_model(tmp_path / "runs" / "killed", model, RUNNING)  # its owner is dead
    failed = _run_with_model(tmp_path / "runs" / "failed", model, FAILED)

    assert [node.path for node in find_models(tmp_path / "runs")] == [done]
    console = Console(record=True, width=200)
    console.print(lineage_tree(tmp_path / "runs"))
    text = console.export_text()
    assert "killed" in text and "run interrupted" in text and "run failed" in text

    assert resolve(done) == done
    for unfinished, state in ((killed, "interrupted"), (failed, "failed")):
        with pytest.raises(GreenfmError, match=f"which {state}; only a model of a succeeded run"):
            resolve(unfinished)
    store = tmp_path / "store"
    publish(done, store, "fp-done")
    time.sleep(0.05)
    publish(killed, store, "fp-killed")  # LATEST names the interrupted run's model
    assert resolve(store) == store / "fp-done"  # warm start takes the newest finished one instead


# ---------------------------------------------------------------- run directories


def test_run_directories_are_claimed_atomically(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.local_run import new_run_dir

    with ThreadPoolExecutor(12) as pool:
        made = list(pool.map(lambda _: new_run_dir(tmp_path, "abcdef0123"), range(24)))
    assert len(set(made)) == 24 and all(p.is_dir() for p in made)


# ---------------------------------------------------------------- failure messages


def test_a_failed_task_reports_its_own_error_and_repeated_tracebacks_collapse(tmp_path):
    from pipelines.local_run import _LogTee

    traceback = [
        "    Traceback (most recent call last):",
        '      File "train.py", line 3, in <module>',
        "        main()",
        "    ValueError: parallelism must be ddp or fsdp",
    ]
    events = []
    with open(tmp_path / "log", "w") as handle:
        tee = _LogTee(handle, lambda task, status: events.append((task, status)))
        tee.write("\x1b[32mExecuting task 'pretrain-op'\x1b[0m\n")
        for attempt in range(3):  # torchrun restarting the same failure
            tee.write(f"attempt {attempt}\n" + "\n".join(f"[rank0]:{line}" for line in traceback) + "\n")
        tee.write("    torch.distributed.elastic.multiprocessing.errors.ChildFailedError: train.py FAILED\n")
        tee.write("Task \x1b[96m'pretrain-op'\x1b[0m finished with status \x1b[91mFAILURE\x1b[0m\n")
        tee.finish()
    log = (tmp_path / "log").read_text()
    assert log.count("Traceback") == 1 and log.count("the traceback above again") == 2
    assert "attempt 2" in log
    assert tee.task_errors == {"pretrain-op": "parallelism must be ddp or fsdp"}
    assert events == [("pretrain-op", "RUNNING"), ("pretrain-op", "FAILURE")]


# ---------------------------------------------------------------- whole runs


def _greenfm_run(tmp_path: Path, corpus: Path, config: dict, out: Path, **popen) -> subprocess.Popen:
    config_file = tmp_path / f"{out.name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "pipelines.cli", "run", "--input", str(corpus), "--config", str(config_file)]
    return subprocess.Popen(
        [*command, "--out", str(out), "--zone", "FIN"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def _running(tree_of: int, needle: str) -> list[psutil.Process] | None:
    with contextlib.suppress(psutil.Error):
        tree = _descendants(tree_of)
        if any(needle in " ".join(p.cmdline()) for p in tree if p.is_running()):
            return tree
    return None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "needle", "target"),
    [
        ("curation", "org.apache.spark.deploy.SparkSubmit", "pid"),
        ("curation", "org.apache.spark.deploy.SparkSubmit", "group"),
        ("pretraining", "components.pretrain.train", "pid"),
        ("pretraining", "components.pretrain.train", "group"),
    ],
)
def test_kill_9_of_greenfm_run_leaves_nothing_running(tmp_path, tiny_corpus, stage, needle, target):
    out = tmp_path / "runs"
    config = {**TINY, "train_steps": 100_000} if stage == "pretraining" else TINY
    run = _greenfm_run(tmp_path, tiny_corpus, config, out, start_new_session=True)  # its own group, as a shell job
    tree = _wait_for(lambda: _running(run.pid, needle), 600, f"{stage} to start")
    time.sleep(2)
    tree = _descendants(run.pid) or tree  # everything alive at the moment of the kill
    os.kill(run.pid, signal.SIGKILL) if target == "pid" else os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    _assert_all_gone(tree)
    run_dir = _only_run_dir(out)
    _wait_for(lambda: read_status(run_dir).status == INTERRUPTED, 20, "RUN_STATUS to say interrupted")
    files = sorted(str(p) for p in run_dir.rglob("*"))
    time.sleep(5)
    assert sorted(str(p) for p in run_dir.rglob("*")) == files  # nothing writes into the dead run
    assert not finished_ok(run_dir)


@pytest.mark.slow
def test_six_concurrent_runs_into_one_folder_each_get_their_own_directory(tmp_path, tiny_corpus):
    # An unknown GPU type fails the pretraining placement, after curation and the gate: six runs claim their
    # directories in the same second, curate and write the shared profile store at once, then fail.
    out = tmp_path / "runs"
    runs = [_greenfm_run(tmp_path, tiny_corpus, {**TINY, "gpu_type": "no-such-gpu"}, out) for _ in range(6)]
    results = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 2 for run in runs), [err[-2000:] for _, err in results]
    for _, err in results:
        assert "FileExistsError" not in err and "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith("error: run failed: placement")
    run_dirs = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(run_dirs) == 6
    assert all(read_status(p).status == FAILED for p in run_dirs)
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


@pytest.mark.slow
def test_a_failed_step_is_reported_by_its_own_message(tmp_path, tiny_corpus):
    # The workers fail at start (no such warm-start model) and torchrun restarts them: the same traceback
    # three times, then torchrun's own report.
    missing = tmp_path / "no-such-model"
    run = _greenfm_run(tmp_path, tiny_corpus, {**TINY, "warm_start_model": str(missing)}, tmp_path / "runs")
    _, err = run.communicate(timeout=900)
    assert run.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: run failed: pretrain: torchrun exited with 1: {missing}: no such model"), last
    assert "\x1b[" not in last and "Inner task failed" not in last
    run_dir = _only_run_dir(tmp_path / "runs")
    assert read_status(run_dir).status == FAILED
    log = (run_dir / "pipeline.log").read_text()
    assert log.count(f"{missing}: no such model directory or model store") >= 3  # every attempt is accounted for
    assert "the traceback above again" in log
