"""Near-duplicate recall and precision against the true Jaccard similarity of the documents' 5-word shingles."""

import random
import re

from components.curate.marks import run_step, with_transforms
from components.curate.minhash import MinHashConfig, fuzzy_dedup
from tests.synthetic import Generator


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """The shingles fuzzy dedup hashes: lower-cased words without punctuation, n at a time."""
    words = re.sub(r"[^\w\s]+", " ", text.lower()).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _jaccard(a: str, b: str) -> float:
    left, right = _shingles(a), _shingles(b)
    return len(left & right) / len(left | right)


def _edited(gen: Generator, rng: random.Random, text: str, block: bool) -> str:
    """One rewritten block of words (a changed paragraph, a new footer) or edits scattered through the text."""
    words = text.split(" ")
    edits = rng.randint(0, len(words) // 3)
    replacement = " ".join(gen.sentence() for _ in range(4)).split(" ")
    if block:
        start = rng.randrange(0, len(words) - edits + 1)
        return " ".join(words[:start] + replacement[:edits] + words[start + edits :])
    for position in rng.sample(range(len(words)), edits // 4):
        words[position] = rng.choice(replacement)
    return " ".join(words)


def test_recall_at_0_8_and_no_removal_below_0_7(spark):
    gen, rng = Generator(seed=31), random.Random(31)
    texts, pairs = {}, []
    for index in range(160):
        base = gen.prose(paragraphs=(3, 4))
        variant = _edited(gen, rng, base, block=index % 2 == 0)
        texts[f"p{index:03d}a"], texts[f"p{index:03d}b"] = base, variant
        pairs.append((f"p{index:03d}a", f"p{index:03d}b", _jaccard(base, variant)))
    frame = spark.createDataFrame(list(texts.items()), "id string, text string").transform(with_transforms)
    kept, removed, report = run_step(fuzzy_dedup(frame, MinHashConfig()))
    removed_ids = {row.id: row.value for row in removed.collect()}

    similar = [(a, b, j) for a, b, j in pairs if j >= 0.8]
    dissimilar = [(a, b, j) for a, b, j in pairs if j < 0.7]
    assert len(similar) >= 40 and len(dissimilar) >= 40  # the edits span the range on both sides
    found = sum(b in removed_ids for _, b, _ in similar) / len(similar)
    assert found >= 0.95, found
    assert not [(b, j) for _, b, j in dissimilar if b in removed_ids or _ in removed_ids]
    assert all(a not in removed_ids for a, _, _ in pairs)  # each pair keeps its smallest id
    # the measured value of a removal is the pair's true Jaccard similarity
    truth = {b: j for _, b, j in pairs}
    assert all(abs(value - truth[doc]) < 0.02 for doc, value in removed_ids.items())
    sizes = {row.id: row.minhash_cluster_size for row in kept.collect()}
    assert {sizes[a] for a, b, _ in pairs if b in removed_ids} == {2}
    assert report.removed == {"fuzzy_dedup.near_duplicate": len(removed_ids)}
