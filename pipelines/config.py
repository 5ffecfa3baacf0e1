"""A run's configuration: exactly the pipeline's parameters, so a config file, the CLI and the Kubeflow UI form all
speak the same names. A YAML config file holds any subset of these keys.

`RunConfig` is the single source of every parameter's type, allowed values, bounds, default and description: the
DAG's parameter docstring (the Kubeflow UI form) and the README's table are generated from it, and every value is
checked when a config is built, so a wrong value fails at load with one line naming the file and key, never deep in
a run. Fields are declared with `param(default, description, ...)`; choices are `Literal` types."""

from __future__ import annotations

import difflib
import json
import math
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from components.carbon.costs import CostAssumptions
from components.common.errors import GreenfmError

# Energy (IT kWh) and duration each heavy stage is expected to take: what placement minimizes emissions for.
HEAVY_STAGES = ("curate", "pretrain", "adapt")
DEFAULT_JOB_ESTIMATES = json.dumps(
    {
        "curate": {"kwh": 0.5, "hours": 0.25},
        "pretrain": {"kwh": 20.0, "hours": 2.0},
        "adapt": {"kwh": 2.0, "hours": 0.5},
    }
)


def param(
    default: Any,
    description: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    check: Callable[[Any], str] | None = None,
    number_text: bool = False,
) -> Any:
    """A run parameter: its default, a one-sentence description (the UI form, the README), optional bounds
    (`ge` ≥, `gt` >, `le` ≤), a `check` returning what is wrong with a value ("" when fine), and `number_text`
    for text parameters that hold an optional number (empty: not given), which KFP has no type for."""
    metadata = {"description": description, "ge": ge, "gt": gt, "le": le, "check": check, "number_text": number_text}
    if isinstance(default, list):  # a JSON list parameter (KFP type list): each config gets its own copy
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata=metadata)
    return field(default=default, metadata=metadata)


def _tolerations_problem(value: Any) -> str:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        return f"must be a list of Kubernetes tolerations (mappings), got {value!r}"
    known = {"key", "operator", "value", "effect", "tolerationSeconds"}
    for toleration in value:
        if set(toleration) - known:
            return f"toleration {toleration!r}: unknown field(s) {', '.join(sorted(set(toleration) - known))}"
    return ""


# GPU node pools are commonly tainted so that only pods asking for GPUs land there (GKE, AKS, EKS GPU AMIs).
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _submission_placement_problem(text: str) -> str:
    from components.carbon.submission import SubmissionPlacement

    try:
        if text:
            SubmissionPlacement.from_json(text, "decision")
    except GreenfmError as error:
        return str(error)
    return ""


def _job_estimates_problem(text: str) -> str:
    try:
        estimates = json.loads(text)
    except ValueError as error:
        return f"must be JSON ({error})"
    if not isinstance(estimates, dict):
        return "must be a JSON object of stage -> {kwh, hours}"
    for stage in HEAVY_STAGES:
        entry = estimates.get(stage)
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), int | float) and not isinstance(entry.get(k), bool) and entry[k] >= 0
            for k in ("kwh", "hours")
        ):
            return f'needs "{stage}": {{"kwh": ≥0, "hours": ≥0}}'
    return ""


ModelSize = Literal["tiny", "small", "gpt2-124m", "350m", "1b"]
AdaptMethod = Literal["lora", "full", "last-layer", "head", "auto"]
SparkBackend = Literal["local", "client", "operator"]
IntensityProvider = Literal["static", "electricitymaps", "watttime", "carbon-aware-sdk", "carbon-aware-sdk/average"]
Parallelism = Literal["ddp", "fsdp"]
LaunchBackend = Literal["local", "kubernetes", "trainjob"]
QualityPreset = Literal["fineweb", "c4", "gopher", "docstrings", "auto"]
DriftMode = Literal["fail", "warn", "off"]

_COSTS = CostAssumptions()


