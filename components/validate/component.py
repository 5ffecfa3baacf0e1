"""KFP wrapper: moves artifacts in and out; the work is components.validate.gate.validate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_op(
    curated: Input[Dataset],
    location: str,
    min_documents: int,
    min_words: int,
    license_allowlist: str,
    allowed_languages: str,
    min_language_share: float,
    language_share_bounds: str,
    drift_mode: str,
    profile_store: str,
    summary: Output[Markdown],
    datasheet: Output[Markdown],
    data_docs: Output[HTML],
    data_docs_site: Output[Artifact],
    metrics: Output[Metrics],
) -> NamedTuple("ValidateOutputs", [("passed", bool), ("energy", str), ("failures", str)]):
    """Run the expectation suites; `passed` gates training. `data_docs` is the Data Docs index page,
    `data_docs_site` the whole site (validation pages included) to download and browse."""
    import tempfile
    from pathlib import Path

    from components.common.component_io import copy_outputs, measured
    from components.validate.config import from_params
    from components.validate.datasheet import DATASHEET_MD
    from components.validate.gate import SUMMARY_MD, gate_metrics, validate

    config = from_params(
        min_documents,
        license_allowlist,
        allowed_languages,
        min_language_share,
        language_share_bounds,
        drift_mode,
        profile_store,
        min_words=min_words,
    )
    docs_dir = Path(tempfile.mkdtemp(prefix="greenfm-datadocs-"))
    gate, energy = measured("validate", location, lambda: validate(curated.path, docs_dir, config))
    copy_outputs(
        [
            (docs_dir / SUMMARY_MD, summary.path),
            (docs_dir / DATASHEET_MD, datasheet.path),
            (docs_dir / "index.html", data_docs.path),
            (docs_dir, data_docs_site.path),
        ]
    )
    for name, value in gate_metrics(gate).items():
        metrics.log_metric(name, value)
    outputs = NamedTuple("ValidateOutputs", [("passed", bool), ("energy", str), ("failures", str)])
    return outputs(gate.passed, energy.dumps(), "\n".join(gate.failures))


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate_failed_op(failures: str):
    """End a run whose data failed the gate, naming each failed expectation and sample offending record ids."""
    lines = [line for line in failures.splitlines() if line.strip()]
    raise RuntimeError(f"validation gate failed ({len(lines)} expectation(s)):\n" + "\n".join(f"- {x}" for x in lines))
