"""KFP wrapper: moves artifacts in and out; the work is components.validate.gate.validate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_op(
    curated: Input[Dataset],
    location: str,
    min_documents: int,
    license_allowlist: str,
    summary: Output[Markdown],
    data_docs: Output[HTML],
    metrics: Output[Metrics],
) -> NamedTuple("ValidateOutputs", [("passed", bool), ("energy", str), ("failures", str)]):
    """Run the expectation suites; `passed` gates training."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from components.carbon.tracking import Location, measure
    from components.validate.gate import SUMMARY_MD, ValidateConfig, validate

    config = ValidateConfig(
        min_documents=min_documents, license_allowlist=[x.strip() for x in license_allowlist.split(",") if x.strip()]
    )
    docs_dir = Path(tempfile.mkdtemp(prefix="greenfm-datadocs-"))
    gate, energy = measure("validate", Location(**json.loads(location)), lambda: validate(curated.path, docs_dir, config))
    shutil.copyfile(docs_dir / SUMMARY_MD, summary.path)
    shutil.copyfile(docs_dir / "index.html", data_docs.path)
    metrics.log_metric("gate_passed", int(gate.passed))
    metrics.log_metric("failed_expectations", len(gate.failures))
    metrics.log_metric("documents", gate.documents)
    outputs = NamedTuple("ValidateOutputs", [("passed", bool), ("energy", str), ("failures", str)])
    return outputs(gate.passed, json.dumps(energy), "\n".join(gate.failures))


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate_failed_op(failures: str):
    """End a run whose data failed the gate, naming each failed expectation."""
    raise RuntimeError("validation gate failed:\n" + failures)