@dataclass
class RunConfig:
    # Data and curation (components/curate).
    input_uri: str = param(
        "", "JSONL, Parquet or .txt files (a file, folder, or s3a:// / gs:// URI). Empty: the built-in corpus."
    )
    data_fingerprint: str = param("", "Content hash of the input; keys the step cache so changed data reruns curation.")
    seed: int = param(1234, "Seed for every random choice (data order, initialization, adaptation).", ge=0)
    min_words: int = param(
        5, "Documents with fewer words are dropped during curation (and the gate checks none remain).", ge=0
    )
    vocab_size: int = param(
        4096,
        "Size of the byte-level BPE vocabulary trained on the curated corpus (256 bytes + 2 special tokens at least).",
        ge=258,
    )
    languages: str = param(
        "en", "Comma-separated ISO 639-1 codes curation keeps (language id); empty keeps every language."
    )
    quality_preset: QualityPreset = param(
        "auto",
        "Curation quality rules: fineweb (FineWeb's recipe), c4 (the released C4's rules), gopher, docstrings, or "
        "auto (docstrings for the built-in corpus, fineweb for any other input).",
    )
    spark_backend: SparkBackend = param(
        "local",
        "Where curation's Spark runs: local (inside the step), client (executor pods from a k8s:// master), "
        "operator (a SparkApplication); cluster details come from ConfigMap greenfm-spark.",
    )
    spark_executors: int = param(2, "Executor pods for the client and operator Spark backends.", ge=1)
    # Validation gate (components/validate).
    min_documents: int = param(100, "The validation gate fails with fewer curated documents than this.", ge=0)
    license_allowlist: str = param("", "Comma-separated licenses the gate accepts, e.g. PSF-2.0,CC-BY-4.0; empty: any.")
    allowed_languages: str = param(
        "en", "Comma-separated ISO 639-1 codes the gate accepts (needs the lang column); empty: no language check."
    )
    min_language_share: float = param(
        0.95, "Share of documents that must be in allowed_languages for the gate to pass.", ge=0, le=1
    )
    language_share_bounds: str = param(
        "", "Per-language share bounds the gate enforces, e.g. en=0.8:1,fr=0:0.1; empty: none."
    )
    drift_mode: DriftMode = param(
        "warn", "What the gate does when the data drifted from the last accepted profile: fail, warn or off."
    )
    profile_store: str = param(
        "",
        "Folder or URI (s3://, gs://) keeping the last accepted dataset profile, e.g. /workspace/profiles; empty: "
        "no drift check (`greenfm run`: its --out folder).",
    )
    # Pretraining (components/pretrain).
    model_size: ModelSize = param("small", "Named model size.")
    seq_len: int = param(128, "Training context length in tokens.", ge=2)
    batch_size: int = param(16, "Sequences per micro-step per data-parallel rank.", ge=1)
    train_steps: int = param(200, "Optimizer steps of pretraining.", ge=1)
    learning_rate: float = param(3e-3, "Peak learning rate (warmup over the first 10% of steps, then cosine).", gt=0)
    grad_accum: int = param(
        1, "Micro-batches accumulated per optimizer step (global batch = batch_size × grad_accum × processes).", ge=1
    )
    parallelism: Parallelism = param(
        "ddp", "Data parallelism across training processes: ddp (replicated) or fsdp (sharded, FSDP2)."
    )
    checkpoint_every: int = param(
        0, "Save a resumable checkpoint every N steps (0: only at the end); a restart loses < N steps.", ge=0
    )
    launch_backend: LaunchBackend = param(
        "local",
        "Where pretraining runs: local (torchrun in the step's pod), kubernetes (a Training Operator PyTorchJob) "
        "or trainjob (a Kubeflow Trainer v2 TrainJob).",
    )
    train_nodes: int = param(1, "Nodes (pods) for pretraining; more than one needs launch_backend kubernetes.", ge=1)
    gpus_per_node: int = param(
        0, "Training processes per node, one per GPU; 0 uses every visible GPU (one process on CPU).", ge=0
    )
    warm_start_model: str = param(
        "", "Model directory or model store of an earlier run to start pretraining from (set by `greenfm watch`)."
    )
    model_store: str = param(
        "",
        "Folder where a successful pretraining publishes its model under data_fingerprint (LATEST names the "
        "newest), e.g. /workspace/models; empty: not published.",
    )
    # Adaptation (components/adapt).
    adapt_method: AdaptMethod = param(
        "full",
        "Adaptation method: full (every weight; on the default task the only one where the pretrained model "
        "beats the from-scratch arm), lora (low-rank adapters), last-layer, head (linear probe), or auto (chosen "
        "from data size and adapt_budget_flops).",
    )
    adapt_steps: int = param(150, "Optimizer steps of adaptation.", ge=1)
    lora_rank: int = param(8, "Rank of the LoRA adapters; 0 with adapt_method auto chooses it from the data.", ge=0)
    adapt_budget_flops: float = param(
        0.0, "Compute budget (FLOPs) that adapt_method auto must respect; 0 means no budget.", ge=0
    )
    adapt_lm_loss_weight: float = param(
        0.0,
        "Weight of a next-token loss on the task's texts added to the classification loss during adaptation: keeps "
        "the adapted model's language-model perplexity from rising (at some accuracy); 0: classification only.",
        ge=0,
    )
    adapt_warm_start: str = param(
        "", "An earlier adapted model directory, or a run directory holding one, to start adaptation from."
    )
    # Carbon-aware placement (components/carbon): where each heavy stage may run and what it is expected to cost.
    region_catalog: str = param(
        "",
        "Region catalog YAML text or file (format: components/carbon/regions.yaml); empty: the cluster's "
        "ConfigMap greenfm-regions, else the shipped default (`greenfm run`: this machine).",
    )
    intensity_provider: IntensityProvider = param(
        "static", "Source of grid carbon intensity (live ones fall back to static)."
    )
    intensity_provider_url: str = param("", "Base URL of the intensity provider's API; empty: its public default.")
    intensity_fail_closed: bool = param(
        False,
        "Stop the run when the live intensity provider fails, instead of comparing every region on the static "
        "annual averages together.",
    )
    gpu_type: str = param("", "GPU type pretraining and adaptation need (a key of the catalog's gpus); empty: none.")
    gpu_count: int = param(0, "GPUs of that type one training job needs.", ge=0)
    residency_tags: str = param("", "Comma-separated tags every chosen region must carry, e.g. residency-eu.")
    deadline_hours: float = param(
        0.0, "Each heavy stage must finish within this many hours of its placement; 0: no deadline.", ge=0
    )
    max_wait_hours: float = param(
        0.0, "How long a heavy stage may wait for a cleaner forecast hour; 0: start now.", ge=0
    )
    job_estimates: str = param(
        DEFAULT_JOB_ESTIMATES,
        "JSON of expected IT kWh and hours per heavy stage (curate, pretrain, adapt).",
        check=_job_estimates_problem,
    )
    submission_placement: str = param(
        "",
        "Set by `greenfm submit` / `greenfm watch` when they choose the run's cluster and start: that decision "
        "(JSON), shown in the carbon statement; empty: not placed at submission.",
        check=_submission_placement_problem,
    )
    # The carbon statement's money assumptions (CRFM defaults, components/carbon/costs.py).
    social_cost_usd_per_t: float = param(
        _COSTS.social_cost_usd_per_t, "Social cost of carbon in the statement, USD per tonne CO2e.", ge=0
    )
    energy_usd_per_kwh: float = param(_COSTS.energy_usd_per_kwh, "Energy price in the statement, USD per kWh.", ge=0)
    social_benefit_usd: str = param(
        "", "S of V(M) = S − C − E − O, a user estimate; empty: not given.", number_text=True
    )
    other_costs_usd: str = param("", "O of V(M), a user estimate; empty: not given.", number_text=True)
    scratch_task_kwh: str = param(
        "",
        "Energy to train one task model from scratch; empty: the measured from-scratch arm if it ran, else "
        "estimated from FLOPs.",
        number_text=True,
    )

    # Kubernetes resources per step class (pipelines/cluster_tasks.py; kfp.local ignores them). Requests equal
    # limits: steps get what they asked for and are never evicted for overcommit.
    control_cpu: str = param("500m", "CPU request and limit of select-region, carbon-statement and gate-failed.")
    control_memory: str = param("1Gi", "Memory request and limit of those steps.")
    data_cpu: str = param(
        "4", "CPU request and limit of curate (the Spark driver, or all of Spark locally) and validate."
    )
    data_memory: str = param("16Gi", "Memory request and limit of curate and validate.")
    train_cpu: str = param("8", "CPU request and limit of pretrain, adapt, evaluate and each training replica.")
    train_memory: str = param(
        "32Gi", "Memory request and limit of pretrain, adapt, evaluate and each training replica."
    )
    gpu_resource: str = param("nvidia.com/gpu", "Extended resource pretrain and adapt request gpus_per_node of.")
    gpu_tolerations: list = param(
        [GPU_TOLERATION],
        "Tolerations of the GPU steps and training replicas (tainted GPU nodes).",
        check=_tolerations_problem,
    )
    # Compile-time Kubernetes settings (`greenfm compile --config FILE`): KFP accepts only constants for these,
    # so they are baked into the compiled pipeline and are not run parameters.
    control_timeout_hours: float = param(
        25.0, "Deadline of select-region (which may wait max_wait_hours), the statement and the gate.", gt=0
    )
    data_timeout_hours: float = param(12.0, "Deadline of curate and validate.", gt=0)
    train_timeout_hours: float = param(72.0, "Deadline of pretrain, adapt and evaluate.", gt=0)
    step_retries: int = param(
        2, "KFP retries of a failed step (evicted node, API hiccup); backoff 1 min, doubling.", ge=0
    )
    shm_size: str = param("8Gi", "Size of the memory-backed /dev/shm of torch steps and training replicas.")

    def __post_init__(self) -> None:
        for spec in fields(self):
            setattr(self, spec.name, checked_value(spec.name, getattr(self, spec.name)))

    def pipeline_arguments(self) -> dict:
        """The run parameters (what the compiled pipeline takes): everything but the compile-time settings."""
        return {key: value for key, value in asdict(self).items() if key not in COMPILE_TIME}


