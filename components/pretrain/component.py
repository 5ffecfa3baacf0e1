"""KFP wrapper: moves artifacts in and out; the work is components.pretrain.train.train."""

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
    model: Output[Model],
    report: Output[Markdown],
) -> NamedTuple("PretrainOutputs", [("energy", str), ("checkpoint_sha256", str), ("total_flops", float)]):
    """Pretrain a decoder-only transformer on the curated token shards; publish it to `model_store` if given."""
    import json
    import shutil
    from pathlib import Path

    from components.carbon.tracking import Location, measure
    from components.common.model_store import publish, warm_start_source
    from components.curate.job import TOKENS_DIR
    from components.pretrain.train import TrainConfig, train

    config = TrainConfig(
        model_size=model_size,
        seq_len=seq_len,
        batch_size=batch_size,
        steps=train_steps,
        lr=learning_rate,
        warmup_steps=max(1, train_steps // 10),
        seed=seed,
        init_from=warm_start_source(warm_start_model, model_store),
    )
    tokens = Path(curated.path) / TOKENS_DIR
    result, energy = measure("pretrain", Location(**json.loads(location)), lambda: train(tokens, model.path, config))
    shutil.copyfile(Path(model.path) / "train_report.md", report.path)
    model.metadata.update({"sha256": result.checkpoint_sha256, "val_loss": result.val_loss})
    if model_store:  # where the next run (e.g. one `greenfm watch` submits to Kubeflow) can find it
        published = publish(model.path, model_store, data_fingerprint or result.checkpoint_sha256)
        model.metadata["published"] = str(published)
    outputs = NamedTuple("PretrainOutputs", [("energy", str), ("checkpoint_sha256", str), ("total_flops", float)])
    return outputs(json.dumps(energy), result.checkpoint_sha256, result.total_flops)
