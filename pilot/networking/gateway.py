"""Gateway servers as Envoy listeners: plain HTTP, TLS-terminated HTTPS and TLS passthrough.

The servers of every Gateway selecting a gateway workload are merged by port, as Istio
merges them. A port with plain HTTP servers is one listener with one route table
(`http.<listen port>`). A port with TLS servers is one listener with a filter chain per
server, chosen by the SNI the client sends (the TLS inspector reads it), as Istio builds it:

- `SIMPLE` / `MUTUAL` (protocol HTTPS): TLS ends at the gateway with the server's
  certificate, from files (`serverCertificate`, `privateKey`, `caCertificates`, read by
  the gateway's Envoy) or from the Secret `credentialName` (served by Pilot over SDS,
  credentials.py); requests are routed by the table
  `https.<port>.<portName>.<gatewayName>.<gatewayNamespace>`. MUTUAL requires a client
  certificate signed by the client CA.
- `PASSTHROUGH`: TLS is not ended; the VirtualServices' `tls` routes bound to the gateway
  pick a chain per `sniHosts` and forward the connection whole (tcp_proxy) to their
  destination.

A port whose servers are `TCP` (or `MONGO`, `REDIS`, ... : Istio's opaque protocols) is one
listener with one tcp_proxy: the first `tcp` route of the VirtualServices bound to the
Gateway that matches the port, weighted per connection (Istio's TCP traffic-shifting task
through its ingress gateway); with no such route the port gets no listener.

Not built yet: servers that end TLS for TCP routes (protocol TLS with SIMPLE/MUTUAL),
ISTIO_MUTUAL and AUTO_PASSTHROUGH; such servers get no listener.

A server whose Secret is missing is left out (and reported by `istioctl analyze`, IST0101):
its listener would otherwise wait for a secret that may never come, and the gateway's other
servers keep working. Two servers claiming the same SNI on one port: the first one wins
(Envoy refuses a listener whose chains match the same connections).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from api.networking.v1alpha3 import gateway_pb2
from pilot.model import hostname
from pilot.model.push_context import PushContext
from pilot.networking import credentials, listeners, names, tcproute
from pilot.networking.proxyview import ProxyView

log = logging.getLogger("pilot.networking.gateway")

HTTP_PROTOCOLS = ("HTTP", "HTTP2")
TLS_PROTOCOLS = ("HTTPS", "TLS")
TCP_PROTOCOLS = ("TCP", "MONGO", "REDIS", "MYSQL")
_TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
_TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
_MODES = gateway_pb2.ServerTLSSettings.TLSmode
_VERSIONS = gateway_pb2.ServerTLSSettings.TLSProtocol
# Istio's TLS versions in Envoy's names.
_ENVOY_VERSIONS = {
    "TLSV1_0": "TLSv1_0",
    "TLSV1_1": "TLSv1_1",
    "TLSV1_2": "TLSv1_2",
    "TLSV1_3": "TLSv1_3",
}


@dataclasses.dataclass(frozen=True)
class BoundServer:
    """One server of a Gateway, with the Gateway it belongs to."""

    gateway_name: str
    gateway_namespace: str
    server: gateway_pb2.Server

    @property
    def gateway(self) -> str:
        """`<namespace>/<name>`, as VirtualServices name their gateways once resolved."""
        return f"{self.gateway_namespace}/{self.gateway_name}"

    @property
    def port(self) -> int:
        return self.server.port.number

    @property
    def protocol(self) -> str:
        return self.server.port.protocol.upper()

    @property
    def hosts(self) -> list[str]:
        """The server's hosts without their namespace part (`ns/host`)."""
        return [h.split("/", 1)[-1] for h in self.server.hosts]

    @property
    def mode(self) -> str:
        return _MODES.Name(self.server.tls.mode) if self.server.HasField("tls") else ""

    @property
    def is_plain_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS

    @property
    def terminates_tls(self) -> bool:
        return self.protocol == "HTTPS" and self.mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")

    @property
    def passes_through(self) -> bool:
        return self.protocol in TLS_PROTOCOLS and self.mode == "PASSTHROUGH"

    @property
    def is_tcp(self) -> bool:
        return self.protocol in TCP_PROTOCOLS

    @property
    def https_redirect(self) -> bool:
        return self.server.HasField("tls") and self.server.tls.https_redirect

    def route_name(self) -> str:
        """The RDS table of this server: `http.<listen port>` for plain HTTP (one per port,
        shared), Istio's `https.<port>.<portName>.<gateway>.<namespace>` for HTTPS."""
        if self.is_plain_http:
            return names.gateway_route(listeners.gateway_listen_port(self.port))
        return (
            f"https.{self.port}.{self.server.port.name}.{self.gateway_name}."
            f"{self.gateway_namespace}"
        )


def servers(proxy: ProxyView, push: PushContext) -> list[BoundServer]:
    """Every server of the Gateways that select this gateway, oldest Gateway first."""
    return [
        BoundServer(gateway.metadata.name, gateway.metadata.namespace, server)
        for gateway in push.gateways_for(proxy.labels)
        for server in gateway.spec.servers
    ]


