"""Small inline SVG charts for the HTML report: no plotting dependency, and the report stays one file."""

from __future__ import annotations

from html import escape

_BAR = "#2e7d32"
_REF = "#9e9e9e"


def bar_chart(title: str, values: dict[str, float], maximum: float = 1.0, width: int = 520) -> str:
    """Horizontal bars, one per named value in [0, maximum], labelled with the value."""
    row, label_w, top = 22, 190, 28
    plot_w = width - label_w - 60
    height = top + row * len(values) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (name, value) in enumerate(values.items()):
        y = top + i * row
        w = 0 if value != value else max(0.0, min(value / maximum, 1.0)) * plot_w  # NaN draws no bar
        parts += [
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">{escape(name)}</text>',
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{_BAR}"/>',
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{value:.3f}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def reliability_diagram(title: str, bins: list[tuple[float, float, int]], size: int = 260) -> str:
    """Accuracy against mean confidence per bin (bins: (confidence, accuracy, count)); the diagonal is perfect
    calibration. Dot area grows with the bin's count."""
    pad = 34
    span = size - 2 * pad
    top = 24

    def xy(confidence: float, accuracy: float) -> tuple[float, float]:
        return pad + confidence * span, top + (1 - accuracy) * span

    total = sum(n for _, _, n in bins) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{pad}" y="{top}" width="{span}" height="{span}" fill="none" stroke="{_REF}"/>',
        f'<line x1="{pad}" y1="{top + span}" x2="{pad + span}" y2="{top}" stroke="{_REF}" stroke-dasharray="4"/>',
        f'<text x="{pad + span / 2}" y="{top + span + 24}" font-size="11" text-anchor="middle">confidence</text>',
        f'<text x="10" y="{top + span / 2}" font-size="11" transform="rotate(-90 10 {top + span / 2})" text-anchor="middle">accuracy</text>',
    ]
    for confidence, accuracy, count in bins:
        x, y = xy(confidence, accuracy)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3 + 12 * (count / total) ** 0.5:.1f}" fill="{_BAR}" fill-opacity="0.7"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
