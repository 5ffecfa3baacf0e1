"""Grid carbon intensity behind one interface: static (codecarbon's bundled data), Electricity Maps, WattTime and
the Green Software Foundation carbon-aware-sdk Web API.

Every provider answers `signal(region, now, horizon_hours)` with the current intensity and, where the source
has one, a forecast. Live providers are wrapped in `WithFallback`: an HTTP or parsing failure falls back to the
static value and records a warning that the carbon statement lists, so a run never stops for a missing API.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from components.carbon.catalog import Region
from components.common.errors import GreenfmError

LBS_PER_MWH_TO_G_PER_KWH = 0.45359237  # 1 lb = 453.59237 g; 1 MWh = 1000 kWh
# Credentials: environment variable -> key in the Kubernetes Secret greenfm-carbon-tokens (all optional).
SECRET_NAME = "greenfm-carbon-tokens"
SECRET_KEYS = {
    "ELECTRICITYMAPS_API_TOKEN": "electricitymaps-api-token",
    "WATTTIME_USERNAME": "watttime-username",
    "WATTTIME_PASSWORD": "watttime-password",
    "CARBON_AWARE_API_KEY": "carbon-aware-api-key",
}
SECRET_DIR_ENV = "GREENFM_CARBON_SECRET_DIR"  # where that Secret is mounted as files, if it is
DEFAULT_SECRET_DIR = f"/var/run/secrets/{SECRET_NAME}"
HTTP_TIMEOUT_S = 10.0


@dataclass
class ForecastPoint:
    start: datetime
    minutes: float
    g_per_kwh: float

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


@dataclass
class Signal:
    """What a provider knows about one region's grid: now, and (maybe) ahead."""

    region: str
    g_per_kwh: float  # current intensity
    source: str  # provider and dataset, in words
    at: datetime
    forecast: list[ForecastPoint] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)  # fallbacks taken for this region

    def to_json(self) -> dict:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["forecast"] = [
            {"start": p.start.isoformat(), "minutes": p.minutes, "g_per_kwh": p.g_per_kwh} for p in self.forecast
        ]
        return data


class IntensityProvider(Protocol):
    name: str

    def signal(self, region: Region, now: datetime, horizon_hours: float) -> Signal: ...


def secret(key: str) -> str:
    """A credential from the environment, else from a mounted Kubernetes Secret file; '' when neither has it."""
    value = os.environ.get(key, "")
    if value:
        return value
    path = Path(os.environ.get(SECRET_DIR_ENV, DEFAULT_SECRET_DIR)) / SECRET_KEYS[key]
    return path.read_text().strip() if path.is_file() else ""


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _minutes(duration) -> float:
    """carbon-aware-sdk durations come as minutes (forecasts) or as a TimeSpan string "hh:mm:ss"."""
    if isinstance(duration, (int, float)):
        return float(duration)
    hours, minutes, seconds = (float(x) for x in str(duration).split(":")[-3:])
    return hours * 60 + minutes + seconds / 60


def _get_json(url: str, headers: dict[str, str] | None = None) -> object:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read().decode("utf-8"))


def _within(points: list[ForecastPoint], now: datetime, horizon_hours: float) -> list[ForecastPoint]:
    """Forecast points that overlap [now, now + horizon]; past points say nothing about when to start."""
    end = now + timedelta(hours=horizon_hours)
    return sorted((p for p in points if p.end > now and p.start < end), key=lambda p: p.start)


class StaticProvider:
    """codecarbon's bundled annual averages, computed by codecarbon itself so placement and measurement agree."""

    name = "static"

    def signal(self, region: Region, now: datetime, horizon_hours: float = 0.0) -> Signal:
        g, source = static_intensity(region)
        return Signal(region.name, g, source, now)


def static_intensity(region: Region) -> tuple[float, str]:
    from codecarbon.core.emissions import Emissions
    from codecarbon.core.units import Energy
    from codecarbon.external.geography import CloudMetadata, GeoMetadata
    from codecarbon.input import DataSource

    location = region.location()
    emissions = Emissions(DataSource())
    one_kwh = Energy.from_energy(kWh=1.0)
    geo = GeoMetadata(country_iso_code=location.country_iso_code, region=location.region or None)
    if location.cloud_provider:
        kg = emissions.get_cloud_emissions(one_kwh, CloudMetadata(location.cloud_provider, location.cloud_region), geo)
    else:
        kg = emissions.get_private_infra_emissions(one_kwh, geo)
    source = static_source(location.country_iso_code, location.region, location.cloud_provider)
    return kg * 1000.0, source


