"""Carbon accounting: emissions at the intensity of the hours a stage ran (replayed provider responses), one
basis per comparison, grid mappings, typed records, tracker scope, embodied emissions, uncertainty and the
social-cost sensitivity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from components.carbon.attribution import attribute
from components.carbon.catalog import DEFAULT_CATALOG_PATH, Catalog, Region, load_catalog, parse_catalog
from components.carbon.costs import EmbodiedAssumptions, embodied_kg, social_cost_sensitivity, uncertainty
from components.carbon.placement import Constraints, Job, select_region
from components.carbon.providers import LBS_PER_MWH_TO_G_PER_KWH, make_provider, static_intensity
from components.carbon.records import EnergyRecord, Interval, PlacementDecision
from components.carbon.statement import build_statement, reconcile
from components.carbon.tracking import default_tracking_mode
from components.common.errors import GreenfmError
from tests import http_fake

FIXTURES = Path(__file__).parent / "fixtures" / "carbon"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IOWA = Region(
    name="us-central1",
    zone="gcp:us-central1",
    provider="gcp",
    electricitymaps_zone="FI",  # the replayed Electricity Maps answers are recorded for zone FI
    watttime_region="MISO_MASON_CITY",
    carbon_aware_location="centralus",
    pue=1.1,
)
BEARER = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.recorded-fixture-token"}


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


class Replay:
    """Recorded provider answers by path; `failing` paths answer 500, as an outage does."""

    def __init__(self):
        self.failing: set[str] = set()
        self.bodies: list[object] = []

    def __call__(self, method: str, path: str, query: dict, body: bytes, headers: dict):
        q = {k: v[0] for k, v in query.items()}
        if path in self.failing:
            return 500, {"error": "recorded outage"}
        if path == "/emissions/bylocations/best" and q.get("location") == "centralus":
            return 200, fixture("carbonaware_best_centralus.json")
        if path == "/emissions/forecasts/current" and q.get("location") == "centralus":
            return 200, fixture("carbonaware_forecast_centralus.json")
        if path == "/emissions/average-carbon-intensity/batch" and method == "POST":
            requests = json.loads(body)
            self.bodies.append(requests)
            if any(r["location"] != "centralus" for r in requests):
                return 400, {"error": "batch supports a single location"}
            return 200, fixture("carbonaware_average_batch.json")[: len(requests)]
        if path == "/v3/carbon-intensity/past-range" and q.get("zone") == "FI" and "start" in q and "end" in q:
            return 200, fixture("electricitymaps_past_range_FI.json")
        if path == "/v3/carbon-intensity/latest" and q.get("zone") == "FI":
            return 200, fixture("electricitymaps_latest_FI.json")
        if path == "/login":
            return 200, fixture("watttime_login.json")
        if path == "/v3/historical" and q.get("region") == "MISO_MASON_CITY" and q.get("signal_type") == "co2_moer":
            return 200, fixture("watttime_historical.json")
        return 404, {"error": f"no route {method} {path}"}


@pytest.fixture()
def server():
    replay = Replay()
    http, url = http_fake.serve(replay)
    yield replay, url
    http.shutdown()


def stage_record(stage: str = "adapt", kwh: float = 0.3, location: str = "gcp:us-central1") -> EnergyRecord:
    """20 min at a third of the energy, then 40 min at two thirds; codecarbon's annual figure at 430 g/kWh."""
    return EnergyRecord(
        stage=stage,
        started_at="2026-03-01T12:00:00+00:00",
        ended_at="2026-03-01T13:00:00+00:00",
        wall_seconds=3600.0,
        failed=False,
        energy_kwh=kwh,
        cpu_kwh=kwh * 0.2,
        gpu_kwh=kwh * 0.7,
        ram_kwh=kwh * 0.1,
        emissions_kg=kwh * 430 / 1000,
        intensity_g_per_kwh=430.0,
        location=location,
        country="USA",
        pue=1.1,
        cpu_model="Test CPU",
        cpu_count=8,
        gpu_model="NVIDIA H100 80GB HBM3",
        gpu_count=1,
        cpu_power_method="intel_rapl",
        tracking_mode="machine",
        codecarbon_version="3.3.2",
        intervals=[
            Interval("2026-03-01T12:00:00+00:00", "2026-03-01T12:20:00+00:00", kwh / 3),
            Interval("2026-03-01T12:20:00+00:00", "2026-03-01T13:00:00+00:00", kwh * 2 / 3),
        ],
    )


