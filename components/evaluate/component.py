"""KFP wrapper: moves artifacts in and out; the work is components.evaluate.report.evaluate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_op(
    base_model: Input[Model],
    adapted_model: Input[Model],
    curated: Input[Dataset],
    location: str,
    report: Output[Markdown],
    metrics: Output[Metrics],
) -> NamedTuple("EvaluateOutputs", [("energy", str)]):
    """Perplexity of both models and task accuracy against a baseline."""
    import json
    import shutil
    import tempfile
    from dataclasses import asdict
    from pathlib import Path

    from components.carbon.tracking import Location, measure
    from components.evaluate.report import REPORT_MD, evaluate

    out = Path(tempfile.mkdtemp(prefix="greenfm-eval-"))
    result, energy = measure(
        "evaluate",
        Location(**json.loads(location)),
        lambda: evaluate(base_model.path, adapted_model.path, curated.path, out),
    )
    shutil.copyfile(out / REPORT_MD, report.path)
    for name, value in asdict(result).items():
        metrics.log_metric(name, value)
    outputs = NamedTuple("EvaluateOutputs", [("energy", str)])
    return outputs(json.dumps(energy))
