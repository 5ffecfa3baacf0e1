"""What pretraining buys on the default task, and how much of it is chance: one run's curated data and settings,
several pretraining seeds times several adaptation seeds, each pair scored as the evaluation report scores the
run (test accuracy; the adapted model against the from-scratch arm, bag-of-words, majority and zero-shot,
two-sided mid-p McNemar, Holm-adjusted). Writes pretraining_gain.json and pretraining_gain.md into --out.

    python -m benchmarks.pretraining_gain RUN_DIR [--pretrain-seeds 1234,1,2] [--adapt-seeds 1234,1,2,3,4]
        [--set train_steps=400 ...] [--name pretraining_gain] [--out benchmarks/results]

A run's report shows one draw of each seed. The pretraining seed (initialization and data order) and the
adaptation seed (head initialization, batch order; the from-scratch arm's initialization too) each move the
adapted model's accuracy by several points, so a recipe change is judged over this grid, not over one run. The
run's own pretrained model stands for its seed (retraining it gives the same weights); the row with the run's
seed on both axes reproduces the run's report, which the script checks. `--set` changes pipeline parameters of
pretraining or adaptation; curation is the run's (its curated data is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from components.adapt.classifier import load_classifier
from components.adapt.finetune import adapt
from components.adapt.scratch import adapt_from_scratch
from components.adapt.task import load_default_task
from components.carbon.tracking import Location
from components.common.contracts import CuratedDataset, ModelDir
from components.common.markdown import table
from components.evaluate.report import (
    ADAPTED,
    FROM_SCRATCH,
    EvalConfig,
    accuracy_section,
    baseline_outcomes,
    classifier_outcomes,
    encode_test,
)
from components.pretrain.checkpoint import load_model
from components.pretrain.train import train
from pipelines.config import load_config
from pipelines.stage_configs import adapt_config, train_config
from pipelines.tasks import run_artifact

OTHERS = (FROM_SCRATCH, "bag_of_words")  # the comparisons the default job must win (issue: pretraining's claim)


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def _check_reproduces_run(run_dir: Path, row: dict) -> None:
    """The grid's (run seed, run seed) pair is the run itself: its numbers must be the report's."""
    report = json.loads(run_artifact(run_dir, "evaluate", "report_json").read_text())
    models = report["details"]["accuracy"]["models"]
    for name, key in ((ADAPTED, "adapted_test"), (FROM_SCRATCH, "scratch_test")):
        if abs(models[name]["value"] - row[key]) > 1e-9:
            raise SystemExit(f"{run_dir}: {name} test accuracy {row[key]} here, {models[name]['value']} in the report")


def _overrides(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs (pipeline parameters); the values are checked and converted by load_config."""
    bad = [pair for pair in pairs if "=" not in pair]
    if bad:
        raise SystemExit(f"--set {bad[0]!r}: expected KEY=VALUE")
    return dict(pair.split("=", 1) for pair in pairs)


def grid(
    run_dir: Path, pretrain_seeds: list[int], adapt_seeds: list[int], work: Path, overrides: dict[str, str]
) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    ran = load_config(None, **manifest["config"])
    run = load_config(None, **{**manifest["config"], **overrides})
    # The run's pretrained model stands for its seed only where pretraining is configured as it was.
    own_pretraining = train_config(run) == train_config(ran)
    curated = run_artifact(run_dir, "curate", "curated")
    run_base = run_artifact(run_dir, "pretrain", "model")
    task = load_default_task()
    eval_cfg = EvalConfig(seed=run.seed)  # the evaluation step's settings
    seq_len = load_model(run_base).cfg.seq_len

    # The from-scratch arm depends on the tokenizer, the model config and the adaptation seed, not on pretraining.
    scratch = {}
    for seed in adapt_seeds:
        out = work / f"scratch-{seed}"
        result, _ = adapt_from_scratch(run_base, out, replace(adapt_config(run), seed=seed), Location(), task)
        model, _ = load_classifier(out)
        scratch[seed] = (result.val_accuracy, classifier_outcomes(model, task, out, seq_len))

    rows = []
    for pretrain_seed in pretrain_seeds:
        base = run_base
        if pretrain_seed != run.seed or not own_pretraining:
            base = work / f"base-{pretrain_seed}"
            started = time.perf_counter()
            train(CuratedDataset(curated).tokens, base, replace(train_config(run), seed=pretrain_seed))
            print(f"pretrained seed {pretrain_seed} in {time.perf_counter() - started:.0f} s", flush=True)
        baselines = baseline_outcomes(task, encode_test(task, base, seq_len), load_model(base), base)
        base_val_loss = float(ModelDir(base).train_report()["val_loss"])
        for seed in adapt_seeds:
            out = work / f"adapted-{pretrain_seed}-{seed}"
            result = adapt(base, out, replace(adapt_config(run), seed=seed), task)
            model, _ = load_classifier(out)
            outcomes = {ADAPTED: classifier_outcomes(model, task, out, seq_len), FROM_SCRATCH: scratch[seed][1]}
            section = accuracy_section({**outcomes, **baselines}, eval_cfg)
            models, comparisons = section["models"], section["comparisons"]
            row = {
                "pretrain_seed": pretrain_seed,
                "adapt_seed": seed,
                "base_val_loss": base_val_loss,
                "adapted_val": round(result.val_accuracy, 4),
                "scratch_val": round(scratch[seed][0], 4),
                "adapted_test": models[ADAPTED]["value"],
                "scratch_test": models[FROM_SCRATCH]["value"],
                "bow_test": models["bag_of_words"]["value"],
                **{f"{name}_difference": comparisons[name]["difference"] for name in OTHERS},
                **{f"{name}_p": comparisons[name]["p_adjusted"] for name in OTHERS},
                **{f"{name}_verdict": comparisons[name]["verdict"] for name in OTHERS},
            }
            if pretrain_seed == seed == run.seed and run == ran:
                _check_reproduces_run(run_dir, row)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "run_dir": str(run_dir),
        "config": run.pipeline_arguments(),
        "overrides": overrides,
        "rows": rows,
        "summary": summarize(rows),
    }


