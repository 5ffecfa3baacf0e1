"""The region catalog: which Kubernetes regions a heavy stage may run in, on which grid, with which GPUs.

A YAML file the user edits (a default one ships as regions.yaml). Each entry's `name` is the value of the
node label topology.kubernetes.io/region, so a placement decision is directly a node selector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.carbon.records import REGION_LABEL
from components.carbon.tracking import Location
from components.common.errors import GreenfmError

DEFAULT_CATALOG_PATH = Path(__file__).with_name("regions.yaml")
# On a cluster the deployment's catalog (ConfigMap greenfm-regions, mounted by the pipeline) replaces the default.
CLUSTER_CATALOG_PATH = Path("/etc/greenfm/regions.yaml")
THIS_MACHINE = "this-machine"
__all__ = ["REGION_LABEL", "Catalog", "Region", "load_catalog", "parse_catalog", "this_machine_catalog"]


@dataclass
class Region:
    name: str  # node label value of topology.kubernetes.io/region
    zone: str  # static grid zone: gcp:<region> | ISO3 | ISO3/<state, province or bidding zone>
    provider: str = "onprem"
    context: str = ""  # kubeconfig context of the cluster whose nodes carry this region
    kfp_host: str = ""  # that cluster's Kubeflow Pipelines API: `greenfm submit` may place a whole run there
    electricitymaps_zone: str = ""
    watttime_region: str = ""
    carbon_aware_location: str = ""
    gpus: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    pue: float = 1.0

    def location(self) -> Location:
        """Where codecarbon's offline tracker measures a stage placed here (same data as the static provider)."""
        if self.zone.startswith("gcp:"):
            cloud_region = self.zone.split(":", 1)[1]
            return Location(_gcp_country(cloud_region), "", "gcp", cloud_region, self.pue)
        country, _, sub = self.zone.partition("/")
        return Location(country.upper(), subregion(country.upper(), sub, self.name) if sub else "", "", "", self.pue)


@dataclass
class Catalog:
    regions: list[Region]
    default_region: str

    def get(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise GreenfmError(
            f"region catalog: no region named {name!r}; known: {', '.join(r.name for r in self.regions)}"
        )


NORDIC_ZONE_PREFIX = {"SWE": "SE", "NOR": "NO", "FIN": "FI"}


def subregions(country: str) -> dict[str, str]:
    """Accepted spellings of a country's subregions -> the key codecarbon's bundled table uses: US states by
    name or postal code (eGRID2023), Canadian provinces by name, Chinese provinces (MEE 2023), Nordic bidding zones (SE1-SE4, NO1-NO5, FI)."""
    from codecarbon.input import DataSource

    source = DataSource()
    if country == "USA":
        table = source.get_country_emissions_data("usa")
        names = {k: k for k in table if not k.startswith("_") and k != "usa"}
        return names | {str(v["regionCode"]).lower(): k for k, v in table.items() if k in names}
    if country == "CAN":
        return {k: k for k in source.get_country_energy_mix_data("can")}
    if country == "CHN":
        provinces = source.get_china_provincial_emissions_data()["data"].values()
        return {name: name for province in provinces for name in province["names"]}
    if country in NORDIC_ZONE_PREFIX:
        zones = source.get_nordic_country_energy_mix_data()["data"]
        return {z.lower(): z for z in zones if z.startswith(NORDIC_ZONE_PREFIX[country])}
    return {}


def subregion(country: str, sub: str, where: str) -> str:
    """codecarbon's key for a subregion; an unknown one is an error naming the valid ones (codecarbon itself
    would silently use the country average under the subregion's label)."""
    valid = subregions(country)
    key = sub.strip().lower()
    if key not in valid:
        shown = sorted({v for v in valid.values()}) if valid else []
        listing = f"valid: {', '.join(shown)}" if shown else "codecarbon has no subregion data for this country"
        raise GreenfmError(f"region catalog: {where}: unknown subregion {country}/{sub} ({listing})")
    return valid[key]


def _gcp_country(cloud_region: str) -> str:
    """The tracker needs a country even for cloud regions (its fallback); take it from the same GCP table."""
    from codecarbon.input import DataSource

    table = DataSource().get_cloud_emissions_data()
    rows = table[(table["provider"] == "gcp") & (table["region"] == cloud_region)]
    if rows.empty:
        raise GreenfmError(f"region catalog: gcp region {cloud_region!r} is not in codecarbon's GCP table")
    return str(rows["countryIsoCode"].iloc[0])


def parse_catalog(text: str, origin: str = "catalog") -> Catalog:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise GreenfmError(f"{origin}: not valid YAML ({str(error).splitlines()[0]})") from None
    entries = data.get("regions") if isinstance(data, dict) else None
    if not entries or not isinstance(entries, list):
        raise GreenfmError(f"{origin}: expected a mapping with a non-empty 'regions' list")
    known = set(Region.__dataclass_fields__)
    regions = []
    for i, entry in enumerate(entries):
        unknown = sorted(set(entry) - known) if isinstance(entry, dict) else ["(not a mapping)"]
        if unknown or "name" not in entry or "zone" not in entry:
            raise GreenfmError(
                f"{origin}: region #{i + 1} needs name and zone; unknown keys: {', '.join(unknown) or 'none'}"
            )
        region = Region(**entry)
        region.gpus = {str(k): int(v) for k, v in (region.gpus or {}).items()}
        region.tags = [str(t) for t in region.tags or []]
        region.pue = float(region.pue)
        region.location()  # a zone codecarbon cannot resolve fails here, naming the region
        regions.append(region)
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise GreenfmError(f"{origin}: region names must be unique")
    default = str(data.get("default_region") or names[0])
    catalog = Catalog(regions, default)
    catalog.get(default)  # the default must be one of the regions
    return catalog


def load_catalog(source: str | Path | None = None) -> Catalog:
    """A catalog from YAML text or a file path; None/empty: the cluster's mounted catalog, else the shipped one."""
    if not source:
        path = CLUSTER_CATALOG_PATH if CLUSTER_CATALOG_PATH.is_file() else DEFAULT_CATALOG_PATH
        return parse_catalog(path.read_text(), str(path))
    if isinstance(source, Path) or ("\n" not in str(source) and Path(str(source)).is_file()):
        path = Path(source)
        if not path.is_file():
            raise GreenfmError(f"{path}: region catalog not found")
        return parse_catalog(path.read_text(), str(path))
    return parse_catalog(str(source))


def this_machine_catalog(zone: str, pue: float = 1.0) -> str:
    """A one-region catalog for runs on this machine (`greenfm run`): nothing to choose, measured on its grid."""
    text = yaml.safe_dump(
        {
            "default_region": THIS_MACHINE,
            "regions": [{"name": THIS_MACHINE, "zone": zone, "provider": "onprem", "pue": pue}],
        },
        sort_keys=False,
    )
    location = parse_catalog(text, f"zone {zone!r}").get(THIS_MACHINE).location()
    from codecarbon.input import DataSource

    if location.country_iso_code not in DataSource().get_global_energy_mix_data():
        # codecarbon would silently use the world average: fail before the run instead
        raise GreenfmError(
            f"zone {zone!r}: {location.country_iso_code} is not an ISO 3166 alpha-3 country codecarbon knows"
        )
    return text
