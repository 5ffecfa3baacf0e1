"""The `restricted` Pod Security Standard as the admission controller checks it, for pod specs in API JSON
(camelCase). Written from kubernetes/pod-security-admission `policy/check_*.go` (the baseline checks, which
restricted includes, and the restricted ones), at the latest policy version; `violations` returns one line per
failed check, named by the upstream check ID, so an empty list means the pod would be admitted.

Like the admission plugin, every container list is checked (containers, initContainers, ephemeralContainers)
and container-level settings may be left unset where the pod level sets them (runAsNonRoot, seccompProfile).
On top of the standard, `numeric_non_root_user` asks for a numeric non-zero runAsUser on every container (the
kubelet can only verify runAsNonRoot against a numeric user; an image whose USER is a name fails to start).
"""

from __future__ import annotations

# check_restrictedVolumes.go: the only inline volume sources restricted allows.
ALLOWED_VOLUME_SOURCES = {
    "configMap",
    "downwardAPI",
    "emptyDir",
    "projected",
    "secret",
    "csi",
    "persistentVolumeClaim",
    "ephemeral",
    "image",
}
# check_capabilities_baseline.go and check_capabilities_restricted.go
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
RESTRICTED_ADD_CAPABILITIES = {"NET_BIND_SERVICE"}
# check_sysctls.go (latest policy version)
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}  # check_seLinuxOptions.go
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}  # check_seccompProfile_restricted.go
APPARMOR_TYPES = {"RuntimeDefault", "Localhost"}  # check_appArmorProfile.go


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def violations(spec: dict, metadata: dict | None = None) -> list[str]:
    """Every way the pod spec (and its metadata's annotations) breaks the restricted standard."""
    found: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    user_namespace = spec.get("hostUsers") is False  # several checks relax inside a user namespace

    def each(check: str, bad) -> None:
        for container in containers:
            problem = bad(container.get("securityContext") or {})
            if problem:
                found.append(f"{check}: container {container.get('name')!r} {problem}")

    # baseline
    if pod_sc.get("windowsOptions", {}).get("hostProcess") or any(
        (c.get("securityContext") or {}).get("windowsOptions", {}).get("hostProcess") for c in containers
    ):
        found.append("hostProcess: windowsOptions.hostProcess must not be true")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"hostNamespaces: {field} must not be true")
    each("privileged", lambda sc: "is privileged" if sc.get("privileged") else "")
    each(
        "capabilities_baseline",
        lambda sc: (
            f"adds {sorted(set(added) - BASELINE_CAPABILITIES)}"
            if set(added := (sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
            else ""
        ),
    )
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            found.append(f"hostPathVolumes: volume {volume.get('name')!r} is a hostPath")
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"hostPorts: container {container.get('name')!r} uses hostPort {port['hostPort']}")
    for key, value in ((metadata or {}).get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"appArmorProfile: annotation {key}={value}")
    for where, sc in [("pod", pod_sc)] + [
        (f"container {c.get('name')!r}", c.get("securityContext") or {}) for c in containers
    ]:
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor is not None and apparmor not in APPARMOR_TYPES:
            found.append(f"appArmorProfile: {where} type {apparmor}")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            found.append(f"seLinuxOptions: {where} {selinux}")
    for container in containers:
        handlers = [container.get(probe) or {} for probe in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(container.get("lifecycle") or {}).get(hook) or {} for hook in ("postStart", "preStop")]
        for handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                if (handler.get(action) or {}).get("host"):
                    found.append(f"hostProbesAndhostLifecycle: container {container.get('name')!r} {action}.host")
    # procMount: baseline allows any value in a user namespace, restricted never does
    each("procMount", lambda sc: f"procMount {sc['procMount']}" if sc.get("procMount") not in (None, "Default") else "")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"sysctls: {sysctl.get('name')} is not a safe sysctl")

    # restricted (allowPrivilegeEscalation, seccomp and capabilities exempt Windows pods, as upstream does)
    windows = (spec.get("os") or {}).get("name") == "windows"
    for volume in spec.get("volumes") or []:
        sources = set(volume) - {"name"} - ALLOWED_VOLUME_SOURCES
        if sources:
            found.append(f"restrictedVolumes: volume {volume.get('name')!r} uses {sorted(sources)}")
    if not windows:
        each(
            "allowPrivilegeEscalation",
            lambda sc: (
                "must set allowPrivilegeEscalation=false" if sc.get("allowPrivilegeEscalation") is not False else ""
            ),
        )
    if not user_namespace:
        pod_non_root = pod_sc.get("runAsNonRoot")
        if pod_non_root is False:
            found.append("runAsNonRoot: pod sets runAsNonRoot=false")
        each(
            "runAsNonRoot",
            lambda sc: (
                "sets runAsNonRoot=false"
                if sc.get("runAsNonRoot") is False
                else (
                    "must set runAsNonRoot=true (pod or container)"
                    if sc.get("runAsNonRoot") is None and not pod_non_root
                    else ""
                )
            ),
        )
        if pod_sc.get("runAsUser") == 0:
            found.append("runAsUser: pod runs as uid 0")
        each("runAsUser", lambda sc: "runs as uid 0" if sc.get("runAsUser") == 0 else "")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_TYPES:
        found.append(f"seccompProfile_restricted: pod type {pod_seccomp}")

    def seccomp(sc: dict) -> str:
        kind = (sc.get("seccompProfile") or {}).get("type")
        if kind is None:
            return "" if pod_seccomp in SECCOMP_TYPES else "must set seccompProfile (pod or container)"
        return "" if kind in SECCOMP_TYPES else f"seccompProfile {kind}"

    if not windows:
        each("seccompProfile_restricted", seccomp)

    def capabilities(sc: dict) -> str:
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            return "must drop ALL capabilities"
        extra = set(caps.get("add") or []) - RESTRICTED_ADD_CAPABILITIES
        return f"adds {sorted(extra)}" if extra else ""

    if not windows:
        each("capabilities_restricted", capabilities)
    return found


def numeric_user_violations(spec: dict) -> list[str]:
    """Containers without a numeric non-zero runAsUser (at pod or container level)."""
    pod_user = (spec.get("securityContext") or {}).get("runAsUser")
    return [
        f"numeric_non_root_user: container {c.get('name')!r} has no numeric non-root runAsUser"
        for c in _containers(spec)
        if not isinstance(uid := (c.get("securityContext") or {}).get("runAsUser", pod_user), int) or uid <= 0
    ]


def assert_restricted(spec: dict, metadata: dict | None = None) -> None:
    problems = violations(spec, metadata) + numeric_user_violations(spec)
    assert not problems, "\n".join(problems)
