"""What every KFP component does around its stage, in one place: run the stage's work measured by the energy
tracker at the location its placement chose, then copy the stage's files to the component's output artifacts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from components.carbon.records import EnergyRecord

T = TypeVar("T")


def measured(
    stage: str, location: str, work: Callable[[], T], tracking_mode: str | None = None
) -> tuple[T, EnergyRecord]:
    """(work's result, the stage's energy record); `location` is select_region's JSON Location; tracking_mode
    None: codecarbon's process mode in a pod, machine mode elsewhere (carbon.tracking.default_tracking_mode)."""
    from components.carbon.tracking import Location, measure

    return measure(stage, Location(**json.loads(location)), work, tracking_mode)


def copy_outputs(pairs: Iterable[tuple[str | Path, str]]) -> None:
    """Copy each (stage file or folder, artifact path): what KFP uploads is what the stage wrote."""
    for source, target in pairs:
        if Path(source).is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