COMPILE_TIME = ("control_timeout_hours", "data_timeout_hours", "train_timeout_hours", "step_retries", "shm_size")


@cache
def _types() -> dict[str, Any]:
    return typing.get_type_hints(RunConfig)


def choices(name: str) -> tuple[str, ...]:
    """The allowed values of a `Literal` parameter; () for a free one."""
    kind = _types()[name]
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def base_type(name: str) -> type:
    """The plain type KFP sees: str for choices."""
    kind = _types()[name]
    return str if choices(name) else kind


def _bounds(metadata) -> str:
    if metadata.get("ge") is not None and metadata.get("le") is not None:
        return f"between {metadata['ge']:g} and {metadata['le']:g}"
    parts = []
    if metadata.get("ge") is not None:
        parts.append(f"≥ {metadata['ge']:g}")
    if metadata.get("gt") is not None:
        parts.append(f"> {metadata['gt']:g}")
    if metadata.get("le") is not None:
        parts.append(f"≤ {metadata['le']:g}")
    return ", ".join(parts)


def _number_from_text(value: Any, kind: type) -> Any:
    """Text that spells a number of `kind` (a command line's `3`, YAML 1.1's `1e-3`) as that number; else as is."""
    if not isinstance(value, str):
        return value
    try:
        return kind(value.strip())
    except ValueError:
        return value


