"""proxy-status and proxy-config: what Pilot sent each proxy, and what each Envoy holds.

`proxy-status` reads Pilot's sync status (`/debug/syncz`); `proxy-config` reads one
Envoy's admin API directly, finding the pod's address from Pilot or, if Pilot is away,
from the pod's WorkloadEntry, so it still works while the control plane is down.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from istioctl.cmd.printing import grid
from pkg.config.kinds import ALL
from pkg.kube import errors
from pkg.kube.client import ConfigClient

DEFAULT_PILOT = "http://127.0.0.1:15014"
ADMIN_PORT = 15000
_TYPES = ("CDS", "LDS", "EDS", "RDS")


class ProxyError(Exception):
    pass


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    status = subparsers.add_parser(
        "proxy-status",
        aliases=["ps"],
        parents=parents,
        help="the sync state of every proxy Pilot serves",
        description="Per proxy and xDS type: SYNCED, STALE (sent, not yet acknowledged), "
        "NACKED (Envoy rejected the last push and keeps its last good config) or NOT SENT.",
    )
    status.add_argument("pod", nargs="?", help="<pod>[.<namespace>]: details of one proxy")
    status.add_argument("-o", "--output", choices=("short", "json"), default="short")
    _add_pilot_flag(status)
    status.set_defaults(handler=_proxy_status)

    config = subparsers.add_parser(
        "proxy-config",
        aliases=["pc"],
        parents=parents,
        help="the config one Envoy holds, from its admin API",
    )
    kinds = config.add_subparsers(title="config types", metavar="TYPE", required=True)
    for kind, summary in (
        ("cluster", "clusters (outbound|port|subset|host)"),
        ("listener", "listeners"),
        ("route", "route tables and their virtual hosts"),
        ("endpoint", "endpoints Envoy balances over, with health"),
        (
            "secret",
            "the certificates Envoy holds (from the node agent over SDS): identity, validity",
        ),
    ):
        sub = kinds.add_parser(kind, aliases=[kind + "s"], parents=parents, help=summary)
        sub.add_argument("pod", help="<pod>[.<namespace>]")
        sub.add_argument("-o", "--output", choices=("short", "json"), default="short")
        sub.add_argument("--fqdn", help="only this service hostname")
        sub.add_argument("--port", type=int, help="only this port")
        sub.add_argument("--subset", help="only this subset")
        sub.add_argument("--name", help="only the listener or route table of this name")
        _add_pilot_flag(sub)
        sub.set_defaults(handler=_proxy_config, config_type=kind)


def _add_pilot_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pilot",
        metavar="URL",
        default=None,
        help=f"Pilot's HTTP address (default: $ISTIO_PILOT, else {DEFAULT_PILOT})",
    )


async def _proxy_status(args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            status = await _pilot_status(session, _pilot_url(args))
        except ProxyError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    proxies = status["proxies"]
    if args.pod:
        pod, namespace = _target(args)
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


async def _proxy_config(args: argparse.Namespace) -> int:
    pod, namespace = _target(args)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        try:
            address = await pod_address(session, args, pod, namespace)
            data = await admin_config(session, address, args.config_type)
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


def _target(args: argparse.Namespace) -> tuple[str, str]:
    return split_pod(args.pod, args)


def split_pod(target: str, args: argparse.Namespace) -> tuple[str, str]:
    """`<pod>[.<namespace>]`, the namespace defaulting to -n, then `default`."""
    pod, dot, namespace = target.partition(".")
    return pod, (namespace if dot else getattr(args, "namespace", None) or "default")


def _pilot_url(args: argparse.Namespace) -> str:
    return (args.pilot or os.environ.get("ISTIO_PILOT") or DEFAULT_PILOT).rstrip("/")


async def _pilot_status(session: aiohttp.ClientSession, pilot: str) -> dict[str, Any]:
    try:
        async with session.get(
            f"{pilot}/debug/syncz", timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            response.raise_for_status()
            return await response.json()
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ProxyError(
            f"cannot reach Pilot at {pilot}: {error or type(error).__name__} (see --pilot, ISTIO_PILOT)"
        ) from None


async def pod_address(
    session: aiohttp.ClientSession, args: argparse.Namespace, pod: str, namespace: str
) -> str:
    try:
        status = await _pilot_status(session, _pilot_url(args))
        for proxy in status["proxies"]:
            if proxy["pod"] == pod and proxy["namespace"] == namespace:
                return proxy["ip"]
    except ProxyError:
        pass  # Pilot is away; the pod's WorkloadEntry still says where it lives
    async with ConfigClient(args.config_store) as client:
        try:
            entry = await client.get(
                ALL.by_kind("networking.istio.io/v1alpha3", "WorkloadEntry"), pod, namespace
            )
        except (errors.NotFound, errors.Unavailable):
            raise ProxyError(
                f'pod "{pod}.{namespace}" not found (neither connected to Pilot nor registered)'
            ) from None
    return entry.spec.address


async def admin_config(
    session: aiohttp.ClientSession, address: str, config_type: str
) -> dict[str, Any]:
    if config_type == "endpoint":
        path, params = "/clusters", {"format": "json"}
    elif config_type == "secret":
        path, params = "/certs", {}
    elif config_type == "endpoint-config":
        path, params = (
            "/config_dump",
            {"resource": "dynamic_endpoint_configs", "include_eds": "true"},
        )
    else:
        resource = {
            "cluster": "dynamic_active_clusters",
            "listener": "dynamic_listeners",
            "route": "dynamic_route_configs",
        }
        path, params = "/config_dump", {"resource": resource[config_type]}
    url = f"http://{address}:{ADMIN_PORT}{path}"
    try:
        async with session.get(url, params=params) as response:
            response.raise_for_status()
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ProxyError(
            f"cannot read Envoy's admin at {url}: {error or type(error).__name__}"
        ) from None


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
