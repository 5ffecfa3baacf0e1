"""The run manifest: everything needed to reproduce a run and to check that a rerun matched it."""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from components.common.atomic import atomic_write_text
from components.common.fingerprint import file_sha256, sorted_digest, text_sha256, tree_sha256
from pipelines.config import RunConfig
from pipelines.local_run import LocalRun
from pipelines.tasks import task_key, task_keys

MANIFEST = "manifest.json"
PACKAGES = (
    "greenfm",
    "torch",
    "kfp",
    "kfp-kubernetes",
    "pyspark",
    "great-expectations",
    "codecarbon",
    "tokenizers",
    "pandas",
    "pyarrow",
)
# Files whose bytes carry timestamps or run ids by design; their meaning is hashed elsewhere.
_VOLATILE = {"executor_output.json"}
# What differs between two identical runs by its nature, recorded beside the hashes rather than in them:
# JSON keys holding clocks and measurements (time, throughput, energy), writer files (Spark's checksums and
# markers), rendered documents (their facts are in the JSON they are rendered from), restart scratch
# (checkpoints), Great Expectations' Data Docs (named by validation time) and the carbon statement.
VOLATILE_KEYS = frozenset(
    {
        "seconds",
        "warmup_seconds",
        "wall_seconds",
        "tokens_per_second",
        "started_at",
        "finished_at",
        "start",
        "energy",
        "energy_kwh",
    }
    | {"emissions_kg", "submitted_at", "updated_at", "mfu", "peak_memory_gb", "measured_at", "generated_at", "at"}
    # the evaluation's efficiency section: it predicts for a fixed time, so even the count of predictions varies
    | {"latency_ms", "latency_ms_median", "predictions", "predictions_per_second", "energy_kwh_per_1k_predictions"}
)
# Stages whose every output is a measurement of this run: every number in the carbon statement is measured. (The
# evaluation's report JSON is hashed with its measured keys above set aside; its renderings and model cards,
# which embed the CO2e, are rendered documents.)
_MEASUREMENT_STAGES = ("carbon-statement",)
_DATA_JSON = {"tokenizer.json"}  # JSON whose keys are data (a vocabulary), hashed as bytes
_WRITER_FILES = ("_SUCCESS", ".crc")
_RENDERED = (".md", ".html", ".htm", ".png", ".svg")
_SCRATCH = ("checkpoints", "data_docs", "data_docs_site")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: Path) -> dict | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def executor_outputs(task_dir: Path) -> dict:
    path = task_dir / "executor_output.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("parameterValues", {})


