"""The `greenfm` command."""

from __future__ import annotations

import functools
import shutil
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from components.common.errors import GateFailed, GreenfmError
from pipelines.carbon_cli import carbon_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Foundation-model pipelines for Kubeflow.")
console = Console(stderr=True)
app.add_typer(carbon_app, name="carbon")
REPO_ROOT = Path(__file__).resolve().parent.parent


def user_errors(command):
    """Show user errors as one line and a non-zero exit, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GateFailed as error:
            console.print(f"[red]gate failed:[/] {error}", soft_wrap=True, highlight=False)
            raise typer.Exit(1) from None
        except GreenfmError as error:
            console.print(f"[red]error:[/] {error}{_trace_note(error)}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def _trace_note(error: GreenfmError) -> str:
    """Where the full trace of the failure behind `error` (a disk error, a Java exception) was written."""
    if error.__cause__ is None:
        return ""
    try:
        with tempfile.NamedTemporaryFile("w", prefix="greenfm-error-", suffix=".log", delete=False) as log:
            log.write("".join(traceback.format_exception(error)))
    except OSError:  # the temporary folder may be on the full disk too
        return ""
    return f" (full trace: {log.name})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@app.command()
@user_errors
def run(
    input: str | None = typer.Option(
        None, "--input", help="JSONL/Parquet/.txt file or folder. Default: built-in corpus."
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file of pipeline parameters."),
    out: Path = typer.Option(Path("greenfm-runs"), "--out", help="Folder that receives one directory per run."),
    zone: str = typer.Option(
        "USA", "--zone", help="This machine's grid: ISO 3166 alpha-3 country, or USA/<state>, CAN/<province>, SWE/SE1…"
    ),
    pue: float = typer.Option(1.0, "--pue", help="This machine's power usage effectiveness (1.0 for a laptop)."),
    runner: str = typer.Option(
        "subprocess", "--runner", help="subprocess, or docker: every step in its image (Docker or podman)."
    ),
) -> None:
    """Run the whole DAG on this machine (kfp.local): curate → validate → pretrain → adapt → evaluate → carbon."""
    from components.common.run_status import FAILED, SUCCEEDED, write_status
    from pipelines.config import load_config
    from pipelines.local_run import RUNNERS, new_run_dir, on_this_machine, prepare_input, run_local
    from pipelines.manifest import build_manifest, write_manifest
    from pipelines.reaper import supervised
    from pipelines.tasks import stage_of_task, task_key

    if runner not in RUNNERS:
        raise GreenfmError(f"--runner {runner}: expected one of {', '.join(RUNNERS)}")
    run_config = on_this_machine(load_config(config, input_uri=input), zone, pue)
    run_config.profile_store = run_config.profile_store or str(Path(out).resolve())  # accepted profile persists here
    Path(out).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out)).resolve()  # one per run: runs may overlap
    try:
        run_config = prepare_input(run_config, staging)
        run_dir = new_run_dir(out, run_config.data_fingerprint)
        if (staging / "input").exists():
            shutil.move(str(staging / "input"), run_dir / "input")
            run_config.input_uri = str(next((run_dir / "input").glob("*.jsonl")))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    console.print(f"run directory: [bold]{run_dir}[/]", highlight=False, soft_wrap=True)

    started = _now()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<18}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with supervised(run_dir):  # RUN_STATUS, and no process of the run outlives it
        with Progress(*columns, console=console, transient=False) as progress:
            rows: dict[str, TaskID] = {}

            def on_event(task: str, status: str) -> None:
                stage = stage_of_task().get(task, task)
                if stage not in rows:
                    rows[stage] = progress.add_task(stage, total=1, status="running")
                done = status != "RUNNING"
                progress.update(rows[stage], completed=1 if done else 0, status=status.lower())
                if done:
                    progress.stop_task(rows[stage])

            result = run_local(run_config, run_dir, on_event, runner)
        manifest = build_manifest(run_config, result, started, _now(), REPO_ROOT)
        manifest_path = write_manifest(manifest, run_dir)
        collected = _collect_reports(result)
        write_status(run_dir, SUCCEEDED if result.succeeded else FAILED, result.error)

    console.print(f"manifest: {manifest_path}", highlight=False)
    for name, path in collected.items():
        console.print(f"{name}: {path}", highlight=False)
    statement = collected.get("carbon statement")
    if statement:
        print(statement)  # stdout: the one path a script wants
    if not result.succeeded:
        gate = manifest["stages"].get(task_key("validate"), {}).get("parameters", {})
        if gate.get("passed") is False:
            details = result.task_dir(task_key("validate"))
            raise GateFailed(gate.get("failures", "").replace("\n", "; ") + f" (details: {details})")
        raise GreenfmError(f"run failed: {result.error}; see {result.log_file}")


def _collect_reports(result) -> dict[str, Path]:
    """Copy each stage's human-readable report to the top of the run directory."""
    from pipelines.tasks import task_keys

    wanted = {
        "carbon statement": ("carbon-statement", "statement", "carbon_statement.md"),
        "carbon statement (HTML)": ("carbon-statement", "statement_html", "carbon_statement.html"),
        "carbon statement (JSON)": ("carbon-statement", "statement_json", "carbon_statement.json"),
        "validation summary": ("validate", "summary", "validation_summary.md"),
        "datasheet": ("validate", "datasheet", "datasheet.md"),
        "curation report": ("curate", "report", "curation_report.md"),
        "training report": ("pretrain", "report", "training_report.md"),
        "evaluation report": ("evaluate", "report", "evaluation_report.md"),
        "evaluation report (HTML)": ("evaluate", "report_html", "evaluation_report.html"),
        "model cards": ("evaluate", "model_cards", "model_cards.md"),
    }
    collected = {}
    for name, (stage, artifact, target) in wanted.items():
        for task in task_keys()[stage]:
            source = result.task_dir(task) / artifact
            if source.is_file():
                shutil.copyfile(source, result.run_dir / target)
                collected[name] = result.run_dir / target
    return collected


