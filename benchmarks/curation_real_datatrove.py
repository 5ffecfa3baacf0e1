"""datatrove's side of the real-text benchmark; runs inside benchmarks/.venv-datatrove (see curation_real.py).

python curation_real_datatrove.py rules NORMALIZED.jsonl OUT.json
    each FineWeb-recipe filter on its own over every document, as published and again with greenfm's word
    definitions (greenfm_words): {"published" | "greenfm_words": {step: {id: reason or null}}}
python curation_real_datatrove.py pipeline CORPUS_DIR WORK_DIR WORKERS
    FineWeb's recipe (examples/fineweb.py, without URL filter, extractor and language id) then MinHash
    dedup (5-grams, 14 x 8), with the local multi-process executor; prints {"seconds", "kept"}.
"""

import json
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


class GreenfmStopWords(frozenset):
    """greenfm's stop-word match (components/curate/quality.py, `_stop_word_pattern`) for GopherQualityFilter's
    `stop_words.intersection(words)`: case-insensitive, and a stop word is what lies between whitespace and
    punctuation other than `_` (so "That," and "that's" hold "that"; "__init__" holds nothing)."""

    def intersection(self, words):  # type: ignore[override]
        pieces = set()
        for word in words:
            piece = []
            for char in word.lower() + " ":
                if char.isspace() or (unicodedata.category(char).startswith("P") and char != "_"):
                    pieces.add("".join(piece))
                    piece = []
                else:
                    piece.append(char)
        return frozenset(self & pieces)


def filters(stop_chars, greenfm_words: bool = False):
    fineweb = FineWebQualityFilter() if stop_chars is None else FineWebQualityFilter(stop_chars=stop_chars)
    gopher_quality = GopherQualityFilter()
    if greenfm_words:
        gopher_quality.stop_words = GreenfmStopWords(gopher_quality.stop_words)
    return {
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": gopher_quality,
        "c4": C4QualityFilter(filter_no_terminal_punct=False),
        "fineweb_quality": fineweb,
    }


def _decisions(records: list[dict], stop_chars: str, greenfm_words: bool = False) -> dict:
    decisions = {}
    for step, flt in filters(tuple(stop_chars), greenfm_words).items():
        found = {}
        for record in records:
            verdict = flt.filter(Document(text=record["text"], id=record["id"]))
            found[record["id"]] = None if verdict is True else (verdict[1] if isinstance(verdict, tuple) else "drop")
        decisions[step] = found
    return decisions


def _top_repeated(ngrams: list[str]) -> int:
    """find_top_duplicate as greenfm reads the Gopher rule: the top n-gram must occur at least twice."""
    ngram, count = Counter(ngrams).most_common(1)[0]
    return len(ngram) * count if count >= 2 else 0


def _greenfm_sentences() -> Callable[[str, str], list[str]]:
    """A stand-in for datatrove's split_into_sentences: as many items as greenfm counts sentences
    (components.curate.sentences, read from this repository: it imports nothing of Spark); C4's filter only
    counts them."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from components.curate.sentences import count_sentences

    return lambda text, language: [""] * count_sentences(text)


def use_greenfm_words() -> None:
    """Swap greenfm's documented word and sentence definitions into datatrove's filters
    (components/curate/README.md): words are whitespace-separated (not spaCy tokens, which make every
    punctuation mark a word), a top n-gram is a repeated one, and sentences are end marks less abbreviations
    (not spaCy's sentence splitter); stop words are matched as greenfm matches them (`filters`, greenfm_words).
    A disagreement that disappears with them is explained by them, checked on the document itself rather than
    asserted."""
    from datatrove.pipeline.filters import (
        c4_filters,
        fineweb_quality_filter,
        gopher_quality_filter,
        gopher_repetition_filter,
    )

    for module in (fineweb_quality_filter, gopher_quality_filter, gopher_repetition_filter):
        module.split_into_words = lambda text, language: text.split()
    gopher_repetition_filter.find_top_duplicate = _top_repeated
    c4_filters.split_into_sentences = _greenfm_sentences()


def rules(source: str, out: str, stop_chars: str) -> None:
    records = [json.loads(line) for line in Path(source).read_text(encoding="utf-8").splitlines()]
    published = _decisions(records, stop_chars)
    use_greenfm_words()
    ours = _decisions(records, stop_chars, greenfm_words=True)
    Path(out).write_text(json.dumps({"published": published, "greenfm_words": ours}))


def pipeline(source: str, work: Path, workers: int, stop_chars: str) -> None:
    minhash = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    tasks = workers

    def run(steps, stage_tasks, name):
        LocalPipelineExecutor(
            pipeline=steps,
            tasks=stage_tasks,
            workers=min(workers, stage_tasks),
            logging_dir=str(work / "logs" / name),
            skip_completed=False,
        ).run()

    started = time.perf_counter()
    run(
        [
            JsonlReader(source),
            *filters(tuple(stop_chars)).values(),
            JsonlWriter(str(work / "filtered"), compression=None),
        ],
        tasks,
        "filter",
    )
    run([JsonlReader(str(work / "filtered")), MinhashDedupSignature(str(work / "sigs"), config=minhash)], tasks, "sigs")
    run(
        [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=minhash)], minhash.num_buckets, "buckets"
    )
    run([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=minhash)], 1, "cluster")
    run(
        [
            JsonlReader(str(work / "filtered")),
            MinhashDedupFilter(str(work / "remove")),
            JsonlWriter(str(work / "final"), compression=None),
        ],
        tasks,
        "final",
    )
    seconds = time.perf_counter() - started
    kept = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in (work / "final").glob("*.jsonl"))
    print(json.dumps({"seconds": seconds, "kept": kept}))


if __name__ == "__main__":
    if sys.argv[1] == "rules":
        rules(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        pipeline(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
