"""`istioctl x authz check <pod>`: the authorization a pod's sidecar really enforces.

Read from the Envoy's config dump (admin port 15000), not from the policies in the store:
every RBAC filter of the pod's inbound listeners (HTTP filters in the connection managers,
and network RBAC filters), with its action and the Istio policies in it. Pilot names each
Envoy policy `ns[<namespace>]-policy[<name>]-rule[<index>]`, so the rules are counted per
AuthorizationPolicy, as Istio's istioctl prints them:

    ACTION   AuthorizationPolicy          RULES
    ALLOW    productpage-viewer.default   1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Iterator
from typing import Any

from istioctl.proxy.admin import ProxyError, config_dump, pod_address, split_pod
from istioctl.resources.printing import grid

RBAC_FILTERS = ("envoy.filters.http.rbac", "envoy.filters.network.rbac")
_ISTIO_NAME = re.compile(r"^ns\[(?P<ns>[^\]]*)\]-policy\[(?P<name>[^\]]*)\]-rule\[(?P<rule>\d+)\]$")
_ACTIONS = ("ALLOW", "DENY", "LOG")  # Envoy's RBAC.Action by number; ALLOW, 0, is omitted


@dataclasses.dataclass(frozen=True)
class Policy:
    action: str
    name: str  # `productpage-viewer.default`, or Envoy's own name for a policy not Istio's
    rules: int


def check(args: argparse.Namespace) -> int:
    try:
        if args.file:
            with open(args.file) as dump_file:
                dump = json.load(dump_file)
        else:
            address = pod_address(args, *split_pod(args.pod, args))
            dump = config_dump(address)
    except (OSError, ValueError) as error:
        print(f"error: cannot read the config dump {args.file}: {error}", file=sys.stderr)
        return 1
    except ProxyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    listeners = list(inbound_listeners(dump))
    if not listeners:
        print(f"error: {args.pod} has no inbound listener (is it a sidecar?)", file=sys.stderr)
        return 1
    policies = enforced(listeners)
    if args.output == "json":
        print(json.dumps([dataclasses.asdict(p) for p in policies], indent=2))
        return 0
    rows = [[p.action, p.name, str(p.rules)] for p in policies]
    print(grid(["ACTION", "AuthorizationPolicy", "RULES"], rows), end="")
    return 0


def listeners_of(dump: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for section in dump.get("configs", []):
        if not str(section.get("@type", "")).endswith("ListenersConfigDump"):
            continue
        for entry in section.get("dynamic_listeners", []):
            listener = entry.get("active_state", {}).get("listener")
            if listener:
                yield listener
        for entry in section.get("static_listeners", []):
            if entry.get("listener"):
                yield entry["listener"]


def inbound_listeners(dump: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for listener in listeners_of(dump):
        if (
            listener.get("traffic_direction") == "INBOUND"
            or listener.get("name") == "virtualInbound"
        ):
            yield listener


def rbac_configs(listener: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every RBAC filter config of the listener: network filters and HTTP filters."""
    for chain in listener.get("filter_chains", []):
        for network_filter in chain.get("filters", []):
            config = network_filter.get("typed_config", {})
            if network_filter.get("name") in RBAC_FILTERS:
                yield config
            for http_filter in config.get("http_filters", []):
                if http_filter.get("name") in RBAC_FILTERS:
                    yield http_filter.get("typed_config", {})


def enforced(listeners: list[dict[str, Any]]) -> list[Policy]:
    """The policies of every RBAC filter, each once (every filter chain repeats them)."""
    rules: dict[tuple[str, str], set[str]] = {}
    for listener in listeners:
        for config in rbac_configs(listener):
            action = _action(config.get("rules", {}).get("action", "ALLOW"))
            for envoy_name in config.get("rules", {}).get("policies", {}):
                match = _ISTIO_NAME.match(envoy_name)
                name = f"{match['name']}.{match['ns']}" if match else envoy_name
                rules.setdefault((action, name), set()).add(envoy_name)
    order = {action: i for i, action in enumerate(("DENY", "ALLOW", "LOG"))}
    return [
        Policy(action, name, len(names))
        for (action, name), names in sorted(
            rules.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])
        )
    ]


def _action(value: Any) -> str:
    if isinstance(value, int):
        return _ACTIONS[value] if value < len(_ACTIONS) else str(value)
    return str(value)
