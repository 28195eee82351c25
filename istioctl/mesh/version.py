"""`istioctl version`: the client's build and, remotely, the control plane's and the proxies'.

As Istio's: `--remote` (default) asks Pilot's `/version` for the control plane and lists
the data plane, every proxy connected to Pilot with the version its sidecar runs (the
ISTIO_VERSION in the node metadata each Envoy reports on its admin `/server_info`);
`--short` (default) prints versions only, `--short=false` each BuildInfo in full; `-o
json|yaml` prints the whole structure with Istio's field names.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from istioctl.proxy import admin
from pkg.version.buildinfo import BuildInfo, get


def version(args: argparse.Namespace) -> int:
    client = get()
    mesh: list[dict[str, Any]] | None = None
    proxies: list[dict[str, str]] | None = None
    status = 0
    if args.remote:
        try:
            mesh = [{"Component": "pilot", "Info": admin.get_json(f"{args.pilot}/version")}]
            proxies = data_plane(args)
        except admin.ProxyError as error:
            print(
                f"error: the control plane's version is unknown: {error} "
                "(is Pilot running? see --pilot, ISTIO_PILOT)",
                file=sys.stderr,
            )
            status = 1
    if args.output:
        document: dict[str, Any] = {"clientVersion": client.to_json()}
        if mesh is not None:
            document["meshVersion"] = mesh
        if proxies is not None:
            document["dataPlaneVersion"] = proxies
        if args.output == "json":
            print(json.dumps(document, indent=2))
        else:
            import yaml

            print(yaml.safe_dump(document, sort_keys=False), end="")
        return status
    if args.short:
        if mesh is None:
            print(client.version if not args.remote else f"client version: {client.version}")
        else:
            print(f"client version: {client.version}")
            for name, info in _coalesced(mesh):
                print(f"{name} version: {info.version}")
    else:
        print(f"client version: {client.long_form()}" if args.remote else client.long_form())
        for server in mesh or []:
            info = BuildInfo.from_json(server["Info"])
            print(f"{server['Component']} version: {info.long_form()}")
    if proxies is not None:
        if args.short:
            print(f"data plane version: {render_proxy_versions(proxies)}")
        else:
            for proxy in proxies:
                print(
                    f'data plane version: version.ProxyInfo{{ID:"{proxy["ID"]}", '
                    f'IstioVersion:"{proxy["IstioVersion"]}"}}'
                )
    return status


def data_plane(args: argparse.Namespace) -> list[dict[str, str]]:
    """Every proxy Pilot serves, with the Istio version its sidecar reports."""
    found = []
    for proxy in admin.pilot_status(args)["proxies"]:
        try:
            info = admin.get_json(admin.admin_url(proxy["ip"], "/server_info"), timeout=3)
            metadata = info.get("node", {}).get("metadata", {})
            istio_version = str(metadata.get("ISTIO_VERSION") or "unknown")
        except admin.ProxyError:
            istio_version = "unknown"  # connected to Pilot, its admin not answering now
        found.append({"ID": f"{proxy['pod']}.{proxy['namespace']}", "IstioVersion": istio_version})
    return sorted(found, key=lambda p: p["ID"])


def _coalesced(mesh: list[dict[str, Any]]) -> list[tuple[str, BuildInfo]]:
    """One "control plane" line when every component runs the same version, as Istio does."""
    infos = [(str(s["Component"]), BuildInfo.from_json(s["Info"])) for s in mesh]
    if len({info.version for _, info in infos}) == 1:
        return [("control plane", infos[0][1])]
    return infos


def render_proxy_versions(proxies: list[dict[str, str]]) -> str:
    """`0.1.0 (7 proxies)`, a count per version; `none` without proxies."""
    if not proxies:
        return "none"
    counts: dict[str, int] = {}
    for proxy in proxies:
        counts[proxy["IstioVersion"]] = counts.get(proxy["IstioVersion"], 0) + 1
    return ", ".join(f"{v} ({n} proxies)" for v, n in sorted(counts.items()))
