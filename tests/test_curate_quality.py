"""Quality filters, language id and fuzzy dedup one rule at a time, then the quality bar on a labelled messy corpus."""

import pyarrow.parquet as pq
import pytest

from components.curate.job import DOCUMENTS_DIR, CurateConfig, curate
from components.curate.langid import identify, language_filter
from components.curate.marks import run_step, with_transforms
from components.curate.minhash import MinHashConfig, candidate_probability, clusters, fuzzy_dedup
from components.curate.quality import QualityConfig, gopher_quality, gopher_repetition, ngram_repetition
from tests.synthetic import Generator, generate

PROSE = Generator(seed=11)


def _run(spark, step, texts: dict[str, str]) -> dict[str, str | None]:
    """{id: removal reason or None} for one step over the given documents."""
    frame = spark.createDataFrame(list(texts.items()), "id string, text string").transform(with_transforms)
    return {row.id: row._reason for row in step(frame).frame.select("id", "_reason").collect()}


def test_gopher_quality_rules(spark):
    good = PROSE.prose()
    texts = {
        "good": good,
        "short": "The cat sat on the mat with the hat.",
        "long_words": " ".join(["incomprehensibilities"] * 30 + ["the", "of"] * 10),
        "hashes": good + " #tag" * (len(good.split()) // 5),
        "bullets": "\n".join(f"- the wooden lantern {i} beside the harbor" for i in range(60)),
        "ellipsis": "\n".join(
            f"the story of the quiet harbor {i} continues beyond the stone bridge..." for i in range(20)
        ),
        "numbers": " ".join(str(100_000 + i) for i in range(200)) + " the of and",
        "no_stop_words": " ".join(w for w in good.split() if w.lower().strip(".,") not in QualityConfig().stop_words),
    }
    reasons = _run(spark, lambda df: gopher_quality(df, QualityConfig()), texts)
    assert reasons == {
        "good": None,
        "short": "gopher_quality.short_doc",
        "long_words": "gopher_quality.mean_word_length_high",
        "hashes": "gopher_quality.hash_ratio",
        "bullets": "gopher_quality.bullet_lines",
        "ellipsis": "gopher_quality.ellipsis_lines",
        "numbers": "gopher_quality.alpha_words",
        "no_stop_words": "gopher_quality.stop_words",
    }


def test_gopher_repetition_rules(spark):
    line = "The quiet river carries the old boat past the mill."
    texts = {
        "good": PROSE.prose(),
        "lines": "\n".join([line] * 5 + [PROSE.sentence() for _ in range(5)]),
        "paragraphs": "\n\n".join([line, line, line, PROSE.sentence()]),
        "bigram": PROSE.prose() + " " + "buy now " * 200,
    }
    reasons = _run(spark, lambda df: gopher_repetition(df, QualityConfig()), texts)
    assert reasons["good"] is None
    assert reasons["lines"] == "gopher_repetition.dup_line_frac"
    assert reasons["paragraphs"] == "gopher_repetition.dup_para_frac"
    assert reasons["bigram"] == "gopher_repetition.top_2_gram"


def test_ngram_repetition_measures():
    top, dup = QualityConfig().top_ngram_char_frac, QualityConfig().dup_ngram_char_frac
    assert ngram_repetition(PROSE.prose(), top, dup) is None
    repeated = " ".join(PROSE.sentence() for _ in range(3))
    # the same 12-word passage four times: its 5-grams repeat, but no single 2-4-gram dominates
    rule, value = ngram_repetition(PROSE.prose() + " " + " ".join([repeated] * 4), top, dup)
    assert rule.startswith("duplicated_") and value > 0.1
    assert ngram_repetition("", top, dup) is None


def test_language_id(spark):
    assert identify(PROSE.prose())[0] == "en"
    assert identify(PROSE.foreign("de"))[0] == "de"
    texts = {"en": PROSE.prose(), "fr": PROSE.foreign("fr"), "es": PROSE.foreign("es")}
    frame = spark.createDataFrame(list(texts.items()), "id string, text string").transform(with_transforms)
    kept, removed, report = run_step(language_filter(frame, ("en",), 0.0))
    assert sorted(row.detail for row in removed.collect()) == ["es", "fr"]
    assert [row.id for row in kept.collect()] == ["en"]
    assert report.removed == {"langid.other_language": 2}
    (row,) = kept.collect()
    assert row.lang == "en" and 0.9 < row.lang_score <= 1.0 and list(row.transforms) == ["langid"]


def test_lsh_s_curve_and_clusters():
    assert candidate_probability(0.8, 14, 8) == pytest.approx(0.924, abs=1e-3)  # FineWeb's banding
    assert candidate_probability(0.8, 20, 6) > 0.997  # the default
    assert candidate_probability(0.7, 20, 6) > 0.9
    assert candidate_probability(0.3, 20, 6) < 0.02
    assert clusters([("c", "b"), ("b", "a"), ("x", "y")]) == {"a": "a", "b": "a", "c": "a", "x": "x", "y": "x"}


def test_fuzzy_dedup_keeps_the_smallest_id_of_each_cluster(spark):
    gen = Generator(seed=4)
    base, other = gen.prose(paragraphs=(5, 6)), gen.prose()
    texts = {"n3": gen.near_copy(base), "n1": base, "n2": gen.near_copy(base), "solo": other}
    frame = spark.createDataFrame(list(texts.items()), "id string, text string").transform(with_transforms)
    kept, removed, report = run_step(fuzzy_dedup(frame, MinHashConfig()))
    assert {row.id: row.minhash_cluster_size for row in kept.collect()} == {"n1": 3, "solo": 1}
    assert report.removed == {"fuzzy_dedup.near_duplicate": 2}
    assert {row.id: row.detail for row in removed.collect()} == {"n2": "n1", "n3": "n1"}
    assert all(row.value >= 0.8 for row in removed.collect())


@pytest.mark.slow
def test_quality_bar_on_a_messy_corpus(spark, tmp_path):
    labels = generate(tmp_path / "messy", 1000, seed=7)
    config = CurateConfig(vocab_size=512)
    config.decontam.default_task = False
    result = curate(str(tmp_path / "messy"), tmp_path / "out", config)
    docs = pq.read_table(tmp_path / "out" / DOCUMENTS_DIR).to_pandas()
    kept = set(docs.id)

    collapsed = sum(sum(i in kept for i in group) == 1 for group in labels.exact_groups) / len(labels.exact_groups)
    near = sum((a in kept) + (b in kept) == 1 for a, b in labels.near_pairs) / len(labels.near_pairs)
    spam_removed = sum(i not in kept for i in labels.spam) / len(labels.spam)
    good_lost = sum(i not in kept for i in labels.good) / len(labels.good)
    text = "\n".join(docs.text)
    surviving_pii = [value for values in labels.pii.values() for value in values if value in text]

    assert collapsed >= 0.99, collapsed
    assert near >= 0.90, near
    assert surviving_pii == []
    assert spam_removed >= 0.90, spam_removed
    assert good_lost <= 0.03, good_lost
    assert all(i not in kept for i in labels.foreign)
    assert set(labels.pii) <= kept  # PII documents are redacted, not dropped
    assert result.quarantined == labels.malformed
    assert set(docs.lang) == {"en"} and result.report["languages"] == {"en": len(docs)}
    assert sum(result.report["pii"].values()) >= 4 * len(labels.pii)
