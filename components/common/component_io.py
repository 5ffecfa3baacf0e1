"""What every KFP component does around its stage, in one place: run the stage's work measured by the energy
tracker at the location its placement chose, then copy the stage's files to the component's output artifacts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def measured(stage: str, location: str, work: Callable[[], T]) -> tuple[T, dict]:
    """(work's result, the stage's energy record); `location` is select_region's JSON Location."""
    from components.carbon.tracking import Location, measure

    return measure(stage, Location(**json.loads(location)), work)


def copy_outputs(pairs: Iterable[tuple[str | Path, str]]) -> None:
    """Copy each (stage file or folder, artifact path): what KFP uploads is what the stage wrote."""
    for source, target in pairs:
        if Path(source).is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
