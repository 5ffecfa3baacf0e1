"""Grid carbon intensity behind one interface: static (codecarbon's bundled data), Electricity Maps, WattTime and
the Green Software Foundation carbon-aware-sdk Web API.

Every provider answers `signal(region, now, horizon_hours)` with the current intensity and, where the source
has one, a forecast; live ones also answer `interval_means(region, spans)`: the intensity the grid actually had
over past intervals (what a stage's measured energy is attributed to). Each signal says its basis: average
(Electricity Maps, the static annual averages) or marginal (WattTime; the carbon-aware-sdk as configured).
Live providers are wrapped in `WithFallback`: an HTTP or parsing failure falls back to the static value and
records a warning; a failed forecast call alone keeps the good current value (no time shift, with a warning).
Placement then compares every region on one basis (components/carbon/placement.py).
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
from typing import Any, Protocol

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
    basis: str = "average"  # average | marginal
    fallback: bool = False  # True: the live provider failed and this is the static annual average

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


def _get_json(url: str, headers: dict[str, str] | None = None, body: object = None) -> Any:
    """GET (or POST with a JSON body) and parse the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    content = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data, headers={"Accept": "application/json", **content, **(headers or {})})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read().decode("utf-8"))


FAILURES = (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError)  # what a live call raises


def piecewise_mean(points: list[ForecastPoint], default: float, start: datetime, end: datetime) -> float:
    """Exact time-weighted mean over [start, end] of a piecewise-constant intensity: each point holds over its
    interval, `default` wherever no point does; at a single instant, the value there."""

    def at(t: datetime) -> float:
        return next((p.g_per_kwh for p in points if p.start <= t < p.end), default)

    if end <= start:
        return at(start)
    cuts = sorted({start, end} | {t for p in points for t in (p.start, p.end) if start < t < end})
    return sum(at(a) * (b - a).total_seconds() for a, b in pairwise(cuts)) / (end - start).total_seconds()


def _means_from_points(points: list[ForecastPoint], spans: list[tuple[datetime, datetime]], what: str) -> list[float]:
    """Each span's mean over measured points; a span no point covers is an error (never a silent guess)."""
    means = []
    for start, end in spans:
        covering = [p for p in points if p.end > start and p.start < max(end, start + timedelta(seconds=1))]
        if not covering:
            raise ValueError(f"{what} has no data for {start.isoformat()}..{end.isoformat()}")
        means.append(piecewise_mean(covering, sum(p.g_per_kwh for p in covering) / len(covering), start, end))
    return means


def _forecast_warning(provider: str, region: Region, error: Exception, signal_source: str) -> dict:
    return {
        "provider": provider,
        "region": region.name,
        "error": f"forecast: {type(error).__name__}: {error}",
        "fallback": f"the current value ({signal_source}), no time shift",
    }


def _within(points: list[ForecastPoint], now: datetime, horizon_hours: float) -> list[ForecastPoint]:
    """Forecast points that overlap [now, now + horizon]; past points say nothing about when to start."""
    end = now + timedelta(hours=horizon_hours)
    return sorted((p for p in points if p.end > now and p.start < end), key=lambda p: p.start)


class StaticProvider:
    """codecarbon's bundled annual averages, computed by codecarbon itself so placement and measurement agree."""

    name = "static"

    def signal(self, region: Region, now: datetime, horizon_hours: float = 0.0) -> Signal:
        g, source = static_intensity(region)
        return Signal(region.name, g, source, now, basis="average")


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
    """Which bundled codecarbon table gives the intensity for a location, with its data year (mirrors
    codecarbon's lookup order)."""
    if cloud_provider == "gcp":
        return "codecarbon bundled GCP region table (impact.csv: Google Cloud region grid intensity), annual average"
    if cloud_provider:
        return f"{cloud_provider.upper()} region not in codecarbon's bundled table: country annual average"
    country = country_iso_code.upper()
    if region and country in ("SWE", "NOR", "FIN"):
        return "codecarbon bundled Nordic bidding-zone factors (nordic_emissions.json, ENTSO-E 2025), annual average"
    if region and country == "USA":
        return "codecarbon bundled EPA eGRID2023 state rates (usa_emissions.json, data year 2023), annual average"
    if region and country == "CAN":
        return "codecarbon bundled Canadian provincial energy mix (canada_energy_mix.json, 2023), annual average"
    from codecarbon.input import DataSource

    year = DataSource().get_global_energy_mix_data().get(country, {}).get("year", "year not stated")
    return f"codecarbon bundled country energy mix (global_energy_mix.json, Our World in Data {year}), annual average"


