"""authn tls-check: which TLS mode really applies between two pods, read from their Envoys.

The answer comes from what each Envoy holds, not from the policies: the client's cluster
for the server's service (ISTIO_MUTUAL, auto mTLS and whether the server's endpoint is
marked for it, or plaintext) and the server's inbound listener (STRICT, PERMISSIVE or
DISABLE). A client sending plaintext to a STRICT server, or mTLS to a DISABLE one, is a
CONFLICT: those requests fail.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from istioctl.proxy.admin import ProxyError, admin_config, pod_address, split_pod
from istioctl.resources.printing import grid


def tls_check(args: argparse.Namespace) -> int:
    try:
        client_ip = pod_address(args, *split_pod(args.client, args))
        server_ip = pod_address(args, *split_pod(args.server, args))
        clusters = admin_config(client_ip, "cluster")
        endpoints = admin_config(client_ip, "endpoint-config")
        listeners = admin_config(server_ip, "listener")
    except ProxyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    server_mode = _server_mode(listeners)
    rows = []
    for cluster_name, marked in _clusters_reaching(endpoints, server_ip):
        cluster = _find_cluster(clusters, cluster_name)
        client_mode = _client_mode(cluster, marked)
        _, port, _, host = cluster_name.split("|")
        rows.append([f"{host}:{port}", client_mode, server_mode, _status(client_mode, server_mode)])
    if not rows:
        print(
            f"error: {args.client} has no cluster with an endpoint at {args.server} ({server_ip})",
            file=sys.stderr,
        )
        return 1
    print(grid(["HOST:PORT", "CLIENT", "SERVER", "STATUS"], rows), end="")
    return 0


def _server_mode(dump: dict[str, Any]) -> str:
    listeners = [e.get("active_state", {}).get("listener", {}) for e in dump.get("configs", [])]
    return server_mode_of(listeners)


def server_mode_of(listeners: list[dict[str, Any]]) -> str:
    """STRICT, PERMISSIVE or DISABLE, as the inbound listener's filter chains enforce it."""
    for listener in listeners:
        if listener.get("name") != "virtualInbound":
            continue
        chains = listener.get("filter_chains", [])
        tls = [c for c in chains if "transport_socket" in c]
        if not tls:
            return "DISABLE"
        return "STRICT" if len(tls) == len(chains) else "PERMISSIVE"
    return "NO SIDECAR"


def _clusters_reaching(dump: dict[str, Any], ip: str) -> list[tuple[str, bool]]:
    """Default-subset outbound clusters with an endpoint at `ip`, and whether EDS marks it for mTLS."""
    found = []
    for entry in dump.get("configs", []):
        assignment = entry.get("endpoint_config", {})
        name = assignment.get("cluster_name", "")
        parts = name.split("|")
        if len(parts) != 4 or parts[0] != "outbound" or parts[2]:
            continue
        for locality in assignment.get("endpoints", []):
            for lb in locality.get("lb_endpoints", []):
                address = (
                    lb.get("endpoint", {})
                    .get("address", {})
                    .get("socket_address", {})
                    .get("address")
                )
                if address == ip:
                    metadata = lb.get("metadata", {}).get("filter_metadata", {})
                    marked = (
                        metadata.get("envoy.transport_socket_match", {}).get("tlsMode") == "istio"
                    )
                    found.append((name, marked))
    return sorted(found)


def _find_cluster(dump: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in dump.get("configs", []):
        cluster = entry.get("cluster", {})
        if cluster.get("name") == name:
            return cluster
    return {}


def _client_mode(cluster: dict[str, Any], marked: bool) -> str:
    if "tls" in cluster.get("transport_socket", {}).get("name", ""):
        return "ISTIO_MUTUAL"
    if cluster.get("transport_socket_matches"):
        return "AUTO (mTLS)" if marked else "AUTO (plaintext)"
    return "PLAINTEXT"


def _status(client: str, server: str) -> str:
    mutual = client in ("ISTIO_MUTUAL", "AUTO (mTLS)")
    if (mutual and server == "DISABLE") or (not mutual and server == "STRICT"):
        return "CONFLICT"
    return "OK (mTLS)" if mutual else "OK (plaintext)"
