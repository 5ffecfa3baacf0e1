"""Which Kubeflow Pipelines backend a compiled pipeline needs, read from the IR itself, and whether a server has
it. An older backend does not ignore what it does not know: its driver parses the platform spec strictly and
fails the run ("unknown field"), hours into a queue, so `greenfm submit` checks first.

The versions are the first kubeflow/pipelines backend release whose driver/compiler reads the field
(the release tags containing the commit that added it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from components.common.errors import GreenfmError

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Feature:
    since: Version
    what: str
    used_by: Callable[[dict], bool]  # one executor's kubernetes platform spec -> uses the feature


def _optional_env(executor: dict) -> bool:
    return any(item.get("optional") for key in ("secretAsEnv", "configMapAsEnv") for item in executor.get(key, []))


FEATURES = (
    Feature((2, 1, 0), "environment from the downward API (fieldPathAsEnv)", lambda e: bool(e.get("fieldPathAsEnv"))),
    Feature(
        (2, 5, 0),
        "node selectors from a task output (nodeSelectorJson)",
        lambda e: "nodeSelectorJson" in e.get("nodeSelector", {}),
    ),
    Feature((2, 15, 0), "optional Secret/ConfigMap environment variables (optional)", _optional_env),
)


def format_version(version: Version) -> str:
    return ".".join(map(str, version))


def parse_version(text: str) -> Version | None:
    """`2.15.0`, `v2.16.1`, `2.15.0-rc.1` → (2, 15, 0); a build without a release tag (unknown, master) → None."""
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return tuple(int(part) for part in match.groups()) if match else None  # type: ignore[return-value]


def required_backend(ir_platforms: dict) -> tuple[Version, list[str]]:
    """The oldest backend that runs a pipeline whose IR has these `platforms`, and the features that need it."""
    executors = (ir_platforms or {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    used = [feature for feature in FEATURES if any(feature.used_by(spec) for spec in executors.values())]
    if not used:
        return (2, 0, 0), []
    newest = max(feature.since for feature in used)
    return newest, [feature.what for feature in used if feature.since == newest]


def check_backend(host: str, server_tag: str, needed: Version, reasons: list[str]) -> None:
    """Fail with one line when the server's release is older than `needed`; a server without a release tag
    (a development build) is let through."""
    server = parse_version(server_tag or "")
    if server is not None and server < needed:
        raise GreenfmError(
            f"{host}: Kubeflow Pipelines backend {format_version(server)} is too old for this pipeline; it needs "
            f">= {format_version(needed)} ({'; '.join(reasons)}). Upgrade Kubeflow Pipelines (docs/deploy.md)"
        )
