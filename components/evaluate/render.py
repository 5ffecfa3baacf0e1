"""Write an evaluation result as JSON, Markdown and one self-contained HTML page (inline SVG charts)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from components.evaluate.plots import bar_chart, reliability_diagram

if TYPE_CHECKING:
    from components.evaluate.report import EvalResult


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def markdown(result: EvalResult) -> str:
    d = result.details
    eff, con = d["efficiency"], d["contamination"]
    lines = [
        "# Evaluation report",
        "",
        f"Task `{d['task']}` ({result.test_examples} test examples, labels: {', '.join(d['labels'])}); adapted with "
        f"**{d['method']}** ({d['trainable_parameters']:,} of {d['total_parameters']:,} parameters trained).",
        "",
        "## Intrinsic",
        "",
        *_table(
            ["model", "held-out perplexity"],
            [["base", f"{result.base_perplexity:.2f}"], ["adapted", f"{result.adapted_perplexity:.2f}"]],
        ),
        "",
        "Perplexity on the curated validation tokens (never trained on); the adapted model's backbone after adaptation.",
        "",
        "## Task accuracy",
        "",
        *_table(["model", "test accuracy"], [[name, f"{value:.3f}"] for name, value in d["accuracy"].items()]),
        "",
        "Zero-shot: the base language model scores each label by the pointwise mutual information of the label's name "
        "with the text (no training examples).",
        "",
        "## Calibration",
        "",
        f"Expected calibration error: **{result.expected_calibration_error:.4f}** ({len(d['calibration']['bins'])} non-empty "
        "equal-width confidence bins).",
        "",
        "## Robustness",
        "",
        *_table(["test set", "accuracy"], [[k, f"{v:.3f}"] for k, v in d["robustness"]["accuracy"].items()]),
        "",
        f"Perturbations are seeded (seed {d['robustness']['seed']}): typo swaps adjacent letters in 10% of words, "
        "casing upper/lower/title-cases the text, whitespace stretches spaces and removes newlines.",
        "",
        "## Slices",
        "",
    ]
    for grouping, info in d["slices"].items():
        lines += [f"By {grouping} (worst: {info['worst']}, gap to overall {info['gap']:.3f}):", ""]
        lines += _table(
            ["slice", "n", "accuracy"], [[g, s["n"], f"{s['accuracy']:.3f}"] for g, s in info["slices"].items()]
        )
        lines.append("")
    lines += [
        "## Efficiency",
        "",
        *_table(
            ["measure", "value"],
            [
                ["device", eff["device"]],
                [
                    "throughput",
                    f"{eff['tokens_per_second']:,.0f} tokens/s ({eff['predictions_per_second']:,.0f} predictions/s)",
                ],
                ["latency (one example, median)", f"{eff['latency_ms_median']:.2f} ms"],
                [
                    "energy per 1k predictions",
                    f"{eff['energy_kwh_per_1k_predictions'] * 1000:.4f} Wh (codecarbon, {eff['cpu_power_method']})",
                ],
            ],
        ),
        "",
        "## Contamination",
        "",
        f"Evaluation text against the {con['pretraining_documents']:,} curated pretraining documents: "
        f"{len(con['exact_matches'])} exact matches by id or text.",
        "",
        *_table(
            [
                "split",
                "examples",
                f"with a shared {next(iter(con['splits'].values()))['n']}-gram",
                "share of n-grams shared",
            ],
            [
                [
                    s,
                    v["texts"],
                    f"{v['texts_with_overlap']} ({v['text_overlap_rate']:.1%})",
                    f"{v['ngram_overlap_rate']:.2%}",
                ]
                for s, v in con["splits"].items()
            ],
        ),
        "",
    ]
    return "\n".join(lines)


def html_page(result: EvalResult, markdown_text: str) -> str:
    d = result.details
    charts = [
        bar_chart(
            "Test accuracy",
            {
                "adapted": d["accuracy"]["adapted"],
                **{k.split(" (")[0]: v for k, v in d["accuracy"].items() if k != "adapted"},
            },
        ),
        bar_chart("Accuracy under perturbation", d["robustness"]["accuracy"]),
        reliability_diagram(
            f"Reliability (ECE {result.expected_calibration_error:.3f})",
            [(b["confidence"], b["accuracy"], b["n"]) for b in d["calibration"]["bins"]],
        ),
    ]
    charts += [
        bar_chart(f"Accuracy by {g}", {k: s["accuracy"] for k, s in info["slices"].items()})
        for g, info in d["slices"].items()
    ]
    body = "\n".join(f"<figure>{c}</figure>" for c in charts)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>greenfm evaluation report</title>"
        "<style>body{font-family:sans-serif;max-width:980px;margin:auto}figure{display:inline-block;margin:8px}"
        "pre{white-space:pre-wrap;background:#f6f8f6;padding:12px}</style></head><body>"
        f"<h1>Evaluation report: {html.escape(d['task'])}</h1>{body}<pre>{html.escape(markdown_text)}</pre></body></html>"
    )


def write_reports(result: EvalResult, out: Path, json_name: str, md_name: str, html_name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(result)
    (out / json_name).write_text(json.dumps({**result.metrics(), "details": result.details}, indent=2, default=str))
    (out / md_name).write_text(text)
    (out / html_name).write_text(html_page(result, text))
