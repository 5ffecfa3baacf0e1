"""Shared fixtures: one Spark session per test session, and kfp.local subprocesses that import this checkout."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Component subprocesses (kfp.local) and Spark's Python workers must import this checkout's code.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# What greenfm caches on disk (components.common.machine_cache.cache_dir) stays out of the user's home.
os.environ.setdefault("GREENFM_CACHE_DIR", tempfile.mkdtemp(prefix="greenfm-test-cache-"))


@pytest.fixture
def api_server():
    """(FakeApiServer, base URL): a Kubernetes API server for one test (tests/fake_k8s.py)."""
    from tests import fake_k8s

    yield from fake_k8s.serve()


@pytest.fixture
def kfp_server():
    """(FakeKfp, base URL): a Kubeflow Pipelines API server for one test (tests/fake_kfp.py)."""
    from tests import fake_kfp

    yield from fake_kfp.serve()


@pytest.fixture
def kfp_multi_user():
    """(FakeKfp, base URL): a multi-user KFP server where token `profile-token` is the default-editor of
    kubeflow-user-example-com (the example profile of kubeflow/manifests)."""
    from tests import fake_kfp

    yield from fake_kfp.serve(fake_kfp.FakeKfp(multi_user=True, tokens={"profile-token": "kubeflow-user-example-com"}))


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    """Token shards of 300 real documents, packed the way curation packs them (no Spark needed)."""
    import itertools

    from components.common.default_data import default_corpus_records
    from components.curate.shards import pack_shards, train_tokenizer

    records = list(itertools.islice(default_corpus_records(), 300))
    tokenizer = train_tokenizer((r["text"] for r in records), 512)
    out = tmp_path_factory.mktemp("tokens")
    pack_shards(tokenizer, ((r["id"], r["text"]) for r in records), out, val_fraction=0.1, shard_tokens=20_000)
    return out


@pytest.fixture()
def run_inputs():
    """(records, StatementInputs) of one run (tests/carbon_inputs.py)."""
    from tests import carbon_inputs

    return carbon_inputs.run_inputs()


@pytest.fixture(scope="session")
def spark():
    from components.curate.spark_session import get_spark

    session = get_spark("local[2]", shuffle_partitions=4, small_input=True)  # tiny inputs, as a small local run
    yield session
    session.stop()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """600 real documents from the default corpus plus two exact duplicates, as one JSONL file."""
    import itertools
    import json

    from components.common.default_data import default_corpus_records

    folder = tmp_path_factory.mktemp("tiny-corpus")
    records = list(itertools.islice(default_corpus_records(), 600))
    with open(folder / "docs.jsonl", "w", encoding="utf-8") as handle:
        for record in records + records[:2]:
            handle.write(json.dumps(record) + "\n")
    return folder


@pytest.fixture(scope="session")
def curated(spark, tiny_corpus, tmp_path_factory):
    """The tiny corpus curated once for every test that needs curated data."""
    from components.curate.job import CurateConfig, curate
    from components.curate.quality import quality_preset

    out = tmp_path_factory.mktemp("curated")
    return curate(str(tiny_corpus), out, CurateConfig(vocab_size=512, quality=quality_preset("docstrings")))


@pytest.fixture(scope="session")
def pretrained(curated, tmp_path_factory):
    from components.curate.job import TOKENS_DIR
    from components.pretrain.train import TrainConfig, train

    out = tmp_path_factory.mktemp("model")
    config = TrainConfig(model_size="tiny", seq_len=64, batch_size=8, steps=40, warmup_steps=4, log_every=10)
    return train(Path(curated.output_dir) / TOKENS_DIR, out, config)
