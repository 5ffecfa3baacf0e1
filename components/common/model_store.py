"""A model store: a folder (on a laptop, or the workspace volume on a cluster) where each successful pretraining
run publishes its model under its data fingerprint, and `LATEST` names the newest one.

It exists for runs whose outputs a watcher cannot see: a run submitted to Kubeflow returns only ids, and its
artifacts live wherever the cluster's pipeline root is. Publishing to a known place lets the next run warm-start
from "the last model that finished", whichever run produced it, and a failed run never moves `LATEST`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from components.common.errors import GreenfmError
from components.common.run_status import finished_ok, run_dir_of, run_state

LATEST = "LATEST"
ORIGIN = "ORIGIN"  # inside a published model: the directory it was copied from (its run's, on this machine)


def publish(model_dir: str | Path, store: str | Path, key: str) -> Path:
    """Copy `model_dir` to `store/key` and point LATEST at it. Each step is an atomic rename, so a reader sees
    either the previous model or the complete new one."""
    if not key or "/" in key or key.startswith("."):
        raise GreenfmError(f"model store key {key!r}: expected a plain name such as a data fingerprint")
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    target = store / key
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=store))
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        (staging / ORIGIN).write_text(str(Path(model_dir).absolute()) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():  # the same data trained again: the newer model replaces it
        shutil.rmtree(target)
    os.replace(staging, target)
    pointer = store / f".{LATEST}.tmp"
    pointer.write_text(key + "\n")
    os.replace(pointer, store / LATEST)
    return target


def _finished(model: Path) -> bool:
    """Whether `model` comes from a run that finished well (see run_status.finished_ok): for a published
    model, the run it was published from, when that run's directory is on this machine."""
    origin = model / ORIGIN
    return finished_ok(origin.read_text().strip() if origin.is_file() else model)


def require_finished(model: Path) -> Path:
    run_dir = run_dir_of(model)
    if run_dir is not None and not finished_ok(model):
        raise GreenfmError(
            f"{model}: from run {run_dir}, which {run_state(run_dir)}; only a model of a succeeded run is used"
        )
    return model


def resolve(uri: str | Path, missing_ok: bool = False) -> Path | None:
    """The model directory `uri` names: a model directory itself (of a run that succeeded), or a store: the
    model LATEST names, or, when that one's run did not finish well, the newest published model whose run did
    (None when there is none yet, or, with `missing_ok`, when the store does not exist yet)."""
    path = Path(uri)
    if (path / LATEST).is_file():
        key = (path / LATEST).read_text().strip()
        model = path / key
        if not model.is_dir():
            raise GreenfmError(f"{path / LATEST}: names {key!r}, which is not in the store")
        if _finished(model):
            return model
        published = sorted(
            (p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and p != model),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        return next((p for p in published if _finished(p)), None)
    if not path.exists():
        if missing_ok:
            return None
        raise GreenfmError(f"{path}: no such model directory or model store")
    if path.is_dir() and not any(path.iterdir()):
        return None  # an empty store: nothing to start from yet
    return require_finished(path)


def warm_start_source(warm_start_model: str, model_store: str) -> str:
    """What pretraining starts from: `warm_start_model` as given, except that warm-starting from the very store
    this run publishes into means its newest model, or nothing while the store is empty or not created yet."""
    if warm_start_model and warm_start_model == model_store:
        latest = resolve(model_store, missing_ok=True)
        return str(latest) if latest else ""
    return warm_start_model
