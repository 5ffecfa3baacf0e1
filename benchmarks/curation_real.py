"""Curation on real text: greenfm's FineWeb recipe against datatrove's, rule by rule, on Debian text packages.

Builds a corpus of real documents no one here wrote from Debian packages it installs with apt (fortunes in
English, German, Spanish and Italian; the Jargon File and FOLDOC dictionary entries; Debian Policy manuals;
man pages rendered to text in four languages; package changelogs), then
1. per-rule agreement: both sides run each FineWeb-recipe filter (Gopher repetition, Gopher quality, C4 without
   the terminal-punctuation filter, FineWeb quality) on its own over the same normalized documents; for each
   rule: both keep / both drop / only one drops, with the reason pairs, sample disagreements and their cause;
2. throughput: the whole recipe plus MinHash dedup on both sides (greenfm: Spark, normalize + the four filters
   + MinHash 20 x 6 verified by true Jaccard; datatrove 0.10.1: the four filters + MinHash 14 x 8, its local
   multi-process executor), docs/s and the ratio.

    python benchmarks/curation_real.py [--workers 2] [--max-docs 20000]

Writes benchmarks/results/curation_real.json and curation_real.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from benchmarks.curation import LoadSampler, datatrove_python  # noqa: E402

WORK = ROOT / ".work" / "real"
RESULTS = ROOT / "results"
PACKAGES = [
    "fortunes",
    "fortunes-de",
    "fortunes-es",
    "fortunes-it",
    "dict-jargon",
    "dict-foldoc",
    "debian-policy",
    "manpages",
    "manpages-de",
    "manpages-fr",
    "manpages-es",
    "man-db",
    "groff-base",
]
# The scaling run's larger pool adds two dictionaries (GCIDE, WordNet), Ambrose Bierce's and Russian fortunes.
SCALING_PACKAGES = ["dict-gcide", "dict-wn", "dict-devil", "fortunes-ru"]

# Documented differences (components/curate/README.md) that explain a disagreement, by (step, greenfm code,
# datatrove reason); None is "kept".
CAUSES = {
    ("gopher_quality", "gopher_quality.short_doc", None): "words: datatrove's spaCy tokens split contractions, "
    "hyphens and symbols into several words, so a document just under 50 whitespace words can have 50 tokens",
    ("gopher_quality", None, "gopher_short_doc"): "words: greenfm counts whitespace words without pure-punctuation "
    "tokens; spaCy splits fewer tokens on some texts (URLs, numbers)",
    ("gopher_quality", None, "gopher_enough_stop_words"): "stop words: datatrove matches whole tokens "
    'case-sensitively ("The" is not "the"); greenfm lower-cases the text and finds a stop word between spaces or '
    "punctuation other than _",
    ("gopher_quality", None, "gopher_below_alpha_threshold"): "words: spaCy makes every punctuation mark a token "
    "without a letter, lowering the alphabetic-word share (a few documents also fail datatrove's whole-token, "
    "case-sensitive stop-word match once their words are whitespace words)",
    ("gopher_quality", None, "gopher_below_avg_threshold"): "words: spaCy tokens (split contractions, n't, 's) are "
    "shorter than whitespace words",
    ("gopher_quality", None, "gopher_too_many_hashes"): "denominator: datatrove divides by all tokens, greenfm "
    "by content words",
    ("gopher_quality", None, "gopher_too_many_bullets"): "bullets: datatrove counts lines starting with '-' or '•'"
    " over all lines including empty ones",
    ("gopher_quality", "gopher_quality.bullet_lines", None): "bullets: greenfm also counts '*' and other bullet "
    "characters (the paper says 'bullet point')",
    ("gopher_quality", None, "gopher_too_many_end_ellipsis"): "lines: datatrove counts empty lines in the "
    "denominator differently (splitlines)",
    ("gopher_repetition", None, "dup_line_frac"): "empty lines: datatrove's splitlines counts repeated empty lines "
    "as duplicate lines; greenfm ignores empty lines",
    ("gopher_repetition", None, "dup_line_char_frac"): "empty lines and line splitting differ (splitlines vs \\n)",
    ("gopher_repetition", "gopher_repetition.top_2_gram", None): "n-grams: datatrove's spaCy tokens differ from "
    "whitespace words (punctuation tokens break n-grams)",
    ("gopher_repetition", None, "top_2_gram"): "n-grams: datatrove counts an n-gram that occurs once as the top "
    "n-gram (a short document's only bigram is 'repeated'), and its tokens are spaCy tokens",
    ("gopher_repetition", None, "top_3_gram"): "n-grams: datatrove counts an n-gram that occurs once as the top "
    "n-gram, and its tokens are spaCy tokens",
    ("gopher_repetition", None, "top_4_gram"): "n-grams: datatrove counts an n-gram that occurs once as the top "
    "n-gram, and its tokens are spaCy tokens",
    **{
        ("gopher_repetition", None, f"duplicated_{n}_n_grams"): "n-grams: datatrove's n-grams are of spaCy tokens, "
        "in which every quote, parenthesis and period is a word, so a repeated phrase with its punctuation repeats "
        "more n-grams than its whitespace words do"
        for n in range(5, 11)
    },
    **{
        ("gopher_repetition", f"gopher_repetition.{rule}", None): "n-grams: a punctuation mark is part of a "
        "whitespace word but its own spaCy token, which breaks datatrove's repeated n-grams where greenfm's repeat"
        for rule in [*(f"top_{n}_gram" for n in (3, 4)), *(f"duplicated_{n}_gram" for n in range(5, 11))]
    },
    ("c4", "c4.too_few_sentences", None): "sentences: datatrove counts with spaCy's sentence splitter; greenfm counts "
    "end marks, not abbreviations or initials",
    ("c4", None, "too_few_sentences"): "sentences: spaCy's splitter does not split at every end mark (e.g. '!' "
    "runs, numbered items), greenfm's end-mark count does",
    ("c4", "c4.curly_bracket", None): "citations and words: greenfm counts words after citation removal (as "
    "c4_utils does), datatrove before, so a different set of lines is looked at",
    ("fineweb_quality", None, "list_ratio"): "words: datatrove divides newlines by spaCy tokens, greenfm by "
    "whitespace words",
    ("fineweb_quality", "fineweb_quality.list_ratio", None): "words: greenfm divides newlines by whitespace words, "
    "fewer than spaCy's tokens, so its ratio is higher",
}


# ------------------------------------------------------------------------------------------------- the corpus


def install_packages(packages: list[str] = PACKAGES) -> None:
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env, capture_output=True)


def _fortunes(languages: tuple[str, ...] = ("de", "es", "it")) -> list[tuple[str, str]]:
    """English fortunes and those of `languages` (folders under /usr/share/games/fortunes)."""
    base = Path("/usr/share/games/fortunes")
    docs = []
    for folder, lang in [(base, "en"), *[(base / code, code) for code in languages]]:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".dat", ".u8") or path.is_dir() or path.is_symlink():
                continue
            utf8 = path.with_name(path.name + ".u8")
            raw = (utf8 if utf8.exists() else path).read_bytes().decode("utf-8", errors="replace")
            docs += [(f"fortune-{lang}/{path.name}", t.strip()) for t in raw.split("\n%\n") if t.strip()]
    return docs


def _b64(value: str) -> int:
    digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    number = 0
    for char in value:
        number = number * 64 + digits.index(char)
    return number


def _dictionary(name: str) -> list[tuple[str, str]]:
    data = gzip.decompress(Path(f"/usr/share/dictd/{name}.dict.dz").read_bytes())
    docs = []
    index = Path(f"/usr/share/dictd/{name}.index").read_bytes().decode("utf-8", errors="replace")
    for line in index.splitlines(keepends=True):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3 or parts[0].startswith("00-database"):
            continue
        start, length = _b64(parts[1]), _b64(parts[2])
        docs.append((f"dict-{name}", data[start : start + length].decode("utf-8", errors="replace").strip()))
    return docs


def _manuals() -> list[tuple[str, str]]:
    """Debian Policy manuals, cut into sections of paragraphs (about 4,000 characters)."""
    docs = []
    for path in sorted(Path("/usr/share/doc/debian-policy").glob("*.txt.gz")):
        chunk = ""
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        for paragraph in text.split("\n\n"):
            chunk = f"{chunk}\n\n{paragraph}" if chunk else paragraph
            if len(chunk) > 4000:
                docs.append((f"policy/{path.name}", chunk.strip()))
                chunk = ""
        if chunk.strip():
            docs.append((f"policy/{path.name}", chunk.strip()))
    return docs


def _render(path: Path) -> str:
    env = {**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"}
    page = subprocess.run(["man", "-E", "UTF-8", "-l", str(path)], capture_output=True, env=env, timeout=60)
    return subprocess.run(["col", "-bx"], input=page.stdout, capture_output=True).stdout.decode("utf-8", "replace")


def _man_pages(per_language: int, rng: random.Random) -> list[tuple[str, str]]:
    chosen = []
    for lang, folder in [
        ("en", "/usr/share/man/man1"),
        ("de", "/usr/share/man/de/man1"),
        ("fr", "/usr/share/man/fr/man1"),
        ("es", "/usr/share/man/es/man1"),
    ]:
        pages = sorted(p for p in Path(folder).glob("*.gz") if p.is_file() and not p.is_symlink())
        chosen += [(lang, p) for p in rng.sample(pages, min(per_language, len(pages)))]
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda item: _render(item[1]), chosen))
    return [(f"man-{lang}", text.strip()) for (lang, _), text in zip(chosen, texts, strict=True) if text.strip()]


def _changelog_texts(pattern: str) -> list[str]:
    """The installed packages' changelogs matching `pattern` under /usr/share/doc, decompressed."""
    paths = sorted(Path("/usr/share/doc").glob(pattern))
    return [gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace") for path in paths]


def _changelogs() -> list[tuple[str, str]]:
    return [("changelog", text[:8000].rsplit("\n", 1)[0].strip()) for text in _changelog_texts("*/changelog.Debian.gz")]


def _changelog_entries() -> list[tuple[str, str]]:
    """Every entry of every installed package's changelogs: from its header line to its ` -- ` signature."""
    return [
        ("changelog-entry", entry.strip())
        for text in _changelog_texts("*/changelog*.gz")
        for entry in re.split(r"(?m)(?<=\n)(?=\S)", text)
        if "\n -- " in entry
    ]


def write_shards(folder: Path, docs: list[tuple[str, str]], shards: int = 4) -> None:
    """The documents as `shards` JSONL files, round robin: datatrove's readers hand each task whole files, so a
    single file would run on one process whatever the worker count."""
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(open(folder / f"docs-{n}.jsonl", "w", encoding="utf-8")) for n in range(shards)]
        for index, (source, text) in enumerate(docs):
            record = {"id": f"d{index:06d}", "text": text, "source": source}
            handles[index % shards].write(json.dumps(record, ensure_ascii=False) + "\n")


