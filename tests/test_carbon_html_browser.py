"""The HTML statement in a real headless browser (Debian chromium): the key figures and plots are laid out and
visible, with the values the statement computed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from components.carbon.costs import usd
from components.carbon.statement import STATEMENT_HTML, write_statement
from tests.test_carbon_statement import run_inputs  # noqa: F401  (the fixture)

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
]
CHARTS = ["chart-energy", "chart-emissions", "chart-counterfactuals", "chart-embodied"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (apt-get install chromium; .ci/run installs it)")
def test_statement_renders_in_headless_chromium(tmp_path, run_inputs):  # noqa: F811
    records, inputs = run_inputs
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
    assert seen["reconciliation"]["text"].startswith("All numbers reconcile")
    # One bar per stage and energy component with energy in it; one per counterfactual scenario.
    assert seen["chart-emissions"]["bars"] == len(records)
    assert seen["chart-energy"]["bars"] == sum(
        1 for r in records for k in ("cpu_kwh", "gpu_kwh", "ram_kwh") if getattr(r, k) > 0
    )
    assert seen["chart-counterfactuals"]["bars"] == len({r["scenario"] for r in statement["counterfactuals"]})