def placed(provider: str, url: str, region: Region = IOWA) -> PlacementDecision:
    decision = select_region(
        Catalog([region], region.name), make_provider(provider, url), Constraints(), Job("adapt", 0.3, 1.0), NOW
    )
    decision.provider, decision.provider_url = provider, url
    return PlacementDecision.from_json(decision.dumps())  # as the statement step receives it


# Item 1: the intensity of the hours that ran, from the provider placement used.


def test_carbon_aware_sdk_average_of_the_measured_intervals(server):
    replay, url = server
    decision = placed("carbon-aware-sdk", url)
    result = attribute(stage_record(), decision)
    assert result.method == "measured" and result.basis == "marginal"
    assert result.emissions_kg == pytest.approx(0.1 * 400 / 1000 + 0.2 * 100 / 1000)
    assert [r["startTime"][:16] for r in replay.bodies[0]] == ["2026-03-01T12:00", "2026-03-01T12:20"]


def test_history_failure_uses_the_forecast_placement_used(server):
    replay, url = server
    decision = placed("carbon-aware-sdk", url)
    replay.failing = {"/emissions/average-carbon-intensity/batch"}
    result = attribute(stage_record(), decision)
    # forecast: 300 g until 12:30, 240 g after; interval 1 = 300, interval 2 = (10 min × 300 + 30 min × 240) / 40
    assert result.method == "forecast" and "history failed" in result.warnings[0]
    assert result.emissions_kg == pytest.approx(0.1 * 300 / 1000 + 0.2 * (10 * 300 + 30 * 240) / 40 / 1000)


def test_electricitymaps_past_range_and_watttime_historical(server, monkeypatch):
    _, url = server
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", "em-token")
    em = placed("electricitymaps", url + "/v3")
    result = attribute(stage_record(), em)
    # hourly points: 60 g for 12:00-13:00 (both intervals inside it)
    assert result.method == "measured" and result.basis == "average"
    assert result.emissions_kg == pytest.approx(0.3 * 60 / 1000)
    wt = PlacementDecision.from_json({**em.to_json(), "provider": "watttime", "provider_url": url, "basis": "marginal"})
    monkeypatch.setenv("WATTTIME_USERNAME", "user")
    monkeypatch.setenv("WATTTIME_PASSWORD", "pass")
    result = attribute(stage_record(), wt)
    lbs = LBS_PER_MWH_TO_G_PER_KWH
    assert result.method == "measured"
    assert result.emissions_kg == pytest.approx((0.1 * 1000 * lbs + 0.2 * 500 * lbs) / 1000)


def test_static_placement_is_the_labelled_annual_average():
    decision = select_region(load_catalog(), make_provider("static"), Constraints(), Job("adapt", 0.3, 1.0), NOW)
    record = stage_record(location=load_catalog().get(decision.chosen.region).location().describe())
    result = attribute(record, decision)
    assert result.method == "annual-average" and result.emissions_kg == pytest.approx(record.emissions_kg)
    assert "annual average" in result.source


def test_statement_reports_measured_hours_and_keeps_the_annual_figure(server):
    _, url = server
    decision = placed("carbon-aware-sdk", url)
    from components.carbon.statement import StatementInputs

    statement = build_statement([stage_record()], None, StatementInputs(placements=[decision]))
    stage = statement["stages"][0]
    assert stage["intensity_method"] == "measured" and stage["intensity_basis"] == "marginal"
    assert stage["emissions_kg"] == pytest.approx(0.06) and stage["annual_average_kg"] == pytest.approx(0.129)
    assert stage["placed_by"] == "adapt" and reconcile(statement) == []
    statement["stages"][0]["intervals"][1]["kg"] *= 2
    assert any("stage adapt" in p for p in reconcile(statement))


# Item 2: one basis per comparison, fail closed, keep /latest when only the forecast fails.


