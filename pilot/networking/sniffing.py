"""Protocol sniffing: a port that declares no protocol (Istio's "auto", `Protocol.UNSUPPORTED`).

Istio does not guess per port but per connection. A captured sidecar's listener for such a
port runs Envoy's HTTP inspector, which reads the first bytes a client sends and, if they
are an HTTP/1.x request line or HTTP/2's preface, sets the connection's application protocol
to `http/1.1` (or `http/1.0`) or `h2c`. The listener then has two filter chains:

- `application_protocols: [http/1.1, h2c]` (plaintext only): an HTTP connection manager,
  so the port's VirtualService HTTP routes, retries, timeouts and faults apply;
- everything else: the tcp_proxy a TCP port would have (its `tcp` routes, else the service).

Outbound (`buildSidecarOutboundListeners`, ListenerProtocolAuto) the HTTP chain's routes
come from RDS: for a service with its own address a table just for it, `<host>:<port>`, its
one virtual host matching every Host (Istio's `getVirtualHostsForSniffedServicePort`);
without one the port's shared table. Inbound, under mTLS the chains also tell HTTP from TCP
by the ALPN the client's sidecar offers (Istio's `istio-http/1.0`, `istio-http/1.1`,
`istio-h2` for HTTP, `istio` or `istio-peer-exchange` or none for TCP), as
`getFilterChainMatchOptions` lays them out for ListenerProtocolAuto.

Istio's client sidecars offer `istio-http/1.1` for HTTP with its own `istio.alpn` filter,
which stock Envoy lacks; here the sniffed port's outbound HTTP chain sets Envoy's well-known
filter state `envoy.network.application_protocols` (the set_filter_state filter), which
overrides the cluster's ALPN (`istio`) on the upstream mTLS connection. The cluster of a
sniffed port speaks HTTP/1.1 upstream, so that is the one ALPN it offers.

The inspector waits for the client to speak. As Istio, the listener has no timeout for that
unless MeshConfig `protocolDetectionTimeout` sets one, and if it runs out the connection
goes on (`continue_on_listener_filters_timeout`) as TCP.
"""

from __future__ import annotations

from typing import Any

from api.mesh.v1alpha1 import config_pb2

HTTP_INSPECTOR: dict[str, Any] = {
    "name": "envoy.filters.listener.http_inspector",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3."
        "HttpInspector"
    },
}
# Istio's plaintextHTTPALPNs without HTTP/1.0 (its default: an HTTP/1.0 request matched as
# HTTP would be refused; left unmatched it at least passes as TCP).
PLAINTEXT_HTTP_ALPNS = ("http/1.1", "h2c")
# What an Istio client sidecar offers over mTLS for HTTP, and for anything.
MTLS_HTTP_ALPNS = ("istio-http/1.0", "istio-http/1.1", "istio-h2")
MTLS_TCP_ALPNS = ("istio-peer-exchange", "istio")
RAW_BUFFER = "raw_buffer"
TLS = "tls"


# Before the fault filter, as Istio puts istio.alpn first.
ALPN_OVERRIDE: dict[str, Any] = {
    "name": "envoy.filters.http.set_filter_state",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
        "on_request_headers": [
            {
                "object_key": "envoy.network.application_protocols",
                "format_string": {"text_format_source": {"inline_string": "istio-http/1.1"}},
            }
        ],
    },
}


def detection_timeout(mesh: config_pb2.MeshConfig) -> str:
    """MeshConfig `protocolDetectionTimeout` as Envoy's duration; `0s` (none) by default."""
    if not mesh.HasField("protocol_detection_timeout"):
        return "0s"
    timeout = mesh.protocol_detection_timeout
    return f"{timeout.seconds + timeout.nanos / 1e9:.9f}".rstrip("0").rstrip(".") + "s"


def http_chain_match(base: dict[str, Any]) -> dict[str, Any]:
    """The plaintext HTTP chain's match: `base` (ports, prefixes) and what the inspector saw."""
    return {
        **base,
        "transport_protocol": RAW_BUFFER,
        "application_protocols": list(PLAINTEXT_HTTP_ALPNS),
    }


def tcp_chain(chain: dict[str, Any]) -> dict[str, Any]:
    """A TCP chain of a sniffed listener, matching `raw_buffer` as its HTTP chain does.

    Envoy (1.40, measured) reads a plaintext connection's transport protocol as `raw_buffer`
    whether or not an inspector said so; its filter chain match then keeps only the chains
    naming `raw_buffer`, and a TCP chain without it would never be chosen (the connection
    reset for want of a chain)."""
    match = {**chain.get("filter_chain_match", {}), "transport_protocol": RAW_BUFFER}
    return {**chain, "filter_chain_match": match}


def sniff_listener(listener: dict[str, Any], mesh: config_pb2.MeshConfig) -> dict[str, Any]:
    """`listener` with the HTTP inspector after its other listener filters (the TLS
    inspector, which must decide first: the HTTP inspector leaves TLS alone) and Istio's
    detection timeout."""
    listener["listener_filters"] = [*listener.get("listener_filters", []), HTTP_INSPECTOR]
    listener["listener_filters_timeout"] = detection_timeout(mesh)
    listener["continue_on_listener_filters_timeout"] = True
    return listener


def route_name(hostname: str, address: str, port: int, wildcard: str) -> str:
    """The RDS table of a sniffed port's HTTP chain: the service's own (`<host>:<port>`)
    when it has an address, else the port's shared table."""
    return f"{hostname}:{port}" if address != wildcard else str(port)
