"""LDS for a captured sidecar's outbound traffic, as Istio generates it.

iptables sends every outbound TCP connection of the app to `virtualOutbound` (0.0.0.0:15001,
`use_original_dst`), which hands it to the listener for its original destination:

- an HTTP service port: `0.0.0.0_<port>` (shared by every HTTP service on that port), an
  HTTP connection manager whose RDS table is named by the port (`"9080"`, routes.py), where
  the Host picks the service;
- a TCP or TLS service port: `<address>_<port>` for a service with an address (a cluster IP,
  a ServiceEntry address), else `0.0.0.0_<port>`, a tcp_proxy to `outbound|<port>||<host>`
  or wherever its VirtualService's `tcp`/`tls` routes send it (tcproute.py); a TLS port
  without an address tells its services apart by SNI (the TLS inspector);
- a port without a protocol (sniffed, sniffing.py): the listener a TCP port would have,
  plus the HTTP inspector and a chain for what it finds to be HTTP, an HTTP connection
  manager routed by RDS (`<host>:<port>` for a service with an address, else the port's
  table);
- anything else stays in virtualOutbound's catch-all chain: `PassthroughCluster` under
  `outboundTrafficPolicy` ALLOW_ANY, `BlackHoleCluster` under REGISTRY_ONLY.

The per-destination listeners do not bind (`bind_to_port: false`): only 15001 is a socket.
On one `0.0.0.0_<port>` an HTTP port wins over a TCP service without an address, as the
older of two conflicting listeners does in Istio; the first hostname in Istio's order wins
among TCP services with one address and port.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pilot.model import hostname
from pilot.model.push_context import PushContext
from pilot.model.service import Protocol, Service
from pilot.networking import capture, listeners, names, sniffing, tcproute
from pilot.networking.proxyview import ProxyView

WILDCARD = "0.0.0.0"
_TLS_PROTOCOLS = (Protocol.TLS, Protocol.HTTPS)


def outbound_listeners(
    proxy: ProxyView, push: PushContext, services: Iterable[Service], policy: str
) -> list[dict[str, Any]]:
    """virtualOutbound, then one listener per destination (address, port), by name."""
    http_ports: set[int] = set()
    auto_allocated = capture.auto_allocates(proxy.metadata)
    tcp: dict[tuple[str, int], list[tuple[Service, int, bool]]] = {}
    for service in sorted(services, key=lambda s: hostname.sort_key(s.hostname)):
        for service_port in service.ports:
            if service_port.protocol.is_http:
                http_ports.add(service_port.number)
                continue
            address = capture.service_address(service, auto_allocated)
            tls = service_port.protocol in _TLS_PROTOCOLS
            key = (address, service_port.number)
            tcp.setdefault(key, []).append((service, service_port.number, tls))
    out = [virtual_outbound(proxy, policy)]
    for number in sorted(http_ports):
        out.append(_http_listener(number))
    for (address, number), members in sorted(tcp.items()):
        if address == WILDCARD and number in http_ports:
            continue
        chains = _tcp_chains(proxy, push, address, members, policy)
        if not chains:
            continue
        listener = _tcp_listener(address, number, chains)
        first, _, _ = members[0]
        port = first.port(number)
        if port is not None and port.protocol.is_sniffed:
            _add_http_chain(listener, first.hostname, address, number, chains)
            sniffing.sniff_listener(listener, push.mesh.mesh_config)
        out.append(listener)
    return out


def _add_http_chain(
    listener: dict[str, Any], host: str, address: str, port: int, tcp: list[dict[str, Any]]
) -> None:
    """Istio's order for an auto port: the TCP chains, then the HTTP one."""
    route = sniffing.route_name(host, address, port, WILDCARD)
    manager = listeners.outbound_hcm(
        f"outbound_{address}_{port}", route_name=route, first=[sniffing.ALPN_OVERRIDE]
    )
    listener["filter_chains"] = [
        *(sniffing.tcp_chain(c) for c in tcp),
        {"filter_chain_match": sniffing.http_chain_match({}), "filters": [manager]},
    ]


