"""KFP wrapper: moves artifacts in and out; the work is components.pretrain.launch.launch."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Model, Output

from components.common.images import TRAINER_IMAGE


@dsl.component(base_image=TRAINER_IMAGE, install_kfp_package=False)
def pretrain_op(
    curated: Input[Dataset],
    location: str,
    model_size: str,
    seq_len: int,
    batch_size: int,
    train_steps: int,
    learning_rate: float,
    seed: int,
    warm_start_model: str,
    model_store: str,
    data_fingerprint: str,
    node_selector: dict,
    grad_accum: int,
    parallelism: str,
    checkpoint_every: int,
    launch_backend: str,
    train_nodes: int,
    gpus_per_node: int,
    replica_cpu: str,
    replica_memory: str,
    gpu_resource: str,
    gpu_tolerations: list,
    model: Output[Model],
    report: Output[Markdown],
) -> NamedTuple("PretrainOutputs", [("energy", str), ("checkpoint_sha256", str), ("total_flops", float)]):
    """Pretrain a decoder-only transformer on the curated token shards (torchrun here, or a PyTorchJob / TrainJob
    on the nodes `node_selector` picks, each replica with the given resources); publish it to `model_store` if
    given."""
    from pathlib import Path

    from components.common.component_io import copy_outputs, measured
    from components.common.contracts import TOKENS_DIR, TRAIN_REPORT_MD
    from components.common.model_store import publish, warm_start_source
    from components.pretrain.config import pipeline_train_config
    from components.pretrain.launch import LaunchConfig, launch
    from components.pretrain.node_energy import with_node_energy

    config = pipeline_train_config(
        model_size=model_size,
        seq_len=seq_len,
        batch_size=batch_size,
        train_steps=train_steps,
        learning_rate=learning_rate,
        seed=seed,
        grad_accum=grad_accum,
        parallelism=parallelism,
        checkpoint_every=checkpoint_every,
        init_from=warm_start_source(warm_start_model, model_store),
        # scratch for restarts within this step, next to (not inside) the model artifact
        checkpoint_dir=str(Path(model.path).parent / "checkpoints"),
    )
    # On Kubernetes (PyTorchJob or TrainJob) the workers run on other nodes: each node measures itself (one tracker
    # per node) at the same location and the stage's energy is their sum (with_node_energy). This launcher pod only
    # waits and measures its own process.
    on_cluster = launch_backend != "local"
    launch_config = LaunchConfig(
        backend=launch_backend,
        nodes=train_nodes,
        procs_per_node=gpus_per_node,
        node_selector=dict(node_selector),
        energy_location=location if on_cluster else "",
        cpu=replica_cpu,
        memory=replica_memory,
        gpu_resource=gpu_resource,
        tolerations=list(gpu_tolerations),
    )
    tokens = Path(curated.path) / TOKENS_DIR
    work = lambda: launch(tokens, model.path, config, launch_config)  # noqa: E731
    result, energy = measured("pretrain", location, work, tracking_mode="process" if on_cluster else None)
    energy = with_node_energy(energy, model.path)
    copy_outputs([(Path(model.path) / TRAIN_REPORT_MD, report.path)])
    model.metadata.update({"sha256": result.checkpoint_sha256, "val_loss": result.val_loss})
    if model_store:  # where the next run (e.g. one `greenfm watch` submits to Kubeflow) can find it
        published = publish(model.path, model_store, data_fingerprint or result.checkpoint_sha256)
        model.metadata["published"] = str(published)
    outputs = NamedTuple("PretrainOutputs", [("energy", str), ("checkpoint_sha256", str), ("total_flops", float)])
    return outputs(energy.dumps(), result.checkpoint_sha256, result.total_flops)
