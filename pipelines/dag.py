"""The greenfm DAG: curate → validate (gate) → pretrain → adapt → evaluate → carbon statement, with a
select_region step before each heavy stage (curate, pretrain, adapt) whose output places it on the nodes of the
least-emitting feasible region (node selector topology.kubernetes.io/region)."""

from functools import cache

from kfp import dsl, kubernetes
from kfp.dsl.graph_component import GraphComponent

from components.adapt.component import adapt_from_scratch_op, adapt_op
from components.carbon.catalog import CLUSTER_CATALOG_PATH
from components.carbon.component import select_region_op, statement_op
from components.carbon.providers import SECRET_KEYS, SECRET_NAME
from components.carbon.tracking import NODE_NAME
from components.common.cluster import NAMESPACE_ENV, WORKSPACE_MOUNT, WORKSPACE_PVC
from components.curate.component import curate_op
from components.curate.k8s import SPARK_ENV
from components.evaluate.component import evaluate_op
from components.pretrain.component import pretrain_op
from components.validate.component import gate_failed_op, validate_op
from pipelines import cluster_tasks
from pipelines.config import DEFAULTS as D
from pipelines.config import RunConfig, documented_by_run_config

PIPELINE_NAME = "greenfm"
PIPELINE_DESCRIPTION = "Curate, validate, pretrain, adapt, evaluate, and state the carbon cost."
REGIONS_CONFIG_MAP = "greenfm-regions"
SPARK_CONFIG_MAP = "greenfm-spark"  # manifests/base/spark-config.yaml


def on_workspace(task):
    """Mount the workspace volume (manifests/base/workspace-pvc.yaml) where the step expects it; kfp.local ignores it."""
    return kubernetes.mount_pvc(task, WORKSPACE_PVC, WORKSPACE_MOUNT)


def in_run_namespace(task):
    """Tell the step its pod's namespace (downward API), where the jobs it creates must go: KFP runs the pods in
    the run's namespace, and the run's account may create jobs there only."""
    return kubernetes.use_field_path_as_env(task, NAMESPACE_ENV, "metadata.namespace")


def placed(task, select):
    """Run `task` on the nodes of the region `select` chose, and measure it there (kfp.local ignores selectors).
    Its energy record names its node (downward API), so no node is counted twice."""
    kubernetes.use_field_path_as_env(task, NODE_NAME, "spec.nodeName")
    return kubernetes.add_node_selector_json(task, select.outputs["node_selector"])