def _problem(name: str, value: Any) -> tuple[Any, str]:
    """(the value to keep, what is wrong with it or "")."""
    spec = _fields()[name]
    kind, allowed = base_type(name), choices(name)
    if spec.metadata.get("number_text"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = repr(value)
        if not isinstance(value, str):
            return value, f"must be a number or empty, got {value!r}"
        try:
            if value.strip():
                float(value)
        except ValueError:
            return value, f"must be a number or empty, got {value!r}"
        return value, ""
    if kind is str:
        if not isinstance(value, str):
            return value, f"must be text, got {value!r}"
        if allowed and value not in allowed:
            return value, f"must be one of {', '.join(allowed)}; got {value!r}"
    elif kind is int:
        value = _number_from_text(value, int)  # `--param k=3`; YAML 1.1 reads 1e3 as text
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"must be an integer, got {value!r}"
    elif kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):  # `--param k=true`
            value = value.lower() == "true"
        if not isinstance(value, bool):
            return value, f"must be true or false, got {value!r}"
    elif kind is float:
        value = _number_from_text(value, float)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return value, f"must be a number, got {value!r}"
        value = float(value)
    metadata = spec.metadata
    if (
        (metadata.get("ge") is not None and value < metadata["ge"])
        or (metadata.get("gt") is not None and value <= metadata["gt"])
        or (metadata.get("le") is not None and value > metadata["le"])
    ):
        return value, f"must be {_bounds(metadata)}, got {value!r}"
    if metadata.get("check"):
        problem = metadata["check"](value)
        if problem:
            return value, problem
    return value, ""


