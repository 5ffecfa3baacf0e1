"""Curation throughput: greenfm's Spark steps against datatrove's, same corpus, same steps, same machine.

Steps on both sides: Gopher repetition + Gopher quality (published thresholds), exact dedup, MinHash dedup
(5-grams, 14 bands x 8 rows). Corpus: tests/synthetic.py (labelled messy documents, no malformed
lines: datatrove's reader is not the subject). datatrove runs from PyPI in its own venv
(benchmarks/.venv-datatrove, created here on first use) with its local multi-process executor.

    python benchmarks/curation.py [--sizes 50000,100000,200000] [--workers 2] [--sides greenfm,datatrove]

Writes benchmarks/results/curation.json and curation.md: docs/s of both, the ratio, seconds per size (for
linear scaling), documents kept by each, and the machine's load average during each run (the machine may be
shared: a load above the core count means the numbers are pessimistic for both sides). Results of earlier
invocations are kept and merged by (size, side), so the sides and sizes can be run separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

VENV = ROOT / ".venv-datatrove"
WORK = ROOT / ".work"
RESULTS = ROOT / "results"
DATATROVE_PACKAGES = ["datatrove==0.10.1", "spacy", "xxhash<4", "regex", "orjson", "tokenizers"]


class LoadSampler:
    """Mean and max of the 1-minute load average while a block runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s, self.samples, self._stop = every_s, [], threading.Event()

    def __enter__(self) -> LoadSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every_s):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        return {"mean": round(sum(self.samples) / len(self.samples), 2), "max": round(max(self.samples), 2)}


def datatrove_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *DATATROVE_PACKAGES], check=True)
    return python


def run_greenfm(corpus: Path, out: Path, workers: int) -> dict:
    from components.curate.ingest import read_documents
    from components.curate.inputs import discover_inputs
    from components.curate.job import run_steps
    from components.curate.marks import with_transforms
    from components.curate.minhash import MinHashConfig, fuzzy_dedup
    from components.curate.quality import QualityConfig, gopher_quality, gopher_repetition
    from components.curate.spark_session import get_spark
    from components.curate.steps import exact_dedup

    spark = get_spark(f"local[{workers}]", shuffle_partitions=2 * workers)
    quality, minhash = QualityConfig(), MinHashConfig(bands=14, rows=8)  # datatrove side: 14 x 8
    plan = [
        lambda df: gopher_repetition(df, quality),
        lambda df: gopher_quality(df, quality),
        exact_dedup,
        lambda df: fuzzy_dedup(df, minhash),
    ]
    started = time.perf_counter()
    docs, _ = read_documents(spark, discover_inputs(corpus), "unknown")
    docs, reports = run_steps(with_transforms(docs), plan)
    docs.write.mode("overwrite").parquet(str(out))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "kept": spark.read.parquet(str(out)).count(),
        "steps": {r.step: {"seconds": r.seconds, "removed": sum(r.removed.values())} for r in reports},
    }


def run_datatrove(python: Path, corpus: Path, work: Path, workers: int) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    done = subprocess.run(
        [str(python), str(ROOT / "datatrove_pipeline.py"), str(corpus), str(work), str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"datatrove failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cell(run: dict | None, key: str, fmt: str) -> str:
    return format(run[key], fmt) if run else "not run"


def markdown(result: dict) -> str:
    lines = [
        "# Curation benchmark: greenfm (Spark) vs datatrove",
        "",
        f"Machine: {result['machine']}; {result['workers']} workers each. Steps: {result['steps']}.",
        f"greenfm's Spark session start ({result['spark_start_s']:.1f} s, once per process) is not in its times.",
        "",
        "| documents | greenfm s | greenfm docs/s | datatrove s | datatrove docs/s | ratio | kept (greenfm / datatrove) | load avg during greenfm / datatrove (mean, max) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in result["runs"]:
        g, d = row.get("greenfm"), row.get("datatrove")
        ratio = f"{row['ratio']:.2f}x" if row.get("ratio") else "-"
        load = " / ".join(f"{r['load']['mean']}, {r['load']['max']}" if r else "-" for r in (g, d))
        lines.append(
            f"| {row['documents']} | {_cell(g, 'seconds', '.1f')} | {_cell(g, 'docs_per_s', '.0f')} | "
            f"{_cell(d, 'seconds', '.1f')} | {_cell(d, 'docs_per_s', '.0f')} | {ratio} | "
            f"{_cell(g, 'kept', 'd')} / {_cell(d, 'kept', 'd')} | {load} |"
        )
    lines += ["", result["note"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,100000,200000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sides", default="greenfm,datatrove")
    args = parser.parse_args()
    from components.curate.spark_session import get_spark
    from tests.synthetic import generate

    sides = args.sides.split(",")
    python = datatrove_python() if "datatrove" in sides else None
    previous = json.loads((RESULTS / "curation.json").read_text()) if (RESULTS / "curation.json").exists() else {}
    runs = {row["documents"]: row for row in previous.get("runs", [])}
    started = time.perf_counter()
    get_spark(f"local[{args.workers}]", shuffle_partitions=2 * args.workers)
    spark_start = time.perf_counter() - started
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "workers": args.workers,
        "steps": "Gopher repetition + Gopher quality, exact dedup, MinHash dedup (5-grams, 14x8)",
        "spark_start_s": spark_start,
        "runs": [],
        "note": (
            "Words: greenfm splits on whitespace (native regexes, one numpy UDF for n-gram repetition); datatrove "
            "tokenizes with spaCy's rule-based English tokenizer. greenfm also verifies MinHash candidate pairs "
            "(estimated Jaccard >= 0.8), which datatrove does not. The machine is shared: see the load averages."
        ),
    }
    for size in [int(s) for s in args.sizes.split(",")]:
        corpus = WORK / f"corpus-{size}"
        shutil.rmtree(corpus, ignore_errors=True)
        generate(corpus, size, seed=size, malformed=False, files=4)
        row = runs.setdefault(size, {"documents": size})
        for side in sides:
            with LoadSampler() as load:
                if side == "greenfm":
                    row[side] = run_greenfm(corpus, WORK / f"greenfm-{size}", args.workers)
                else:
                    row[side] = run_datatrove(python, corpus, WORK / f"datatrove-{size}", args.workers)
            row[side]["load"] = load.summary()
            row[side]["docs_per_s"] = size / row[side]["seconds"]
        if "greenfm" in row and "datatrove" in row:
            row["ratio"] = row["greenfm"]["docs_per_s"] / row["datatrove"]["docs_per_s"]
        result["runs"] = [runs[key] for key in sorted(runs)]
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "curation.json").write_text(json.dumps(result, indent=2))
        (RESULTS / "curation.md").write_text(markdown(result))
        print(json.dumps(row), flush=True)
    print(markdown(result))


if __name__ == "__main__":
    main()
