"""A datasheet for the curated dataset, in the style of "Datasheets for Datasets" (Gebru et al.): what is in
it, where it came from, under which licenses, what curation removed and why, and what it cannot promise.
The gate writes it, then checks that every required section is present and non-empty."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from components.common.contracts import CURATION_REPORT_JSON as REPORT_JSON
from components.common.markdown import curation_steps_table, table
from components.common.pii import PII_KINDS
from components.validate.frames import CONTRACT_COLUMNS
from components.validate.profile import value_counts

DATASHEET_MD = "datasheet.md"
REQUIRED_SECTIONS = (
    "Motivation",
    "Composition",
    "Sources",
    "Licenses",
    "Languages",
    "Preprocessing",
    "Known limitations",
)


_TABLE_ROWS = 20


def _table(title: str, counts: pd.Series, total: int) -> list[str]:
    rows = [(key, count, f"{count / total:.1%}") for key, count in counts.head(_TABLE_ROWS).items()]
    rest = counts.iloc[_TABLE_ROWS:]
    if len(rest):
        rows.append((f"{len(rest)} more", rest.sum(), f"{rest.sum() / total:.1%}"))
    return table((title, "documents", "share"), rows)


def _preprocessing(report: dict | None) -> list[str]:
    if report is None:
        return [f"No curation report ({REPORT_JSON}) was found beside the data; the filters applied are unknown."]
    files = report.get("input_files", {})
    files = files.get("read", "?") if isinstance(files, dict) else files
    lines = [
        f"Curation read {report.get('documents_read', '?')} documents from `{report.get('input', '?')}` "
        f"({files} files), quarantined {report.get('quarantined', 0)} malformed records "
        f"and kept {report.get('documents', '?')}.",
        "",
        *curation_steps_table(report.get("steps", [])),
    ]
    for title, key in (("Quarantine by reason", "quarantine_reasons"), ("PII redacted by kind", "pii")):
        if report.get(key):
            lines += ["", f"{title}: " + ", ".join(f"{k}: {v}" for k, v in report[key].items()) + "."]
    return lines


def _limitations(documents: pd.DataFrame, report: dict | None, notes: list[str]) -> list[str]:
    items = [
        f"Residual PII is checked with pattern detectors only ({', '.join(PII_KINDS)}); names, postal addresses "
        "and other free-form personal data are not detected.",
        "The gate's duplicate check is exact (after lower-casing and collapsing whitespace); near-duplicates are "
        "caught only by curation's own filters.",
    ]
    if "lang" not in documents.columns:
        items.append("Documents carry no language label (`lang`); the language mix is unknown.")
    elif "lang_score" in documents.columns:
        scores = documents["lang_score"].astype(float)
        items.append(
            f"Language labels are automatic (mean confidence {scores.mean():.2f}; "
            f"{(scores < 0.5).mean():.1%} of documents below 0.5)."
        )
    if report is None:
        items.append("No curation report: the filters applied and their counts are unknown.")
    return [f"- {item}" for item in items + notes]


def render(curated_dir: Path, documents: pd.DataFrame, profile: dict, notes: list[str]) -> str:
    """The datasheet of the dataset in `curated_dir`; `notes` are further limitations (e.g. drift warnings)."""
    report_path = curated_dir / REPORT_JSON
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    total = max(len(documents), 1)
    quantiles = profile["length"]["quantiles"]
    lines = [
        "# Datasheet: curated pretraining corpus",
        "",
        "## Motivation",
        "",
        "Text for pretraining a language model, curated by greenfm (normalized, filtered, deduplicated, "
        "tokenized) and accepted by the validation gate only when every expectation holds.",
        "",
        "## Composition",
        "",
        f"- Documents: {profile['documents']}",
        f"- Tokens: {profile['tokens']}",
        "- Words per document: " + (", ".join(f"p{float(q) * 100:g} {v:g}" for q, v in quantiles.items()) or "n/a"),
        "- Fields: " + ", ".join(f"`{c}`" for c in documents.columns if c in CONTRACT_COLUMNS),
        "",
        "## Sources",
        "",
        *(
            _table("source", value_counts(documents["source"]), total)
            if "source" in documents.columns
            else ["Unknown."]
        ),
        "",
        "## Licenses",
        "",
        *(
            _table("license", value_counts(documents["license"]), total)
            if "license" in documents.columns
            else ["Unknown."]
        ),
        "",
        "## Languages",
        "",
        *(
            _table("language", value_counts(documents["lang"]), total)
            if "lang" in documents.columns
            else ["Not identified (no `lang` column)."]
        ),
        "",
        "## Preprocessing",
        "",
        *_preprocessing(report),
        "",
        "## Known limitations",
        "",
        *_limitations(documents, report, notes),
    ]
    return "\n".join(lines) + "\n"


def sections_frame(path: Path) -> pd.DataFrame:
    """One row per required section (id = section title): whether the datasheet at `path` has it with content."""
    text = path.read_text() if path.is_file() else ""
    bodies = dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    rows = [{"id": title, "present": bool(bodies.get(title, "").strip())} for title in REQUIRED_SECTIONS]
    return pd.DataFrame(rows, columns=["id", "present"])
