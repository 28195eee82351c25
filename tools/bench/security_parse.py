"""What the security benchmark reads, parsed: the CA's ready line, a process's CPU time from
/proc, Envoy's admin `/certs` and `/stats`, the node agent's `/debug/secrets` and Pilot's
`/debug/syncz`. Pure functions of text or decoded JSON, so each is tested on its own.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

# `istio-ca ready: gRPC TLS on 127.0.0.1:40123, mTLS on (off), HTTP on 127.0.0.1:40124; ...`
_CA_READY = re.compile(r"istio-ca ready: gRPC TLS on (\S+), mTLS on (\S+), HTTP on ([^;\s]+);")
SYNCED_STATES = frozenset({"SYNCED", "NOT SENT"})


@dataclasses.dataclass(frozen=True)
class CaAddresses:
    grpc: str  # TLS, bearer tokens
    mtls: str | None  # TLS with client certificates; None when off
    health: str  # HTTP /ready, /metrics


def parse_ca_ready(text: str) -> CaAddresses | None:
    """The bound addresses from the CA's log, once it logged `istio-ca ready` (else None)."""
    match = _CA_READY.search(text)
    if match is None:
        return None
    grpc, mtls, health = match.groups()
    return CaAddresses(grpc=grpc, mtls=None if mtls == "(off)" else mtls, health=health)


def cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks, every thread) from the text of /proc/<pid>/stat."""
    # The command name may hold spaces and parentheses: fields start after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds a live process has used; raises FileNotFoundError once it is gone."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return cpu_ticks(stat) / os.sysconf("SC_CLK_TCK")


def workload_serial(certs: Mapping[str, Any], identity: str | None = None) -> str | None:
    """The serial of a workload certificate Envoy holds (admin `/certs`): a cert_chain entry
    with a SPIFFE URI SAN (`identity` exactly, if given). None while it holds none."""
    for entry in certs.get("certificates", []):
        for cert in entry.get("cert_chain", []) or []:
            uris = [
                san.get("uri", "")
                for san in cert.get("subject_alt_names", []) or []
                if "uri" in san
            ]
            if any(u == identity if identity else u.startswith("spiffe://") for u in uris):
                return str(cert.get("serial_number", ""))
    return None


def identity_status(
    secrets: Iterable[Mapping[str, Any]], identity: str
) -> Mapping[str, Any] | None:
    """The node agent's entry for `identity` in `/debug/secrets` (None when it holds none)."""
    return next((s for s in secrets if s.get("identity") == identity), None)


def has_certificate(secrets: Iterable[Mapping[str, Any]], identity: str) -> bool:
    entry = identity_status(secrets, identity)
    return entry is not None and entry.get("serial") is not None


def watchers(secrets: Iterable[Mapping[str, Any]], identity: str) -> int:
    """How many SDS watches the node agent has for `identity` (0 when it is not listed)."""
    entry = identity_status(secrets, identity)
    return int(entry.get("watchers", 0)) if entry is not None else 0


def parse_stats(text: str) -> dict[str, int]:
    """Envoy admin `/stats` text (`name: value` lines) as {name: value}; histograms skipped."""
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition(": ")
        if sep and value.strip().lstrip("-").isdigit():
            stats[name.strip()] = int(value)
    return stats


def stat_sum(stats: Mapping[str, int], pattern: str) -> int:
    """The sum of every stat whose name matches `pattern` (re.search)."""
    compiled = re.compile(pattern)
    return sum(value for name, value in stats.items() if compiled.search(name))


def all_synced(syncz: Mapping[str, Any], expected_proxies: int = 1) -> bool:
    """Every proxy Pilot knows acknowledged everything it was sent (istioctl's SYNCED), and
    at least `expected_proxies` proxies are connected."""
    proxies = syncz.get("proxies", [])
    if len(proxies) < expected_proxies:
        return False
    return all(
        proxy.get("types") and {t.get("state") for t in proxy["types"].values()} <= SYNCED_STATES
        for proxy in proxies
    )


def pushes(syncz: Mapping[str, Any]) -> int:
    return int(syncz.get("counters", {}).get("pushes", 0))


def peer_authentication(name: str, namespace: str, app: str, mode: str) -> str:
    """A PeerAuthentication selecting the workloads labelled `app`, as YAML."""
    return (
        "apiVersion: security.istio.io/v1beta1\n"
        "kind: PeerAuthentication\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        "spec:\n"
        "  selector:\n"
        "    matchLabels:\n"
        f"      app: {app}\n"
        "  mtls:\n"
        f"    mode: {mode}\n"
    )
