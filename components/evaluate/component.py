"""KFP wrapper: moves artifacts in and out; the work is components.evaluate.report.evaluate and
components.evaluate.model_card.write_model_cards."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_op(
    base_model: Input[Model],
    adapted_model: Input[Model],
    curated: Input[Dataset],
    scratch_model: Input[Model],
    location: str,
    pretrain_energy: str,
    adapt_energy: str,
    seed: int,
    report: Output[Markdown],
    report_html: Output[HTML],
    report_json: Output[Artifact],
    model_cards: Output[Markdown],
    metrics: Output[Metrics],
    scratch_energy: str = "",
) -> NamedTuple("EvaluateOutputs", [("energy", str)]):
    """Multi-metric evaluation of the base and adapted models against the from-scratch arm and the baselines
    (HTML + Markdown report), and their model cards."""
    import json
    import tempfile
    from pathlib import Path

    from components.carbon.records import EnergyRecord
    from components.carbon.tracking import Location
    from components.common.component_io import copy_outputs, measured
    from components.evaluate.model_card import write_model_cards
    from components.evaluate.report import REPORT_HTML, REPORT_JSON, REPORT_MD, EvalConfig, evaluate

    out = Path(tempfile.mkdtemp(prefix="greenfm-eval-"))
    where = Location(**json.loads(location))
    result, energy = measured(
        "evaluate",
        location,
        lambda: evaluate(
            base_model.path,
            adapted_model.path,
            curated.path,
            out,
            cfg=EvalConfig(seed=seed),
            location=where,
            scratch_model_dir=scratch_model.path,
            scratch_energy=EnergyRecord.from_json(scratch_energy, "scratch_energy record") if scratch_energy else None,
        ),
    )
    copy_outputs(
        [(out / REPORT_MD, report.path), (out / REPORT_HTML, report_html.path), (out / REPORT_JSON, report_json.path)]
    )
    stage_energy = {"pretrain": json.loads(pretrain_energy), "adapt": json.loads(adapt_energy)}
    cards = write_model_cards(base_model.path, adapted_model.path, curated.path, result, out / "cards", stage_energy)
    Path(model_cards.path).write_text("\n\n---\n\n".join(card.read_text() for card in cards))
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)
    outputs = NamedTuple("EvaluateOutputs", [("energy", str)])
    return outputs(energy.dumps())
