"""RunConfig → each stage's own configuration. The stage packages own the policies (quality preset `auto`, warmup,
the gate's word floor, the cost inputs' "empty: not given"); these builders only hand them the run's fields. The
stage commands (`greenfm curate`, `greenfm validate`) use them, and the KFP components call the same stage
functions with the same parameters, so a stage run alone does what the pipeline's step does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.carbon.costs import CostAssumptions
from components.validate.config import ValidateConfig, from_params
from pipelines.config import RunConfig

if TYPE_CHECKING:  # heavy imports (pyspark, torch) only where a stage is built
    from components.adapt.finetune import AdaptConfig
    from components.curate.job import CurateConfig
    from components.pretrain.config import TrainConfig


def curate_config(run: RunConfig, builtin_corpus: bool) -> CurateConfig:
    from components.curate.job import pipeline_config

    return pipeline_config(run.min_words, run.vocab_size, run.languages, run.quality_preset, builtin_corpus)


def gate_config(run: RunConfig) -> ValidateConfig:
    return from_params(
        run.min_documents,
        run.license_allowlist,
        run.allowed_languages,
        run.min_language_share,
        run.language_share_bounds,
        run.drift_mode,
        run.profile_store,
        min_words=run.min_words,
    )


def train_config(run: RunConfig, init_from: str = "", checkpoint_dir: str = "") -> TrainConfig:
    from components.pretrain.config import pipeline_train_config

    return pipeline_train_config(
        model_size=run.model_size,
        seq_len=run.seq_len,
        batch_size=run.batch_size,
        train_steps=run.train_steps,
        learning_rate=run.learning_rate,
        seed=run.seed,
        grad_accum=run.grad_accum,
        parallelism=run.parallelism,
        checkpoint_every=run.checkpoint_every,
        init_from=init_from,
        checkpoint_dir=checkpoint_dir,
    )


def adapt_config(run: RunConfig) -> AdaptConfig:
    from components.adapt.finetune import AdaptConfig

    return AdaptConfig(
        method=run.adapt_method,
        steps=run.adapt_steps,
        lora_rank=run.lora_rank,
        budget_flops=run.adapt_budget_flops,
        lm_loss_weight=run.adapt_lm_loss_weight,
        init_from=run.adapt_warm_start,
        seed=run.seed,
    )


def cost_assumptions(run: RunConfig) -> CostAssumptions:
    return CostAssumptions.from_params(
        run.social_cost_usd_per_t,
        run.energy_usd_per_kwh,
        run.social_benefit_usd,
        run.other_costs_usd,
        run.scratch_task_kwh,
    )
