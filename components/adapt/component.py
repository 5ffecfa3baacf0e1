"""KFP wrapper: moves artifacts in and out; the work is components.adapt.finetune.adapt."""

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
    seed: int,
    adapted: Output[Model],
) -> NamedTuple("AdaptOutputs", [("energy", str), ("model_sha256", str), ("val_accuracy", float)]):
    """Fine-tune the pretrained model on the downstream task."""
    import json

    from components.adapt.finetune import AdaptConfig, adapt
    from components.carbon.tracking import Location, measure

    config = AdaptConfig(method=method, steps=adapt_steps, seed=seed)
    result, energy = measure(
        "adapt", Location(**json.loads(location)), lambda: adapt(base_model.path, adapted.path, config)
    )
    adapted.metadata.update({"sha256": result.model_sha256, "parent_sha256": result.parent_sha256})
    outputs = NamedTuple("AdaptOutputs", [("energy", str), ("model_sha256", str), ("val_accuracy", float)])
    return outputs(json.dumps(energy), result.model_sha256, result.val_accuracy)