@app.command("compile")
@user_errors
def compile_command(
    out: Path = typer.Option(Path("greenfm-pipeline.yaml"), "--out", help="Where to write the IR YAML."),
    config: Path | None = typer.Option(
        None, "--config", help="YAML run config: parameter defaults and compile-time cluster settings."
    ),
) -> None:
    """Write the KFP v2 pipeline (IR YAML) to upload in the Kubeflow UI."""
    from pipelines.compile import compile_pipeline
    from pipelines.config import load_config

    path = compile_pipeline(out, load_config(config) if config else None)
    console.print(f"compiled pipeline: {path}", highlight=False)


def run_option(name: str):
    """A stage command's option for run parameter `name`: RunConfig's description; unset means the run's value
    (the --config file's, else the default), so the command does what the pipeline's step does."""
    from pipelines.config import describe

    about = describe(name)
    return typer.Option(None, help=f"{about['description']} Run default: {about['default']}.", show_default=False)


@app.command()
@user_errors
def curate(
    input: str = typer.Option(..., "--input", help="JSONL/Parquet/.txt file, folder or s3a:// URI."),
    output: Path = typer.Option(..., "--output", help="Folder for the curated dataset."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of pipeline parameters (as `greenfm run`)."),
    min_words: int | None = run_option("min_words"),
    vocab_size: int | None = run_option("vocab_size"),
    languages: str | None = run_option("languages"),
    quality_preset: str | None = run_option("quality_preset"),
    strict_inputs: bool = typer.Option(False, help="Fail when a file under the input is skipped (unsupported format)."),
) -> None:
    """Curate a corpus (same function and configuration as the pipeline's curate step)."""
    from components.curate.inputs import discover_inputs
    from components.curate.job import REPORT_MD
    from components.curate.k8s import curate_with_backend
    from pipelines.config import load_config
    from pipelines.stage_configs import curate_config

    run_config = load_config(
        config, min_words=min_words, vocab_size=vocab_size, languages=languages, quality_preset=quality_preset
    )
    discover_inputs(input, strict=strict_inputs)  # fail in seconds on bad input, before Spark starts
    curation = curate_config(run_config, builtin_corpus=False)
    curation.strict_inputs = strict_inputs
    with console.status("curating with Spark…"):
        result = curate_with_backend(input, output, curation)  # the step's Spark backend ($GREENFM_SPARK_*)
    console.print((Path(result.output_dir) / REPORT_MD).read_text(), highlight=False)
    console.print(f"curated dataset: {result.output_dir}", highlight=False)


@app.command()
@user_errors
def validate(
    input: Path = typer.Option(..., "--input", help="A curated dataset folder (output of `greenfm curate`)."),
    config: Path | None = typer.Option(None, "--config", help="YAML file of pipeline parameters (as `greenfm run`)."),
    min_documents: int | None = run_option("min_documents"),
    min_words: int | None = run_option("min_words"),
    license_allowlist: str | None = run_option("license_allowlist"),
    allowed_languages: str | None = run_option("allowed_languages"),
    min_language_share: float | None = run_option("min_language_share"),
    language_share_bounds: str | None = run_option("language_share_bounds"),
    drift_mode: str | None = run_option("drift_mode"),
    profile_store: str | None = run_option("profile_store"),
    docs: Path | None = typer.Option(None, "--docs", help="Folder for Data Docs (default: INPUT/validation)."),
) -> None:
    """Run the validation gate on a curated dataset; exit 1 when it fails."""
    from components.common.errors import InputError
    from components.validate.datasheet import DATASHEET_MD
    from components.validate.gate import validate as validate_gate
    from pipelines.config import load_config
    from pipelines.stage_configs import gate_config

    run_config = load_config(
        config,
        min_documents=min_documents,
        min_words=min_words,
        license_allowlist=license_allowlist,
        allowed_languages=allowed_languages,
        min_language_share=min_language_share,
        language_share_bounds=language_share_bounds,
        drift_mode=drift_mode,
        profile_store=profile_store,
    )
    if not input.is_dir():
        raise InputError(f"{input}: no such directory")
    docs_dir = docs or input / "validation"
    with console.status("validating…"):
        gate = validate_gate(input, docs_dir, gate_config(run_config))
    print(gate.summary_markdown())
    console.print(f"Data Docs: {docs_dir / 'index.html'}\ndatasheet: {docs_dir / DATASHEET_MD}", highlight=False)
    if not gate.passed:
        raise GateFailed("; ".join(gate.failures))


@app.command()
@user_errors
def regions(
    catalog: Path | None = typer.Option(None, "--catalog", help="Region catalog YAML. Default: the shipped one."),
    provider: str = typer.Option("static", "--provider", help="static, electricitymaps, watttime or carbon-aware-sdk."),
    provider_url: str = typer.Option(
        "", "--provider-url", help="Base URL of the provider's API (default: its public one)."
    ),
    gpu_type: str = typer.Option("", "--gpu-type", help="GPU type the job needs (a key of the catalog's gpus)."),
    gpu_count: int = typer.Option(0, "--gpu-count", help="GPUs of that type the job needs."),
    tags: str = typer.Option("", "--tags", help="Comma-separated tags the region must carry, e.g. residency-eu."),
    deadline_hours: float = typer.Option(0.0, "--deadline-hours", help="Finish within this many hours; 0: none."),
    max_wait_hours: float = typer.Option(0.0, "--max-wait-hours", help="How long the job may wait for a cleaner hour."),
    energy_kwh: float = typer.Option(20.0, "--energy-kwh", help="Expected IT energy of the job."),
    hours: float = typer.Option(2.0, "--hours", help="Expected duration of the job."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Show the region catalog with current grid intensities, and the region a job would be placed in."""
    import json
    from datetime import datetime

    from rich.table import Table

    from components.carbon.catalog import load_catalog
    from components.carbon.placement import Constraints, Job, select_region
    from components.carbon.providers import describe_warning, make_provider

    regions_catalog = load_catalog(catalog)
    constraints = Constraints.from_params(gpu_type, gpu_count, tags, deadline_hours, max_wait_hours)
    job = Job("job", energy_kwh, hours)
    decision = select_region(
        regions_catalog, make_provider(provider, provider_url), constraints, job, datetime.now(UTC)
    )
    if as_json:
        print(json.dumps(decision.to_json(), indent=2))
        return
    signals = {s["region"]: s for s in decision.signals}
    best = {o.region: o for o in decision.alternatives}
    table = Table(title=f"region catalog ({catalog or 'shipped default'}), intensities from {provider}")
    for column in ("region", "provider", "zone", "GPUs", "tags", "PUE", "g/kWh now", "source", "expected kg", "status"):
        table.add_column(column)
    for region in regions_catalog.regions:
        signal, option = signals.get(region.name), best.get(region.name)
        status = decision.infeasible.get(region.name) or (
            "PICK" if region.name == decision.chosen.region else "feasible"
        )
        table.add_row(
            region.name + (" (default)" if region.name == regions_catalog.default_region else ""),
            region.provider,
            region.zone,
            ", ".join(f"{n}×{t}" for t, n in region.gpus.items()) or "-",
            ", ".join(region.tags) or "-",
            f"{region.pue:g}",
            f"{signal['g_per_kwh']:.1f}" if signal else "-",
            signal["source"] if signal else "-",
            f"{option.expected_kg:.4g}" if option else "-",
            status,
        )
    Console(width=220).print(table)  # wide: a piped table would otherwise wrap every cell
    console.print(f"pick: [bold]{decision.chosen.region}[/] starting {decision.chosen.start}", highlight=False)
    console.print(decision.reason, highlight=False, soft_wrap=True)
    for warning in decision.warnings:
        console.print(f"[yellow]warning:[/] {describe_warning(warning)}", highlight=False, soft_wrap=True)


# Options `submit` and `schedule` share (typer reads each function's defaults, so one definition serves both).
EXPERIMENT_OPTION = typer.Option("greenfm", "--experiment", help="Experiment to run in (created if missing).")
PARAM_OPTION = typer.Option([], "--param", help="Pipeline parameter NAME=VALUE; repeat for more.")
PACKAGE_OPTION = typer.Option(None, "--package", help="A compiled pipeline YAML; default: compile now.")
NAMESPACE_OPTION = typer.Option(None, "--namespace", help="Kubeflow profile namespace (multi-user).")
SERVICE_ACCOUNT_OPTION = typer.Option(
    None, "--service-account", help="Account the run's pods use; default: the namespace's pipeline account."
)
TOKEN_PATH_OPTION = typer.Option(
    None, "--token-path", help="KFP service account token (multi-user); default: the projected one if mounted."
)


@app.command()
@user_errors
def submit(
    host: str | None = typer.Option(
        None,
        "--host",
        help="Kubeflow Pipelines API, e.g. http://localhost:8888 (port-forward); default: the cleanest cluster "
        "of the region catalog (its regions' kfp_host).",
    ),
    catalog: Path | None = typer.Option(
        None,
        "--catalog",
        help="Region catalog to place the run with (default: the run's region_catalog, else the shipped one); "
        "with --host, only that cluster's regions, for the start time.",
    ),
    experiment: str = EXPERIMENT_OPTION,
    param: list[str] = PARAM_OPTION,
    package: Path | None = PACKAGE_OPTION,
    run_name: str | None = typer.Option(None, "--run-name", help="Default: greenfm-<UTC time>."),
    namespace: str | None = NAMESPACE_OPTION,
    service_account: str | None = SERVICE_ACCOUNT_OPTION,
    token_path: str | None = TOKEN_PATH_OPTION,
) -> None:
    """Upload the pipeline (a new version if it exists) and start a run on Kubeflow Pipelines. Without --host
    (or with --catalog) the run is placed first: on the cluster of the least-emitting feasible region, and, when
    a later start within max_wait_hours is cleaner, as a one-off scheduled run starting then."""
    from components.carbon.catalog import load_catalog
    from pipelines.run_placement import submit_placed
    from pipelines.submit import SubmitTarget, parse_params, submit_run

    params = parse_params(param)
    name = run_name or "greenfm-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = SubmitTarget(
        host or "", experiment, namespace=namespace, service_account=service_account, token_path=token_path
    )
    if host and catalog is None:
        done = submit_run(target, params, name, package)
    else:
        regions = load_catalog(catalog or params.get("region_catalog") or None)
        done, placement = submit_placed(target, params, name, package, regions)
        console.print(f"placement: {placement.summary()}", highlight=False, soft_wrap=True)
    console.print(
        f"pipeline {done.pipeline_id} version {done.version_id}; experiment {done.experiment_id}", highlight=False
    )
    if done.recurring_run_id:
        console.print(f"one-off schedule {done.recurring_run_id} starts the run", highlight=False)
    print(done.run_id or done.recurring_run_id)  # stdout: the one id a script wants


@app.command()
@user_errors
def schedule(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API URL."),
    cron: str = typer.Option(..., "--cron", help="6-field cron, seconds first, e.g. '0 0 3 * * *' (03:00 daily)."),
    name: str = typer.Option("greenfm-recurring", "--name", help="Name of the recurring run."),
    experiment: str = EXPERIMENT_OPTION,
    param: list[str] = PARAM_OPTION,
    package: Path | None = PACKAGE_OPTION,
    namespace: str | None = NAMESPACE_OPTION,
    service_account: str | None = SERVICE_ACCOUNT_OPTION,
    token_path: str | None = TOKEN_PATH_OPTION,
) -> None:
    """Create a recurring run (KFP schedule; one run at a time, no catch-up)."""
    from pipelines.submit import SubmitTarget, parse_params, schedule_run

    params = parse_params(param)
    target = SubmitTarget(host, experiment, namespace=namespace, service_account=service_account, token_path=token_path)
    done = schedule_run(target, params, name, cron, package)
    print(done.recurring_run_id)


@app.command()
@user_errors
def watch(
    input: str = typer.Option(..., "--input", help="Input file or folder to fingerprint (as the pipeline sees it)."),
    state: str = typer.Option(..., "--state", help="JSON state file, or configmap[:NAME] inside a cluster."),
    host: str | None = typer.Option(None, "--host", help="Submit to this KFP API; default: run locally."),
    out: Path = typer.Option(Path("greenfm-runs"), "--out", help="Local runs: folder for run directories."),
    experiment: str = typer.Option("greenfm", "--experiment", help="KFP experiment."),
    param: list[str] = typer.Option([], "--param", help="Pipeline parameter NAME=VALUE; repeat for more."),
    namespace: str | None = typer.Option(None, "--namespace", help="Namespace of the state ConfigMap / KFP profile."),
    service_account: str | None = typer.Option(None, "--service-account", help="Account the runs' pods use."),
    token_path: str | None = typer.Option(None, "--token-path", help="KFP service account token (multi-user)."),
    place: bool = typer.Option(
        False,
        "--place",
        help="Place each run as `greenfm submit` does: on the cleanest cluster of the region catalog (only "
        "--host's regions if given), as a one-off schedule when a later start is cleaner.",
    ),
) -> None:
    """Submit one run when the input data changed since the last accepted run; otherwise do nothing."""
    from dataclasses import replace

    from pipelines.config import RunConfig
    from pipelines.submit import SubmitTarget, parse_params
    from pipelines.watch import watch_once
    from pipelines.watch_state import open_store
    from pipelines.watch_submitters import KfpSubmitter, LocalSubmitter

    base = replace(RunConfig(), **parse_params(param))
    target = SubmitTarget(
        host or "", experiment, namespace=namespace, service_account=service_account, token_path=token_path
    )
    submitter = KfpSubmitter(target, place=place) if host or place else LocalSubmitter(out)
    result = watch_once(input, open_store(state, namespace), submitter, base)
    messages = {
        "unchanged": f"input unchanged (fingerprint {result.fingerprint[:12]}); nothing submitted",
        "busy": "another watcher is deciding; nothing submitted",
        "running": f"the run of the last change ({result.run_id}) has not finished; nothing submitted",
        "submitted": f"input changed (fingerprint {result.fingerprint[:12]}); submitted run {result.run_id}",
    }
    console.print(messages[result.action], highlight=False)
    print(result.action)


@app.command()
@user_errors
def lineage(run_dir: Path = typer.Argument(..., help="A run directory (or a folder of runs).")) -> None:
    """Print the model lineage tree: base models → adapted variants, with method, trainable parameters, energy."""
    from rich.console import Console as StdoutConsole

    from components.adapt.lineage import lineage_tree
    from components.common.errors import InputError

    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    root = run_dir.resolve()
    StdoutConsole().print(lineage_tree(root, lambda path: str(path.relative_to(root))))


def _register_subcommands() -> None:
    from pipelines.images import cli as images_cli

    app.add_typer(images_cli(), name="images")


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
