"""Compare adaptation methods on one run's pretrained model: accuracy, baselines, trainable parameters,
adaptation energy and time. Writes adapt_methods.json and adapt_methods.md into --out.

    python -m benchmarks.adapt_methods RUN_DIR [--methods lora,full,last-layer,head] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from components.adapt.finetune import AdaptConfig
from components.adapt.lineage import adapt_and_record
from components.adapt.task import load_default_task
from components.carbon.tracking import Location
from components.common.markdown import table
from components.evaluate.report import evaluate
from pipelines.tasks import run_artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--methods", default="lora,full,last-layer,head")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    base = run_artifact(args.run_dir, "pretrain", "model")
    curated = run_artifact(args.run_dir, "curate", "curated")
    work = args.out / "adapt_methods_models"
    task = load_default_task()
    rows = []
    for method in args.methods.split(","):
        result, energy = adapt_and_record(
            base, work / method, AdaptConfig(method=method, steps=args.steps), Location(), task
        )
        report = evaluate(base, work / method, curated, work / f"{method}-eval", task)
        rows.append(
            {
                "method": method,
                "trainable_parameters": result.trainable_parameters,
                "val_accuracy": round(result.val_accuracy, 4),
                **report.metrics(),
                "adapt_seconds": energy["wall_seconds"],
                "adapt_energy_kwh": energy["energy_kwh"],
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adapt_methods.json").write_text(
        json.dumps({"run_dir": str(args.run_dir), "steps": args.steps, "rows": rows}, indent=2)
    )
    columns = [
        "method",
        "trainable_parameters",
        "task_accuracy",
        "baseline_accuracy",
        "bow_accuracy",
        "zero_shot_accuracy",
        "expected_calibration_error",
        "adapted_perplexity",
        "adapt_seconds",
        "adapt_energy_kwh",
    ]
    lines = [
        f"# Adaptation methods ({args.steps} steps, model from {args.run_dir.name})",
        "",
        *table(columns, [[f"{r[c]:.4g}" if isinstance(r[c], float) else r[c] for c in columns] for r in rows]),
    ]
    (args.out / "adapt_methods.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