@documented_by_run_config  # the Kubeflow UI form's descriptions: RunConfig's
def greenfm_dag(
    input_uri: str = D.input_uri,
    data_fingerprint: str = D.data_fingerprint,
    seed: int = D.seed,
    min_words: int = D.min_words,
    vocab_size: int = D.vocab_size,
    min_documents: int = D.min_documents,
    license_allowlist: str = D.license_allowlist,
    model_size: str = D.model_size,
    seq_len: int = D.seq_len,
    batch_size: int = D.batch_size,
    train_steps: int = D.train_steps,
    learning_rate: float = D.learning_rate,
    adapt_method: str = D.adapt_method,
    adapt_steps: int = D.adapt_steps,
    warm_start_model: str = D.warm_start_model,
    model_store: str = D.model_store,
    spark_backend: str = D.spark_backend,
    spark_executors: int = D.spark_executors,
    region_catalog: str = D.region_catalog,
    intensity_provider: str = D.intensity_provider,
    intensity_provider_url: str = D.intensity_provider_url,
    gpu_type: str = D.gpu_type,
    gpu_count: int = D.gpu_count,
    residency_tags: str = D.residency_tags,
    deadline_hours: float = D.deadline_hours,
    max_wait_hours: float = D.max_wait_hours,
    intensity_fail_closed: bool = D.intensity_fail_closed,
    job_estimates: str = D.job_estimates,
    submission_placement: str = D.submission_placement,
    social_cost_usd_per_t: float = D.social_cost_usd_per_t,
    energy_usd_per_kwh: float = D.energy_usd_per_kwh,
    social_benefit_usd: str = D.social_benefit_usd,
    other_costs_usd: str = D.other_costs_usd,
    scratch_task_kwh: str = D.scratch_task_kwh,
    grad_accum: int = D.grad_accum,
    parallelism: str = D.parallelism,
    checkpoint_every: int = D.checkpoint_every,
    launch_backend: str = D.launch_backend,
    train_nodes: int = D.train_nodes,
    gpus_per_node: int = D.gpus_per_node,
    lora_rank: int = D.lora_rank,
    adapt_budget_flops: float = D.adapt_budget_flops,
    adapt_lm_loss_weight: float = D.adapt_lm_loss_weight,
    adapt_warm_start: str = D.adapt_warm_start,
    languages: str = D.languages,
    quality_preset: str = D.quality_preset,
    allowed_languages: str = D.allowed_languages,
    min_language_share: float = D.min_language_share,
    language_share_bounds: str = D.language_share_bounds,
    drift_mode: str = D.drift_mode,
    profile_store: str = D.profile_store,
    control_cpu: str = D.control_cpu,
    control_memory: str = D.control_memory,
    data_cpu: str = D.data_cpu,
    data_memory: str = D.data_memory,
    train_cpu: str = D.train_cpu,
    train_memory: str = D.train_memory,
    gpu_resource: str = D.gpu_resource,
    gpu_tolerations: list = D.gpu_tolerations,
):
    """greenfm foundation-model pipeline (parameters: pipelines/config.py)."""
    cluster = dict(
        control_cpu=control_cpu,
        control_memory=control_memory,
        data_cpu=data_cpu,
        data_memory=data_memory,
        train_cpu=train_cpu,
        train_memory=train_memory,
        gpu_resource=gpu_resource,
        gpu_tolerations=gpu_tolerations,
        gpus_per_node=gpus_per_node,
    )

    def select(stage: str, gpus: bool):
        task = select_region_op(
            stage=stage,
            region_catalog=region_catalog,
            intensity_provider=intensity_provider,
            intensity_provider_url=intensity_provider_url,
            gpu_type=gpu_type if gpus else "",
            gpu_count=gpu_count if gpus else 0,
            residency_tags=residency_tags,
            deadline_hours=deadline_hours,
            max_wait_hours=max_wait_hours,
            job_estimates=job_estimates,
            intensity_fail_closed=intensity_fail_closed,
        ).set_display_name(f"select-region-{stage}")
        task.set_caching_options(False)  # grid intensity changes: never reuse yesterday's pick
        cluster_tasks.control_task(task, cluster)
        # Live-provider credentials (optional: without them the static provider's data is used).
        kubernetes.use_secret_as_env(task, SECRET_NAME, {key: env for env, key in SECRET_KEYS.items()}, optional=True)
        # The deployment's catalog (multi-region overlay), used when region_catalog is empty.
        kubernetes.use_config_map_as_volume(task, REGIONS_CONFIG_MAP, str(CLUSTER_CATALOG_PATH.parent), optional=True)
        return task

    select_curate = select("curate", gpus=False)
    curate = curate_op(
        input_uri=input_uri,
        data_fingerprint=data_fingerprint,
        location=select_curate.outputs["location"],
        min_words=min_words,
        vocab_size=vocab_size,
        spark_backend=spark_backend,
        spark_executors=spark_executors,
        node_selector=select_curate.outputs["node_selector"],
        languages=languages,
        quality_preset=quality_preset,
    ).set_display_name("curate")
    placed(curate, select_curate)
    cluster_tasks.curate_task(curate, cluster)
    on_workspace(curate)  # input data (and Spark operator output) live there
    in_run_namespace(curate)  # Spark executors / the SparkApplication go there
    kubernetes.use_config_map_as_env(curate, SPARK_CONFIG_MAP, {var: var for var in SPARK_ENV}, optional=True)
    validate = validate_op(
        curated=curate.outputs["curated"],
        location=select_curate.outputs["location"],  # next to its data, on the curation region's grid
        min_documents=min_documents,
        min_words=min_words,  # the gate checks curation's word floor
        license_allowlist=license_allowlist,
        allowed_languages=allowed_languages,
        min_language_share=min_language_share,
        language_share_bounds=language_share_bounds,
        drift_mode=drift_mode,
        profile_store=profile_store,
    ).set_display_name("validate")
    placed(validate, select_curate)  # measured on curation's grid, so it runs there
    on_workspace(validate)  # the profile store may live there
    cluster_tasks.validate_task(validate, cluster)
    validate.set_caching_options(False)  # the verdict depends on the profile store, which changes between runs

    # The statement's money assumptions, the same whichever way the gate goes.
    cost_inputs = dict(
        social_cost_usd_per_t=social_cost_usd_per_t,
        energy_usd_per_kwh=energy_usd_per_kwh,
        social_benefit_usd=social_benefit_usd,
        other_costs_usd=other_costs_usd,
    )
    with dsl.If(validate.outputs["passed"] == True, name="gate-passed"):  # noqa: E712 (KFP condition syntax)
        select_pretrain = select("pretrain", gpus=True)
        pretrain = pretrain_op(
            curated=curate.outputs["curated"],
            location=select_pretrain.outputs["location"],
            model_size=model_size,
            seq_len=seq_len,
            batch_size=batch_size,
            train_steps=train_steps,
            learning_rate=learning_rate,
            seed=seed,
            warm_start_model=warm_start_model,
            model_store=model_store,
            data_fingerprint=data_fingerprint,
            grad_accum=grad_accum,
            parallelism=parallelism,
            checkpoint_every=checkpoint_every,
            launch_backend=launch_backend,
            train_nodes=train_nodes,
            gpus_per_node=gpus_per_node,
            replica_cpu=train_cpu,
            replica_memory=train_memory,
            gpu_resource=gpu_resource,
            gpu_tolerations=gpu_tolerations,
            node_selector=select_pretrain.outputs["node_selector"],
        ).set_display_name("pretrain")
        placed(pretrain, select_pretrain)
        cluster_tasks.pretrain_task(pretrain, cluster)
        on_workspace(pretrain)  # the model store and warm-start models live there
        in_run_namespace(pretrain)  # the PyTorchJob goes there
        select_adapt = select("adapt", gpus=True)
        # One adaptation recipe for both arms: the pretraining ablation differs only in its starting weights.
        adaptation = {
            "base_model": pretrain.outputs["model"],
            "location": select_adapt.outputs["location"],
            "method": adapt_method,
            "adapt_steps": adapt_steps,
            "lora_rank": lora_rank,
            "budget_flops": adapt_budget_flops,
            "lm_loss_weight": adapt_lm_loss_weight,
            "seed": seed,
        }
        adapt = adapt_op(**adaptation, warm_start=adapt_warm_start).set_display_name("adapt")
        placed(adapt, select_adapt)
        cluster_tasks.gpu_task(adapt, cluster)
        # The pretraining ablation: the same adaptation from a random init of the same size, on the same nodes.
        scratch = adapt_from_scratch_op(**adaptation).set_display_name("adapt-from-scratch")
        placed(scratch, select_adapt)
        cluster_tasks.gpu_task(scratch, cluster)
        evaluate = evaluate_op(
            base_model=pretrain.outputs["model"],
            adapted_model=adapt.outputs["adapted"],
            curated=curate.outputs["curated"],
            scratch_model=scratch.outputs["scratch"],
            scratch_energy=scratch.outputs["energy"],
            location=select_adapt.outputs["location"],
            pretrain_energy=pretrain.outputs["energy"],
            adapt_energy=adapt.outputs["energy"],
            seed=seed,
        ).set_display_name("evaluate")
        placed(evaluate, select_adapt)  # measured on adaptation's grid, so it runs there
        cluster_tasks.evaluate_task(evaluate, cluster)
        statement = statement_op(
            data_fingerprint=data_fingerprint,
            outcome="completed",
            curate_energy=curate.outputs["energy"],
            validate_energy=validate.outputs["energy"],
            pretrain_energy=pretrain.outputs["energy"],
            adapt_energy=adapt.outputs["energy"],
            evaluate_energy=evaluate.outputs["energy"],
            total_training_flops=pretrain.outputs["total_flops"],
            curate_placement=select_curate.outputs["decision"],
            pretrain_placement=select_pretrain.outputs["decision"],
            adapt_placement=select_adapt.outputs["decision"],
            adapt_method=adapt.outputs["method"],  # what ran: `auto` resolves to one method
            train_steps=train_steps,
            adapt_steps=adapt_steps,
            scratch_task_kwh=scratch_task_kwh,
            scratch_energy=scratch.outputs["energy"],  # the measured from-scratch arm of the amortization
            submission_placement=submission_placement,
            **cost_inputs,
        ).set_display_name("carbon-statement")
        cluster_tasks.control_task(statement, cluster)

    with dsl.Else(name="gate-failed"):
        failed_statement = statement_op(
            data_fingerprint=data_fingerprint,
            outcome="stopped at the validation gate",
            curate_energy=curate.outputs["energy"],
            validate_energy=validate.outputs["energy"],
            curate_placement=select_curate.outputs["decision"],
            submission_placement=submission_placement,
            **cost_inputs,
        ).set_display_name("carbon-statement")
        cluster_tasks.control_task(failed_statement, cluster)
        gate_failed = gate_failed_op(failures=validate.outputs["failures"]).after(failed_statement)
        gate_failed.set_display_name("gate-failed")
        cluster_tasks.control_task(gate_failed, cluster, retries=False)  # it fails on purpose


def build_pipeline(config: RunConfig) -> GraphComponent:
    """The pipeline with `config`'s compile-time settings (timeouts, retries, /dev/shm size) in its tasks.

    KFP builds a pipeline's graph when it decorates the function, so each call decorates `greenfm_dag` anew."""
    with cluster_tasks.compiling_with(config):
        return dsl.pipeline(name=PIPELINE_NAME, description=PIPELINE_DESCRIPTION)(greenfm_dag)


@cache
def greenfm_pipeline() -> GraphComponent:
    """The pipeline with the default settings, built on first use rather than at import: KFP calls
    `inspect.stack()` for every task setting, and under an import the stack holds frozen importlib frames, for
    each of which `inspect` scans all of `sys.modules` (the CLI spent 8 s there; built after the imports, 0.1 s)."""
    return build_pipeline(D)
