"""LDS for a captured sidecar's inbound traffic: `virtualInbound`, as Istio generates it.

iptables sends every inbound TCP connection to 0.0.0.0:15006; the `original_dst` listener
filter restores the port the caller meant, and a filter chain per port the workload serves
(`destination_port`, Istio's chain name `0.0.0.0_<port>`) takes it: an HTTP port through an
HTTP connection manager (the workload's authentication and authorization filters, its
routes inline, `inbound|<port>||`), a TCP port through a tcp_proxy to `inbound|<port>||`.
Ports no service declares go to `InboundPassthroughCluster`, to the original destination from
127.0.0.6, a source iptables leaves alone (the app sees a local peer, and the connection is
not captured again). A connection to 15006 itself is dropped (`virtualInbound-blackhole`).

A port without a protocol (sniffed, sniffing.py) gets both: an HTTP chain for what the HTTP
inspector finds to be HTTP (under mTLS: what the client's sidecar offers as `istio-http/*`)
and TCP chains for the rest; the HTTP inspector runs for those ports only.

Each port's PeerAuthentication mode says what its chains accept: STRICT mutual TLS only,
PERMISSIVE both (told apart by the TLS inspector), DISABLE plaintext. The passthrough chains
take the workload's mode without a port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pilot.model.service import Endpoint
from pilot.networking import listeners, names, security, sniffing, tcproute

WILDCARD = "0.0.0.0"
_ORIGINAL_DST = {
    "name": "envoy.filters.listener.original_dst",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
    },
}


def virtual_inbound(
    endpoints: Iterable[Endpoint],
    mode_of: Callable[[int | None], str],
    *,
    trust_domain: str,
    http_filters: Sequence[dict[str, Any]],
    network_filters: Sequence[dict[str, Any]] = (),
    transparent: bool = False,
    detection_timeout: str = "0s",
) -> dict[str, Any]:
    """`mode_of(port)`: the PeerAuthentication mode of a port (None: the workload's).
    `http_filters` go in each HTTP chain's connection manager, `network_filters` (the
    network RBAC filters) before the tcp_proxy of each TCP and passthrough chain;
    `detection_timeout` bounds the HTTP inspector's wait (MeshConfig protocolDetectionTimeout)."""
    by_port: dict[int, Endpoint] = {}
    for endpoint in endpoints:
        by_port.setdefault(endpoint.port, endpoint)
    chains: list[dict[str, Any]] = [
        {
            "name": names.VIRTUAL_INBOUND_BLACKHOLE,
            "filter_chain_match": {"destination_port": names.INBOUND_PORT},
            "filters": [tcproute.tcp_proxy([(names.BLACKHOLE_CLUSTER, 100)])],
        }
    ]
    modes = []
    for port, endpoint in sorted(by_port.items()):
        mode = mode_of(port)
        modes.append(mode)
        chains += _port_chains(port, endpoint, mode, trust_domain, http_filters, network_filters)
    passthrough_mode = mode_of(None)
    modes.append(passthrough_mode)
    # Istio authorizes the passthrough chains too: a policy covers ports no Service declares.
    passthrough = [
        *network_filters,
        tcproute.tcp_proxy([(names.INBOUND_PASSTHROUGH_CLUSTER, 100)]),
    ]
    chains += _secured(names.VIRTUAL_INBOUND, {}, passthrough, passthrough, passthrough_mode,
                       trust_domain)  # fmt: skip
    listener: dict[str, Any] = {
        "name": names.VIRTUAL_INBOUND,
        "address": {"socket_address": {"address": WILDCARD, "port_value": names.INBOUND_PORT}},
        "traffic_direction": "INBOUND",
        "filter_chains": chains,
        "listener_filters": [_ORIGINAL_DST],
        # Istio's: a connection that never says whether it is TLS still gets a chain.
        "continue_on_listener_filters_timeout": True,
    }
    if {security.PERMISSIVE, security.STRICT} & set(modes):
        # The chains match on the transport protocol, which only the TLS inspector tells.
        listener["listener_filters"].append(listeners.TLS_INSPECTOR)
    sniffed = sorted(p for p, e in by_port.items() if e.service_port.protocol.is_sniffed)
    if sniffed:
        listener["listener_filters"].append(_http_inspector_on(sniffed))
        listener["listener_filters_timeout"] = detection_timeout
    if transparent:
        listener["transparent"] = True
    return listener


def _http_inspector_on(ports: Sequence[int]) -> dict[str, Any]:
    """The HTTP inspector for these destination ports only (Istio's
    listenerPredicateIncludePorts): elsewhere it would hold up a server that speaks first."""
    ranges = [{"destination_port_range": {"start": p, "end": p + 1}} for p in ports]
    chosen = ranges[0] if len(ranges) == 1 else {"or_match": {"rules": ranges}}
    return {**sniffing.HTTP_INSPECTOR, "filter_disabled": {"not_match": chosen}}


