"""A run's configuration: exactly the pipeline's parameters, so a config file, the CLI and the Kubeflow UI
form all speak the same names. A YAML config file holds any subset of these keys."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
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
    # Carbon accounting (components/carbon): stop the run when the live intensity provider fails, instead of
    # comparing every region on the static annual averages.
    intensity_fail_closed: bool = False
    # Pretraining scale-out (components/pretrain).
    grad_accum: int = 1  # micro-batches per optimizer step
    parallelism: str = "ddp"  # ddp | fsdp
    checkpoint_every: int = 0  # DCP checkpoint every N steps; 0: only at the end
    launch_backend: str = "local"  # local (torchrun here) | kubernetes (a PyTorchJob)
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

    def pipeline_arguments(self) -> dict:
        return asdict(self)


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
        try:
            setattr(config, key, expected(value) if not isinstance(value, bool) or expected is bool else value)
        except (TypeError, ValueError):
            raise GreenfmError(f"{path or 'config'}: {key} must be {expected.__name__}, got {value!r}") from None
    return config
