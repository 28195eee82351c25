"""A pod's /etc/hosts and /etc/resolv.conf, as the kubelet writes them (pure functions).

Kubernetes' kubelet writes each pod a managed hosts file (localhost and the pod's own name
at its address) and a resolv.conf whose search path makes `reviews` mean
`reviews.<namespace>.svc.cluster.local`, answered by the cluster's DNS server. The local
platform has no DNS server: the hosts file carries the names cluster DNS would answer for
every Service with a cluster IP: `<name>.<namespace>.svc.cluster.local` and `<name>.<namespace>`
everywhere, and the bare `<name>` in the pod's own namespace (a search path never applies to
the hosts file, so each form is listed). Headless and ExternalName Services have no cluster IP
and so no entry, as they have no A record of a virtual IP in cluster DNS.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

CLUSTER_DOMAIN = "cluster.local"


@dataclasses.dataclass(frozen=True, order=True)
class ServiceAddress:
    namespace: str
    name: str
    cluster_ip: str


def service_addresses(services: Iterable[Mapping[str, Any]]) -> list[ServiceAddress]:
    """The Services (API objects) that have a cluster IP, sorted."""
    out = []
    for service in services:
        meta, spec = service.get("metadata") or {}, service.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if spec.get("type") == "ExternalName" or not ip or ip == "None":
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            continue
        out.append(ServiceAddress(str(meta.get("namespace") or "default"), meta["name"], ip))
    return sorted(out)


def render_hosts(
    pod_ip: str,
    hostname: str,
    namespace: str,
    services: Iterable[ServiceAddress],
    domain: str = CLUSTER_DOMAIN,
) -> str:
    lines = [
        "# Kubernetes-managed hosts file (the local kubelet's).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
        f"{pod_ip}\t{hostname}",
        "# Services: what cluster DNS would answer.",
    ]
    for service in sorted(services):
        names = [
            f"{service.name}.{service.namespace}.svc.{domain}",
            f"{service.name}.{service.namespace}",
        ]
        if service.namespace == namespace:
            names.append(service.name)
        lines.append(f"{service.cluster_ip}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def render_resolv(namespace: str, domain: str = CLUSTER_DOMAIN, nameserver: str = "") -> str:
    """Kubernetes' search path and ndots; Service names come from the hosts file. With a
    `nameserver` (the node's DNS forwarder, nodedns.py, on a namespace pod's gateway) other
    names resolve as on the host; without one (loopback pods share the host's /etc), none."""
    server = f"nameserver {nameserver}\n" if nameserver else ""
    return (
        "# The local kubelet's: Service names are in /etc/hosts.\n"
        f"{server}"
        f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
        "options ndots:5\n"
    )