def build_corpus(folder: Path, max_docs: int, man_per_language: int) -> Counter:
    install_packages()
    rng = random.Random(16)
    sources = {
        "fortunes": _fortunes(),
        "jargon": _dictionary("jargon"),
        "foldoc": _dictionary("foldoc"),
        "policy": _manuals(),
        "man": _man_pages(man_per_language, rng),
        "changelog": _changelogs(),
    }
    share = max_docs // len(sources)
    docs = []
    for found in sources.values():
        docs += rng.sample(found, share) if len(found) > share else found
    write_shards(folder, docs)
    return Counter(source.split("/")[0] for source, _ in docs)


def scaling_pool(man_per_language: int) -> list[tuple[str, str]]:
    """Every real document the scaling run's packages hold (distinct texts), shuffled: a prefix of it has the
    same mix of sources at every size."""
    install_packages(PACKAGES + SCALING_PACKAGES)
    rng = random.Random(16)
    found = [
        *_fortunes(("de", "es", "it", "ru")),
        *[doc for name in ("jargon", "foldoc", "gcide", "wn", "devil") for doc in _dictionary(name)],
        *_manuals(),
        *_man_pages(man_per_language, rng),
        *_changelog_entries(),
    ]
    distinct = list({text: (source, text) for source, text in found if text}.values())
    rng.shuffle(distinct)
    return distinct