@dataclass
class _Canon:
    """Turns an artifact into what two identical runs share: paths inside the run made relative to it,
    volatile keys moved out (into `volatile`), Parquet hashed by its rows in sorted order."""

    places: list[tuple[str, str]]  # (absolute prefix, placeholder), longest first
    volatile: dict = field(default_factory=dict)

    @classmethod
    def for_run(cls, run: LocalRun) -> _Canon:
        places = [(run.artifacts_dir, "<artifacts>"), (run.run_dir, "<run>"), (run.run_dir.parent, "<runs>")]
        return cls([(str(path.resolve()), name) for path, name in places])

    def value(self, value, where: str):
        if isinstance(value, dict):
            kept = {}
            for key, item in value.items():
                if key in VOLATILE_KEYS:
                    self.volatile[f"{where}.{key}"] = item
                else:
                    kept[key] = self.value(item, f"{where}.{key}")
            return kept
        if isinstance(value, list):
            return [self.value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, str):
            if value[:1] in "{[":  # a JSON document passed as a string parameter
                with contextlib.suppress(ValueError):
                    return self.value(json.loads(value), where)
            for prefix, name in self.places:
                value = value.replace(prefix, name)
        return value

    def json_sha256(self, value, where: str) -> str:
        return text_sha256(json.dumps(self.value(value, where), sort_keys=True, separators=(",", ":")))

    def paths(self, value):
        """`value` with paths inside the run made relative to it (and nothing else touched)."""
        if isinstance(value, dict):
            return {key: self.paths(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.paths(item) for item in value]
        if isinstance(value, str):
            for prefix, name in self.places:
                value = value.replace(prefix, name)
        return value

    def file_sha256(self, path: Path, where: str) -> str | None:
        """The deterministic hash of one file, or None when the file is volatile (then recorded as such)."""
        if path.name.endswith(_WRITER_FILES) or path.name.startswith("."):
            return None
        if path.suffix in _RENDERED:
            self.volatile[where] = file_sha256(path)
            return None
        if path.name in _DATA_JSON or path.suffix not in ("", ".json"):
            return file_sha256(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            return file_sha256(path)
        try:
            return self.json_sha256(json.loads(text), where)
        except ValueError:
            pass
        if path.suffix == "" and (text.lstrip()[:1] in ("#", "<") or text.startswith("---\n")):
            # a Markdown (or Markdown with YAML front matter, a model card) or HTML artifact: rendered
            self.volatile[where] = text_sha256(self.paths(text))
            return None
        return text_sha256(self.paths(text))

    def artifact_sha256(self, path: Path, where: str) -> str | None:
        """None for an artifact that is volatile as a whole (recorded under `volatile`)."""
        if path.is_file():
            described = self.file_sha256(path, where)
            return described
        if path.name in _SCRATCH:
            self.volatile[where] = tree_sha256(path)
            return None
        parts = []
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path).as_posix()
            if child.is_dir() and any(child.glob("*.parquet")):
                parts.append(f"{relative}\0{self.parquet_rows_sha256(child)}")
            elif (
                child.is_file()
                and child.suffix != ".parquet"
                and (digest := self.file_sha256(child, f"{where}/{relative}")) is not None
            ):
                parts.append(f"{relative}\0{digest}")
        return text_sha256("\n".join(parts))

    def parquet_rows_sha256(self, folder: Path) -> str:
        """Hash of a Parquet dataset's rows, whatever the part files' names, sizes and order."""
        import pyarrow.parquet as pq

        table = pq.read_table(sorted(str(p) for p in folder.glob("*.parquet")))
        rows = (json.dumps(self.paths(row), sort_keys=True, default=str) for row in table.to_pylist())
        return sorted_digest(text_sha256(row) for row in rows)


def stage_outputs(run: LocalRun) -> dict[str, dict]:
    """Per task: a content hash of each output artifact and its output parameters (energy records aside), both
    equal between two runs of the same config and data; what may differ is listed under `volatile`."""
    stages: dict[str, dict] = {}
    if not run.artifacts_dir.is_dir():  # the first task failed before writing anything
        return stages
    measured = {key for stage in _MEASUREMENT_STAGES for key in task_keys()[stage]}
    for task_dir in sorted(p for p in run.artifacts_dir.iterdir() if p.is_dir()):
        canon = _Canon.for_run(run)
        outputs = [child for child in sorted(task_dir.iterdir()) if child.name not in _VOLATILE]
        if task_dir.name in measured:
            artifacts = dict.fromkeys((child.name for child in outputs), None)
            canon.volatile.update({child.name: tree_sha256(child) for child in outputs})
        else:
            artifacts = {child.name: canon.artifact_sha256(child, child.name) for child in outputs}
        parameters = canon.value(executor_outputs(task_dir), "parameters")
        stages[task_dir.name] = {
            "status": run.tasks.get(task_dir.name, "unknown"),
            "artifacts": artifacts,
            "parameters": parameters,
            "volatile": canon.volatile,
        }
    return stages


def comparable(manifest: dict) -> dict[str, dict]:
    """What two reruns' manifests must agree on, stage by stage."""
    return {task: {k: v for k, v in stage.items() if k != "volatile"} for task, stage in manifest["stages"].items()}


def build_manifest(config: RunConfig, run: LocalRun, started_at: str, finished_at: str, repo: Path) -> dict:
    stages = stage_outputs(run)
    curate = stages.get(task_key("curate"), {}).get("parameters", {})
    pretrain = stages.get(task_key("pretrain"), {}).get("parameters", {})
    return {
        "greenfm_manifest": 1,
        "run_dir": str(run.run_dir),
        "started_at": started_at,
        "finished_at": finished_at,
        "succeeded": run.succeeded,
        "error": run.error,
        "config": asdict(config),
        "seeds": {"seed": config.seed},
        "input_fingerprint": config.data_fingerprint,
        "curated_data_sha256": curate.get("fingerprint"),
        "checkpoint_sha256": pretrain.get("checkpoint_sha256"),
        "versions": package_versions(),
        "platform": {"python": sys.version.split()[0], "machine": platform.machine(), "system": platform.platform()},
        "git": git_commit(repo),
        "stages": stages,
    }


def write_manifest(manifest: dict, run_dir: Path) -> Path:
    return atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