def _is_tls(server: BoundServer) -> bool:
    return server.terminates_tls or server.passes_through


def route_tables(proxy: ProxyView, push: PushContext) -> dict[str, list[BoundServer]]:
    """Every RDS table the gateway's listeners name, with the servers routed by each."""
    tables: dict[str, list[BoundServer]] = {}
    by_port = _by_port(servers(proxy, push))
    for port in sorted(by_port):
        plain, tls = _split(by_port[port])
        for server in plain if not tls else [s for s in tls if s.terminates_tls]:
            tables.setdefault(server.route_name(), []).append(server)
    return tables


def gateway_listeners(
    proxy: ProxyView, push: PushContext, auth_filters: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """One listener per served port; a TLS port's servers as filter chains by SNI."""
    out = []
    by_port = _by_port(servers(proxy, push))
    bound_at: dict[int, int] = {}
    for port in sorted(by_port):
        listen_port = listeners.gateway_listen_port(port)
        if listen_port in bound_at:
            # 443 listens on 8443 (no root): a server port 8443 too would be a second
            # listener on one address, which Envoy refuses with the whole update.
            log.warning(
                "gateway port %d listens on %d, as port %d does: ignored",
                port,
                listen_port,
                bound_at[listen_port],
            )
            continue
        bound_at[listen_port] = port
        plain, tls = _split(by_port[port])
        tcp = [s for s in by_port[port] if s.is_tcp]
        if tcp and not (plain or tls):
            route = next((r for server in tcp for r in tcp_routes(push, server)), None)
            if route is not None:
                out.append(listeners.gateway_listener_of(proxy.ip, port, [{"filters": [route]}]))
            continue
        if tcp:
            log.warning("gateway port %d has TCP and HTTP or TLS servers: TCP ignored", port)
        if not tls:
            out.append(listeners.gateway_listener(proxy.ip, port, auth_filters))
            continue
        if plain:
            log.warning("gateway port %d has HTTP and TLS servers: the HTTP ones are ignored", port)
        chains = _tls_chains(proxy, push, tls, auth_filters)
        if not chains:
            continue  # nothing servable on this port (every credential missing, no routes)
        listener = listeners.gateway_listener_of(proxy.ip, port, chains)
        listener["listener_filters"] = [listeners.TLS_INSPECTOR]
        out.append(listener)
    return out


def _by_port(bound: Iterable[BoundServer]) -> dict[int, list[BoundServer]]:
    by_port: dict[int, list[BoundServer]] = {}
    for server in bound:
        if server.is_plain_http or _is_tls(server) or server.is_tcp:
            by_port.setdefault(server.port, []).append(server)
    return by_port


def _split(bound: list[BoundServer]) -> tuple[list[BoundServer], list[BoundServer]]:
    return [s for s in bound if s.is_plain_http], [s for s in bound if _is_tls(s)]


def _tls_chains(
    proxy: ProxyView,
    push: PushContext,
    bound: list[BoundServer],
    auth_filters: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    listen_port = listeners.gateway_listen_port(bound[0].port)
    chains: list[dict[str, Any]] = []
    claimed: set[tuple[str, ...]] = set()

    def add(server_names: list[str], chain: dict[str, Any], server: BoundServer) -> None:
        key = tuple(sorted(set(server_names)))
        if key in claimed:
            log.warning(
                "gateway %s: port %d already serves %s; server ignored",
                server.gateway,
                server.port,
                list(key) or "every SNI",
            )
            return
        claimed.add(key)
        if key:
            chain["filter_chain_match"] = {"server_names": list(key)}
        chains.append(chain)

    for server in bound:
        if server.terminates_tls:
            socket = downstream_tls(server, proxy.namespace, push)
            if socket is None:
                continue
            hcm = listeners.gateway_hcm(listen_port, server.route_name(), auth_filters)
            sni = [] if "*" in server.hosts else server.hosts
            add(sni, {"filters": [hcm], "transport_socket": socket}, server)
        else:
            for sni, tcp_proxy in passthrough_routes(push, server):
                add(sni, {"filters": [tcp_proxy]}, server)
    # Chains with server names before the catch-all, as Envoy matches the most specific
    # name anyway; the order only makes the config read as it is matched.
    chains.sort(key=lambda c: "filter_chain_match" not in c)
    return chains


def downstream_tls(server: BoundServer, namespace: str, push: PushContext) -> dict[str, Any] | None:
    """The transport socket that ends TLS for `server`; None if its credential is missing."""
    tls = server.server.tls
    mutual = server.mode in ("MUTUAL", "OPTIONAL_MUTUAL")
    common: dict[str, Any] = {"alpn_protocols": ["h2", "http/1.1"]}
    if tls.credential_name:
        credential = tls.credential_name
        if credentials.key_pair(push, namespace, credential) is None:
            log.warning(
                "gateway %s: no certificate and key in Secret %s/%s; server on port %d left out",
                server.gateway,
                namespace,
                credential,
                server.port,
            )
            return None
        common["tls_certificate_sds_secret_configs"] = [
            _ads_secret(credentials.resource_name(credential))
        ]
        if mutual:
            if credentials.client_ca(push, namespace, credential) is None:
                log.warning(
                    "gateway %s: MUTUAL server on port %d has no client CA in %s/%s%s or "
                    "%s/%s; left out",
                    server.gateway,
                    server.port,
                    namespace,
                    credential,
                    credentials.CA_SUFFIX,
                    namespace,
                    credential,
                )
                return None
            common["combined_validation_context"] = {
                "default_validation_context": _san_matchers(tls.subject_alt_names),
                "validation_context_sds_secret_config": _ads_secret(
                    credentials.ca_resource_name(credential)
                ),
            }
    else:
        # Files on the gateway's machine, read by its Envoy (Istio's older file mounts).
        common["tls_certificates"] = [
            {
                "certificate_chain": {"filename": tls.server_certificate},
                "private_key": {"filename": tls.private_key},
            }
        ]
        if mutual:
            common["validation_context"] = {
                "trusted_ca": {"filename": tls.ca_certificates},
                **_san_matchers(tls.subject_alt_names),
            }
    params: dict[str, Any] = {}
    if tls.min_protocol_version:
        params["tls_minimum_protocol_version"] = _envoy_version(tls.min_protocol_version)
    if tls.max_protocol_version:
        params["tls_maximum_protocol_version"] = _envoy_version(tls.max_protocol_version)
    if tls.cipher_suites:
        params["cipher_suites"] = list(tls.cipher_suites)
    if params:
        common["tls_params"] = params
    context: dict[str, Any] = {
        "@type": _TLS_TYPE + "DownstreamTlsContext",
        "common_tls_context": common,
    }
    if server.mode == "MUTUAL":
        context["require_client_certificate"] = True
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def _envoy_version(value: int) -> str:
    return _ENVOY_VERSIONS.get(_VERSIONS.Name(value), "TLS_AUTO")


def _san_matchers(sans: Sequence[str]) -> dict[str, Any]:
    if not sans:
        return {}
    return {
        "match_typed_subject_alt_names": [
            {"san_type": kind, "matcher": {"exact": san}} for san in sans for kind in ("DNS", "URI")
        ]
    }


def _ads_secret(name: str) -> dict[str, Any]:
    """An SDS secret fetched on the gateway's ADS stream, from Pilot (as istiod serves them)."""
    return {"name": name, "sds_config": {"ads": {}, "resource_api_version": "V3"}}


def passthrough_routes(
    push: PushContext, server: BoundServer
) -> list[tuple[list[str], dict[str, Any]]]:
    """(SNI names, tcp_proxy filter) per `tls` route match of the VirtualServices bound to
    the server's Gateway whose sniHosts the server serves."""
    out = []
    for vs in push.virtual_services_for(server.gateway):
        if not any(_host_served(h, server.hosts) for h in vs.resource.spec.hosts):
            continue
        for tls_route in vs.resource.spec.tls:
            clusters = [
                (names.cluster_for(d.destination, vs.namespace, push), d.weight)
                for d in tls_route.route
            ]
            if not clusters:
                continue
            for match in tls_route.match:
                if match.port and match.port != server.port:
                    continue
                if match.gateways and server.gateway not in {
                    g if "/" in g else f"{vs.namespace}/{g}" for g in match.gateways
                }:
                    continue
                sni = [h for h in match.sni_hosts if _host_served(h, server.hosts)]
                if sni:
                    out.append((sni, _tcp_proxy(clusters)))
    return out


def tcp_routes(push: PushContext, server: BoundServer) -> list[dict[str, Any]]:
    """A tcp_proxy filter per `tcp` route of the VirtualServices bound to the server's
    Gateway that applies to its port (no match: every port), in the order Istio takes them."""
    out = []
    for vs in push.virtual_services_for(server.gateway):
        if not any(_host_served(h, server.hosts) for h in vs.resource.spec.hosts):
            continue
        for tcp_route in vs.resource.spec.tcp:
            clusters = [
                (names.cluster_for(d.destination, vs.namespace, push), d.weight)
                for d in tcp_route.route
            ]
            if not clusters:
                continue
            if not tcp_route.match or any(
                _match_applies(m.port, m.gateways, vs.namespace, server) for m in tcp_route.match
            ):
                out.append(tcproute.tcp_proxy(clusters))
    return out


def _match_applies(port: int, gateways: Sequence[str], namespace: str, server: BoundServer) -> bool:
    if port and port != server.port:
        return False
    return not gateways or server.gateway in {
        g if "/" in g else f"{namespace}/{g}" for g in gateways
    }


def _host_served(host: str, server_hosts: Sequence[str]) -> bool:
    return any(hostname.matches(h, host) for h in server_hosts)


def _tcp_proxy(clusters: list[tuple[str, int]]) -> dict[str, Any]:
    config: dict[str, Any] = {"@type": _TCP_PROXY_TYPE, "stat_prefix": clusters[0][0]}
    if len(clusters) == 1:
        config["cluster"] = clusters[0][0]
    else:
        config["weighted_clusters"] = {
            "clusters": [{"name": name, "weight": weight or 1} for name, weight in clusters]
        }
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}
