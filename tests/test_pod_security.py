"""The restricted Pod Security check (tests/pod_security.py) admits a restricted pod and catches each way of
breaking the standard, one per upstream check."""

from __future__ import annotations

import copy

import pytest

from tests.pod_security import numeric_user_violations, violations

RESTRICTED_CONTAINER = {
    "name": "main",
    "image": "ghcr.io/greenfm/greenfm-base:0.1.0",
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}
POD = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "initContainers": [copy.deepcopy(RESTRICTED_CONTAINER) | {"name": "init"}],
    "containers": [copy.deepcopy(RESTRICTED_CONTAINER)],
    "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "ws"}}, {"name": "shm", "emptyDir": {}}],
}


def _broken(path: str, value) -> dict:
    pod = copy.deepcopy(POD)
    *parents, last = path.split(".")
    target = pod
    for key in parents:
        target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
    target[last] = value
    return pod


def test_restricted_pod_passes():
    assert violations(POD) == [] and numeric_user_violations(POD) == []


@pytest.mark.parametrize(
    "path, value, check",
    [
        ("hostNetwork", True, "hostNamespaces"),
        ("hostPID", True, "hostNamespaces"),
        ("containers.0.securityContext.privileged", True, "privileged"),
        ("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, "capabilities_baseline"),
        ("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}, "capabilities_restricted"),
        (
            "initContainers.0.securityContext.capabilities",
            {"drop": ["ALL"], "add": ["CHOWN"]},
            "capabilities_restricted",
        ),
        ("volumes", [{"name": "h", "hostPath": {"path": "/"}}], "hostPathVolumes"),
        ("volumes", [{"name": "n", "nfs": {"server": "x", "path": "/"}}], "restrictedVolumes"),
        ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "hostPorts"),
        ("containers.0.livenessProbe", {"httpGet": {"host": "evil", "port": 80}}, "hostProbesAndhostLifecycle"),
        ("containers.0.securityContext.appArmorProfile", {"type": "Unconfined"}, "appArmorProfile"),
        ("securityContext.seLinuxOptions", {"type": "spc_t"}, "seLinuxOptions"),
        ("containers.0.securityContext.procMount", "Unmasked", "procMount"),
        ("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "sysctls"),
        ("containers.0.securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
        ("securityContext.runAsNonRoot", False, "runAsNonRoot"),
        ("containers.0.securityContext.runAsUser", 0, "runAsUser"),
        ("securityContext.seccompProfile", {"type": "Unconfined"}, "seccompProfile_restricted"),
    ],
)
def test_each_breach_is_caught(path, value, check):
    found = violations(_broken(path, value))
    assert any(line.startswith(f"{check}:") for line in found), found


def test_container_level_settings_may_come_from_the_pod_and_only_from_it():
    pod = copy.deepcopy(POD)
    del pod["securityContext"]["runAsNonRoot"], pod["securityContext"]["seccompProfile"]
    found = violations(pod)
    assert sum(line.startswith("runAsNonRoot:") for line in found) == 2  # both containers
    assert sum(line.startswith("seccompProfile_restricted:") for line in found) == 2


def test_user_must_be_numeric_and_not_root():
    pod = copy.deepcopy(POD)
    del pod["securityContext"]["runAsUser"]
    assert len(numeric_user_violations(pod)) == 2
