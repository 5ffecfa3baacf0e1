"""Model cards (Markdown), one per model: intended use, data sources and licenses, training compute (FLOPs,
GPU hours, energy, CO2 from the stages' own records), evaluation table, limitations, lineage."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from components.adapt.classifier import ADAPT_REPORT, LINEAGE
from components.common.contracts import DOCUMENTS_DIR, ModelDir
from components.common.contracts import MODEL_WEIGHTS as WEIGHTS
from components.common.fingerprint import file_sha256

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


def _compute_row(stage: str, flops: float | None, device: str, seconds: float | None, energy: dict | None) -> list[str]:
    gpu_hours = (seconds or 0.0) / 3600 if device.startswith("cuda") else 0.0
    return [
        stage,
        f"{flops:.3e}" if flops else "n/a",
        device,
        f"{gpu_hours:.4f}",
        f"{energy['energy_kwh']:.6f}" if energy else "not measured",
        f"{energy['emissions_kg']:.6f}" if energy else "not measured",
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(r) + " |" for r in rows
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
    base_dir, adapted_dir, out = Path(base_model_dir), Path(adapted_model_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = ModelDir(Path(base_dir)).train_report()
    adapt_path = adapted_dir / (LINEAGE if (adapted_dir / LINEAGE).is_file() else ADAPT_REPORT)
    adapt = json.loads(adapt_path.read_text())
    d = result.details
    base_sha = file_sha256(base_dir / WEIGHTS)
    sources = ["| source | license | documents |", "| --- | --- | ---: |"] + [
        f"| {s} | {lic} | {n:,} |" for s, lic, n in data_sources(curated_dir)
    ]
    pretrain_row = _compute_row(
        "pretraining",
        train.get("total_flops"),
        train.get("device", "unknown"),
        train.get("seconds"),
        energy.get("pretrain"),
    )
    compute_header = ["stage", "FLOPs", "device", "GPU hours", "energy (kWh)", "CO2e (kg)"]
    limitations = [
        f"- A {train.get('parameters', 0):,}-parameter model trained on {train.get('tokens', 0):,} tokens: a research and "
        "pipeline-testing artifact, not a general-purpose language model.",
        "- English technical prose only (its training data); expect nothing useful on other languages or domains.",
        "- Energy is codecarbon's estimate; on machines without power counters CPU power is inferred from load.",
    ]

    base_card = [
        f"# Model card: base model `{base_sha[:12]}`",
        "",
        f"Decoder-only transformer, {train.get('parameters', 0):,} parameters, context {train.get('model', {}).get('seq_len', '?')} "
        f"tokens; weights sha256 `{base_sha}`.",
        "",
        "## Intended use",
        "",
        "Starting point for adaptation to downstream tasks in the greenfm pipeline, and for measuring what "
        "pretraining costs. Not for generating text for people to rely on.",
        "",
        "## Data sources and licenses",
        "",
        *sources,
        "",
        "## Training compute",
        "",
        *_table(compute_header, [pretrain_row]),
        "",
        "## Evaluation",
        "",
        f"| held-out perplexity | {result.base_perplexity:.2f} |",
        "| --- | ---: |",
        f"| zero-shot `{d['task']}` accuracy (label-name PMI) | {result.zero_shot_accuracy:.3f} |",
        "",
        "## Limitations",
        "",
        *limitations,
        "",
        "## Lineage",
        "",
        f"- Warm start: {train.get('warm_start', 'none')}",
        f"- Adapted variants in this run: `{adapt['model_sha256'][:12]}` ({adapt['method']})",
        "",
    ]
    adapt_energy = energy.get("adapt") or adapt.get("energy")
    adapted_card = [
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
        *sources,
        "",
        f"Adaptation: task `{d['task']}`, data fingerprint `{adapt['data_fingerprint'][:16]}…` (see components/adapt/README.md "
        "for how it is derived and kept disjoint from the pretraining data).",
        "",
        "## Training compute",
        "",
        *_table(
            compute_header,
            [
                pretrain_row,
                _compute_row(
                    f"adaptation ({adapt['method']})",
                    adapt.get("estimated_flops"),
                    adapt.get("device", "cpu"),
                    (adapt_energy or {}).get("wall_seconds"),
                    adapt_energy,
                ),
            ],
        ),
        "",
        "Adaptation FLOPs are estimated from the method (components/adapt/methods.py).",
        "",
        "## Evaluation",
        "",
        "| metric | value |",
        "| --- | ---: |",
        *[f"| {name} | {value:.4g} |" for name, value in result.metrics().items()],
        "",
        "## Limitations",
        "",
        *limitations,
        f"- Worst slice falls {result.worst_slice_gap:.3f} below overall accuracy; accuracy under perturbation drops to "
        f"{result.min_perturbed_accuracy:.3f}. See the evaluation report.",
        "",
        "## Lineage",
        "",
        f"- Parent: `{adapt['parent_sha256']}` ({adapt.get('parent_kind', 'pretrained')})",
        f"- Base model: `{base_sha}`",
        f"- Warm start: {adapt.get('warm_start', 'none')}",
        f"- Method choice: {adapt.get('method_reason', adapt['method'])}",
        "",
    ]
    paths = [out / BASE_CARD, out / ADAPTED_CARD]
    paths[0].write_text("\n".join(base_card))
    paths[1].write_text("\n".join(adapted_card))
    return paths
