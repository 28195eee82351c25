"""Reading the mesh's debug endpoints: Pilot's (15014), each Envoy's admin API (15000).

Plain blocking HTTP (http.client): a command makes a handful of requests in sequence, and
asyncio with aiohttp would cost more to import than the whole command takes. Every read
has a deadline and any failure becomes one `ProxyError` line saying what could not be
reached and why.
"""

from __future__ import annotations

import argparse
import http.client
import json
import urllib.parse
from typing import Any

from istioctl import target
from pkg.kube import errors
from pkg.kube.errors import transport_reason

ADMIN_PORT = 15000
AGENT_STATUS_PORT = 15020


class ProxyError(Exception):
    pass


def get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """The status and body of `GET url`; raises ProxyError when nothing answers."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("GET", path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as error:
        raise ProxyError(f"cannot reach {url}: {transport_reason(error, timeout)}") from None
    finally:
        connection.close()


def get_json(url: str, *, timeout: float = 5.0) -> Any:
    status, body = get(url, timeout=timeout)
    if status != 200:
        text = body.decode(errors="replace").strip()[:200]
        raise ProxyError(f"{url} answered {status}: {text}")
    try:
        return json.loads(body)
    except ValueError:
        raise ProxyError(f"{url} did not answer JSON") from None


def pilot_status(args: argparse.Namespace) -> dict[str, Any]:
    """Pilot's `/debug/syncz`: every connected proxy, its address and its sync state."""
    try:
        status: dict[str, Any] = get_json(f"{args.pilot}/debug/syncz")
    except ProxyError as error:
        raise ProxyError(f"{error} (is Pilot running? see --pilot, ISTIO_PILOT)") from None
    return status


def split_pod(given: str, args: argparse.Namespace) -> tuple[str, str]:
    """`<pod>[.<namespace>]`, the namespace defaulting to -n, then `default`."""
    pod, dot, namespace = given.partition(".")
    return pod, (namespace if dot else target.namespace(args))


def pod_address(args: argparse.Namespace, pod: str, namespace: str) -> str:
    """Where the pod lives: from Pilot, or (Pilot away) from the pod's WorkloadEntry."""
    pilot_error = None
    try:
        for proxy in pilot_status(args)["proxies"]:
            if proxy["pod"] == pod and proxy["namespace"] == namespace:
                return str(proxy["ip"])
    except ProxyError as error:
        pilot_error = error  # Pilot is away; the pod's WorkloadEntry still says where it lives
    try:
        entry = workload_entry(args, pod, namespace)
    except errors.Unavailable as error:
        if pilot_error is None:
            raise ProxyError(f'pod "{pod}.{namespace}" is not connected to Pilot') from None
        raise ProxyError(
            f'cannot find pod "{pod}.{namespace}": neither Pilot nor the config store answers '
            f"({pilot_error}; {error})"
        ) from None
    if entry is None:
        raise ProxyError(
            f'pod "{pod}.{namespace}" not found (neither connected to Pilot nor registered)'
        )
    return str(entry.spec.address)


def workload_entry(args: argparse.Namespace, pod: str, namespace: str) -> Any:
    """The pod's WorkloadEntry (the local platform's Pod), or None; raises
    errors.Unavailable when the store cannot be reached."""
    from pkg.config.kinds import ALL

    schema = ALL.by_kind("networking.istio.io/v1alpha3", "WorkloadEntry")
    assert schema is not None
    with target.store_client(args, timeout=5) as client:
        try:
            return client.get(schema, pod, namespace)
        except errors.NotFound:
            return None


def admin_url(address: str, path: str, **params: str) -> str:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return f"http://{address}:{ADMIN_PORT}{path}{query}"


def admin_config(address: str, config_type: str) -> dict[str, Any]:
    """One part of an Envoy's config from its admin API."""
    if config_type == "endpoint":
        url = admin_url(address, "/clusters", format="json")
    elif config_type == "secret":
        url = admin_url(address, "/certs")
    elif config_type == "endpoint-config":
        url = admin_url(
            address, "/config_dump", resource="dynamic_endpoint_configs", include_eds="true"
        )
    else:
        resource = {
            "cluster": "dynamic_active_clusters",
            "listener": "dynamic_listeners",
            "route": "dynamic_route_configs",
        }
        url = admin_url(address, "/config_dump", resource=resource[config_type])
    try:
        data: dict[str, Any] = get_json(url, timeout=10)
    except ProxyError as error:
        raise ProxyError(f"cannot read Envoy's admin: {error}") from None
    return data


def config_dump(address: str, *, include_eds: bool = False) -> dict[str, Any]:
    """The whole `/config_dump` of an Envoy (bootstrap, listeners, clusters, routes, secrets)."""
    params = {"include_eds": "true"} if include_eds else {}
    try:
        data: dict[str, Any] = get_json(admin_url(address, "/config_dump", **params), timeout=10)
    except ProxyError as error:
        raise ProxyError(f"cannot read Envoy's admin: {error}") from None
    return data
