"""The HTML statement in a real headless browser (Debian chromium): the key figures and plots are laid out and
visible, with the values the statement computed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from components.carbon.costs import usd
from components.carbon.records import EnergyRecord
from components.carbon.spark_executors import stage_record
from components.carbon.statement import STATEMENT_HTML, reconcile, write_statement
from components.carbon.tracking import aggregate_ranks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the page only: measures each element as laid out by the browser and writes the result
# into the DOM, which --dump-dom returns. The statement itself has no scripts.
PROBE = """<script>
const ids = %s;
const out = {};
for (const id of ids) {
  const el = document.getElementById(id);
  if (!el) { out[id] = null; continue; }
  const r = el.getBoundingClientRect(), st = getComputedStyle(el);
  out[id] = {text: el.textContent, w: r.width, h: r.height,
             visible: st.display !== 'none' && st.visibility !== 'hidden' && st.opacity !== '0',
             bars: el.tagName.toLowerCase() === 'svg'
               ? Array.from(el.querySelectorAll('rect')).filter(b => b.querySelector('title') && b.getBoundingClientRect().width > 0).length : null};
}
const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""

FIGURES = [
    "total-energy",
    "total-emissions",
    "energy-cost",
    "carbon-cost",
    "eu-fraction",
    "break-even",
    "total-range",
    "total-embodied",
    "social-cost",
    "embodied",
    "amortization",
    "reconciliation",
    "trackers",
    "trackers-table",
]
CHARTS = ["chart-energy", "chart-emissions", "chart-counterfactuals", "chart-embodied"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium; .ci/run installs it)")
def summed_trackers(records: list[EnergyRecord]) -> list[EnergyRecord]:
    """curate as its step (the Spark driver, half its energy) + two executor trackers (a quarter each); pretrain
    as two node trackers (half each) and the launcher pod on node gpu-a (covered by that node's record)."""

    def part(record: EnergyRecord, share: float, stage: str, host: str, mode: str, notes: dict | None = None):
        data = record.to_json()
        for key in ("energy_kwh", "cpu_kwh", "gpu_kwh", "ram_kwh", "emissions_kg"):
            data[key] *= share
        data["intervals"] = [{**i, "kwh": i["kwh"] * share} for i in data["intervals"]]
        return EnergyRecord.from_json(
            {**data, "stage": stage, "host": host, "tracking_mode": mode, "notes": notes or {}}
        )

    by_stage = {r.stage: r for r in records}
    curate, pretrain = by_stage["curate"], by_stage["pretrain"]
    step = part(curate, 0.5, "curate", "cpu-a", "process", curate.notes)
    executors = [
        part(curate, 0.25, f"curate-executor-{i}", "cpu-b", "process", {"executor_id": str(i), "final": True})
        for i in range(2)
    ]
    nodes = [part(pretrain, 0.5, f"pretrain-node{i}", f"gpu-{'ab'[i]}", "machine") for i in range(2)]
    summed = aggregate_ranks([*nodes, part(pretrain, 0.01, "pretrain", "gpu-a", "process")])
    summed.stage = "pretrain"
    summed_curate = stage_record(step, executors, 2)
    return [summed_curate if r.stage == "curate" else summed if r.stage == "pretrain" else r for r in records]


def test_statement_renders_in_headless_chromium(tmp_path, run_inputs):
    records, inputs = run_inputs
    records = summed_trackers(records)
    statement = write_statement(records, tmp_path / "statement", {"outcome": "completed"}, inputs)
    page = tmp_path / "probe.html"
    html = (tmp_path / "statement" / STATEMENT_HTML).read_text()
    page.write_text(html.replace("</body>", PROBE % json.dumps(FIGURES + CHARTS) + "</body>"))
    profile = tmp_path / "profile"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--window-size=1280,2000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"chromium did not render the page (rc {result.returncode}): {result.stderr[-2000:]}"
    seen = json.loads(
        match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    )
    for element in FIGURES + CHARTS:
        box = seen[element]
        assert box is not None, f"{element} missing"
        assert box["visible"] and box["w"] > 0 and box["h"] > 0, f"{element} not visible: {box}"
    # The figures show the statement's own numbers.
    assert seen["total-emissions"]["text"] == f"{statement['total_emissions_kg'] * 1000:.3f} g CO2e"
    assert seen["total-energy"]["text"] == f"{statement['total_energy_kwh'] * 1000:.3f} Wh"
    assert seen["carbon-cost"]["text"] == usd(statement["costs"]["E_carbon_usd"])
    assert seen["energy-cost"]["text"] == usd(statement["costs"]["C_energy_usd"])
    n = statement["amortization"]["break_even_uses"]
    assert seen["break-even"]["text"] == ("never" if n is None else f"{n:.2f}")
    assert seen["total-embodied"]["text"] == f"{statement['total_embodied_kg'] * 1000:.4f} g CO2e"
    low, high = statement["total_low_kg"] * 1000, statement["total_high_kg"] * 1000
    assert seen["total-range"]["text"] == f"{low:.3f}–{high:.3f} g" and low < high
    assert "US EPA 2023 central value" in html and "$190/t" in html and "$105/t" in html
    # Operational and embodied bars for every stage.
    assert seen["chart-embodied"]["bars"] == 2 * len(records)
    assert seen["reconciliation"]["text"].startswith("All numbers reconcile") and reconcile(statement) == []
    # What was measured: every tracker of a summed stage, and the launcher left out as already counted.
    trackers = seen["trackers-table"]["text"]
    assert all(f"curate-executor-{i}" in trackers for i in range(2)) and "pretrain-node1gpu-b" in trackers
    assert "no: node gpu-a already counted by pretrain-node0's machine-mode tracker" in trackers
    # One bar per stage and energy component with energy in it; one per counterfactual scenario.
    assert seen["chart-emissions"]["bars"] == len(records)
    assert seen["chart-energy"]["bars"] == sum(
        1 for r in records for k in ("cpu_kwh", "gpu_kwh", "ram_kwh") if getattr(r, k) > 0
    )
    assert seen["chart-counterfactuals"]["bars"] == len({r["scenario"] for r in statement["counterfactuals"]})
