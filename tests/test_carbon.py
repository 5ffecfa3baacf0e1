"""Energy records and the statement: every number reconciles."""

import pytest

from components.carbon.records import EnergyRecord
from components.carbon.statement import build_statement, render_markdown, stage_reconciles, write_statement
from components.carbon.tracking import Location, measure


def test_measure_records_energy_and_reconciles(tmp_path):
    result, record = measure("busy", Location(country_iso_code="FRA"), lambda: sum(i * i for i in range(300_000)))
    assert result > 0 and not record.failed
    assert record.energy_kwh > 0
    assert record.energy_kwh == pytest.approx(record.cpu_kwh + record.gpu_kwh + record.ram_kwh)
    assert record.emissions_kg == pytest.approx(record.energy_kwh * record.intensity_g_per_kwh / 1000)
    assert sum(i.kwh for i in record.intervals) == pytest.approx(record.energy_kwh)
    assert record.intervals[0].start == record.started_at and record.intervals[-1].end == record.ended_at
    statement = write_statement([record], tmp_path, {"outcome": "test"})
    assert statement["stages"][0]["reconciles"]
    text = (tmp_path / "carbon_statement.md").read_text()
    assert "France" in text and "busy" in text


def test_the_cpu_probe_runs_once_per_boot_and_codecarbon_reads_its_answer(tmp_path, monkeypatch):
    import cpuinfo
    from codecarbon.core.util import detect_cpu_model

    from components.carbon import cpu_probe

    monkeypatch.setenv("GREENFM_CACHE_DIR", str(tmp_path / "cache"))
    boot = tmp_path / "boot_id"
    monkeypatch.setattr(cpu_probe, "BOOT_ID", boot)
    probes: list[str] = []

    def probe(answer: dict):
        return lambda: probes.append("probed") or dict(answer)

    boot.write_text("boot-1\n")
    first = cpu_probe.cached_cpu_info(probe({"brand_raw": "Probe CPU", "count": 2}))
    assert first == cpu_probe.cached_cpu_info(probe({"brand_raw": "other"})) == {"brand_raw": "Probe CPU", "count": 2}
    assert len(probes) == 1
    cpu_probe.cache_file().write_text("{")  # a broken file is probed anew
    assert cpu_probe.cached_cpu_info(probe({"brand_raw": "Probe CPU"})) == {"brand_raw": "Probe CPU"}
    assert len(probes) == 2
    boot.write_text("boot-2\n")  # rebooted (or another VM): its own file
    assert cpu_probe.cached_cpu_info(probe({"brand_raw": "New CPU"})) == {"brand_raw": "New CPU"}
    assert len(probes) == 3
    boot.write_text("boot-3\n")  # a failed probe ({}) is not kept
    assert cpu_probe.cached_cpu_info(probe({})) == {} and cpu_probe.cached_cpu_info(probe({})) == {}
    assert len(probes) == 5
    boot.unlink()  # no boot id: every call probes
    cpu_probe.cached_cpu_info(probe({"brand_raw": "x"})), cpu_probe.cached_cpu_info(probe({"brand_raw": "x"}))
    assert len(probes) == 7

    boot.write_text("boot-4\n")
    cpu_probe.cache_file().write_text('{"brand_raw": "Planted CPU 1"}')
    monkeypatch.setattr(cpuinfo, "get_cpu_info", cpuinfo.get_cpu_info)  # restored after the test
    cpu_probe.install()
    assert detect_cpu_model.__wrapped__() == "Planted CPU 1"  # what codecarbon's tracker reads


def test_failed_stage_is_still_recorded():
    def boom():
        raise RuntimeError("stage broke")

    with pytest.raises(RuntimeError) as failure:
        measure("broken", Location(), boom)
    record = failure.value.energy_record
    assert record.failed and record.stage == "broken" and record.energy_kwh > 0


def _record(stage, kwh, g_per_kwh, location="USA"):
    return EnergyRecord(
        **{
            "stage": stage,
            "started_at": "2026-03-01T12:00:00+00:00",
            "ended_at": "2026-03-01T12:00:10+00:00",
            "wall_seconds": 10.0,
            "failed": False,
            "energy_kwh": kwh,
            "cpu_kwh": kwh * 0.5,
            "gpu_kwh": 0.0,
            "ram_kwh": kwh * 0.5,
            "emissions_kg": kwh * g_per_kwh / 1000,
            "intensity_g_per_kwh": g_per_kwh,
            "location": location,
            "country": "United States",
            "pue": 1.0,
            "cpu_model": "cpu",
            "cpu_count": 2,
            "gpu_model": "",
            "gpu_count": 0,
            "cpu_power_method": "cpu_load",
            "tracking_mode": "machine",
            "codecarbon_version": "3.3.2",
        }
    )


def test_totals_and_sources():
    statement = build_statement([_record("a", 2.0, 400), _record("b", 1.0, 46, "gcp:europe-north1")])
    assert statement["total_energy_kwh"] == 3.0
    assert statement["total_emissions_kg"] == pytest.approx(0.8 + 0.046)
    assert "GCP region table" in statement["stages"][1]["intensity_source"]
    bad = build_statement([_record("c", 1.0, 400)])
    bad["stages"][0]["emissions_kg"] = 1.0  # does not match 1 kWh × 400 g/kWh
    assert not stage_reconciles(bad["stages"][0])
    bad["stages"][0]["reconciles"] = stage_reconciles(bad["stages"][0])
    assert "does not reconcile" in render_markdown(bad)