# -------------------------------------------------------------------------------------------------- greenfm


def greenfm_rules(spark, corpus: Path, normalized: Path) -> dict:
    """Each FineWeb-recipe filter on its own over the normalized documents: {step: {id: (code, value)}}."""
    from components.curate.ingest import read_documents
    from components.curate.inputs import discover_inputs
    from components.curate.marks import run_step, with_transforms
    from components.curate.quality import c4, fineweb_quality, gopher_quality, gopher_repetition, quality_preset
    from components.curate.steps import normalize

    cfg = quality_preset("fineweb")
    docs, _ = read_documents(spark, discover_inputs(corpus), "unknown")
    docs, _, _ = run_step(normalize(with_transforms(docs)))
    docs = docs.cache()
    with open(normalized, "w", encoding="utf-8") as handle:
        for row in docs.select("id", "text", "source").toLocalIterator():
            handle.write(json.dumps({"id": row.id, "text": row.text, "source": row.source}) + "\n")
    decisions = {}
    for name, step in [
        ("gopher_repetition", gopher_repetition),
        ("gopher_quality", gopher_quality),
        ("c4", c4),
        ("fineweb_quality", fineweb_quality),
    ]:
        rows = step(docs, cfg).frame.select("id", "_reason", "_value").collect()
        decisions[name] = {row.id: (row._reason, row._value) for row in rows}
    docs.unpersist()
    return decisions


