"""The carbon impact statement of one run: energy and emissions per stage, how each number was obtained,
and totals that reconcile (kg CO2e = kWh × kg/kWh)."""

from __future__ import annotations

import json
from pathlib import Path

STATEMENT_MD = "carbon_statement.md"
STATEMENT_JSON = "carbon_statement.json"

_POWER_METHODS = {
    "intel_rapl": "RAPL energy counters (measured)",
    "cpu_load": "CPU load × TDP estimate (no RAPL counters readable here)",
    "tdp": "constant TDP estimate",
    "constant": "constant power estimate",
}


def intensity_source(location: str) -> str:
    """Where codecarbon's offline tracker takes the grid intensity for a location."""
    provider = location.split(":", 1)[0] if ":" in location else ""
    if provider == "gcp":
        return "codecarbon bundled GCP region table (impact.csv), annual average"
    if provider:
        return f"{provider.upper()} region not in codecarbon's bundled table: country annual average"
    return "codecarbon bundled country energy mix, annual average"


def build_statement(records: list[dict], run: dict | None = None) -> dict:
    stages = []
    for record in records:
        kwh, kg = record["energy_kwh"], record["emissions_kg"]
        stages.append(
            {
                **record,
                "intensity_source": intensity_source(record["location"]),
                "cpu_power": _POWER_METHODS.get(record["cpu_power_method"], record["cpu_power_method"]),
                "reconciles": kwh == 0 or abs(kwh * record["intensity_g_per_kwh"] / 1000.0 - kg) <= 1e-9 + 1e-6 * kg,
            }
        )
    total_kwh = sum(s["energy_kwh"] for s in stages)
    total_kg = sum(s["emissions_kg"] for s in stages)
    return {
        "run": run or {},
        "stages": stages,
        "total_energy_kwh": total_kwh,
        "total_emissions_kg": total_kg,
        "total_wall_seconds": sum(s["wall_seconds"] for s in stages),
        "failed_stages": [s["stage"] for s in stages if s["failed"]],
    }


def render_markdown(statement: dict) -> str:
    run = statement["run"]
    lines = ["# Carbon impact statement", ""]
    if run:
        lines += [f"- {key.replace('_', ' ')}: {value}" for key, value in run.items()] + [""]
    lines += [
        f"**Total: {statement['total_energy_kwh'] * 1000:.3f} Wh, "
        f"{statement['total_emissions_kg'] * 1000:.3f} g CO2e** over "
        f"{statement['total_wall_seconds']:.0f} s of measured stages.",
        "",
        "| stage | wall s | energy Wh (CPU / GPU / RAM) | intensity g/kWh | g CO2e | location |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for s in statement["stages"]:
        intensity = "n/a" if s["intensity_g_per_kwh"] is None else f"{s['intensity_g_per_kwh']:.0f}"
        lines.append(
            f"| {s['stage']}{' (failed)' if s['failed'] else ''} | {s['wall_seconds']:.1f} | "
            f"{s['energy_kwh'] * 1000:.4f} ({s['cpu_kwh'] * 1000:.4f} / {s['gpu_kwh'] * 1000:.4f} / "
            f"{s['ram_kwh'] * 1000:.4f}) | {intensity} | {s['emissions_kg'] * 1000:.4f} | {s['location']} |"
        )
    lines += ["", "## How these numbers were obtained", ""]
    seen = set()
    for s in statement["stages"]:
        key = (s["cpu_model"], s["cpu_power"], s["gpu_model"], s["location"], s["pue"])
        if key in seen:
            continue
        seen.add(key)
        gpu = f"{s['gpu_count']} × {s['gpu_model']} (NVML)" if s["gpu_count"] else "no GPU"
        lines.append(
            f"- Hardware: {s['cpu_count']} × {s['cpu_model']} CPU, {gpu}. CPU power: {s['cpu_power']}. "
            f"RAM power: codecarbon's per-GB estimate. PUE {s['pue']}."
        )
        lines.append(
            f"- Grid intensity for {s['location']} ({s['country']}): {s['intensity_source']}. "
            "The location is configuration, not detected: set country_iso_code, grid_region, or "
            "cloud_provider + cloud_region."
        )
    version = statement["stages"][0]["codecarbon_version"] if statement["stages"] else "?"
    lines += [
        f"- Tool: codecarbon {version}, offline tracker, {statement['stages'][0]['tracking_mode'] if statement['stages'] else ''} mode.",
        "- Every stage row reconciles: g CO2e = Wh × g/kWh / 1000"
        + ("." if all(s["reconciles"] for s in statement["stages"]) else " — **a row does not reconcile**."),
        "- Offsets: none are counted or netted.",
    ]
    if statement["failed_stages"]:
        lines.append(f"- Failed stages (their energy is included): {', '.join(statement['failed_stages'])}.")
    return "\n".join(lines) + "\n"


def write_statement(records: list[dict], out_dir: str | Path, run: dict | None = None) -> dict:
    statement = build_statement(records, run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / STATEMENT_JSON).write_text(json.dumps(statement, indent=2))
    (out / STATEMENT_MD).write_text(render_markdown(statement))
    return statement
