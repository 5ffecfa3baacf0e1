"""Intensity providers against a local HTTP server replaying recorded responses (no network)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from components.carbon.catalog import Region, load_catalog
from components.carbon.providers import (
    LBS_PER_MWH_TO_G_PER_KWH,
    CarbonAwareProvider,
    ElectricityMapsProvider,
    StaticProvider,
    WattTimeProvider,
    WithFallback,
    make_provider,
    secret,
    static_intensity,
)

FIXTURES = Path(__file__).parent / "fixtures" / "carbon"
NOW = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
REGION = Region(
    name="europe-north1",
    zone="gcp:europe-north1",
    provider="gcp",
    electricitymaps_zone="FI",
    watttime_region="CAISO_NORTH",
    carbon_aware_location="westus",
    pue=1.1,
)

# path -> (fixture, required headers, required query)
ROUTES = {
    "/v3/carbon-intensity/latest": ("electricitymaps_latest_FI.json", {"auth-token": "em-token"}, {"zone": "FI"}),
    "/v3/carbon-intensity/forecast": ("electricitymaps_forecast_FI.json", {"auth-token": "em-token"}, {"zone": "FI"}),
    "/login": ("watttime_login.json", {"Authorization": "Basic dXNlcjpwYXNz"}, {}),
    "/v3/forecast": (
        "watttime_forecast.json",
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.recorded-fixture-token"},
        {"region": "CAISO_NORTH", "signal_type": "co2_moer"},
    ),
    "/v3/signal-index": (
        "watttime_signal_index.json",
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.recorded-fixture-token"},
        {"region": "CAISO_NORTH"},
    ),
    "/emissions/bylocations/best": ("carbonaware_best.json", {}, {"location": "westus"}),
    "/emissions/forecasts/current": ("carbonaware_forecast.json", {}, {"location": "westus"}),
}


class Replay(BaseHTTPRequestHandler):
    failing: ClassVar[set[str]] = set()
    seen: ClassVar[list[str]] = []

    def do_GET(self):
        url = urlparse(self.path)
        type(self).seen.append(url.path)
        route = ROUTES.get(url.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path in self.failing:
            return self._send(500, {"error": "recorded outage"})
        if route is None:
            return self._send(404, {"error": "no such route"})
        fixture, headers, params = route
        if any(self.headers.get(k) != v for k, v in headers.items()):
            return self._send(401, {"error": "bad credentials"})
        if any(query.get(k) != v for k, v in params.items()):
            return self._send(400, {"error": f"bad query {query}"})
        self._send(200, json.loads((FIXTURES / fixture).read_text()))

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture()
def server():
    Replay.failing, Replay.seen = set(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_electricity_maps_latest_and_forecast(server):
    signal = ElectricityMapsProvider(f"{server}/v3", token="em-token").signal(REGION, NOW, horizon_hours=6)
    recorded = json.loads((FIXTURES / "electricitymaps_forecast_FI.json").read_text())["forecast"]
    assert signal.g_per_kwh == 95.0 and "Electricity Maps zone FI" in signal.source
    # Horizon of 6 h from NOW keeps the first six hourly points, each one hour long.
    assert [p.g_per_kwh for p in signal.forecast] == [float(p["carbonIntensity"]) for p in recorded[:6]]
    assert all(p.minutes == 60 for p in signal.forecast)
    assert signal.forecast[0].start == NOW and not signal.warnings


def test_watttime_login_forecast_and_signal_index(server):
    signal = WattTimeProvider(server, username="user", password="pass").signal(REGION, NOW, horizon_hours=0.5)
    assert Replay.seen[:3] == ["/login", "/v3/forecast", "/v3/signal-index"]
    assert signal.g_per_kwh == pytest.approx(900 * LBS_PER_MWH_TO_G_PER_KWH)  # lbs/MWh -> g/kWh
    assert "percentile 63.0" in signal.source
    assert len(signal.forecast) == 6 and all(p.minutes == 5 for p in signal.forecast)  # 30 min of 5-min points
    assert signal.forecast[-1].g_per_kwh == pytest.approx(650 * LBS_PER_MWH_TO_G_PER_KWH)


def test_carbon_aware_sdk_best_and_forecast(server):
    signal = CarbonAwareProvider(server, api_key="").signal(REGION, NOW, horizon_hours=4)
    assert signal.g_per_kwh == 312.5
    assert [p.g_per_kwh for p in signal.forecast][:3] == [312.5, 300.1, 280.0]
    assert len(signal.forecast) == 8 and all(p.minutes == 30 for p in signal.forecast)
    assert min(signal.forecast, key=lambda p: p.g_per_kwh).start == NOW + timedelta(hours=2)


def test_bad_credentials_fall_back_to_static_with_a_warning(server):
    signal = WithFallback(ElectricityMapsProvider(f"{server}/v3", token="wrong")).signal(REGION, NOW, 6)
    assert signal.g_per_kwh == static_intensity(REGION)[0] == 46.0
    assert signal.forecast == []
    (warning,) = signal.warnings
    assert (
        warning["provider"] == "electricitymaps" and "401" in warning["error"] and "impact.csv" in warning["fallback"]
    )


def test_forecast_failure_keeps_the_good_current_value(server):
    """Only the forecast call fails: the live current value stays (same basis as the other regions), no time
    shift, and the warning says so."""
    Replay.failing = {"/emissions/forecasts/current"}
    signal = WithFallback(CarbonAwareProvider(server, api_key="")).signal(REGION, NOW, 4)
    assert signal.g_per_kwh == 312.5 and not signal.fallback and signal.basis == "marginal"
    assert signal.forecast == [] and "forecast" in signal.warnings[0]["error"] and "500" in signal.warnings[0]["error"]


def test_current_value_failure_falls_back(server):
    Replay.failing = {"/emissions/bylocations/best"}
    signal = WithFallback(CarbonAwareProvider(server, api_key="")).signal(REGION, NOW, 4)
    assert (
        signal.g_per_kwh == 46.0
        and signal.fallback
        and signal.basis == "average"
        and "500" in signal.warnings[0]["error"]
    )


def test_unreachable_provider_falls_back(server):
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    signal = make_provider("watttime", dead).signal(REGION, NOW, 1)
    assert signal.g_per_kwh == 46.0 and signal.warnings[0]["provider"] == "watttime"


def test_region_without_provider_zone_falls_back():
    bare = Region(name="x", zone="FRA")
    signal = make_provider("electricitymaps", "http://127.0.0.1:9").signal(bare, NOW, 1)
    assert "electricitymaps_zone" in signal.warnings[0]["error"]


def test_static_provider_covers_every_bundled_table():
    """GCP table, country average, US state, Canadian province and Nordic zone, from codecarbon's own data."""
    cases = {
        "gcp:europe-north1": (46.0, "impact.csv"),
        "USA/california": (None, "eGRID"),
        "CAN/quebec": (None, "provincial"),
        "SWE/SE1": (25.9, "Nordic"),
        "FRA": (None, "country energy mix"),
    }
    for zone, (expected, source_word) in cases.items():
        g, source = static_intensity(Region(name=zone, zone=zone))
        assert source_word in source, (zone, source)
        assert g > 0 and (expected is None or g == pytest.approx(expected))
    usa = json.loads(
        (Path(__import__("codecarbon").__file__).parent / "data/private_infra/2023/usa_emissions.json").read_text()
    )
    g, _ = static_intensity(Region(name="ca", zone="USA/california"))
    assert g == pytest.approx(usa["california"]["emissions"] * LBS_PER_MWH_TO_G_PER_KWH, rel=1e-3)


@pytest.mark.parametrize("name", ["europe-north1", "onprem-se1"])
def test_static_matches_what_the_tracker_measures(name):
    """Placement and measurement use the same intensity: codecarbon's tracker at region.location()."""
    import time

    from components.carbon.tracking import measure

    region = load_catalog().get(name)
    _, record = measure("probe", region.location(), lambda: time.sleep(1.2))
    assert record.energy_kwh > 0 and record.pue == region.pue
    assert record.intensity_g_per_kwh == pytest.approx(StaticProvider().signal(region, NOW).g_per_kwh, rel=1e-6)


def test_secret_from_env_then_mounted_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GREENFM_CARBON_SECRET_DIR", str(tmp_path))
    monkeypatch.delenv("WATTTIME_USERNAME", raising=False)
    assert secret("WATTTIME_USERNAME") == ""
    (tmp_path / "watttime-username").write_text("from-secret\n")
    assert secret("WATTTIME_USERNAME") == "from-secret"
    monkeypatch.setenv("WATTTIME_USERNAME", "from-env")
    assert secret("WATTTIME_USERNAME") == "from-env"
