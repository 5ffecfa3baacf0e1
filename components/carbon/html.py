"""The carbon statement as one self-contained HTML page: key figures, tables, and inline SVG bar charts (no
plotting library, no scripts, no network: it renders the same in the Kubeflow UI and offline)."""

from __future__ import annotations

from html import escape

from components.carbon.attribution import METHODS
from components.carbon.costs import usd
from components.carbon.providers import describe_warning
from components.carbon.records import tracker_rows

_COLORS = {
    "cpu": "#4e79a7",
    "gpu": "#e15759",
    "ram": "#59a14f",
    "bar": "#76b7b2",
    "operational": "#f28e2b",
    "embodied": "#9c755f",
}


def bar_chart(title: str, rows: list[tuple[str, dict[str, float]]], unit: str, chart_id: str) -> str:
    """Horizontal (stacked) bars: rows of (label, {series: value}); values in `unit`."""
    width, label_w, row_h = 640, 220, 26
    peak = max((sum(v.values()) for _, v in rows), default=0.0) or 1.0
    height = row_h * len(rows) + 40
    parts = [
        f'<svg id="{chart_id}" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="16" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    names = [n for n in dict.fromkeys(k for _, v in rows for k in v) if n != "bar"]
    for j, name in enumerate(names):  # legend, for stacked series only
        legend_x = width - 70 * (len(names) - j)
        parts.append(
            f'<rect x="{legend_x}" y="6" width="10" height="10" fill="{_COLORS.get(name, _COLORS["bar"])}"/>'
            f'<text x="{legend_x + 14}" y="15" font-size="11">{escape(name.upper())}</text>'
        )
    for i, (label, series) in enumerate(rows):
        y = 28 + i * row_h
        x: float = label_w
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{escape(label)}</text>')
        for name, value in series.items():
            w = (width - label_w - 110) * value / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0):.1f}" height="{row_h - 8}" '
                f'fill="{_COLORS.get(name, _COLORS["bar"])}"><title>{escape(name)}: {value:.4g} {unit}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" font-size="12">{sum(series.values()):.4g} {unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(figure_id: str, label: str, value: str) -> str:
    return f'<div class="figure"><div class="label">{escape(label)}</div><div class="value" id="{figure_id}">{escape(value)}</div></div>'


