"""The gate's configuration, and its construction from the pipeline's string parameters (the KFP component and
the CLI both use `from_params`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from components.common.errors import GreenfmError
from components.common.params import split_list

DRIFT_MODES = ("fail", "warn", "off")


@dataclass
class ValidateConfig:
    min_documents: int = 100
    min_words: int = 5
    max_words: int = 100_000
    min_tokens: int = 10_000
    license_allowlist: list[str] = field(default_factory=list)  # empty: any license
    # Languages (need the `lang` column): a share of documents in allowed languages, per-language share bounds.
    allowed_languages: list[str] = field(default_factory=list)  # empty: no language-share check
    min_language_share: float = 0.95
    language_bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # code -> (min, max) share
    max_duplicate_rate: float = 0.01  # documents whose normalized text repeats an earlier one
    # Drift against the profile accepted last time in `profile_store` (empty: no comparison, nothing stored).
    profile_store: str = ""
    drift_mode: str = "warn"  # fail | warn | off
    max_length_psi: float = 0.25
    max_language_tvd: float = 0.10
    max_source_tvd: float = 0.25
    max_token_change: float = 0.50

    def __post_init__(self) -> None:
        if self.drift_mode not in DRIFT_MODES:
            raise GreenfmError(f"drift_mode must be one of {', '.join(DRIFT_MODES)}, got {self.drift_mode!r}")
        for name in ("min_language_share", "max_duplicate_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise GreenfmError(f"{name} must be between 0 and 1, got {getattr(self, name)}")

    @property
    def checks_languages(self) -> bool:
        return bool(self.allowed_languages or self.language_bounds)


def parse_language_bounds(text: str) -> dict[str, tuple[float, float]]:
    """ "en=0.8:1,fr=0:0.1" -> {"en": (0.8, 1.0), "fr": (0.0, 0.1)}."""
    bounds = {}
    for item in split_list(text):
        try:
            code, span = item.split("=")
            low, high = (float(x) for x in span.split(":"))
        except ValueError:
            raise GreenfmError(f"language_share_bounds: {item!r} is not CODE=MIN:MAX (e.g. en=0.8:1)") from None
        if not 0.0 <= low <= high <= 1.0:
            raise GreenfmError(f"language_share_bounds: {item!r} needs 0 <= MIN <= MAX <= 1")
        bounds[code.strip()] = (low, high)
    return bounds


def from_params(
    min_documents: int,
    license_allowlist: str = "",
    allowed_languages: str = "",
    min_language_share: float = ValidateConfig.min_language_share,
    language_share_bounds: str = "",
    drift_mode: str = ValidateConfig.drift_mode,
    profile_store: str = "",
    min_words: int = ValidateConfig.min_words,
) -> ValidateConfig:
    """A ValidateConfig from the pipeline parameters (comma-separated lists as strings). `min_words` is curation's
    word floor: the gate checks that no shorter document reached the curated data."""
    return ValidateConfig(
        min_documents=min_documents,
        min_words=min_words,
        license_allowlist=split_list(license_allowlist),
        allowed_languages=split_list(allowed_languages),
        min_language_share=min_language_share,
        language_bounds=parse_language_bounds(language_share_bounds),
        drift_mode=drift_mode,
        profile_store=profile_store,
    )
