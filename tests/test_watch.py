"""`greenfm watch`: unchanged data submits nothing, changed data submits exactly one run (with fingerprint and
warm start), and racing watchers — threads, processes, ConfigMap — never double-submit."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import RunConfig
from pipelines.submit import SubmitTarget
from pipelines.watch import SubmittedRun, WatchState, fingerprint_input, watch_once
from pipelines.watch_state import ConfigMapStateStore, FileStateStore
from pipelines.watch_submitters import KfpSubmitter, changed_parameters
from tests import fake_k8s


def write_corpus(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docs.jsonl").write_text(json.dumps({"text": text}) + "\n")
    return folder


class Recorder:
    """A submit callback that records its calls; `delay` widens the race window."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.calls: list[RunConfig] = []
        self.delay, self.fail = delay, fail
        self.lock = threading.Lock()

    def __call__(self, config: RunConfig) -> SubmittedRun:
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("server down")
        with self.lock:
            self.calls.append(config)
            n = len(self.calls)
        return SubmittedRun(run_id=f"run-{n}", model_uri=f"/models/run-{n}")


def test_first_watch_submits_with_fingerprint(tmp_path):
    data = write_corpus(tmp_path / "data", "hello world")
    submit = Recorder()
    result = watch_once(str(data), FileStateStore(tmp_path / "state.json"), submit)
    assert result.action == "submitted" and result.run_id == "run-1"
    (config,) = submit.calls
    assert config.data_fingerprint == fingerprint_input(str(data)) == result.fingerprint
    assert config.input_uri == str(data) and config.warm_start_model == ""
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["fingerprint"] == result.fingerprint and saved["model_uri"] == "/models/run-1"


def test_unchanged_data_submits_nothing(tmp_path):
    data = write_corpus(tmp_path / "data", "hello world")
    store, submit = FileStateStore(tmp_path / "state.json"), Recorder()
    watch_once(str(data), store, submit)
    # Touching the file (new mtime, same bytes) is not a change.
    (data / "docs.jsonl").write_text((data / "docs.jsonl").read_text())
    assert watch_once(str(data), store, submit).action == "unchanged"
    assert len(submit.calls) == 1


def test_changed_data_submits_once_and_warm_starts_from_last_model(tmp_path):
    data = write_corpus(tmp_path / "data", "hello world")
    store, submit = FileStateStore(tmp_path / "state.json"), Recorder()
    first = watch_once(str(data), store, submit, RunConfig(train_steps=9))
    write_corpus(data, "hello changed world")
    second = watch_once(str(data), store, submit, RunConfig(train_steps=9))
    third = watch_once(str(data), store, submit, RunConfig(train_steps=9))
    assert [r.action for r in (first, second, third)] == ["submitted", "submitted", "unchanged"]
    assert second.fingerprint != first.fingerprint
    assert submit.calls[1].warm_start_model == "/models/run-1"
    assert submit.calls[1].train_steps == 9  # --param overrides carried into the run


def test_failed_submit_is_not_accepted_and_retried(tmp_path):
    data = write_corpus(tmp_path / "data", "hello world")
    store = FileStateStore(tmp_path / "state.json")
    with pytest.raises(RuntimeError):
        watch_once(str(data), store, Recorder(fail=True))
    assert not (tmp_path / "state.json").exists()
    retry = Recorder()
    assert watch_once(str(data), store, retry).action == "submitted"
    assert len(retry.calls) == 1


def race(n: int, make_store, data: Path, submit: Recorder) -> list[str]:
    """n watchers released at the same instant, each with its own store handle (as separate pods would be)."""
    barrier = threading.Barrier(n)
    results: list[str] = []

    def worker(i: int) -> None:
        barrier.wait()
        results.append(watch_once(str(data), make_store(i), submit).action)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_threads_submit_exactly_once(tmp_path):
    data = write_corpus(tmp_path / "data", "hello world")
    submit = Recorder(delay=0.3)
    results = race(4, lambda i: FileStateStore(tmp_path / "state.json"), data, submit)
    assert len(submit.calls) == 1
    assert results.count("submitted") == 1 and set(results) <= {"submitted", "busy", "unchanged"}


def _process_worker(data: str, state: str, log: str, barrier) -> None:
    def submit(config: RunConfig) -> SubmittedRun:
        with open(log, "a") as handle:  # O_APPEND: one line per submit, from any process
            handle.write(config.data_fingerprint + "\n")
        time.sleep(0.3)
        return SubmittedRun(run_id="p")

    barrier.wait()
    watch_once(data, FileStateStore(Path(state)), submit)


