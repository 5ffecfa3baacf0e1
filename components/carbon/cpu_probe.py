"""py-cpuinfo's answer about this machine's CPU, probed once per boot and kept on disk.

When a tracker starts, codecarbon asks py-cpuinfo for the CPU's brand (`codecarbon.core.util.detect_cpu_model`,
which picks the power figure), and py-cpuinfo answers by running itself in a child interpreter that forks
another to execute CPUID: 1.3 s in every measured step, six times a run. The answer cannot change while the
machine is up, so `install` routes `cpuinfo.get_cpu_info` through a file named by this boot (the kernel's boot
id and the host name): a reboot, another VM or another pod probes again. Without a boot id (not Linux) every
call probes, as before.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from pathlib import Path

import cpuinfo

from components.common.machine_cache import cache_dir, write_cache_file

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_INSTALLED = "_greenfm_cached"


def cache_file() -> Path | None:
    """This boot's cache file, or None where the kernel gives no boot id."""
    try:
        boot = BOOT_ID.read_text().strip()
    except OSError:
        return None
    key = hashlib.sha256(f"{platform.node()}\0{boot}\0{cpuinfo.CPUINFO_VERSION_STRING}".encode()).hexdigest()[:16]
    return cache_dir() / f"cpuinfo-{key}.json"


def cached_cpu_info(probe: Callable[[], dict]) -> dict:
    """`probe()`'s answer for this boot: read from the cache file, else probed and written there."""
    path = cache_file()
    if path is None:
        return probe()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(info, dict) and info:
            return info
    except (OSError, ValueError):
        pass  # absent or unreadable: probe again
    info = probe()
    if info:  # py-cpuinfo answers {} when its probe fails: that is not kept
        write_cache_file(path, json.dumps(info))
    return info


def install() -> None:
    """Make `cpuinfo.get_cpu_info` (what codecarbon calls) answer from the cache; once per process."""
    if getattr(cpuinfo.get_cpu_info, _INSTALLED, False):
        return
    probe = cpuinfo.get_cpu_info

    def get_cpu_info() -> dict:
        return cached_cpu_info(probe)

    setattr(get_cpu_info, _INSTALLED, True)
    cpuinfo.get_cpu_info = get_cpu_info
