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
    model: Output[Model],
    report: Output[Markdown],
    grad_accum: int = 1,
    parallelism: str = "ddp",
    checkpoint_every: int = 0,
    launch_backend: str = "local",
    train_nodes: int = 1,
    gpus_per_node: int = 0,
    replica_cpu: str = "8",
    replica_memory: str = "32Gi",
    gpu_resource: str = "nvidia.com/gpu",
    gpu_tolerations: list = [],
) -> NamedTuple("PretrainOutputs", [("energy", str), ("checkpoint_sha256", str), ("total_flops", float)]):
    """Pretrain a decoder-only transformer on the curated token shards (torchrun here, or a PyTorchJob / TrainJob
    on the nodes `node_selector` picks, each replica with the given resources); publish it to `model_store`."""
    import json
    import shutil
    from pathlib import Path

    from components.carbon.tracking import Location, aggregate_ranks, measure
    from components.common.model_store import publish, warm_start_source
    from components.curate.job import TOKENS_DIR
    from components.pretrain.checkpoint import REPORT_MD
    from components.pretrain.launch import LaunchConfig, launch
    from components.pretrain.train import TrainConfig, node_energy_records

    config = TrainConfig(
        model_size=model_size,
        seq_len=seq_len,
        batch_size=batch_size,
        steps=train_steps,
        lr=learning_rate,
        warmup_steps=max(1, train_steps // 10),
        seed=seed,
        init_from=warm_start_source(warm_start_model, model_store),
        grad_accum=grad_accum,
        parallelism=parallelism,
        checkpoint_every=checkpoint_every,
        # scratch for restarts within this step, next to (not inside) the model artifact
        checkpoint_dir=str(Path(model.path).parent / "checkpoints"),
    )
    # This step's tracker measures this machine. On Kubernetes the workers run on other nodes: each node
    # measures itself at the same location, and the stage's energy is their sum plus this waiting pod's.
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
    place = Location(**json.loads(location))
    result, energy = measure("pretrain", place, lambda: launch(tokens, model.path, config, launch_config))
    nodes = node_energy_records(model.path)
    if nodes:
        energy = aggregate_ranks([energy, *nodes])  # keeps the first record's stage: "pretrain"
    shutil.copyfile(Path(model.path) / REPORT_MD, report.path)
    model.metadata.update({"sha256": result.checkpoint_sha256, "val_loss": result.val_loss})
    if model_store:  # where the next run (e.g. one `greenfm watch` submits to Kubeflow) can find it
        published = publish(model.path, model_store, data_fingerprint or result.checkpoint_sha256)
        model.metadata["published"] = str(published)
    outputs = NamedTuple("PretrainOutputs", [("energy", str), ("checkpoint_sha256", str), ("total_flops", float)])
    return outputs(json.dumps(energy), result.checkpoint_sha256, result.total_flops)
