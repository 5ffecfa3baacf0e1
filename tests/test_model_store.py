"""The model store: publish under a key, LATEST moves only on a complete publish, resolve store or model."""

import pytest

from components.common.errors import GreenfmError
from components.common.model_store import LATEST, publish, resolve, warm_start_source


def _model(folder, marker: str):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_text(marker)
    (folder / "config.json").write_text("{}")
    return folder


def test_publish_then_resolve_latest(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    assert resolve(store) is None  # empty store: nothing to warm-start from yet
    publish(_model(tmp_path / "a", "first"), store, "fp1")
    assert resolve(store) == store / "fp1"
    assert sorted(p.name for p in store.iterdir()) == [LATEST, "fp1"]
    publish(_model(tmp_path / "b", "second"), store, "fp2")
    assert resolve(store) == store / "fp2" and (store / LATEST).read_text().strip() == "fp2"
    assert (store / "fp1" / "model.safetensors").read_text() == "first"  # earlier models stay
    publish(_model(tmp_path / "c", "again"), store, "fp1")  # same data retrained: replaced, LATEST follows
    assert resolve(store) == store / "fp1" and (store / "fp1" / "model.safetensors").read_text() == "again"
    assert sorted(p.name for p in store.iterdir()) == [LATEST, "fp1", "fp2"]  # no staging leftovers


def test_resolve_a_model_directory_and_errors(tmp_path):
    model = _model(tmp_path / "m", "x")
    assert resolve(model) == model
    with pytest.raises(GreenfmError, match="no such model"):
        resolve(tmp_path / "missing")
    assert resolve(tmp_path / "missing", missing_ok=True) is None  # a store nobody published into yet
    store = tmp_path / "store"
    store.mkdir()
    (store / LATEST).write_text("gone\n")
    with pytest.raises(GreenfmError, match="not in the store"):
        resolve(store)
    with pytest.raises(GreenfmError, match="plain name"):
        publish(model, store, "../escape")


def test_a_failed_copy_leaves_latest_alone(tmp_path, monkeypatch):
    import shutil

    store = tmp_path / "store"
    publish(_model(tmp_path / "a", "first"), store, "fp1")

    def broken_copy(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copytree", broken_copy)
    with pytest.raises(OSError):
        publish(_model(tmp_path / "b", "second"), store, "fp2")
    assert resolve(store) == store / "fp1"
    assert sorted(p.name for p in store.iterdir()) == [LATEST, "fp1"]


def test_warm_start_source(tmp_path):
    store = tmp_path / "store"
    assert warm_start_source(str(store), str(store)) == ""  # first run: the store does not exist yet
    assert warm_start_source("/some/model", str(store)) == "/some/model"  # an explicit model wins
    assert warm_start_source("", str(store)) == ""
    publish(_model(tmp_path / "a", "first"), store, "fp1")
    assert warm_start_source(str(store), str(store)) == str(store / "fp1")