def test_partial_outage_falls_back_for_every_region_together(server, monkeypatch):
    _, url = server
    monkeypatch.setenv("ELECTRICITYMAPS_API_TOKEN", "em-token")
    broken = Region(name="elsewhere", zone="gcp:europe-north1", electricitymaps_zone="NOWHERE", pue=1.1)
    catalog = Catalog([IOWA, broken], IOWA.name)
    decision = select_region(catalog, make_provider("electricitymaps", url + "/v3"), Constraints(), Job("x", 1, 1), NOW)
    assert all(s["fallback"] and "annual average" in s["source"] for s in decision.signals)
    assert decision.basis == "average"
    assert any("one basis" in w["error"] for w in decision.warnings)
    # europe-north1's annual 46 g wins on like-for-like data, not against a live value
    assert decision.chosen.region == "elsewhere"
    with pytest.raises(GreenfmError, match=r"elsewhere \(fail-closed\)"):
        select_region(catalog, make_provider("electricitymaps", url + "/v3"), Constraints(), Job("x", 1, 1), NOW, True)


def test_every_region_live_keeps_the_live_basis(server):
    _, url = server
    decision = placed("carbon-aware-sdk", url)
    assert decision.basis == "marginal" and decision.chosen.basis == "marginal"
    assert not any(s["fallback"] for s in decision.signals)


def test_carbon_aware_basis_is_configurable():
    assert make_provider("carbon-aware-sdk/average", "http://127.0.0.1:9", fallback=False).basis == "average"
    with pytest.raises(GreenfmError, match="carbon-aware-sdk/average"):
        make_provider("watttime/average")


# Item 3: grids.


def test_shipped_catalog_maps_each_site_to_its_own_grid():
    catalog = load_catalog()
    assert catalog.get("us-central1").watttime_region == "MISO_MASON_CITY"  # Iowa, not Indianapolis
    assert catalog.get("us-central1").carbon_aware_location == "centralus"  # Des Moines, Iowa
    assert catalog.get("us-west1").carbon_aware_location != "westus2"  # Quincy, WA is not The Dalles, OR
    assert catalog.get("europe-north1").carbon_aware_location != "northeurope"  # Dublin is not Hamina
    assert catalog.get("onprem-se1").carbon_aware_location != "swedencentral"  # Gävle is SE3, not SE1
    named = json.loads((DEFAULT_CATALOG_PATH.parent / "carbon_aware_locations.json").read_text())
    custom = [r.carbon_aware_location for r in catalog.regions if r.carbon_aware_location.startswith("greenfm-")]
    assert custom and all(name in named and named[name]["Latitude"] for name in custom)
    assert "#" in DEFAULT_CATALOG_PATH.read_text().split("- name: us-west1")[0].splitlines()[-2]  # sourced


@pytest.mark.parametrize("zone", ["USA/XX", "CAN/QC", "SWE/SE9", "IRL/dublin"])
def test_unknown_subregion_is_rejected_with_the_valid_ones(zone):
    with pytest.raises(GreenfmError, match=f"r1: unknown subregion {zone}") as error:
        parse_catalog(yaml.safe_dump({"regions": [{"name": "r1", "zone": zone}]}))
    if zone.startswith("SWE"):
        assert "SE1, SE2, SE3, SE4" in str(error.value)


def test_postal_code_resolves_to_the_state_rate():
    iowa = parse_catalog("regions: [{name: r, zone: USA/IA}]").get("r")
    g, source = static_intensity(iowa)
    assert iowa.location().region == "iowa" and "eGRID2023" in source
    assert g == pytest.approx(634.156 * LBS_PER_MWH_TO_G_PER_KWH, rel=1e-6)  # eGRID2023 IA, not the US average


def test_static_sources_state_their_year():
    assert "Our World in Data 2023" in static_intensity(Region(name="ie", zone="IRL"))[1]
    assert "ENTSO-E 2025" in static_intensity(Region(name="se", zone="SWE/SE3"))[1]


# Typed records.


def test_records_round_trip_and_reject_malformed_input():
    record = stage_record()
    assert EnergyRecord.from_json(record.dumps()) == record
    data = record.to_json()
    with pytest.raises(GreenfmError, match="adapt energy record: missing key"):
        EnergyRecord.from_json({k: v for k, v in data.items() if k != "energy_kwh"}, "adapt energy record")
    with pytest.raises(GreenfmError, match=r"\(adapt\): energy_kwh must be a number"):
        EnergyRecord.from_json({**data, "energy_kwh": -1.0})
    with pytest.raises(GreenfmError, match="unknown key"):
        EnergyRecord.from_json({**data, "emmisions": 1})
    with pytest.raises(GreenfmError, match="not valid JSON"):
        EnergyRecord.from_json("{")


