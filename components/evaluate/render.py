"""Write an evaluation result as JSON, Markdown and one self-contained HTML page: inline SVG charts, then the
Markdown rendered as HTML (headings, tables, text), so both formats say the same thing."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.markdown import table, to_html
from components.evaluate.plots import bar_chart, reliability_diagram

if TYPE_CHECKING:
    from components.evaluate.report import EvalResult

# Display labels for the report's stable model keys.
MODEL_LABELS = {
    "base": "base model",
    "adapted": "adapted (pretrained, then adapted)",
    "from_scratch": "from scratch (random init, same adaptation)",
    "majority": "majority class",
    "bag_of_words": "bag-of-words (naive Bayes, 1-2 grams)",
    "zero_shot": "base model zero-shot (label-name PMI)",
}
SHORT_LABELS = {"adapted": "adapted", "from_scratch": "from scratch", "bag_of_words": "bag-of-words"}


def _ci(interval: dict, digits: int = 3) -> str:
    return f"{interval['value']:.{digits}f} [{interval['low']:.{digits}f}, {interval['high']:.{digits}f}]"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else "< 1e-4"


def _intro(result: EvalResult) -> list[str]:
    d = result.details
    arm = d["arms"]["adapted"]
    level = d["bootstrap"]["level"]
    return [
        "# Evaluation report",
        "",
        f"Task `{d['task']}` ({result.test_examples} test examples, labels: {', '.join(d['labels'])}); adapted with "
        f"**{arm['method']}** ({arm['trainable_parameters']:,} of {arm['total_parameters']:,} parameters trained).",
        "",
        f"Intervals in brackets are {level:.0%} percentile-bootstrap intervals over the test examples "
        f"({d['bootstrap']['resamples']} resamples, seed {d['bootstrap']['seed']}).",
        "",
    ]


def _intrinsic(result: EvalResult) -> list[str]:
    p = result.details["perplexity"]
    rows = [[MODEL_LABELS.get(name, name), _ci(v, 2)] for name, v in p["models"].items()]
    return [
        "## Intrinsic",
        "",
        *table(["model", "held-out perplexity"], rows),
        "",
        f"Perplexity on {p['windows']} windows of {p['window_tokens']} curated validation tokens (never trained on); "
        "for the adapted arms, the backbone after adaptation. The interval resamples windows.",
        "",
        _why_perplexity_moves(result.details["arms"]["adapted"].get("lm_loss_weight", 0.0)),
        "",
    ]


def _why_perplexity_moves(lm_loss_weight: float) -> str:
    if lm_loss_weight > 0:
        return (
            f"Adaptation added a next-token loss on the task's texts (weight {lm_loss_weight:g}) to the "
            "classification loss, which keeps the language-model head in use."
        )
    return (
        "Why the adapted perplexity rises: adaptation trained the backbone for classification only, and the "
        "classifier reads pooled hidden states, never the language-model head, so nothing keeps the next-token "
        "predictions; task accuracy does not depend on them. A run that needs the adapted model to stay a language "
        "model sets `adapt_lm_loss_weight` (a next-token loss on the task's texts beside the classification loss)."
    )


def _accuracy(result: EvalResult) -> list[str]:
    acc = result.details["accuracy"]
    models, comparisons = acc["models"], acc["comparisons"]
    rows = []
    for name, interval in models.items():
        c = comparisons.get(name)
        rows.append(
            [
                MODEL_LABELS.get(name, name),
                _ci(interval),
                ""
                if c is None
                else f"{c['difference']['value']:+.3f} [{c['difference']['low']:+.3f}, {c['difference']['high']:+.3f}]",
                "" if c is None else f"{c['a_only']} / {c['b_only']}",
                "" if c is None else _p(c["p_adjusted"]),
                "" if c is None else f"**{c['verdict']}**",
            ]
        )
    return [
        "## Task accuracy",
        "",
        *table(
            ["model", "test accuracy", "adapted − model", "only adapted / only model right", "p", "adapted is"], rows
        ),
        "",
        f"p: two-sided mid-p McNemar test on the examples the two models disagree on, Holm-adjusted over the "
        f'{len(comparisons)} comparisons; "better" or "worse" when p < {acc["alpha"]}, else "no detectable '
        "difference\". The difference's interval is a paired bootstrap (both models on the same resampled examples).",
        "",
        "Zero-shot: the base language model scores each label by the pointwise mutual information of the label's name "
        "with the text (no training examples).",
        "",
        *_scratch_arm(result),
    ]


def _scratch_arm(result: EvalResult) -> list[str]:
    arms = result.details["arms"]
    if "from_scratch" not in arms:
        return []
    scratch = arms["from_scratch"]
    energy = scratch.get("energy") or {}
    spent = f"{energy['energy_kwh'] * 1000:.3f} Wh in {energy['wall_seconds']:.0f} s" if energy else "not measured"
    return [
        "The from-scratch arm is the same adaptation (method, steps, batch, learning rate, seed) applied to a "
        f"randomly initialized model of the same size: it isolates what pretraining buys. Its adaptation used {spent} "
        "(codecarbon, as every stage).",
        "",
    ]


def _calibration_and_robustness(result: EvalResult) -> list[str]:
    d = result.details
    return [
        "## Calibration",
        "",
        f"Expected calibration error: **{_ci(d['calibration']['ece'], 4)}** ({len(d['calibration']['bins'])} non-empty "
        "equal-width confidence bins).",
        "",
        "## Robustness",
        "",
        *table(["test set", "accuracy"], [[k, f"{v:.3f}"] for k, v in d["robustness"]["accuracy"].items()]),
        "",
        f"Perturbations are seeded (seed {d['robustness']['seed']}): typo swaps adjacent letters in 10% of words, "
        "casing upper/lower/title-cases the text, whitespace stretches spaces and removes newlines.",
        "",
    ]


def _slices(result: EvalResult) -> list[str]:
    s = result.details["slices"]
    lines = [
        "## Slices",
        "",
        f"Slices with fewer than {s['min_examples']} test examples are marked *too small to judge* and left out of the "
        "worst-slice gap.",
        "",
    ]
    for grouping, info in s["groups"].items():
        worst = (
            f"worst: {info['worst']}, gap to overall {info['gap']:.3f}" if info["worst"] else "no slice large enough"
        )
        lines += [f"By {grouping.replace('_', ' ')} ({worst}):", ""]
        rows = [
            [key, v["n"], _ci(v) + (" (too small to judge)" if v["too_small"] else "")]
            for key, v in info["slices"].items()
        ]
        lines += [*table(["slice", "n", "accuracy"], rows), ""]
    return lines


def _efficiency(result: EvalResult) -> list[str]:
    eff = result.details["efficiency"]
    rows = [
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
    ]
    return ["## Efficiency", "", *table(["measure", "value"], rows, align="ll"), ""]


def _contamination(result: EvalResult) -> list[str]:
    con = result.details["contamination"]
    n = next(iter(con["splits"].values()))["n"]
    rows = [
        [s, v["texts"], f"{v['texts_with_overlap']} ({v['text_overlap_rate']:.1%})", f"{v['ngram_overlap_rate']:.2%}"]
        for s, v in con["splits"].items()
    ]
    return [
        "## Contamination",
        "",
        f"Evaluation text against the {con['pretraining_documents']:,} curated pretraining documents: "
        f"{len(con['exact_matches'])} exact matches by id or text.",
        "",
        *table(["split", "examples", f"with a shared {n}-gram", "share of n-grams shared"], rows),
        "",
    ]


def markdown(result: EvalResult) -> str:
    sections = (_intro, _intrinsic, _accuracy, _calibration_and_robustness, _slices, _efficiency, _contamination)
    return "\n".join(line for section in sections for line in section(result))


def _charts(result: EvalResult) -> list[str]:
    d = result.details
    accuracy = {SHORT_LABELS.get(k, k.replace("_", " ")): v["value"] for k, v in d["accuracy"]["models"].items()}
    charts = [
        bar_chart("Test accuracy", accuracy),
        bar_chart("Accuracy under perturbation", d["robustness"]["accuracy"]),
        reliability_diagram(
            f"Reliability (ECE {result.expected_calibration_error:.3f})",
            [(b["confidence"], b["accuracy"], b["n"]) for b in d["calibration"]["bins"]],
        ),
    ]
    return charts + [
        bar_chart(f"Accuracy by {g.replace('_', ' ')}", {k: s["value"] for k, s in info["slices"].items()})
        for g, info in d["slices"]["groups"].items()
    ]


_STYLE = (
    "body{font-family:sans-serif;max-width:980px;margin:auto;padding:0 12px;line-height:1.4}"
    "figure{display:inline-block;margin:8px}table{border-collapse:collapse;margin:8px 0}"
    "th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f0f4f0}code{background:#f6f8f6}"
)


def html_page(result: EvalResult, markdown_text: str) -> str:
    charts = "\n".join(f"<figure>{c}</figure>" for c in _charts(result))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>greenfm evaluation report: {html.escape(result.details['task'])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<section id='charts'>{charts}</section><article id='report'>{to_html(markdown_text)}</article></body></html>"
    )


def write_reports(result: EvalResult, out: Path, json_name: str, md_name: str, html_name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(result)
    (out / json_name).write_text(json.dumps({**result.metrics(), "details": result.details}, indent=2, default=str))
    (out / md_name).write_text(text)
    (out / html_name).write_text(html_page(result, text))