def test_concurrent_processes_submit_exactly_once(tmp_path):
    data = write_corpus(tmp_path / "data", "hello world")
    log = tmp_path / "submits.log"
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_process_worker, args=(str(data), str(tmp_path / "s.json"), str(log), barrier))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    assert len(log.read_text().splitlines()) == 1


def _cm_store(url: str, owner: str) -> ConfigMapStateStore:
    return ConfigMapStateStore(
        "greenfm-watch-state", fake_k8s.STANDALONE[0], api=k8s.CoreV1Api(fake_k8s.api_client(url)), owner=owner
    )


def test_configmap_state_unchanged_and_changed(tmp_path, api_server):
    fake, url = api_server
    data = write_corpus(tmp_path / "data", "hello world")
    submit = Recorder()
    assert watch_once(str(data), _cm_store(url, "a"), submit).action == "submitted"
    assert watch_once(str(data), _cm_store(url, "a"), submit).action == "unchanged"
    write_corpus(data, "new text")
    assert watch_once(str(data), _cm_store(url, "a"), submit).action == "submitted"
    assert len(submit.calls) == 2 and submit.calls[1].warm_start_model == "/models/run-1"
    stored = fake.objects[(("configmaps",), fake_k8s.STANDALONE[0], "greenfm-watch-state")]["data"]
    assert set(stored) == {"state.json"}  # the claim is gone once the run is recorded
    assert WatchState.from_dict(json.loads(stored["state.json"])).run_id == "run-2"


def test_configmap_concurrent_watchers_submit_exactly_once(tmp_path, api_server):
    _, url = api_server
    data = write_corpus(tmp_path / "data", "hello world")
    submit = Recorder(delay=0.3)
    results = race(4, lambda i: _cm_store(url, f"w{i}"), data, submit)
    assert len(submit.calls) == 1
    assert results.count("submitted") == 1


def test_changed_parameters_only_differences():
    assert changed_parameters(RunConfig(seed=7, data_fingerprint="ab")) == {"seed": 7, "data_fingerprint": "ab"}


def test_cli_watch_submits_to_kfp_once(tmp_path, kfp_server):
    fake, url = kfp_server
    data = write_corpus(tmp_path / "data", "hello world")
    args = [
        "watch",
        "--input",
        str(data),
        "--state",
        str(tmp_path / "state.json"),
        "--host",
        url,
        "--param",
        "train_steps=4",
    ]
    first = CliRunner().invoke(app, args)
    second = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.stdout.strip().splitlines()[-1] == "submitted"
    assert second.stdout.strip().splitlines()[-1] == "running"  # accepted only once it succeeded
    (run,) = fake.runs.values()
    run["state"] = "SUCCEEDED"
    third = CliRunner().invoke(app, args)
    assert third.exit_code == 0 and third.stdout.strip().splitlines()[-1] == "unchanged", third.output
    (run,) = fake.runs.values()
    params = run["runtime_config"]["parameters"]
    assert params["data_fingerprint"] == fingerprint_input(str(data))
    assert params["input_uri"] == str(data) and params["train_steps"] == 4
    assert run["display_name"] == f"greenfm-data-{params['data_fingerprint'][:12]}"


def test_kfp_submitter_returns_server_run_id(tmp_path, kfp_server):
    fake, url = kfp_server
    run = KfpSubmitter(SubmitTarget(url))(
        RunConfig(input_uri="/data", data_fingerprint="f" * 64, warm_start_model="/m")
    )
    assert run.run_id in fake.runs and run.model_uri == ""
    assert fake.runs[run.run_id]["runtime_config"]["parameters"]["warm_start_model"] == "/m"


def test_kfp_runs_warm_start_from_the_model_store(tmp_path, kfp_server):
    """A KFP run's model is not addressable from the watcher; the store it publishes into is."""
    fake, url = kfp_server
    data = write_corpus(tmp_path / "data", "hello world")
    state = tmp_path / "state.json"
    args = [
        "watch",
        "--input",
        str(data),
        "--state",
        str(state),
        "--host",
        url,
        "--param",
        "model_store=/workspace/models",
    ]
    assert CliRunner().invoke(app, args).exit_code == 0
    (first_run,) = fake.runs.values()
    first_run["state"] = "SUCCEEDED"  # the next change is submitted once this one's run has succeeded
    write_corpus(tmp_path / "data", "hello changed world")
    assert CliRunner().invoke(app, args).exit_code == 0
    first, second = (run["runtime_config"]["parameters"] for run in fake.runs.values())
    assert "warm_start_model" not in first  # nothing to start from yet
    assert second["warm_start_model"] == second["model_store"] == "/workspace/models"
