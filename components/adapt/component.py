"""KFP wrapper: moves artifacts in and out; the work is components.adapt.lineage.adapt_and_record."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Model, Output

from components.common.images import TRAINER_IMAGE


@dsl.component(base_image=TRAINER_IMAGE, install_kfp_package=False)
def adapt_op(
    base_model: Input[Model],
    location: str,
    method: str,
    adapt_steps: int,
    lora_rank: int,
    budget_flops: float,
    warm_start: str,
    seed: int,
    adapted: Output[Model],
    lm_loss_weight: float = 0.0,
) -> NamedTuple("AdaptOutputs", [("energy", str), ("model_sha256", str), ("val_accuracy", float), ("method", str)]):
    """Adapt the pretrained model to the downstream task (full fine-tuning by default); lineage.json records its ancestry."""
    import json

    from components.adapt.finetune import AdaptConfig
    from components.adapt.lineage import adapt_and_record
    from components.carbon.tracking import Location

    config = AdaptConfig(
        method=method,
        steps=adapt_steps,
        lora_rank=lora_rank,
        budget_flops=budget_flops,
        lm_loss_weight=lm_loss_weight,
        init_from=warm_start,
        seed=seed,
    )
    result, energy = adapt_and_record(base_model.path, adapted.path, config, Location(**json.loads(location)))
    adapted.metadata.update(
        {
            "sha256": result.model_sha256,
            "parent_sha256": result.parent_sha256,
            "method": result.method,
            "trainable_parameters": result.trainable_parameters,
        }
    )
    outputs = NamedTuple(
        "AdaptOutputs", [("energy", str), ("model_sha256", str), ("val_accuracy", float), ("method", str)]
    )
    return outputs(energy.dumps(), result.model_sha256, result.val_accuracy, result.method)


@dsl.component(base_image=TRAINER_IMAGE, install_kfp_package=False)
def adapt_from_scratch_op(
    base_model: Input[Model],
    location: str,
    method: str,
    adapt_steps: int,
    lora_rank: int,
    budget_flops: float,
    seed: int,
    scratch: Output[Model],
    lm_loss_weight: float = 0.0,
) -> NamedTuple("ScratchOutputs", [("energy", str), ("val_accuracy", float)]):
    """The from-scratch arm: the same adaptation from a randomly initialized model of the base model's size."""
    import json

    from components.adapt.finetune import AdaptConfig
    from components.adapt.scratch import adapt_from_scratch
    from components.carbon.tracking import Location

    config = AdaptConfig(
        method=method,
        steps=adapt_steps,
        lora_rank=lora_rank,
        budget_flops=budget_flops,
        lm_loss_weight=lm_loss_weight,
        seed=seed,
    )
    result, energy = adapt_from_scratch(base_model.path, scratch.path, config, Location(**json.loads(location)))
    scratch.metadata.update({"sha256": result.model_sha256, "method": result.method, "init": "random"})
    outputs = NamedTuple("ScratchOutputs", [("energy", str), ("val_accuracy", float)])
    return outputs(energy.dumps(), result.val_accuracy)
