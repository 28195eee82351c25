"""`experimental` (`x`): describe pod, authz check. Handlers: istioctl/proxy/."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.handler import Ref


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    experimental = subparsers.add_parser(
        "experimental",
        aliases=["x", "exp"],
        parents=parents,
        help="experimental commands that may be modified or deprecated",
    )
    commands = experimental.add_subparsers(title="commands", metavar="COMMAND", required=True)

    describe = commands.add_parser(
        "describe", parents=parents, help="describe resource and related Istio configuration"
    )
    what = describe.add_subparsers(title="resources", metavar="RESOURCE", required=True)
    pod = what.add_parser(
        "pod",
        aliases=["po"],
        parents=parents,
        help="describe a pod's Istio configuration",
        description="The pod's services and ports, the DestinationRule and VirtualServices "
        "that apply to traffic to it, its mutual TLS mode and the authorization policies "
        "that select it, read from the config store and the pod's Envoy.",
    )
    pod.add_argument("pod", help="<pod>[.<namespace>]")
    pod.set_defaults(handler=Ref("istioctl.proxy.describe", "describe_pod"))

    authz = commands.add_parser(
        "authz", parents=parents, help="inspect the authorization a sidecar enforces"
    )
    checks = authz.add_subparsers(title="commands", metavar="COMMAND", required=True)
    check = checks.add_parser(
        "check",
        parents=parents,
        help="the RBAC policies a pod's Envoy enforces, from its config dump",
        description="Lists, per inbound listener and filter chain, the RBAC filters the "
        "pod's Envoy holds (from its admin API's config dump, port 15000) and the policies "
        "in them: action, name and number of rules.",
    )
    check.add_argument("pod", help="<pod>[.<namespace>]")
    check.add_argument(
        "-f", "--file", metavar="FILE", help="read the config dump from this file, not the pod"
    )
    check.add_argument("-o", "--output", choices=("short", "json"), default="short")
    check.set_defaults(handler=Ref("istioctl.proxy.authz", "check"))