def intensity_source(location: str) -> str:
    """Where codecarbon's offline tracker takes the grid intensity for a location (Location.describe() text)."""
    if ":" in location:
        return static_source("", "", location.split(":", 1)[0])
    country, _, region = location.partition("/")
    return static_source(country, region, "")


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
        kind = latest.get("emissionFactorType", "lifecycle")
        signal = Signal(
            region.name,
            float(latest["carbonIntensity"]),
            f"Electricity Maps zone {region.electricitymaps_zone} ({kind}, average)",
            _parse_time(latest["datetime"]),
            basis="average",
        )
        if horizon_hours > 0:
            try:
                body = _get_json(f"{self.base_url}/carbon-intensity/forecast?zone={zone}", headers)
                signal.forecast = _within(_hourly(body["forecast"]), now, horizon_hours)
            except FAILURES as error:
                signal.warnings.append(_forecast_warning(self.name, region, error, signal.source))
        return signal

    def interval_means(self, region: Region, spans: list[tuple[datetime, datetime]]) -> list[float]:
        """/carbon-intensity/past-range: the zone's measured hourly intensity over the spans."""
        zone = urllib.parse.quote(region.electricitymaps_zone)
        start, end = min(a for a, _ in spans), max(b for _, b in spans)
        window = urllib.parse.urlencode(
            {"start": _hour(start).isoformat(), "end": (_hour(end) + timedelta(hours=1)).isoformat()}
        )
        body = _get_json(
            f"{self.base_url}/carbon-intensity/past-range?zone={zone}&{window}", {"auth-token": self.token}
        )
        return _means_from_points(_hourly(body["data"]), spans, f"Electricity Maps zone {region.electricitymaps_zone}")


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _hourly(points: list[dict]) -> list[ForecastPoint]:
    """Electricity Maps points (datetime, carbonIntensity); each lasts until the next one (the last: 60 min)."""
    times = [_parse_time(p["datetime"]) for p in points]
    steps = [(b - a).total_seconds() / 60 for a, b in pairwise(times)] + [60.0]
    return [ForecastPoint(t, m, float(p["carbonIntensity"])) for t, m, p in zip(times, steps, points, strict=True)]


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
            basis="marginal",
        )

    def interval_means(self, region: Region, spans: list[tuple[datetime, datetime]]) -> list[float]:
        """/v3/historical: the region's measured marginal rate (co2_moer, 5-minute points) over the spans."""
        headers = {"Authorization": f"Bearer {self._login()}"}
        start, end = min(a for a, _ in spans), max(b for _, b in spans)
        query = urllib.parse.urlencode(
            {
                "region": region.watttime_region,
                "signal_type": "co2_moer",
                "start": (start - timedelta(minutes=5)).isoformat(),
                "end": (end + timedelta(minutes=5)).isoformat(),
            }
        )
        body = _get_json(f"{self.base_url}/v3/historical?{query}", headers)
        if body["meta"]["units"] != "lbs_co2_per_mwh":
            raise ValueError(f"WattTime historical in {body['meta']['units']}, expected lbs_co2_per_mwh")
        period = float(body["meta"].get("data_point_period_seconds", 300)) / 60
        points = [
            ForecastPoint(_parse_time(p["point_time"]), period, float(p["value"]) * LBS_PER_MWH_TO_G_PER_KWH)
            for p in body["data"]
        ]
        return _means_from_points(points, spans, f"WattTime {region.watttime_region}")


class CarbonAwareProvider:
    """GSF carbon-aware-sdk Web API: /emissions/bylocations/best, /emissions/forecasts/current, and
    /emissions/average-carbon-intensity/batch for the measured hours. Its values are marginal with its WattTime
    data source (the SDK's documented default) and average with Electricity Maps: `basis` says which one the
    deployment runs (`carbon-aware-sdk/average` in make_provider)."""

    name = "carbon-aware-sdk"

    def __init__(self, base_url: str = "http://localhost:8080", api_key: str | None = None, basis: str = "marginal"):
        self.base_url = base_url.rstrip("/")
        # The Web API has no auth of its own; a gateway in front of it may want a key.
        self.api_key = secret("CARBON_AWARE_API_KEY") if api_key is None else api_key
        self.basis = basis

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
        signal = Signal(
            region.name,
            float(current["rating"]),
            f"GSF carbon-aware-sdk location {region.carbon_aware_location} ({self.basis})",
            _parse_time(current["time"]),
            basis=self.basis,
        )
        if horizon_hours > 0:
            try:
                body = _get_json(f"{self.base_url}/emissions/forecasts/current?location={location}", headers)
                data = body[0]["forecastData"] if body else []
                forecast = [
                    ForecastPoint(_parse_time(p["timestamp"]), _minutes(p["duration"]), float(p["value"])) for p in data
                ]
                signal.forecast = _within(forecast, now, horizon_hours)
            except FAILURES as error:
                signal.warnings.append(_forecast_warning(self.name, region, error, signal.source))
        return signal

    def interval_means(self, region: Region, spans: list[tuple[datetime, datetime]]) -> list[float]:
        """POST /emissions/average-carbon-intensity/batch: one request, one average per span, in order."""
        headers = {"x-api-key": self.api_key} if self.api_key else {}
        requests = [
            {"location": region.carbon_aware_location, "startTime": a.isoformat(), "endTime": b.isoformat()}
            for a, b in spans
        ]
        body = _get_json(f"{self.base_url}/emissions/average-carbon-intensity/batch", headers, requests)
        if len(body) != len(spans):
            raise ValueError(f"carbon-aware-sdk answered {len(body)} averages for {len(spans)} intervals")
        return [float(item["carbonIntensity"]) for item in body]


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
        except FAILURES as error:
            signal = self.fallback.signal(region, now, horizon_hours)
            signal.fallback = True
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
# The names a run may choose: each provider, and the SDK deployment that reports average (Electricity Maps) data.
PROVIDER_NAMES = (*PROVIDERS, "carbon-aware-sdk/average")


def make_provider(name: str, base_url: str = "", fallback: bool = True) -> IntensityProvider:
    """A provider by name (`carbon-aware-sdk/average` for an SDK backed by Electricity Maps); live ones come
    wrapped in the static fallback unless `fallback` is False."""
    base, _, basis = name.partition("/")
    if base not in PROVIDERS or (basis and (base != "carbon-aware-sdk" or basis not in ("average", "marginal"))):
        choices = ", ".join(PROVIDER_NAMES)
        raise GreenfmError(f"unknown intensity provider {name!r}; choose one of {choices}")
    if base == "static":
        return StaticProvider()
    options: dict = {"base_url": base_url} if base_url else {}
    if basis:
        options["basis"] = basis
    provider = PROVIDERS[base](**options)
    return WithFallback(provider) if fallback else provider