def greenfm_pipeline(spark, corpus: Path, out: Path) -> dict:
    from components.curate.ingest import read_documents
    from components.curate.inputs import discover_inputs
    from components.curate.job import run_steps
    from components.curate.marks import with_transforms
    from components.curate.minhash import MinHashConfig, fuzzy_dedup
    from components.curate.quality import quality_preset, quality_steps
    from components.curate.steps import normalize

    cfg, minhash = quality_preset("fineweb"), MinHashConfig()
    plan = (
        [normalize] + [lambda df, s=s: s(df, cfg) for s in quality_steps(cfg)] + [lambda df: fuzzy_dedup(df, minhash)]
    )
    started = time.perf_counter()
    docs, _ = read_documents(spark, discover_inputs(corpus), "unknown")
    docs, reports = run_steps(with_transforms(docs), plan)
    docs.write.mode("overwrite").parquet(str(out))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "kept": spark.read.parquet(str(out)).count(),
        "steps": {r.step: {"seconds": r.seconds, "removed": r.removed} for r in reports},
    }


def datatrove_pipeline(python: Path, corpus: Path, work: Path, workers: int) -> dict:
    """datatrove's side of the throughput run, in its own environment: {"seconds", "kept"}."""
    from components.curate.quality import quality_preset

    done = subprocess.run(
        [
            str(python),
            str(ROOT / "curation_real_datatrove.py"),
            "pipeline",
            str(corpus),
            str(work),
            str(workers),
            quality_preset("fineweb").fineweb_stop_chars,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def scaling(python: Path, spark, sizes: list[int], datatrove_max: int, workers: int, man_per_language: int) -> dict:
    """The throughput run at each size, on prefixes of one shuffled pool: greenfm at every size (is its time linear
    in the documents?), datatrove up to `datatrove_max` documents."""
    pool = scaling_pool(man_per_language)
    print(f"scaling pool: {len(pool)} documents", flush=True)
    sizes = sorted({min(size, len(pool)) for size in sizes})
    # A fresh JVM interprets and compiles Spark's code on the first run (a fixed cost of every curation process):
    # measured once, on the first size, then left out, so that the table compares steady rates at every size.
    work = WORK / "scale" / "first"
    write_shards(work / "corpus", pool[: sizes[0]])
    first = {"documents": sizes[0], **greenfm_pipeline(spark, work / "corpus", work / "greenfm-out")}
    print(f"first run, {sizes[0]} greenfm: {first['seconds']:.1f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    rows = []
    for size in sizes:
        work = WORK / "scale" / str(size)
        write_shards(work / "corpus", pool[:size])
        row: dict = {"documents": size}
        sides = ["greenfm"] + (["datatrove"] if size <= datatrove_max else [])
        for side in sides:
            with LoadSampler() as load:
                if side == "greenfm":
                    row[side] = greenfm_pipeline(spark, work / "corpus", work / "greenfm-out")
                else:
                    row[side] = datatrove_pipeline(python, work / "corpus", work / "datatrove", workers)
            row[side] |= {"load": load.summary(), "docs_per_s": size / row[side]["seconds"]}
            print(f"{size} {side}: {row[side]['seconds']:.1f} s", flush=True)
        if "datatrove" in row:
            row["ratio"] = row["datatrove"]["seconds"] / row["greenfm"]["seconds"]
        rows.append(row)
        shutil.rmtree(work, ignore_errors=True)
    sources = Counter(source.split("/")[0] for source, _ in pool)
    return {"pool": len(pool), "sources": dict(sources), "first_run": first, "rows": rows}


def scaling_markdown(result: dict) -> str:
    rows = result["rows"]
    first = rows[0]
    lines = [
        "# Curation on real text at scale: greenfm vs datatrove",
        "",
        f"Measured {result['measured_at']} on {result['machine']} ({result['workers']} workers each; 4 input "
        "files). Each size is a prefix of one shuffled pool of "
        f"{result['pool']} distinct real documents from Debian packages ("
        + ", ".join(f"{k} {v}" for k, v in sorted(result["sources"].items(), key=lambda kv: -kv[1]))
        + "). FineWeb recipe + MinHash dedup on both sides. greenfm runs every size in one Spark session, started "
        f"and warmed up before the first: its first run, on {result['first_run']['documents']} documents, took "
        f"{result['first_run']['seconds']:.1f} s (Spark's code interpreted and compiled; every curation process pays "
        "this once), and is not in the table; datatrove starts anew at every size.",
        "",
        "| documents | greenfm s | greenfm docs/s | greenfm s per 10k docs | datatrove s | datatrove docs/s "
        "| ratio | load (mean) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        g, d = row["greenfm"], row.get("datatrove")
        lines.append(
            f"| {row['documents']} | {g['seconds']:.1f} | {g['docs_per_s']:.0f} | "
            f"{g['seconds'] / row['documents'] * 1e4:.2f} | "
            + (f"{d['seconds']:.1f} | {d['docs_per_s']:.0f} | {row['ratio']:.2f}x" if d else "not run | | ")
            + f" | {g['load']['mean']} |"
        )
    last = rows[-1]
    lines += [
        "",
        f"greenfm, {first['documents']} to {last['documents']} documents "
        f"({last['documents'] / first['documents']:.1f}x): "
        f"time {last['greenfm']['seconds'] / first['greenfm']['seconds']:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ agreement


def agreement(greenfm: dict, datatrove: dict, texts: dict[str, dict]) -> dict:
    """Per rule: both keep / both drop / only one drops; each disagreement with its documented cause and how
    many of its documents datatrove, given greenfm's word definitions, decides as greenfm does (`verified`)."""
    out = {}
    for step, ours in greenfm.items():
        theirs, with_our_words = datatrove["published"][step], datatrove["greenfm_words"][step]
        counts = Counter()
        pairs: dict[tuple, list] = {}
        for doc_id, (code, value) in ours.items():
            other = theirs.get(doc_id)
            kind = (
                "both_drop"
                if code and other
                else "only_greenfm_drops"
                if code
                else "only_datatrove_drops"
                if other
                else "both_keep"
            )
            counts[kind] += 1
            if kind.startswith("only"):
                pairs.setdefault((code, other), []).append((doc_id, value))
        disagreements = []
        for (code, other), docs in sorted(pairs.items(), key=lambda item: -len(item[1])):
            cause = CAUSES.get((step, code, other), "unexplained")
            verified = sum((with_our_words[d] is None) == (code is None) for d, _ in docs)
            samples = [
                {"id": d, "source": texts[d]["source"], "greenfm_value": v, "text": texts[d]["text"][:240]}
                for d, v in docs[:3]
            ]
            disagreements.append(
                {
                    "greenfm": code,
                    "datatrove": other,
                    "documents": len(docs),
                    "verified": verified,
                    "cause": cause,
                    "samples": samples,
                }
            )
        out[step] = {
            "counts": dict(counts),
            "agreement": (counts["both_keep"] + counts["both_drop"]) / len(ours),
            "disagreements": disagreements,
        }
    return out


def markdown(result: dict) -> str:
    lines = [
        "# Curation on real text: greenfm vs datatrove",
        "",
        f"Measured {result['measured_at']} on {result['machine']} ({result['workers']} workers each; the "
        f"machine was shared: load average {result['load']}).",
        "",
        f"Corpus: {result['documents']} real documents from Debian packages: "
        + ", ".join(f"{k} {v}" for k, v in result["sources"].items())
        + ".",
        "",
        "## Throughput (FineWeb recipe + MinHash dedup)",
        "",
        "| side | seconds | docs/s | kept |",
        "| --- | ---: | ---: | ---: |",
    ]
    for side in ("greenfm", "datatrove"):
        run = result["throughput"].get(side)
        if run:
            lines.append(
                f"| {side} | {run['seconds']:.1f} | {result['documents'] / run['seconds']:.0f} | {run['kept']} |"
            )
    if result["throughput"].get("ratio"):
        lines += [
            "",
            f"greenfm / datatrove docs/s: **{result['throughput']['ratio']:.2f}x** "
            "(greenfm's Spark session start is not counted).",
        ]
    lines += [
        "",
        "## Per-rule agreement (each filter alone, same normalized documents)",
        "",
        "| rule | both keep | both drop | only greenfm drops | only datatrove drops | agreement |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for step, row in result["agreement"].items():
        c = row["counts"]
        lines.append(
            f"| {step} | {c.get('both_keep', 0)} | {c.get('both_drop', 0)} | {c.get('only_greenfm_drops', 0)} "
            f"| {c.get('only_datatrove_drops', 0)} | {row['agreement']:.1%} |"
        )
    lines += [
        "",
        "## Disagreements and their causes",
        "",
        "*verified*: of a disagreement's documents, how many datatrove's own filter decides as greenfm does once "
        "it uses greenfm's definitions (whitespace words, not spaCy tokens; a top n-gram must repeat; sentences "
        "are end marks less abbreviations, not spaCy's splitter; a stop word is matched in lower case between "
        "spaces or punctuation); those are explained by the definitions, checked on each document.",
        "",
    ]
    for step, row in result["agreement"].items():
        for item in row["disagreements"]:
            sample = item["samples"][0]
            lines.append(
                f"- **{step}**: greenfm `{item['greenfm']}` vs datatrove `{item['datatrove']}` "
                f"({item['documents']} documents, verified {item['verified']}): {item['cause']}. E.g. `{sample['id']}` "
                f"({sample['source']}): {sample['text'][:100]!r}"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-docs", type=int, default=12000)
    parser.add_argument("--man-per-language", type=int, default=150)
    parser.add_argument("--scaling", type=str, default="", help="sizes, e.g. 50000,100000,200000,400000")
    parser.add_argument("--datatrove-max-docs", type=int, default=1_000_000, help="largest size datatrove runs")
    args = parser.parse_args()
    from components.curate.quality import quality_preset
    from components.curate.spark_session import get_spark

    if args.scaling:
        spark = get_spark(f"local[{args.workers}]", shuffle_partitions=2 * args.workers)
        sizes = [int(size) for size in args.scaling.split(",")]
        result = {
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} cores",
            "workers": args.workers,
            **scaling(datatrove_python(), spark, sizes, args.datatrove_max_docs, args.workers, args.man_per_language),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "curation_real_scaling.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        (RESULTS / "curation_real_scaling.md").write_text(scaling_markdown(result))
        print(scaling_markdown(result))
        return
    corpus_dir = WORK / "corpus"
    shutil.rmtree(WORK, ignore_errors=True)
    sources = build_corpus(corpus_dir, args.max_docs, args.man_per_language)
    documents = sum(sources.values())
    print(f"corpus: {documents} documents {dict(sources)}", flush=True)
    python = datatrove_python()
    spark = get_spark(f"local[{args.workers}]", shuffle_partitions=2 * args.workers)
    stop_chars = quality_preset("fineweb").fineweb_stop_chars
    with LoadSampler() as load:
        ours = greenfm_rules(spark, corpus_dir, WORK / "normalized.jsonl")
        subprocess.run(
            [
                str(python),
                str(ROOT / "curation_real_datatrove.py"),
                "rules",
                str(WORK / "normalized.jsonl"),
                str(WORK / "datatrove_rules.json"),
                stop_chars,
            ],
            check=True,
        )
        theirs = json.loads((WORK / "datatrove_rules.json").read_text())
        lines = (WORK / "normalized.jsonl").read_text(encoding="utf-8").splitlines()
        texts = {r["id"]: r for r in map(json.loads, lines)}
        rules = agreement(ours, theirs, texts)
        throughput = {
            "greenfm": greenfm_pipeline(spark, corpus_dir, WORK / "greenfm-out"),
            "datatrove": datatrove_pipeline(python, corpus_dir, WORK / "datatrove", args.workers),
        }
    throughput["ratio"] = throughput["datatrove"]["seconds"] / throughput["greenfm"]["seconds"]
    result = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores",
        "workers": args.workers,
        "load": load.summary(),
        "documents": documents,
        "sources": dict(sources),
        "throughput": throughput,
        "agreement": rules,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "curation_real.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (RESULTS / "curation_real.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