def static_source(country_iso_code: str, region: str, cloud_provider: str) -> str:
    """Which bundled codecarbon table gives the intensity for a location (mirrors codecarbon's lookup order)."""
    if cloud_provider == "gcp":
        return "codecarbon bundled GCP region table (impact.csv), annual average"
    if cloud_provider:
        return f"{cloud_provider.upper()} region not in codecarbon's bundled table: country annual average"
    country = country_iso_code.upper()
    if region and country in ("SWE", "NOR", "FIN"):
        return "codecarbon bundled Nordic bidding-zone factors (nordic_emissions.json)"
    if region and country == "USA":
        return "codecarbon bundled EPA eGRID 2023 state rates (usa_emissions.json)"
    if region and country == "CAN":
        return "codecarbon bundled Canadian provincial energy mix (canada_energy_mix.json)"
    return "codecarbon bundled country energy mix (global_energy_mix.json), annual average"


class ElectricityMapsProvider:
    """Electricity Maps v3: /carbon-intensity/latest and /carbon-intensity/forecast, header auth-token."""

    name = "electricitymaps"

    def __init__(self, base_url: str = "https://api.electricitymap.org/v3", token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = secret("ELECTRICITYMAPS_API_TOKEN") if token is None else token

    def signal(self, region: Region, now: datetime, horizon_hours: float) -> Signal:
        if not region.electricitymaps_zone:
            raise ValueError(f"{region.name} has no electricitymaps_zone in the catalog")
        zone = urllib.parse.quote(region.electricitymaps_zone)
        headers = {"auth-token": self.token}
        latest = _get_json(f"{self.base_url}/carbon-intensity/latest?zone={zone}", headers)
        forecast: list[ForecastPoint] = []
        if horizon_hours > 0:
            body = _get_json(f"{self.base_url}/carbon-intensity/forecast?zone={zone}", headers)
            times = [_parse_time(p["datetime"]) for p in body["forecast"]]
            # Points are hourly in practice; take each point's length from the spacing (last one: 60 min).
            steps = [(b - a).total_seconds() / 60 for a, b in pairwise(times)] + [60.0]
            forecast = [
                ForecastPoint(t, m, float(p["carbonIntensity"]))
                for t, m, p in zip(times, steps, body["forecast"], strict=True)
            ]
        kind = latest.get("emissionFactorType", "lifecycle")
        return Signal(
            region.name,
            float(latest["carbonIntensity"]),
            f"Electricity Maps zone {region.electricitymaps_zone} ({kind}, average)",
            _parse_time(latest["datetime"]),
            _within(forecast, now, horizon_hours),
        )


class WattTimeProvider:
    """WattTime v3: /login for a bearer token, /v3/forecast (co2_moer, lbs/MWh) and /v3/signal-index."""

    name = "watttime"

    def __init__(
        self, base_url: str = "https://api.watttime.org", username: str | None = None, password: str | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self.username = secret("WATTTIME_USERNAME") if username is None else username
        self.password = secret("WATTTIME_PASSWORD") if password is None else password
        self._token = ""

    def _login(self) -> str:
        if not self._token:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            self._token = _get_json(f"{self.base_url}/login", {"Authorization": f"Basic {basic}"})["token"]
        return self._token

    def signal(self, region: Region, now: datetime, horizon_hours: float) -> Signal:
        if not region.watttime_region:
            raise ValueError(f"{region.name} has no watttime_region in the catalog")
        headers = {"Authorization": f"Bearer {self._login()}"}
        query = urllib.parse.urlencode({"region": region.watttime_region, "signal_type": "co2_moer"})
        body = _get_json(f"{self.base_url}/v3/forecast?{query}", headers)
        units = body["meta"]["units"]
        if units != "lbs_co2_per_mwh":
            raise ValueError(f"WattTime forecast in {units}, expected lbs_co2_per_mwh")
        period = float(body["meta"].get("data_point_period_seconds", 300)) / 60
        points = [
            ForecastPoint(_parse_time(p["point_time"]), period, float(p["value"]) * LBS_PER_MWH_TO_G_PER_KWH)
            for p in body["data"]
        ]
        if not points:
            raise ValueError("WattTime forecast is empty")
        index = _get_json(f"{self.base_url}/v3/signal-index?{query}", headers)
        percentile = index["data"][0]["value"] if index.get("data") else None
        return Signal(
            region.name,
            points[0].g_per_kwh,  # the forecast's first point is WattTime's current marginal rate
            f"WattTime {region.watttime_region} marginal (co2_moer), now at percentile {percentile} of the coming day",
            points[0].start,
            _within(points, now, horizon_hours) if horizon_hours > 0 else [],
        )


class CarbonAwareProvider:
    """GSF carbon-aware-sdk Web API: /emissions/bylocations/best and /emissions/forecasts/current."""

    name = "carbon-aware-sdk"

    def __init__(self, base_url: str = "http://localhost:8080", api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        # The Web API has no auth of its own; a gateway in front of it may want a key.
        self.api_key = secret("CARBON_AWARE_API_KEY") if api_key is None else api_key

    def signal(self, region: Region, now: datetime, horizon_hours: float) -> Signal:
        if not region.carbon_aware_location:
            raise ValueError(f"{region.name} has no carbon_aware_location in the catalog")
        headers = {"x-api-key": self.api_key} if self.api_key else {}
        location = urllib.parse.quote(region.carbon_aware_location)
        window = urllib.parse.urlencode({"time": (now - timedelta(hours=1)).isoformat(), "toTime": now.isoformat()})
        best = _get_json(f"{self.base_url}/emissions/bylocations/best?location={location}&{window}", headers)
        if not best:
            raise ValueError(f"carbon-aware-sdk has no recent data for {region.carbon_aware_location}")
        current = best[0]
        forecast: list[ForecastPoint] = []
        if horizon_hours > 0:
            body = _get_json(f"{self.base_url}/emissions/forecasts/current?location={location}", headers)
            data = body[0]["forecastData"] if body else []
            forecast = [
                ForecastPoint(_parse_time(p["timestamp"]), _minutes(p["duration"]), float(p["value"])) for p in data
            ]
        return Signal(
            region.name,
            float(current["rating"]),
            f"GSF carbon-aware-sdk location {region.carbon_aware_location}",
            _parse_time(current["time"]),
            _within(forecast, now, horizon_hours),
        )


def describe_warning(warning: dict) -> str:
    """One sentence for a fallback warning recorded by WithFallback (statement, HTML and CLI say the same)."""
    return f"{warning['provider']} failed for {warning['region']} ({warning['error']}); used {warning['fallback']}"


class WithFallback:
    """A live provider that never fails a run: on any error, the static value plus a recorded warning."""

    def __init__(self, primary: IntensityProvider, fallback: IntensityProvider | None = None):
        self.primary, self.fallback = primary, fallback or StaticProvider()
        self.name = primary.name

    def signal(self, region: Region, now: datetime, horizon_hours: float) -> Signal:
        try:
            return self.primary.signal(region, now, horizon_hours)
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
            signal = self.fallback.signal(region, now, horizon_hours)
            signal.warnings.append(
                {
                    "provider": self.primary.name,
                    "region": region.name,
                    "error": f"{type(error).__name__}: {error}",
                    "fallback": signal.source,
                }
            )
            return signal


PROVIDERS = {
    "static": StaticProvider,
    "electricitymaps": ElectricityMapsProvider,
    "watttime": WattTimeProvider,
    "carbon-aware-sdk": CarbonAwareProvider,
}


def make_provider(name: str, base_url: str = "") -> IntensityProvider:
    """A provider by name; live ones come wrapped in the static fallback."""
    if name not in PROVIDERS:
        raise GreenfmError(f"unknown intensity provider {name!r}; choose one of {', '.join(PROVIDERS)}")
    if name == "static":
        return StaticProvider()
    provider = PROVIDERS[name](base_url=base_url) if base_url else PROVIDERS[name]()
    return WithFallback(provider)