def virtual_outbound(proxy: ProxyView, policy: str) -> dict[str, Any]:
    fallback = names.PASSTHROUGH_CLUSTER if policy == capture.ALLOW_ANY else names.BLACKHOLE_CLUSTER
    listener = _listener(names.VIRTUAL_OUTBOUND, WILDCARD, names.OUTBOUND_PORT, bind=True)
    listener["use_original_dst"] = True
    listener["filter_chains"] = [
        {
            # A connection really meant for 15001 would come back here for good.
            "name": names.VIRTUAL_OUTBOUND_BLACKHOLE,
            "filter_chain_match": {"destination_port": names.OUTBOUND_PORT},
            "filters": [tcproute.tcp_proxy([(names.BLACKHOLE_CLUSTER, 100)])],
        },
        {
            "name": names.VIRTUAL_OUTBOUND_CATCHALL,
            "filters": [tcproute.tcp_proxy([(fallback, 100)])],
        },
    ]
    if capture.interception_mode(proxy.metadata) == capture.TPROXY:
        listener["transparent"] = True
    return listener


def _http_listener(port: int) -> dict[str, Any]:
    listener = _listener(names.listener_name(WILDCARD, port), WILDCARD, port)
    manager = listeners.outbound_hcm(f"outbound_{WILDCARD}_{port}", route_name=str(port))
    listener["filter_chains"] = [{"filters": [manager]}]
    return listener


def _tcp_chains(
    proxy: ProxyView,
    push: PushContext,
    address: str,
    members: list[tuple[Service, int, bool]],
    policy: str,
) -> list[dict[str, Any]]:
    """One service's chains at its own address; on 0.0.0.0, TLS services by SNI (their
    hostnames, unless their routes say), else the first service's."""
    sni_services = address == WILDCARD and all(tls for _, _, tls in members)
    chosen = members if sni_services else members[:1]
    chains: list[dict[str, Any]] = []
    taken: set[str] = set()  # one chain per match: Envoy refuses two (the first host wins)
    has_default = False
    for service, port, tls in chosen:
        for chain in tcproute.service_chains(proxy, push, service, port, tls=tls):
            server_names = chain.server_names
            if not server_names and sni_services:
                server_names = (service.hostname,)
            match: dict[str, Any] = {}
            if server_names:
                match["server_names"] = list(server_names)
            if chain.destination_prefixes:
                match["prefix_ranges"] = [_cidr(p) for p in chain.destination_prefixes]
            key = repr(sorted(match.items()))
            if key in taken:
                continue
            taken.add(key)
            has_default = has_default or not match
            entry: dict[str, Any] = {"filters": [chain.filter()]}
            if match:
                entry["filter_chain_match"] = match
            chains.append(entry)
    if not has_default and sni_services:
        # A TLS connection to this port naming no registered host: the outbound policy's.
        fallback = (
            names.PASSTHROUGH_CLUSTER if policy == capture.ALLOW_ANY else names.BLACKHOLE_CLUSTER
        )
        chains.append({"filters": [tcproute.tcp_proxy([(fallback, 100)])]})
    return chains


def _tcp_listener(address: str, port: int, chains: list[dict[str, Any]]) -> dict[str, Any]:
    listener = _listener(names.listener_name(address, port), address, port)
    listener["filter_chains"] = chains
    if any("server_names" in c.get("filter_chain_match", {}) for c in chains):
        listener["listener_filters"] = [listeners.TLS_INSPECTOR]
    return listener


def _listener(name: str, address: str, port: int, *, bind: bool = False) -> dict[str, Any]:
    listener: dict[str, Any] = {
        "name": name,
        "address": {"socket_address": {"address": address, "port_value": port}},
        "traffic_direction": "OUTBOUND",
    }
    if not bind:
        listener["bind_to_port"] = False
    return listener


def _cidr(block: str) -> dict[str, Any]:
    address, _, length = block.partition("/")
    return {"address_prefix": address, "prefix_len": int(length or 32)}