# Item 4: scope of measurement.


def test_process_mode_in_a_pod(monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert default_tracking_mode() == "machine"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert default_tracking_mode() == "process"


# Item 7: embodied, uncertainty, social cost.


def test_embodied_is_the_life_share_of_the_hardware():
    one_hour = embodied_kg(3600.0, servers=1, gpus=8, a=EmbodiedAssumptions())
    assert one_hour == pytest.approx((8 * 150 + 2500) / (6 * 8766 * 0.85))


def test_uncertainty_follows_the_method():
    rapl = uncertainty(1.0, 0.0, 0.0, "intel_rapl", "measured", kg=1.0)
    guessed = uncertainty(1.0, 0.0, 0.0, "cpu_load", "annual-average", kg=1.0)
    assert rapl["relative"] == pytest.approx((0.1**2 + 0.1**2) ** 0.5)
    assert guessed["low_kg"] < rapl["low_kg"] < 1.0 < rapl["high_kg"] < guessed["high_kg"]


def test_social_cost_sensitivity_lines():
    rows = {r["usd_per_t"]: r for r in social_cost_sensitivity(2000.0, 105.0)}
    assert set(rows) == {105.0, 190.0} and rows[190.0]["E_usd"] == pytest.approx(380.0)
    assert "EPA 2023" in rows[190.0]["source"] and "CRFM" in rows[105.0]["label"]
    assert 51.0 in {r["usd_per_t"] for r in social_cost_sensitivity(2000.0, 51.0)}


# Item 6: model card compute and metadata.


def test_gpu_hours_count_named_devices_and_every_process():
    from components.evaluate.model_card import gpu_hours

    assert gpu_hours("NVIDIA H100 80GB HBM3", 3600.0, processes=8) == pytest.approx(8.0)
    assert gpu_hours("cuda:0", 1800.0) == pytest.approx(0.5)
    assert gpu_hours("cpu", 3600.0, processes=4) == 0.0


def test_model_card_co2_eq_emissions_metadata():
    from components.evaluate.model_card import co2_eq_emissions

    lines = co2_eq_emissions(stage_record("pretrain").to_json(), "pre-training", "8 x NVIDIA H100 80GB HBM3")
    assert lines[0] == "---" and lines[-2] == "---"
    meta = yaml.safe_load("\n".join(lines[1:-2]))["co2_eq_emissions"]
    assert meta["emissions"] == pytest.approx(0.3 * 430)  # grams
    assert meta["training_type"] == "pre-training" and meta["geographical_location"] == "gcp:us-central1"
    assert meta["hardware_used"] == "8 x NVIDIA H100 80GB HBM3" and "codecarbon 3.3.2" in meta["source"]


# Item 7: history across runs.


def test_carbon_history_table_and_plot(tmp_path):
    from typer.testing import CliRunner

    from components.carbon.statement import write_statement
    from pipelines.cli import app

    for i, (run, kwh) in enumerate([("20260301T120000Z-aaaa", 0.3), ("20260302T120000Z-aaaa", 0.15)]):
        write_statement(
            [stage_record("pretrain", kwh), stage_record("adapt", kwh / 10)], tmp_path / run, {"outcome": f"r{i}"}
        )
    (tmp_path / "20260303T120000Z-bad").mkdir()
    (tmp_path / "20260303T120000Z-bad" / "carbon_statement.json").write_text("{not json")
    result = CliRunner().invoke(app, ["carbon", "history", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "20260301T120000Z-aaaa" in result.output and "300.000 / 129.000" in result.output  # Wh / g
    assert "150.000 / 64.500" in result.output and "skipped" in result.output and "bad" in result.output
    svg = (tmp_path / "carbon_history.svg").read_text()
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4
    data = json.loads((tmp_path / "carbon_history.json").read_text())
    assert [r["total_kg"] for r in data["runs"]] == pytest.approx([0.33 * 0.43, 0.165 * 0.43]) and len(
        data["skipped"]
    ) == 1
    empty = CliRunner().invoke(app, ["carbon", "history", str(tmp_path / "20260303T120000Z-bad")])
    assert empty.exit_code == 2
