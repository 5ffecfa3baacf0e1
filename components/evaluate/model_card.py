"""Model cards (Markdown), one per model: intended use, data sources and licenses, training compute (FLOPs,
GPU hours, energy, CO2 from the stages' own records), evaluation table, limitations, lineage."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import yaml

from components.adapt.classifier import ADAPT_REPORT, LINEAGE
from components.common.contracts import DOCUMENTS_DIR, ModelDir
from components.common.contracts import MODEL_WEIGHTS as WEIGHTS
from components.common.fingerprint import file_sha256
from components.common.markdown import table

if TYPE_CHECKING:
    from components.evaluate.report import EvalResult

BASE_CARD = "base_model_card.md"
ADAPTED_CARD = "adapted_model_card.md"


def data_sources(curated_dir: str | Path) -> list[tuple[str, str, int]]:
    """(source collection, license, documents) of the curated pretraining data; a source's collection is the part
    of its `source` field before the first '/'."""
    table = pq.read_table(Path(curated_dir) / DOCUMENTS_DIR, columns=["source", "license"])
    counts = Counter(
        (s.split("/")[0], lic)
        for s, lic in zip(table.column("source").to_pylist(), table.column("license").to_pylist(), strict=True)
    )
    return [(source, lic, n) for (source, lic), n in sorted(counts.items())]


def on_gpu(device: str) -> bool:
    """The trainers record torch.cuda.get_device_name ("NVIDIA H100 80GB HBM3"), a torch device ("cuda:0"), or
    "cpu"; anything but a CPU (or nothing recorded) is a GPU."""
    return bool(device) and device.split(":")[0].lower() not in ("cpu", "unknown", "mps")


def gpu_hours(device: str, seconds: float | None, processes: int = 1) -> float:
    """Wall hours × GPUs in use (one per training process)."""
    return (seconds or 0.0) / 3600 * max(1, processes) if on_gpu(device) else 0.0


def co2_eq_emissions(energy: dict | None, training_type: str, hardware: str) -> list[str]:
    """The Hugging Face model card `co2_eq_emissions` metadata (YAML front matter; emissions in grams)."""
    if not energy:
        return []
    meta = {
        "co2_eq_emissions": {
            "emissions": round(energy["emissions_kg"] * 1000.0, 6),
            "source": f"codecarbon {energy['codecarbon_version']} offline tracker via greenfm (annual-average "
            "intensity of the placed region; the run's carbon statement has the per-interval figure)",
            "training_type": training_type,
            "geographical_location": energy["location"],
            "hardware_used": hardware,
        }
    }
    return ["---", *yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).splitlines(), "---", ""]


def _hardware(energy: dict | None, device: str, processes: int) -> str:
    if on_gpu(device):
        return f"{max(1, processes)} x {device}"
    return f"{energy['cpu_count']:g} x {energy['cpu_model']} (CPU)" if energy else device


def _compute_row(
    stage: str, flops: float | None, device: str, seconds: float | None, energy: dict | None, processes: int = 1
) -> list[str]:
    return [
        stage,
        f"{flops:.3e}" if flops else "n/a",
        device,
        f"{gpu_hours(device, seconds, processes):.4f}",
        f"{energy['energy_kwh']:.6f}" if energy else "not measured",
        f"{energy['emissions_kg']:.6f}" if energy else "not measured",
    ]


COMPUTE_HEADER = ["stage", "FLOPs", "device", "GPU hours", "energy (kWh)", "CO2e (kg)"]


@dataclass
class CardFacts:
    """What both cards draw on: the pretraining report, the adaptation record, the data sources, the base hash."""

    train: dict
    adapt: dict
    sources: list[str]
    base_sha: str
    pretrain_row: list[str]
    limitations: list[str]
    energy: dict[str, dict]  # stage (pretrain, adapt) -> its energy record as JSON


def _facts(base_dir: Path, adapted_dir: Path, curated_dir: str | Path, energy: dict[str, dict]) -> CardFacts:
    train = ModelDir(base_dir).train_report()
    adapt_path = adapted_dir / (LINEAGE if (adapted_dir / LINEAGE).is_file() else ADAPT_REPORT)
    pretrain_row = _compute_row(
        "pretraining",
        train.get("total_flops"),
        train.get("device", "unknown"),
        train.get("seconds"),
        energy.get("pretrain"),
        train.get("world_size", 1),
    )
    limitations = [
        f"- A {train.get('parameters', 0):,}-parameter model trained on {train.get('tokens', 0):,} tokens: a research and "
        "pipeline-testing artifact, not a general-purpose language model.",
        "- English technical prose only (its training data); expect nothing useful on other languages or domains.",
        "- Energy is codecarbon's estimate; on machines without power counters CPU power is inferred from load.",
    ]
    return CardFacts(
        train=train,
        adapt=json.loads(adapt_path.read_text()),
        sources=table(
            ["source", "license", "documents"],
            [[s, lic, f"{n:,}"] for s, lic, n in data_sources(curated_dir)],
            align="llr",
        ),
        base_sha=file_sha256(base_dir / WEIGHTS),
        pretrain_row=pretrain_row,
        limitations=limitations,
        energy=energy,
    )


def base_card(facts: CardFacts, result: EvalResult) -> list[str]:
    train, d = facts.train, result.details
    evaluation = [
        ["held-out perplexity", f"{result.base_perplexity:.2f}"],
        [f"zero-shot `{d['task']}` accuracy (label-name PMI)", f"{result.zero_shot_accuracy:.3f}"],
    ]
    pretrain = facts.energy.get("pretrain")
    hardware = _hardware(pretrain, train.get("device", ""), train.get("world_size", 1))
    return [
        *co2_eq_emissions(pretrain, "pre-training", hardware),
        f"# Model card: base model `{facts.base_sha[:12]}`",
        "",
        f"Decoder-only transformer, {train.get('parameters', 0):,} parameters, context "
        f"{train.get('model', {}).get('seq_len', '?')} tokens; weights sha256 `{facts.base_sha}`.",
        "",
        "## Intended use",
        "",
        "Starting point for adaptation to downstream tasks in the greenfm pipeline, and for measuring what "
        "pretraining costs. Not for generating text for people to rely on.",
        "",
        "## Data sources and licenses",
        "",
        *facts.sources,
        "",
        "## Training compute",
        "",
        *table(COMPUTE_HEADER, [facts.pretrain_row], align="lrlrrr"),
        "",
        "## Evaluation",
        "",
        *table(["metric", "value"], evaluation),
        "",
        "## Limitations",
        "",
        *facts.limitations,
        "",
        "## Lineage",
        "",
        f"- Warm start: {train.get('warm_start', 'none')}",
        f"- Adapted variants in this run: `{facts.adapt['model_sha256'][:12]}` ({facts.adapt['method']})",
        "",
    ]


def adapted_card(facts: CardFacts, result: EvalResult, adapt_energy: dict | None) -> list[str]:
    adapt, d = facts.adapt, result.details
    adapt_row = _compute_row(
        f"adaptation ({adapt['method']})",
        adapt.get("estimated_flops"),
        adapt.get("device", "cpu"),
        (adapt_energy or {}).get("wall_seconds"),
        adapt_energy,
    )
    return [
        *co2_eq_emissions(
            facts.energy.get("adapt"),
            "fine-tuning",
            _hardware(facts.energy.get("adapt"), adapt.get("device", "cpu"), 1),
        ),
        f"# Model card: `{d['task']}` classifier `{adapt['model_sha256'][:12]}`",
        "",
        f"The base model adapted with **{adapt['method']}** ({adapt['trainable_parameters']:,} of "
        f"{adapt['total_parameters']:,} parameters trained); labels: {', '.join(d['labels'])}.",
        "",
        "## Intended use",
        "",
        f"Classifying text for the `{d['task']}` task it was adapted to, and comparing adaptation methods by "
        "accuracy per unit of energy. Out-of-scope: any other label set, or decisions about people.",
        "",
        "## Data sources and licenses",
        "",
        "Pretraining (inherited from the base model):",
        "",
        *facts.sources,
        "",
        f"Adaptation: task `{d['task']}`, data fingerprint `{adapt['data_fingerprint'][:16]}…` (see components/adapt/README.md "
        "for how it is derived and kept disjoint from the pretraining data).",
        "",
        "## Training compute",
        "",
        *table(COMPUTE_HEADER, [facts.pretrain_row, adapt_row], align="lrlrrr"),
        "",
        "Adaptation FLOPs are estimated from the method (components/adapt/methods.py).",
        "",
        "## Evaluation",
        "",
        *table(["metric", "value"], [[name, f"{value:.4g}"] for name, value in result.metrics().items()]),
        "",
        "## Limitations",
        "",
        *facts.limitations,
        f"- Worst slice falls {result.worst_slice_gap:.3f} below overall accuracy; accuracy under perturbation drops to "
        f"{result.min_perturbed_accuracy:.3f}. See the evaluation report.",
        "",
        "## Lineage",
        "",
        f"- Parent: `{adapt['parent_sha256']}` ({adapt.get('parent_kind', 'pretrained')})",
        f"- Base model: `{facts.base_sha}`",
        f"- Warm start: {adapt.get('warm_start', 'none')}",
        f"- Method choice: {adapt.get('method_reason', adapt['method'])}",
        "",
    ]


def write_model_cards(
    base_model_dir: str | Path,
    adapted_model_dir: str | Path,
    curated_dir: str | Path,
    result: EvalResult,
    out_dir: str | Path,
    energy: dict[str, dict] | None = None,
) -> list[Path]:
    """Write the base and the adapted model's cards into out_dir; `energy` maps stage name (pretrain, adapt) to
    its energy record from components/carbon/tracking.measure."""
    energy = energy or {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    facts = _facts(Path(base_model_dir), Path(adapted_model_dir), curated_dir, energy)
    paths = [out / BASE_CARD, out / ADAPTED_CARD]
    paths[0].write_text("\n".join(base_card(facts, result)))
    paths[1].write_text("\n".join(adapted_card(facts, result, energy.get("adapt") or facts.adapt.get("energy"))))
    return paths