def summarize(rows: list[dict]) -> list[dict]:
    """Per pretraining seed, then over the whole grid: mean accuracies and gains, and how many pairs the paired
    test calls better than the from-scratch arm and than bag-of-words."""

    def line(label: str, chosen: list[dict]) -> dict:
        mean = lambda key: round(statistics.fmean(r[key] for r in chosen), 4)  # noqa: E731
        return {
            "pretrain_seed": label,
            "pairs": len(chosen),
            "adapted_test": mean("adapted_test"),
            "scratch_test": mean("scratch_test"),
            "gain_over_scratch": round(statistics.fmean(r["adapted_test"] - r["scratch_test"] for r in chosen), 4),
            "gain_over_scratch_val": round(statistics.fmean(r["adapted_val"] - r["scratch_val"] for r in chosen), 4),
            **{f"better_than_{name}": sum(r[f"{name}_verdict"] == "better" for r in chosen) for name in OTHERS},
            "better_than_both": sum(all(r[f"{name}_verdict"] == "better" for name in OTHERS) for r in chosen),
        }

    seeds = dict.fromkeys(r["pretrain_seed"] for r in rows)  # in the order they ran
    return [line(str(s), [r for r in rows if r["pretrain_seed"] == s]) for s in seeds] + [line("all", rows)]


def markdown(result: dict) -> str:
    config = result["config"]
    rows = [
        [
            r["pretrain_seed"],
            f"{r['base_val_loss']:.3f}",
            r["adapt_seed"],
            f"{r['adapted_val']:.3f} / {r['scratch_val']:.3f}",
            f"{r['adapted_test']:.3f}",
            f"{r['scratch_test']:.3f}",
            f"{r['bow_test']:.3f}",
            *(
                f"{r[f'{name}_difference']['value']:+.3f} [{r[f'{name}_difference']['low']:+.3f}, "
                f"{r[f'{name}_difference']['high']:+.3f}], p {r[f'{name}_p']:.3g}"
                for name in OTHERS
            ),
        ]
        for r in result["rows"]
    ]
    summary = [
        [
            s["pretrain_seed"],
            s["pairs"],
            f"{s['adapted_test']:.3f}",
            f"{s['scratch_test']:.3f}",
            f"{s['gain_over_scratch']:+.3f}",
            f"{s['gain_over_scratch_val']:+.3f}",
            s[f"better_than_{FROM_SCRATCH}"],
            s["better_than_bag_of_words"],
            s["better_than_both"],
        ]
        for s in summarize(result["rows"])
    ]
    return "\n".join(
        [
            "# What pretraining buys, over pretraining and adaptation seeds",
            "",
            f"Measured {result['measured_at']} on {result['cpus']} CPUs. "
            f"Run `{Path(result['run_dir']).name}`: model {config['model_size']}, {config['train_steps']} pretraining "
            f"steps, adaptation {config['adapt_method']} for {config['adapt_steps']} steps"
            + "".join(f"; {key} = {value}" for key, value in result["overrides"].items())
            + ". Each row pretrains with "
            "one seed and adapts with another (the from-scratch arm uses the adaptation seed); accuracies on the "
            "test split, differences with their paired-bootstrap intervals, p: mid-p McNemar, Holm-adjusted over "
            "the report's four comparisons, as in the evaluation report.",
            "",
            *table(
                [
                    "pretrain seed",
                    "base val loss",
                    "adapt seed",
                    "val: adapted / scratch",
                    "adapted",
                    "from scratch",
                    "bag-of-words",
                    "adapted − from scratch",
                    "adapted − bag-of-words",
                ],
                rows,
            ),
            "",
            "## Summary",
            "",
            *table(
                [
                    "pretrain seed",
                    "pairs",
                    "adapted",
                    "from scratch",
                    "gain (test)",
                    "gain (val)",
                    "better than scratch",
                    "better than bag-of-words",
                    "better than both",
                ],
                summary,
            ),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a kept `greenfm run` directory")
    parser.add_argument("--pretrain-seeds", default="1234,1,2")
    parser.add_argument("--adapt-seeds", default="1234,1,2,3,4")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="change a run parameter")
    parser.add_argument("--name", default="pretraining_gain", help="file name of the results (.json, .md)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="greenfm-pretraining-gain-") as work:
        result = grid(
            args.run_dir, _seeds(args.pretrain_seeds), _seeds(args.adapt_seeds), Path(work), _overrides(args.set)
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
