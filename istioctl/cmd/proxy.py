"""proxy-status and proxy-config: what Pilot sent each proxy, and what each Envoy holds;
authn tls-check, the TLS mode two pods really use. Handlers: istioctl/proxy/."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.handler import Ref


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
    status.set_defaults(handler=Ref("istioctl.proxy.config", "proxy_status"))

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
        sub.set_defaults(handler=Ref("istioctl.proxy.config", "proxy_config"), config_type=kind)

    authn = subparsers.add_parser(
        "authn", parents=parents, help="authentication (mutual TLS) checks"
    )
    checks = authn.add_subparsers(title="checks", metavar="CHECK", required=True)
    tls = checks.add_parser(
        "tls-check",
        parents=parents,
        help="the TLS mode between a client pod and a server pod",
        description="Which TLS mode really applies between two pods, read from their Envoys: "
        "the client's cluster for the server's service and the server's inbound listener. "
        "Plaintext to a STRICT server, or mTLS to a DISABLE one, is a CONFLICT.",
    )
    tls.add_argument("client", help="<pod>[.<namespace>] that makes the calls")
    tls.add_argument("server", help="<pod>[.<namespace>] that receives them")
    tls.set_defaults(handler=Ref("istioctl.proxy.authn", "tls_check"))
