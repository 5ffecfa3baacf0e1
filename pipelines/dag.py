"""The greenfm DAG: placement → curate → validate (gate) → pretrain → adapt → evaluate → carbon statement."""

from kfp import dsl

from components.adapt.component import adapt_op
from components.carbon.component import placement_op, statement_op
from components.curate.component import curate_op
from components.evaluate.component import evaluate_op
from components.pretrain.component import pretrain_op
from components.validate.component import gate_failed_op, validate_op
from pipelines.config import DEFAULTS as D

PIPELINE_NAME = "greenfm"


@dsl.pipeline(name=PIPELINE_NAME, description="Curate, validate, pretrain, adapt, evaluate, and state the carbon cost.")
def greenfm_pipeline(
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
    country_iso_code: str = D.country_iso_code,
    grid_region: str = D.grid_region,
    cloud_provider: str = D.cloud_provider,
    cloud_region: str = D.cloud_region,
    pue: float = D.pue,
    warm_start_model: str = D.warm_start_model,
    allowed_languages: str = D.allowed_languages,
    min_language_share: float = D.min_language_share,
    language_share_bounds: str = D.language_share_bounds,
    drift_mode: str = D.drift_mode,
    profile_store: str = D.profile_store,
):
    """greenfm foundation-model pipeline.

    Args:
        input_uri: JSONL, Parquet or .txt files (a file, folder, or s3a:// / gs:// URI). Empty: the built-in corpus.
        data_fingerprint: Content hash of the input; keys the step cache so changed data reruns curation.
        seed: Seed for every random choice (data order, initialization, adaptation).
        min_words: Documents with fewer words are dropped during curation.
        vocab_size: Size of the BPE vocabulary trained on the curated corpus.
        min_documents: The validation gate fails with fewer curated documents than this.
        license_allowlist: Comma-separated licenses the gate accepts; empty accepts any.
        model_size: Named model size (tiny, small, gpt2-124m, 350m, 1b).
        seq_len: Training context length in tokens.
        batch_size: Sequences per optimizer step per data-parallel rank.
        train_steps: Optimizer steps of pretraining.
        learning_rate: Peak learning rate (warmup, then cosine decay).
        adapt_method: Adaptation method: full (fine-tune everything) or head (linear probe).
        adapt_steps: Optimizer steps of adaptation.
        country_iso_code: ISO 3166 alpha-3 country whose grid powers the run (carbon accounting).
        grid_region: US state or Canadian province for a finer grid intensity (optional).
        cloud_provider: gcp, aws or azure when running in a cloud region (optional).
        cloud_region: Cloud region name, e.g. europe-north1 (optional).
        pue: Power usage effectiveness of the data centre (1.0 for a laptop).
        warm_start_model: Model directory of an earlier run to start pretraining from (set by `greenfm watch`).
        allowed_languages: Comma-separated ISO 639-1 codes the gate accepts (needs the lang column); empty: any.
        min_language_share: Share of documents that must be in allowed_languages for the gate to pass.
        language_share_bounds: Per-language share bounds the gate enforces, e.g. en=0.8:1,fr=0:0.1; empty: none.
        drift_mode: fail, warn or off: what the gate does when the data drifted from the last accepted profile.
        profile_store: Folder or URI (s3://, gs://) keeping the last accepted dataset profile; empty: no drift check.
    """
    place = placement_op(
        country_iso_code=country_iso_code,
        grid_region=grid_region,
        cloud_provider=cloud_provider,
        cloud_region=cloud_region,
        pue=pue,
    ).set_display_name("placement")
    location = place.output
    curate = curate_op(
        input_uri=input_uri,
        data_fingerprint=data_fingerprint,
        location=location,
        min_words=min_words,
        vocab_size=vocab_size,
    ).set_display_name("curate")
    validate = validate_op(
        curated=curate.outputs["curated"],
        location=location,
        min_documents=min_documents,
        license_allowlist=license_allowlist,
        allowed_languages=allowed_languages,
        min_language_share=min_language_share,
        language_share_bounds=language_share_bounds,
        drift_mode=drift_mode,
        profile_store=profile_store,
    ).set_display_name("validate")

    with dsl.If(validate.outputs["passed"] == True, name="gate-passed"):  # noqa: E712 (KFP condition syntax)
        pretrain = pretrain_op(
            curated=curate.outputs["curated"],
            location=location,
            model_size=model_size,
            seq_len=seq_len,
            batch_size=batch_size,
            train_steps=train_steps,
            learning_rate=learning_rate,
            seed=seed,
            warm_start_model=warm_start_model,
        ).set_display_name("pretrain")
        adapt = adapt_op(
            base_model=pretrain.outputs["model"], location=location, method=adapt_method, adapt_steps=adapt_steps, seed=seed
        ).set_display_name("adapt")
        evaluate = evaluate_op(
            base_model=pretrain.outputs["model"],
            adapted_model=adapt.outputs["adapted"],
            curated=curate.outputs["curated"],
            location=location,
        ).set_display_name("evaluate")
        statement_op(
            data_fingerprint=data_fingerprint,
            outcome="completed",
            curate_energy=curate.outputs["energy"],
            validate_energy=validate.outputs["energy"],
            pretrain_energy=pretrain.outputs["energy"],
            adapt_energy=adapt.outputs["energy"],
            evaluate_energy=evaluate.outputs["energy"],
            total_training_flops=pretrain.outputs["total_flops"],
        ).set_display_name("carbon-statement")

    with dsl.Else(name="gate-failed"):
        failed_statement = statement_op(
            data_fingerprint=data_fingerprint,
            outcome="stopped at the validation gate",
            curate_energy=curate.outputs["energy"],
            validate_energy=validate.outputs["energy"],
        ).set_display_name("carbon-statement")
        gate_failed_op(failures=validate.outputs["failures"]).after(failed_statement).set_display_name("gate-failed")
