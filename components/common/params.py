"""Pipeline parameters arrive as strings (KFP); lists among them are comma-separated."""

from __future__ import annotations


def split_list(text: str) -> list[str]:
    """ "en, fr,," -> ["en", "fr"]: items stripped, empty ones left out."""
    return [item.strip() for item in text.split(",") if item.strip()]
