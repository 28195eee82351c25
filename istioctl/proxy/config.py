"""proxy-status and proxy-config: what Pilot sent each proxy, and what each Envoy holds.

`proxy-status` reads Pilot's sync status (`/debug/syncz`); `proxy-config` reads one
Envoy's admin API directly, finding the pod's address from Pilot or, if Pilot is away,
from the pod's WorkloadEntry, so it still works while the control plane is down.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from istioctl.proxy.admin import ProxyError, admin_config, pilot_status, pod_address, split_pod
from istioctl.resources.printing import grid

_TYPES = ("CDS", "LDS", "EDS", "RDS")


def proxy_status(args: argparse.Namespace) -> int:
    try:
        status = pilot_status(args)
    except ProxyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    proxies = status["proxies"]
    if args.pod:
        pod, namespace = split_pod(args.pod, args)
        proxies = [p for p in proxies if p["pod"] == pod and p["namespace"] == namespace]
        if not proxies:
            print(f'error: proxy "{pod}.{namespace}" is not connected to Pilot', file=sys.stderr)
            return 1
    if args.output == "json":
        print(json.dumps(proxies if not args.pod else proxies[0], indent=2))
        return 0
    if args.pod:
        (proxy,) = proxies
        rows = []
        for name in _TYPES:
            t = proxy["types"].get(name, {})
            rows.append([name, t.get("state", "NOT SENT"), t.get("version_sent") or "-", t.get("version_acked") or "-",
                         str(t.get("nacks", 0)), t.get("last_nack_message") or ""])  # fmt: skip
        print(grid(["TYPE", "STATE", "SENT", "ACKED", "NACKS", "LAST NACK"], rows), end="")
        return 0
    rows = [
        [f"{p['pod']}.{p['namespace']}"]
        + [p["types"].get(t, {}).get("state", "NOT SENT") for t in _TYPES]
        + [str(sum(t.get("nacks", 0) for t in p["types"].values())), p.get("proxy_type", "")]
        for p in sorted(proxies, key=lambda p: (p["namespace"], p["pod"]))
    ]
    print(grid(["NAME", *_TYPES, "NACKS", "TYPE"], rows), end="")
    return 0


def proxy_config(args: argparse.Namespace) -> int:
    pod, namespace = split_pod(args.pod, args)
    try:
        address = pod_address(args, pod, namespace)
        data = admin_config(address, args.config_type)
    except ProxyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    items, render = _VIEWS[args.config_type](data)
    items = [item for item in items if _wanted(args, item)]
    if args.output == "json":
        print(json.dumps([item["raw"] for item in items], indent=2))
    else:
        print(render(items), end="")
    return 0


def _wanted(args: argparse.Namespace, item: dict[str, Any]) -> bool:
    return all(
        value is None or item.get(key) == value
        for key, value in (
            ("fqdn", args.fqdn),
            ("port", args.port),
            ("subset", args.subset),
            ("name", args.name),
        )
    )


def _clusters(
    data: dict[str, Any],
) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]]], str]]:
    items = []
    for entry in data.get("configs", []):
        cluster = entry.get("cluster", {})
        name = cluster.get("name", "")
        parts = name.split("|")
        direction, port, subset, fqdn = parts if len(parts) == 4 else ("", "", "", name)
        items.append({"raw": entry, "fqdn": fqdn, "port": int(port) if port.isdigit() else None,
                      "subset": subset, "direction": direction, "type": cluster.get("type", "")})  # fmt: skip
    items.sort(key=lambda i: (i["fqdn"], i["port"] or 0, i["subset"]))

    def render(rows: list[dict[str, Any]]) -> str:
        return grid(["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"],
                     [[i["fqdn"], str(i["port"] or "-"), i["subset"] or "-", i["direction"] or "-", i["type"]] for i in rows])  # fmt: skip

    return items, render


def _listeners(
    data: dict[str, Any],
) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]]], str]]:
    items = []
    for entry in data.get("configs", []):
        listener = entry.get("active_state", {}).get("listener", {})
        socket = listener.get("address", {}).get("socket_address", {})
        filters = [
            f.get("name", "")
            for chain in listener.get("filter_chains", [])
            for f in chain.get("filters", [])
        ]
        items.append({"raw": entry, "name": listener.get("name", entry.get("name", "")), "address": socket.get("address", ""),
                      "port": socket.get("port_value"), "kind": "HTTP" if any("http_connection_manager" in f for f in filters) else "TCP"})  # fmt: skip

    def render(rows: list[dict[str, Any]]) -> str:
        return grid(
            ["NAME", "ADDRESS", "PORT", "TYPE"],
            [[i["name"], i["address"], str(i["port"]), i["kind"]] for i in rows],
        )

    return items, render


def _routes(
    data: dict[str, Any],
) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]]], str]]:
    items = []
    for entry in data.get("configs", []):
        config = entry.get("route_config", {})
        for host in config.get("virtual_hosts", []):
            items.append({"raw": entry, "name": config.get("name", ""), "host": host.get("name", ""),
                          "domains": host.get("domains", []), "routes": host.get("routes", [])})  # fmt: skip

    def render(rows: list[dict[str, Any]]) -> str:
        out = []
        for i in rows:
            for route in i["routes"]:
                action = route.get("route", {})
                target = action.get("cluster") or ", ".join(
                    f"{c['name']} ({c.get('weight', 0)})"
                    for c in action.get("weighted_clusters", {}).get("clusters", [])
                )
                if "direct_response" in route:
                    target = f"direct response {route['direct_response'].get('status')}"
                if "redirect" in route:
                    target = "redirect"
                out.append([i["name"], i["host"], _describe_match(route.get("match", {})), target])
        return grid(["NAME", "VIRTUAL HOST", "MATCH", "DESTINATION"], out)

    return items, render


def _describe_match(match: dict[str, Any]) -> str:
    path = match.get("path") or (match.get("prefix", "") + "*" if "prefix" in match else "")
    if "safe_regex" in match:
        path = f"~{match['safe_regex'].get('regex', '')}"
    headers = [
        f"{h['name']}={next(iter(h.get('string_match', {}).values()), '*')}"
        for h in match.get("headers", [])
    ]
    return " ".join([path, *headers])


def _endpoints(
    data: dict[str, Any],
) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]]], str]]:
    items = []
    for cluster in data.get("cluster_statuses", []):
        name = cluster.get("name", "")
        parts = name.split("|")
        for host in cluster.get("host_statuses", []):
            socket = host.get("address", {}).get("socket_address", {})
            health = host.get("health_status", {}).get("eds_health_status", "HEALTHY")
            items.append({"raw": host, "cluster": name, "fqdn": parts[3] if len(parts) == 4 else name,
                          "port": int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None,
                          "subset": parts[2] if len(parts) == 4 else "",
                          "endpoint": f"{socket.get('address')}:{socket.get('port_value')}", "status": health})  # fmt: skip

    def render(rows: list[dict[str, Any]]) -> str:
        return grid(
            ["ENDPOINT", "STATUS", "CLUSTER"],
            [[i["endpoint"], i["status"], i["cluster"]] for i in rows],
        )

    return items, render


def _secrets(
    data: dict[str, Any],
) -> tuple[list[dict[str, Any]], Callable[[list[dict[str, Any]]], str]]:
    """Envoy's /certs: every certificate in use, as the workload's chain and the trusted roots."""
    items = []
    for entry in data.get("certificates", []):
        for kind, certs in (
            ("Cert Chain", entry.get("cert_chain") or []),
            ("ROOTCA", entry.get("ca_cert") or []),
        ):
            for cert in certs:
                sans = [next(iter(san.values())) for san in cert.get("subject_alt_names", [])]
                items.append(
                    {
                        "raw": cert,
                        "kind": kind,
                        "identity": ", ".join(sans) or "-",
                        "serial": cert.get("serial_number", ""),
                        "not_before": cert.get("valid_from", ""),
                        "not_after": cert.get("expiration_time", ""),
                    }
                )
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in items:  # every TLS context lists the same certificates again
        key = (item["kind"], item["serial"])
        if key not in seen:
            seen.add(key)
            unique.append(item)

    def render(rows: list[dict[str, Any]]) -> str:
        return grid(
            ["RESOURCE", "IDENTITY", "SERIAL NUMBER", "NOT BEFORE", "NOT AFTER"],
            [
                [i["kind"], i["identity"], i["serial"], i["not_before"], i["not_after"]]
                for i in rows
            ],
        )

    return unique, render


_VIEWS = {
    "cluster": _clusters,
    "listener": _listeners,
    "route": _routes,
    "endpoint": _endpoints,
    "secret": _secrets,
}
