"""datatrove's equivalent of greenfm's benchmarked curation steps; runs inside the benchmark's datatrove venv.

Gopher repetition + Gopher quality (published thresholds, English word tokenizer = spaCy's rule-based blank
"en" pipeline, which ships in the spaCy wheel: nothing is downloaded), MinHash dedup (5-grams, 14 buckets x 8
hashes, as greenfm) and exact dedup, as datatrove's multi-stage local executors with `workers` processes.
Usage: python datatrove_pipeline.py INPUT_DIR WORK_DIR WORKERS; prints a JSON line with the kept count.
"""

import json
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def normalized(doc) -> str:
    return " ".join(doc.text.lower().split())


def main() -> None:
    source, work, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    tasks = max(workers, len(list(Path(source).glob("*.jsonl"))))
    minhash = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    exact = ExactDedupConfig(content_getter=normalized)

    def run(pipeline, stage_tasks, name):
        LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=stage_tasks,
            workers=min(workers, stage_tasks),
            logging_dir=str(work / "logs" / name),
            skip_completed=False,
        ).run()

    started = time.perf_counter()
    run(
        [
            JsonlReader(source, glob_pattern="*.jsonl"),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
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
            ExactDedupSignature(str(work / "exact-sigs"), config=exact),
        ],
        tasks,
        "exact-sigs",
    )
    run([ExactFindDedups(str(work / "exact-sigs"), str(work / "exact-dups"), config=exact)], 1, "exact-find")
    run(
        [
            JsonlReader(str(work / "filtered")),
            MinhashDedupFilter(str(work / "remove")),
            ExactDedupFilter(str(work / "exact-dups"), config=exact),
            JsonlWriter(str(work / "final"), compression=None),
        ],
        tasks,
        "final",
    )
    seconds = time.perf_counter() - started
    kept = sum(_line_count(path) for path in (work / "final").glob("*.jsonl"))
    print(json.dumps({"seconds": seconds, "kept": kept}))


def _line_count(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)


if __name__ == "__main__":
    main()
