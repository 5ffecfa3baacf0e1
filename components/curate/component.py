"""KFP wrapper: moves artifacts in and out; the work is components.curate.job.curate."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from components.common.images import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def curate_op(
    input_uri: str,
    data_fingerprint: str,
    location: str,
    min_words: int,
    vocab_size: int,
    spark_backend: str,
    spark_executors: int,
    node_selector: dict,
    languages: str,
    quality_preset: str,
    curated: Output[Dataset],
    report: Output[Markdown],
) -> NamedTuple("CurateOutputs", [("energy", str), ("fingerprint", str), ("documents", int)]):
    """Curate raw text into deduplicated Parquet and token shards. `data_fingerprint` only keys the cache."""
    import json
    import tempfile
    from pathlib import Path

    from components.carbon.spark_executors import stage_record
    from components.carbon.tracking import Location
    from components.common.component_io import copy_outputs, measured
    from components.common.default_data import write_default_corpus
    from components.curate.job import REPORT_MD, pipeline_config
    from components.curate.k8s import curate_with_backend, from_pipeline  # local[*], k8s:// client, SparkApplication

    spark = from_pipeline(spark_backend, spark_executors, node_selector)  # executors follow the step's placement

    def work():
        source = input_uri or str(write_default_corpus(tempfile.mkdtemp(prefix="greenfm-corpus-")))
        config = pipeline_config(min_words, vocab_size, languages, quality_preset, builtin_corpus=not input_uri)
        # On a cluster every executor (and the SparkApplication's driver) measures itself at this location.
        return curate_with_backend(
            source, curated.path, config, spark, energy_location=Location(**json.loads(location))
        )

    result, energy = measured("curate", location, work)
    energy.notes = result.mitigation_notes()
    if spark.backend != "local":  # the step's own tracker + one per executor (+ the driver pod's), no node twice
        energy = stage_record(energy, result.energy_records, spark.executors)
    copy_outputs([(Path(curated.path) / REPORT_MD, report.path)])
    curated.metadata.update({"fingerprint": result.fingerprint, "documents": result.documents})
    outputs = NamedTuple("CurateOutputs", [("energy", str), ("fingerprint", str), ("documents", int)])
    return outputs(energy.dumps(), result.fingerprint, result.documents)
