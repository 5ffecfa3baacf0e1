"""`--runner docker`'s host-side checks, without a container engine: a folder the images' user cannot read is
refused in one line before any container starts."""

from __future__ import annotations

import pytest

from components.common.errors import GreenfmError
from pipelines.docker_runner import require_readable_by_image_user


def _corpus(tmp_path, folder_mode: int, file_mode: int):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "docs.jsonl").write_text('{"id": "a", "text": "x"}\n')
    (folder / "docs.jsonl").chmod(file_mode)
    folder.chmod(folder_mode)
    return folder


def test_a_private_input_folder_is_refused_naming_it(tmp_path):
    folder = _corpus(tmp_path, 0o700, 0o644)
    with pytest.raises(GreenfmError, match=r"corpus: the images' user \(uid 10001, group 0\) cannot read it") as error:
        require_readable_by_image_user(folder)
    assert "drwx------" in str(error.value) and "\n" not in str(error.value)


def test_a_private_file_in_a_readable_folder_is_refused_naming_the_file(tmp_path):
    folder = _corpus(tmp_path, 0o755, 0o600)
    with pytest.raises(GreenfmError, match=r"docs\.jsonl: the images' user"):
        require_readable_by_image_user(folder)


def test_a_readable_input_and_a_store_not_yet_created_pass(tmp_path):
    require_readable_by_image_user(_corpus(tmp_path, 0o755, 0o644))
    (tmp_path / "single").mkdir()
    require_readable_by_image_user(_corpus(tmp_path / "single", 0o755, 0o644) / "docs.jsonl")
    require_readable_by_image_user(tmp_path / "model-store")
