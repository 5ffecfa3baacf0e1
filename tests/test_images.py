"""`greenfm images build` without an engine: what an image's inputs hash covers, and the build arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.common.errors import GreenfmError
from pipelines.images import BuildOptions, ImageSpec, context_files, find_engine, inputs_hash, sources_digest


def _tree(root: Path) -> ImageSpec:
    for path, text in {
        "images/base.Dockerfile": "FROM x\n",
        "pyproject.toml": "[project]\n",
        "README.md": "r\n",
        "components/a.py": "A = 1\n",
        "pipelines/b.py": "B = 1\n",
        "tests/test_c.py": "C = 1\n",
        "images/wheels/README.md": "w\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return ImageSpec("base", "images/base.Dockerfile", "example/base:1")


def test_inputs_hash_covers_the_build_context_and_arguments(tmp_path):
    spec = _tree(tmp_path)
    before = inputs_hash(spec, {}, tmp_path)
    assert inputs_hash(spec, {}, tmp_path) == before
    (tmp_path / "tests/test_c.py").write_text("C = 2\n")  # not in the build context
    (tmp_path / "components/__pycache__").mkdir()
    (tmp_path / "components/__pycache__/a.cpython-311.pyc").write_bytes(b"\0")
    assert inputs_hash(spec, {}, tmp_path) == before
    assert inputs_hash(spec, {"BASE_IMAGE": "other"}, tmp_path) != before
    assert inputs_hash(spec, {}, tmp_path, parent="abc") != before
    sources = sources_digest(tmp_path)
    (tmp_path / "components/a.py").write_text("A = 2\n")
    assert inputs_hash(spec, {}, tmp_path) != before and sources_digest(tmp_path) != sources
    assert {p.name for p in context_files(tmp_path)} == {"pyproject.toml", "README.md", "a.py", "b.py"}


def test_build_arguments():
    assert BuildOptions().build_args() == {}
    wheel = BuildOptions(base_image="local/python:3.11", torch_wheel="/w/torch-2.13.0+cpu-cp311-x.whl")
    assert wheel.build_args() == {
        "BASE_IMAGE": "local/python:3.11",
        "TORCH": "/wheels/torch-2.13.0+cpu-cp311-x.whl",
        "TORCH_INDEX_URL": "https://pypi.org/simple",  # torch's own dependencies
    }


def test_a_missing_engine_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("GREENFM_CONTAINER_ENGINE", "no-such-engine")
    with pytest.raises(GreenfmError, match="no container engine: no-such-engine not found"):
        find_engine()
