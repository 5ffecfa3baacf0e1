"""A run's configuration: exactly the pipeline's parameters, so a config file, the CLI and the Kubeflow UI
form all speak the same names. A YAML config file holds any subset of these keys."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from components.common.errors import GreenfmError

# Energy (IT kWh) and duration each heavy stage is expected to take: what placement minimizes emissions for.
DEFAULT_JOB_ESTIMATES = json.dumps(
    {
        "curate": {"kwh": 0.5, "hours": 0.25},
        "pretrain": {"kwh": 20.0, "hours": 2.0},
        "adapt": {"kwh": 2.0, "hours": 0.5},
    }
)
# GPU node pools are commonly tainted so that only pods asking for GPUs land there (GKE, AKS, EKS GPU AMIs).
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class RunConfig:
    input_uri: str = ""  # empty: the embedded default corpus
    data_fingerprint: str = ""
    seed: int = 1234
    min_words: int = 5
    vocab_size: int = 4096
    min_documents: int = 100
    license_allowlist: str = ""  # comma-separated; empty: any license
    model_size: str = "small"
    seq_len: int = 128
    batch_size: int = 16
    train_steps: int = 200
    learning_rate: float = 3e-3
    adapt_method: str = "lora"  # lora | full | last-layer | head | auto
    adapt_steps: int = 150
    warm_start_model: str = ""  # previous model directory/URI to start pretraining from; empty: from scratch
    model_store: str = ""  # folder where pretraining publishes its model under data_fingerprint; empty: nowhere
    spark_backend: str = "local"  # local (Spark inside the step) | client (k8s:// master) | operator (SparkApplication)
    spark_executors: int = 2  # executor pods for client/operator
    # Carbon-aware placement (components/carbon): where each heavy stage may run and what it is expected to cost.
    region_catalog: str = ""  # YAML text or file path; empty: the shipped catalog (`greenfm run`: this machine)
    intensity_provider: str = "static"
    intensity_provider_url: str = ""
    gpu_type: str = ""
    gpu_count: int = 0
    residency_tags: str = ""
    deadline_hours: float = 0.0
    max_wait_hours: float = 0.0
    job_estimates: str = DEFAULT_JOB_ESTIMATES
    # The carbon statement's money assumptions (CRFM defaults); S, O and scratch energy are user estimates.
    social_cost_usd_per_t: float = 105.0
    energy_usd_per_kwh: float = 0.1376
    social_benefit_usd: str = ""
    other_costs_usd: str = ""
    scratch_task_kwh: str = ""
    # Pretraining scale-out (components/pretrain).
    grad_accum: int = 1  # micro-batches per optimizer step
    parallelism: str = "ddp"  # ddp | fsdp
    checkpoint_every: int = 0  # DCP checkpoint every N steps; 0: only at the end
    launch_backend: str = (
        "local"  # local (torchrun here) | kubernetes (a PyTorchJob) | trainjob (a Trainer v2 TrainJob)
    )
    train_nodes: int = 1
    gpus_per_node: int = 0  # training processes per node, one per GPU; 0: every visible GPU (one on CPU)
    # Adaptation (components/adapt).
    lora_rank: int = 8  # LoRA adapter rank; 0 with adapt_method auto: chosen from the task's data size
    adapt_budget_flops: float = 0.0  # compute budget for adapt_method auto; 0: none
    adapt_warm_start: str = ""  # earlier adapted model (or run directory) to start adaptation from; empty: none
    # Curation (components/curate).
    languages: str = "en"  # comma-separated ISO 639-1 codes curation keeps; empty: every language
    quality_preset: str = "auto"  # published | docstrings | auto (docstrings for the built-in corpus)
    # Validation gate (components/validate).
    allowed_languages: str = "en"  # comma-separated ISO 639-1 codes the gate accepts; empty: no language check
    min_language_share: float = 0.95  # share of documents that must be in allowed_languages
    language_share_bounds: str = ""  # per-language share bounds, e.g. "en=0.8:1,fr=0:0.1"
    drift_mode: str = "warn"  # fail | warn | off: drift from the last accepted dataset profile
    profile_store: str = ""  # folder/URI of the accepted profile; empty: `greenfm run` uses its --out folder
    # Kubernetes resources per step class (pipelines/cluster_tasks.py; kfp.local ignores them). Requests equal
    # limits: steps get what they asked for and are never evicted for overcommit.
    control_cpu: str = "500m"  # select-region, carbon statement, gate-failed
    control_memory: str = "1Gi"
    data_cpu: str = "4"  # curate (the Spark driver, or all of Spark in local mode) and validate
    data_memory: str = "16Gi"
    train_cpu: str = "8"  # pretrain, adapt, evaluate; also each PyTorchJob / TrainJob replica
    train_memory: str = "32Gi"
    gpu_resource: str = "nvidia.com/gpu"  # extended resource pretrain and adapt request gpus_per_node of
    gpu_tolerations: list = field(default_factory=lambda: [dict(GPU_TOLERATION)])  # tolerations of GPU pods
    # Compile-time Kubernetes settings (`greenfm compile --config FILE`): KFP accepts only constants for these,
    # so they are baked into the compiled pipeline and are not run parameters.
    control_timeout_hours: float = 25.0  # covers select-region waiting up to max_wait_hours for a cleaner hour
    data_timeout_hours: float = 12.0  # curate, validate
    train_timeout_hours: float = 72.0  # pretrain, adapt, evaluate
    step_retries: int = 2  # KFP retries of a failed step (transient: evicted node, API hiccup); backoff 1 min ×2
    shm_size: str = "8Gi"  # /dev/shm (memory-backed) of torch steps and replicas: DataLoader workers, NCCL

    def pipeline_arguments(self) -> dict:
        """The run parameters (what the compiled pipeline takes): everything but the compile-time settings."""
        return {key: value for key, value in asdict(self).items() if key not in COMPILE_TIME}


COMPILE_TIME = ("control_timeout_hours", "data_timeout_hours", "train_timeout_hours", "step_retries", "shm_size")
DEFAULTS = RunConfig()


def load_config(path: str | Path | None, **overrides) -> RunConfig:
    """Defaults, then the YAML file's keys, then non-None overrides. Unknown keys are an error."""
    values: dict = {}
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
    known = {f.name: f.type for f in fields(RunConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise GreenfmError(f"{path or 'config'}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
    config = RunConfig()
    for key, value in values.items():
        expected = type(getattr(DEFAULTS, key))
        if expected is list and not isinstance(value, list):
            raise GreenfmError(f"{path or 'config'}: {key} must be a list, got {value!r}")
        try:
            setattr(config, key, expected(value) if not isinstance(value, bool) or expected is bool else value)
        except (TypeError, ValueError):
            raise GreenfmError(f"{path or 'config'}: {key} must be {expected.__name__}, got {value!r}") from None
    return config