def render_html(statement: dict) -> str:
    stages, costs = statement["stages"], statement["costs"]
    amort, compute = statement["amortization"], statement["compute"]
    figures = [
        _figure("total-energy", "Energy", f"{statement['total_energy_kwh'] * 1000:.3f} Wh"),
        _figure("total-emissions", "Emissions (operational)", f"{statement['total_emissions_kg'] * 1000:.3f} g CO2e"),
        _figure(
            "total-range",
            "Uncertainty range",
            f"{statement['total_low_kg'] * 1000:.3f}–{statement['total_high_kg'] * 1000:.3f} g",
        ),
        _figure("total-embodied", "Embodied (hardware)", f"{statement['total_embodied_kg'] * 1000:.4f} g CO2e"),
        _figure("energy-cost", "Energy cost C", usd(costs["C_energy_usd"])),
        _figure("carbon-cost", "Social cost of carbon E", usd(costs["E_carbon_usd"])),
        _figure("eu-fraction", "Share of EU 10^25 FLOP threshold", f"{compute['fraction_of_threshold']:.3e}"),
    ]
    if amort:
        n = amort["break_even_uses"]
        figures.append(_figure("break-even", "Break-even uses", "never" if n is None else f"{n:.2f}"))
    sections = ['<div class="figures">' + "".join(figures) + "</div>"]
    if statement["run"]:
        sections.append(
            "<ul>" + "".join(f"<li>{escape(k)}: {escape(str(v))}</li>" for k, v in statement["run"].items()) + "</ul>"
        )
    sections.append("<h2>Stages</h2>")
    sections.append(
        _table(
            [
                "stage",
                "wall s",
                "Wh CPU",
                "Wh GPU",
                "Wh RAM",
                "Wh total",
                "g/kWh",
                "basis",
                "intensity method",
                "intensity source",
                "g CO2e",
                "range g",
                "annual-average g",
                "embodied g",
                "location",
                "scope",
                "hardware",
            ],
            [
                [
                    s["stage"] + (" (failed)" if s["failed"] else ""),
                    f"{s['wall_seconds']:.1f}",
                    f"{s['cpu_kwh'] * 1000:.4f}",
                    f"{s['gpu_kwh'] * 1000:.4f}",
                    f"{s['ram_kwh'] * 1000:.4f}",
                    f"{s['energy_kwh'] * 1000:.4f}",
                    "n/a" if s["intensity_g_per_kwh"] is None else f"{s['intensity_g_per_kwh']:.1f}",
                    s["intensity_basis"],
                    METHODS[s["intensity_method"]],
                    s["intensity_source"],
                    f"{s['emissions_kg'] * 1000:.4f}",
                    f"{s['uncertainty']['low_kg'] * 1000:.4f}–{s['uncertainty']['high_kg'] * 1000:.4f}",
                    f"{s['annual_average_kg'] * 1000:.4f}",
                    f"{s['embodied_kg'] * 1000:.4f}",
                    s["location"] + (f" (placed by {s['placed_by']})" if s["placed_by"] else " (not placed)"),
                    s["scope"],
                    f"{s['cpu_count']} × {s['cpu_model']}"
                    + (f", {s['gpu_count']} × {s['gpu_model']}" if s["gpu_count"] else ""),
                ]
                for s in stages
            ],
        )
    )
    sections.append(
        '<h2 id="trackers">What was measured</h2><p>Each stage\'s energy is the sum of these trackers (one per '
        "executor, node or step; no node counted twice: records already covered by a machine-mode tracker of the "
        'same node are listed and not counted).</p><div id="trackers-table">'
        + _table(
            ["stage", "tracker", "node", "mode", "Wh", "counted"],
            [
                [
                    s["stage"],
                    t["stage"],
                    t["host"] or "unknown",
                    t["mode"],
                    f"{t['kwh'] * 1000:.4f}",
                    "yes" if t["counted"] else f"no: {t['why']}",
                ]
                for s in stages
                for t in tracker_rows(s)
            ],
        )
        + "</div>"
    )
    sections.append(
        bar_chart(
            "Energy per stage (Wh)",
            [
                (s["stage"], {"cpu": s["cpu_kwh"] * 1000, "gpu": s["gpu_kwh"] * 1000, "ram": s["ram_kwh"] * 1000})
                for s in stages
            ],
            "Wh",
            "chart-energy",
        )
    )
    sections.append(
        bar_chart(
            "Emissions per stage (g CO2e)",
            [(s["stage"], {"bar": s["emissions_kg"] * 1000}) for s in stages],
            "g",
            "chart-emissions",
        )
    )
    if statement.get("submission"):
        sub = statement["submission"]
        sections.append(f"<h2>Submission</h2><p>The run was {escape(sub['summary'])}</p>")
        sections.append(
            _table(
                ["region", "cluster (KFP API)", "best start", "expected g/kWh", "expected kg CO2e"],
                [
                    [o["region"], o["cluster"], o["start"], f"{o['mean_g_per_kwh']:.1f}", f"{o['expected_kg']:.4g}"]
                    for o in sub["options"]
                ],
            )
        )
    if statement["placements"]:
        sections.append("<h2>Placement</h2>")
        sections.append(
            _table(
                ["stage", "region", "start", "expected g/kWh", "basis", "source", "reason"],
                [
                    [
                        p["stage"],
                        p["chosen"]["region"],
                        p["chosen"]["start"],
                        f"{p['chosen']['mean_g_per_kwh']:.1f}",
                        p["basis"],
                        p["chosen"]["source"],
                        p["reason"],
                    ]
                    for p in statement["placements"]
                ],
            )
        )
    if statement["warnings"]:
        sections.append(
            "<h2>Warnings</h2><ul>"
            + "".join(f'<li class="warning">{escape(describe_warning(w))}</li>' for w in statement["warnings"])
            + "</ul>"
        )
    if statement["counterfactuals"]:
        totals: dict[str, float] = {}
        for row in statement["counterfactuals"]:
            totals[row["scenario"]] = totals.get(row["scenario"], 0.0) + row["emissions_kg"] * 1000
        sections.append("<h2>Counterfactuals</h2>")
        sections.append(
            bar_chart(
                "Placed stages under other placements (g CO2e)",
                [(k, {"bar": v}) for k, v in totals.items()],
                "g",
                "chart-counterfactuals",
            )
        )
        sections.append(
            _table(
                ["stage", "scenario", "region", "kWh", "g/kWh", "basis", "g CO2e"],
                [
                    [
                        r["stage"],
                        r["scenario"],
                        r["region"],
                        f"{r['energy_kwh']:.6f}",
                        f"{r['g_per_kwh']:.1f}",
                        r["basis"],
                        f"{r['emissions_kg'] * 1000:.4f}",
                    ]
                    for r in statement["counterfactuals"]
                ],
            )
        )
    sections.append("<h2>Mitigations</h2>")
    sections.append(
        _table(
            ["mitigation", "applied", "detail"],
            [[m["mitigation"], "yes" if m["applied"] else "no", m["detail"]] for m in statement["mitigations"]],
        )
    )
    sections.append("<h2>Costs: V(M) = S − C − E − O (CRFM)</h2>")
    sections.append(
        _table(
            ["term", "computation", "USD"],
            [
                [
                    "C energy",
                    f"{costs['energy_kwh']:.6f} kWh × ${costs['energy_usd_per_kwh']}/kWh",
                    usd(costs["C_energy_usd"]),
                ],
                [
                    "E carbon",
                    f"{costs['tonnes_co2e']:.4g} t × ${costs['social_cost_usd_per_t']}/t",
                    usd(costs["E_carbon_usd"]),
                ],
                [
                    "S social benefit",
                    "user input",
                    "not given" if costs["S_social_benefit_usd"] is None else f"{costs['S_social_benefit_usd']:.2f}",
                ],
                [
                    "O other costs",
                    "user input",
                    "not given" if costs["O_other_costs_usd"] is None else f"{costs['O_other_costs_usd']:.2f}",
                ],
                ["V", "S − C − E − O", "needs S and O" if costs["V_usd"] is None else usd(costs["V_usd"])],
            ],
        )
    )
    sections.append('<h2 id="social-cost">Social cost of carbon: sensitivity</h2>')
    sections.append(
        _table(
            ["value", "t CO2e × $/t", "E (USD)", "source"],
            [
                [r["label"], f"{r['tonnes_co2e']:.4g} t × ${r['usd_per_t']:g}/t", usd(r["E_usd"]), r["source"]]
                for r in statement["social_cost_sensitivity"]
            ],
        )
    )
    e = statement["embodied_assumptions"]
    sections.append(
        f'<h2 id="embodied">Embodied emissions</h2><p>{statement["total_embodied_kg"] * 1000:.4f} g CO2e of hardware '
        f"manufacturing, not in the operational total: {e['gpu_kg']:g} kg per GPU and {e['server_kg']:g} kg per server "
        f"over {e['lifetime_years']:g} years at {e['utilization']:.0%} utilization, charged for each stage's wall time "
        f"({escape(e['source'])}).</p>"
    )
    sections.append(
        bar_chart(
            "Operational vs embodied per stage (g CO2e)",
            [
                (s["stage"], {"operational": s["emissions_kg"] * 1000, "embodied": s["embodied_kg"] * 1000})
                for s in stages
            ],
            "g",
            "chart-embodied",
        )
    )
    if amort:
        sections.append(
            f'<h2 id="amortization">Amortization: per-use cost = pretrain/N + adapt</h2><p>Pretraining '
            f"{amort['pretrain_kg'] * 1000:.4f} g CO2e; one adaptation {amort['adapt_kg'] * 1000:.4f} g; one task model "
            f"from scratch {amort['scratch_task_kg'] * 1000:.4f} g ({escape(amort['scratch_basis'])}).</p>"
        )
        sections.append(
            _table(
                ["uses N", "foundation model g CO2e per use", "from scratch g CO2e per use"],
                [
                    [
                        str(r["uses"]),
                        f"{r['foundation_kg_per_use'] * 1000:.4f}",
                        f"{r['scratch_kg_per_use'] * 1000:.4f}",
                    ]
                    for r in amort["per_use"]
                ],
            )
        )
    sections.append(
        f"<h2>Compute</h2><p>{compute['total_training_flops']:.3e} training FLOPs against the EU 10^25 FLOP threshold "
        f"({escape(compute['source'])}).</p>"
    )
    sections.append(
        "<h2>In everyday terms</h2><ul>"
        + "".join(
            f"<li>{e['count']:.4g} {escape(e['label'])} <small>(source: {escape(e['source'])})</small></li>"
            for e in statement["equivalents"]
        )
        + "</ul>"
    )
    problems = statement.get("reconciliation_problems", [])
    sections.append(
        f'<p id="reconciliation">{"All numbers reconcile (kg = kWh × kg/kWh; $ = t × $/t)." if not problems else "Does not reconcile: " + escape("; ".join(problems))}</p>'
    )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}.figures{display:flex;gap:1em;flex-wrap:wrap}"
        ".figure{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}.label{font-size:12px;color:#555}.value{font-size:22px;font-weight:bold}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Carbon impact statement</title>'
        f"<style>{style}</style></head><body><h1>Carbon impact statement</h1>{''.join(sections)}</body></html>\n"
    )