def _port_chains(
    port: int,
    endpoint: Endpoint,
    mode: str,
    trust_domain: str,
    http_filters: Sequence[dict[str, Any]],
    network_filters: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    name = names.listener_name(WILDCARD, port)
    match = {"destination_port": port}
    tcp = [*network_filters, tcproute.tcp_proxy([(names.inbound_cluster(port), 100)])]
    protocol = endpoint.service_port.protocol
    if not protocol.is_http and not protocol.is_sniffed:
        return _secured(name, match, tcp, tcp, mode, trust_domain)
    route_config = {
        "name": names.inbound_cluster(port),
        "virtual_hosts": [
            {
                "name": f"inbound|http|{port}",
                "domains": ["*"],
                "routes": [listeners.inbound_route(port)],
            }
        ],
        "validate_clusters": False,
    }
    stat_prefix = f"inbound_{WILDCARD}_{port}"
    filters = [*http_filters, listeners.ROUTER]
    plain = [listeners.inbound_hcm(stat_prefix, route_config, filters)]
    mutual = [listeners.inbound_hcm(stat_prefix, route_config, filters, client_certs=True)]
    if protocol.is_sniffed:
        return _sniffed(name, match, plain, mutual, tcp, mode, trust_domain)
    return _secured(name, match, plain, mutual, mode, trust_domain)


def _sniffed(
    name: str,
    match: dict[str, Any],
    http_plain: list[dict[str, Any]],
    http_mutual: list[dict[str, Any]],
    tcp: list[dict[str, Any]],
    mode: str,
    trust_domain: str,
) -> list[dict[str, Any]]:
    """A sniffed port's chains under its mTLS mode, in the order and with the matches of
    Istio's ListenerProtocolAuto options: HTTP before TCP, and under PERMISSIVE a last
    chain that passes a TLS connection no Istio sidecar made (its own TLS) on untouched."""
    tls = security.downstream_tls(trust_domain)
    plain_http = {"name": name, "filters": http_plain,
                  "filter_chain_match": sniffing.http_chain_match(match)}  # fmt: skip
    mtls_http: dict[str, Any] = {
        "name": name,
        "filter_chain_match": {**match, "transport_protocol": sniffing.TLS,
                               "application_protocols": list(sniffing.MTLS_HTTP_ALPNS)},
        "filters": http_mutual,
        "transport_socket": tls,
    }  # fmt: skip
    plain_tcp = {"name": name, "filters": tcp,
                 "filter_chain_match": {**match, "transport_protocol": sniffing.RAW_BUFFER}}  # fmt: skip
    mtls_tcp: dict[str, Any]
    if mode == security.STRICT:
        mtls_tcp = {"name": name, "filters": tcp, "transport_socket": tls,
                    "filter_chain_match": {**match, "transport_protocol": sniffing.TLS}}  # fmt: skip
        return [mtls_http, mtls_tcp]
    if mode == security.PERMISSIVE:
        mtls_tcp = {
            "name": name,
            "filter_chain_match": {**match, "transport_protocol": sniffing.TLS,
                                   "application_protocols": list(sniffing.MTLS_TCP_ALPNS)},
            "filters": tcp,
            "transport_socket": tls,
        }  # fmt: skip
        own_tls = {"name": name, "filters": tcp,
                   "filter_chain_match": {**match, "transport_protocol": sniffing.TLS}}  # fmt: skip
        return [mtls_http, plain_http, mtls_tcp, plain_tcp, own_tls]
    return [plain_http, plain_tcp]


def _secured(
    name: str,
    match: dict[str, Any],
    plain: list[dict[str, Any]],
    mutual: list[dict[str, Any]],
    mode: str,
    trust_domain: str,
) -> list[dict[str, Any]]:
    """The chains of one port under its mTLS mode."""
    tls_chain: dict[str, Any] = {
        "name": name,
        "filters": mutual,
        "transport_socket": security.downstream_tls(trust_domain),
    }
    plain_chain: dict[str, Any] = {"name": name, "filters": plain}
    if mode == security.STRICT:
        chains = [{**tls_chain, "filter_chain_match": {**match, "transport_protocol": "tls"}}]
    elif mode == security.PERMISSIVE:
        chains = [
            {**tls_chain, "filter_chain_match": {**match, "transport_protocol": "tls"}},
            {**plain_chain, "filter_chain_match": {**match, "transport_protocol": "raw_buffer"}},
        ]
    else:
        chains = [{**plain_chain, "filter_chain_match": match} if match else plain_chain]
    return [c if c.get("filter_chain_match") else _without_match(c) for c in chains]


def _without_match(chain: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in chain.items() if k != "filter_chain_match"}
