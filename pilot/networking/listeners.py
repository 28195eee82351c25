"""LDS: the sidecar's outbound (HTTP proxy) and inbound listeners, and gateway listeners."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pilot.model.service import Endpoint
from pilot.networking import names, security

HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
_FAULT = {
    "name": "envoy.filters.http.fault",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    },
}
_ADS = {"ads": {}, "resource_api_version": "V3"}
_TLS_INSPECTOR = {
    "name": "envoy.filters.listener.tls_inspector",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
    },
}


def gateway_listen_port(server_port: int) -> int:
    """Ports below 1024 need root: like Istio's gateway pods, 80 listens on 8080 and so on."""
    return server_port + 8000 if server_port < 1024 else server_port


def sidecar_listeners(
    ip: str,
    inbound: Iterable[Endpoint],
    *,
    mtls_mode: str = security.DISABLE,
    trust_domain: str = "cluster.local",
    authz_filters: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The outbound listener (the app's HTTP proxy) and the inbound listener in front of the app.

    `mtls_mode` is the workload's PeerAuthentication mode, already DISABLE for a proxy that
    has no certificates: STRICT takes only mutual TLS, PERMISSIVE tells TLS from plaintext
    per connection (the TLS inspector) and takes both.
    """
    outbound = _listener(
        names.VIRTUAL_OUTBOUND,
        ip,
        names.OUTBOUND_PORT,
        "OUTBOUND",
        [
            {
                "filters": [
                    _hcm(
                        f"outbound_0.0.0.0_{names.OUTBOUND_PORT}",
                        rds=names.HTTP_PROXY_ROUTE,
                        filters=[_FAULT, _ROUTER],
                    )
                ]
            }
        ],
    )
    routes = _inbound_routes(list(inbound))
    filters = [*authz_filters, _ROUTER]
    stat_prefix = f"inbound_0.0.0.0_{names.INBOUND_PORT}"
    plaintext: dict[str, Any] = {
        "filters": [_hcm(stat_prefix, route_config=routes, filters=filters)]
    }
    mutual: dict[str, Any] = {
        "filters": [_hcm(stat_prefix, route_config=routes, filters=filters, client_certs=True)],
        "transport_socket": security.downstream_tls(trust_domain),
    }
    if mtls_mode == security.STRICT:
        chains = [mutual]
    elif mtls_mode == security.PERMISSIVE:
        chains = [
            {**mutual, "filter_chain_match": {"transport_protocol": "tls"}},
            {**plaintext, "filter_chain_match": {"transport_protocol": "raw_buffer"}},
        ]
    else:
        chains = [plaintext]
    inbound_listener = _listener(names.VIRTUAL_INBOUND, ip, names.INBOUND_PORT, "INBOUND", chains)
    if mtls_mode == security.PERMISSIVE:
        inbound_listener["listener_filters"] = [_TLS_INSPECTOR]
    return [outbound, inbound_listener]


def gateway_listener(
    ip: str, server_port: int, auth_filters: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """`auth_filters`: end-user authentication and authorization, before everything else."""
    port = gateway_listen_port(server_port)
    hcm = gateway_hcm(port, names.gateway_route(port), auth_filters)
    return gateway_listener_of(ip, server_port, [{"filters": [hcm]}])


def gateway_listener_of(ip: str, server_port: int, chains: list[dict[str, Any]]) -> dict[str, Any]:
    """A gateway's listener for a server port, with the filter chains given."""
    port = gateway_listen_port(server_port)
    return _listener(f"0.0.0.0_{port}", ip, port, "OUTBOUND", chains)


def gateway_hcm(
    listen_port: int, route_name: str, auth_filters: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A gateway's HTTP connection manager: the edge, routed by the RDS table named."""
    return _hcm(
        f"outbound_0.0.0.0_{listen_port}",
        rds=route_name,
        filters=[*auth_filters, _FAULT, _ROUTER],
        edge=True,
    )


# Gateways that tell servers apart by SNI read it with the TLS inspector too.
TLS_INSPECTOR = _TLS_INSPECTOR
ROUTER = _ROUTER


def outbound_hcm(
    stat_prefix: str, route_name: str, first: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A sidecar's outbound HTTP connection manager, routed by the RDS table named; `first`:
    HTTP filters before the fault filter."""
    return _hcm(stat_prefix, rds=route_name, filters=[*first, _FAULT, _ROUTER])


def inbound_hcm(
    stat_prefix: str,
    route_config: dict[str, Any],
    filters: Sequence[dict[str, Any]],
    *,
    client_certs: bool = False,
) -> dict[str, Any]:
    """A sidecar's inbound HTTP connection manager, with its route table inline."""
    return _hcm(
        stat_prefix, route_config=route_config, filters=list(filters), client_certs=client_certs
    )


def inbound_route(port: int) -> dict[str, Any]:
    """The one route of an inbound port's table: everything to the app's port."""
    return _inbound_route(port)


def _inbound_routes(endpoints: list[Endpoint]) -> dict[str, Any]:
    """Route inbound requests to the app's port, chosen by the port in the Host header.

    Without iptables there is no original destination port, so the Host (`reviews:9080`)
    says which of the app's ports a caller meant; anything else goes to the first port.
    """
    ports = sorted({e.port for e in endpoints})
    hosts = [
        {
            "name": f"inbound|http|{port}",
            "domains": [f"*:{port}"],
            "routes": [_inbound_route(port)],
        }
        for port in ports
    ]
    if ports:
        hosts.append(
            {"name": "inbound|http|default", "domains": ["*"], "routes": [_inbound_route(ports[0])]}
        )
    return {"name": names.INBOUND_ROUTE, "virtual_hosts": hosts, "validate_clusters": False}


def _inbound_route(port: int) -> dict[str, Any]:
    return {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {"cluster": names.inbound_cluster(port), "timeout": "0s"},
    }


def _listener(
    name: str, ip: str, port: int, direction: str, chains: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": ip, "port_value": port}},
        "traffic_direction": direction,
        "filter_chains": chains,
    }


def _hcm(
    stat_prefix: str,
    *,
    filters: list[dict[str, Any]],
    rds: str | None = None,
    route_config: dict[str, Any] | None = None,
    edge: bool = False,
    client_certs: bool = False,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "http_filters": filters,
        "use_remote_address": edge,
        # Envoy makes an x-request-id when a request has none; sidecars are not the edge,
        # so they keep the one the caller sent and traces join up.
        "generate_request_id": True,
    }
    if client_certs:
        # The app learns who called: the peer's SPIFFE id in x-forwarded-client-cert.
        config["forward_client_cert_details"] = "SANITIZE_SET"
        config["set_current_client_cert_details"] = {"uri": True}
    if rds is not None:
        config["rds"] = {"route_config_name": rds, "config_source": _ADS}
    else:
        config["route_config"] = route_config
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}
