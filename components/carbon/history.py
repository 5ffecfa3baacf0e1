"""Energy and CO2e per stage across the runs of one pipeline, so a reviewer sees the trend, not one number.

Reads every run's carbon_statement.json under a run root (`greenfm run --out`), oldest first; a statement that
cannot be read is skipped and reported, never silently dropped. The plot is a self-contained SVG line chart
(one line per stage, g CO2e per run), like the statement's own charts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from components.carbon.statement import STATEMENT_JSON

HISTORY_SVG = "carbon_history.svg"
HISTORY_JSON = "carbon_history.json"
_PALETTE = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#b07aa1", "#9c755f"]


@dataclass
class RunCarbon:
    run: str  # run directory name (starts with its UTC timestamp)
    outcome: str
    energy_kwh: dict[str, float]  # stage -> kWh
    emissions_kg: dict[str, float]  # stage -> kg CO2e (operational, at the intensity of its hours)
    methods: dict[str, str]  # stage -> intensity method
    total_kwh: float
    total_kg: float
    embodied_kg: float


@dataclass
class History:
    runs: list[RunCarbon] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: why"

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(stage for r in self.runs for stage in r.emissions_kg))


def read_run(path: Path) -> RunCarbon:
    data = json.loads(path.read_text())
    stages = data["stages"]
    return RunCarbon(
        run=path.parent.name,
        outcome=str(data.get("run", {}).get("outcome", "")),
        energy_kwh={s["stage"]: float(s["energy_kwh"]) for s in stages},
        emissions_kg={s["stage"]: float(s["emissions_kg"]) for s in stages},
        methods={s["stage"]: str(s.get("intensity_method", "annual-average")) for s in stages},
        total_kwh=float(data["total_energy_kwh"]),
        total_kg=float(data["total_emissions_kg"]),
        embodied_kg=float(data.get("total_embodied_kg", 0.0)),
    )


def collect(run_root: str | Path) -> History:
    """Every run's statement under run_root (one level down, or run_root itself), oldest run first."""
    root = Path(run_root)
    paths = sorted(root.glob(f"*/{STATEMENT_JSON}")) + (
        [root / STATEMENT_JSON] if (root / STATEMENT_JSON).is_file() else []
    )
    history = History()
    for path in paths:
        try:
            history.runs.append(read_run(path))
        except (OSError, ValueError, KeyError, TypeError) as error:
            history.skipped.append(f"{path}: {type(error).__name__}: {error}")
    return history


def history_svg(history: History) -> str:
    """One line per stage: g CO2e of each run, runs left to right."""
    width, height, left, bottom, top = 720, 320, 60, 60, 30
    runs, stages = history.runs, history.stages
    peak = max((kg * 1000 for r in runs for kg in r.emissions_kg.values()), default=0.0) or 1.0
    plot_w, plot_h = width - left - 150, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (len(runs) - 1) if len(runs) > 1 else plot_w / 2)

    def y(g: float) -> float:
        return top + plot_h * (1 - g / peak)

    parts = [
        f'<svg id="chart-history" role="img" aria-label="CO2e per stage over runs" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="16" font-size="14" font-weight="bold">g CO2e per stage over {len(runs)} run(s)</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="11" text-anchor="end">{peak:.4g}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, run in enumerate(runs):
        parts.append(
            f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="10" text-anchor="middle">{escape(run.run[:16])}</text>'
        )
    for j, stage in enumerate(stages):
        color = _PALETTE[j % len(_PALETTE)]
        points = [(x(i), y(r.emissions_kg[stage] * 1000)) for i, r in enumerate(runs) if stage in r.emissions_kg]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (px, py), run in zip(points, [r for r in runs if stage in r.emissions_kg], strict=True):
            g = run.emissions_kg[stage] * 1000
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"><title>{escape(stage)} {escape(run.run)}: '
                f"{g:.4g} g</title></circle>"
            )
        parts.append(
            f'<rect x="{left + plot_w + 20}" y="{top + 16 * j}" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + plot_w + 34}" y="{top + 9 + 16 * j}" font-size="11">{escape(stage)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def write_history(history: History, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    svg, data = out / HISTORY_SVG, out / HISTORY_JSON
    svg.write_text(history_svg(history))
    payload = {"runs": [r.__dict__ for r in history.runs], "skipped": history.skipped}
    data.write_text(json.dumps(payload, indent=2))
    return svg, data
