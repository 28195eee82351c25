"""NDS: the name table a sidecar's agent answers DNS from (Istio's BuildNameTable).

For every service the proxy sees, its hostname and its addresses: a Kubernetes Service's
cluster IP (with its name and namespace, from which the agent answers `name`, `name.ns` and
`name.ns.svc` itself), a ServiceEntry's `addresses`, or, for a proxy that asked for
auto-allocation, the address allocated to a ServiceEntry host that has none. A service with
no address is left out, so the agent forwards its name upstream, as Istio does for a DNS
ServiceEntry without addresses; a headless one (resolution NONE) gets its endpoints' IPs.
A host two services share keeps the Kubernetes Service's addresses, else collects each's.
Pure: (proxy, push) -> NameTable.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from api.networking.nds.v1 import nds_pb2
from pilot.model import hostname as hostnames
from pilot.model.push_context import PushContext
from pilot.model.service import Resolution, Service
from pilot.networking import capture
from pilot.networking.proxyview import ProxyView

NAME_TABLE = "type.googleapis.com/istio.networking.nds.v1.NameTable"
KUBERNETES = "Kubernetes"
_CLUSTER_SET = ".clusterset.local"  # Kubernetes MCS hosts get no short names


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _addresses(service: Service, push: PushContext, auto_allocated: bool) -> list[str]:
    address = capture.service_address(service, auto_allocated)
    if address != "0.0.0.0":
        out = [address] if _ip(address) else []  # a CIDR is no DNS answer
        if address == service.auto_allocated_address and service.auto_allocated_address_v6:
            out.append(service.auto_allocated_address_v6)
        return out
    if service.resolution is not Resolution.PASSTHROUGH or not service.ports:
        return []
    # Headless: what Kubernetes' DNS answers, the endpoints' own addresses.
    seen: dict[str, None] = {}
    for port in service.ports:
        for endpoint in push.index.endpoints_of(service.hostname, port.number):
            if _ip(endpoint.address):
                seen.setdefault(endpoint.address)
    return list(seen)


def build_name_table(
    proxy: ProxyView, push: PushContext, services: Iterable[Service]
) -> nds_pb2.NameTable:
    auto_allocated = capture.auto_allocates(proxy.metadata)
    table = nds_pb2.NameTable()
    for service in sorted(services, key=lambda s: hostnames.sort_key(s.hostname)):
        if service.hostname.startswith("*") and not service.address:
            continue
        ips = _addresses(service, push, auto_allocated)
        if not ips:
            continue
        kube = service.registry == KUBERNETES and not service.hostname.endswith(_CLUSTER_SET)
        if service.hostname not in table.table:
            info = table.table[service.hostname]
            info.ips.extend(ips)
            info.registry = service.registry
            if kube:
                info.namespace = service.namespace
                info.shortname = service.hostname.split(".", 1)[0]
            continue
        info = table.table[service.hostname]
        if info.registry == KUBERNETES:
            continue  # a ServiceEntry decorating a Kubernetes Service: the Service wins
        if service.registry == KUBERNETES:
            del info.ips[:]
            info.ips.extend(ips)
            info.registry = KUBERNETES
            if kube:
                info.namespace = service.namespace
                info.shortname = service.hostname.split(".", 1)[0]
        else:
            info.ips.extend(ip for ip in ips if ip not in info.ips)
    return table
