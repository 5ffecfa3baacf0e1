"""KFP wrappers: where heavy stages run, and the run's carbon impact statement."""

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def placement_op(country_iso_code: str, grid_region: str, cloud_provider: str, cloud_region: str, pue: float) -> str:
    """The location heavy stages run in and are measured at, as JSON for the stages."""
    import json
    from dataclasses import asdict

    from components.carbon.tracking import Location

    location = Location(country_iso_code, grid_region, cloud_provider, cloud_region, pue)
    return json.dumps(asdict(location))


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def statement_op(
    data_fingerprint: str,
    outcome: str,
    curate_energy: str,
    validate_energy: str,
    statement: Output[Markdown],
    statement_json: Output[Artifact],
    pretrain_energy: str = "",
    adapt_energy: str = "",
    evaluate_energy: str = "",
    total_training_flops: float = 0.0,
):
    """Gather every stage's energy record into the carbon impact statement (Markdown shown in the UI)."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from components.carbon.statement import STATEMENT_JSON, STATEMENT_MD, write_statement

    energies = [curate_energy, validate_energy, pretrain_energy, adapt_energy, evaluate_energy]
    records = [json.loads(e) for e in energies if e]
    run = {"outcome": outcome, "input data fingerprint": data_fingerprint or "not given"}
    if total_training_flops:
        run["pretraining compute"] = f"{total_training_flops:.3e} FLOPs"
    out = Path(tempfile.mkdtemp(prefix="greenfm-carbon-"))
    write_statement(records, out, run)
    shutil.copyfile(out / STATEMENT_MD, statement.path)
    shutil.copyfile(out / STATEMENT_JSON, statement_json.path)