def checked_value(name: str, value: Any) -> Any:
    """`value` for parameter `name` if it has the right type, an allowed value and lies in bounds; else a
    GreenfmError "NAME must be ..., got VALUE"."""
    value, problem = _problem(name, value)
    if problem:
        raise GreenfmError(f"{name} {problem}")
    return value


@cache
def _fields():
    return {spec.name: spec for spec in fields(RunConfig)}


def describe(name: str) -> dict[str, str]:
    """One parameter for people: type (or allowed values), default, bounds, description."""
    spec = _fields()[name]
    allowed = choices(name)
    kind = " \\| ".join(allowed) if allowed else base_type(name).__name__
    if spec.metadata.get("number_text"):
        kind = "number or empty"
    default = spec.default if spec.default is not MISSING else spec.default_factory()
    return {
        "name": name,
        "type": kind,
        "default": (default or '""') if isinstance(default, str) else repr(default),
        "bounds": _bounds(spec.metadata),
        "description": spec.metadata.get("description", ""),
    }


def markdown_table() -> str:
    """The README's table of parameters (tests/test_config.py checks the README holds exactly this)."""
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for name in _fields():
        d = describe(name)
        default = f"`{d['default']}`"
        bounds = f" ({d['bounds']})" if d["bounds"] else ""
        rows.append(f"| `{name}` | {d['type']}{bounds} | {default} | {d['description']} |")
    return "\n".join(rows)


def documented_by_run_config(pipeline_func):
    """Append the `Args:` section (KFP's parameter descriptions, the Kubeflow UI form) generated from RunConfig."""
    lines = [
        f"        {name}: {_fields()[name].metadata.get('description', '')}"
        for name in _fields()
        if name not in COMPILE_TIME
    ]
    pipeline_func.__doc__ = (pipeline_func.__doc__ or "").rstrip() + "\n\n    Args:\n" + "\n".join(lines) + "\n"
    return pipeline_func


DEFAULTS = RunConfig()


def load_config(path: str | Path | None, **overrides) -> RunConfig:
    """Defaults, then the YAML file's keys, then non-None overrides. Unknown keys, wrong types, values outside
    the choices or bounds: a one-line GreenfmError naming the file (or "config") and the key."""
    values: dict = {}
    where = str(path) if path else "config"
    if path:
        path = Path(path)
        if not path.is_file():
            raise GreenfmError(f"{path}: config file not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise GreenfmError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise GreenfmError(f"{path}: expected a mapping of parameter names to values")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = _fields()
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(known)}"
            raise GreenfmError(f"{where}: unknown parameter {key!r}{hint}")
    try:
        return RunConfig(**values)
    except GreenfmError as error:
        raise GreenfmError(f"{where}: {error}") from None
