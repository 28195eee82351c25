"""`dashboard` (`d`): where the mesh's web UIs are, opened in a browser when asked.
Handler: istioctl/mesh/dashboard.py."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.flags import boolean
from istioctl.cmd.handler import Ref


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    dashboard = subparsers.add_parser(
        "dashboard",
        aliases=["d", "dash"],
        parents=parents,
        help="access to the mesh's web UIs",
    )
    uis = dashboard.add_subparsers(title="dashboards", metavar="DASHBOARD", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--browser",
        type=boolean,
        nargs="?",
        const=True,
        default=None,
        metavar="BOOL",
        help="open it in a browser (default: when a display is available)",
    )
    common.add_argument(
        "--address", metavar="HOST:PORT", help="where the dashboard listens (overrides the default)"
    )
    for name, aliases, summary, pod in (
        ("envoy", [], "a pod's Envoy admin UI (port 15000)", True),
        ("controlz", [], "a pod's pilot-agent status page (port 15020)", True),
        ("prometheus", [], "Prometheus (port 9090 on Pilot's host)", False),
        ("mesh", ["kiali"], "the service graph page (port 20001 on Pilot's host)", False),
        ("zipkin", [], "the trace collector's API (port 9411 on Pilot's host)", False),
    ):
        sub = uis.add_parser(name, aliases=aliases, parents=[*parents, common], help=summary)
        if pod:
            sub.add_argument("pod", help="<pod>[.<namespace>]")
        sub.set_defaults(handler=Ref("istioctl.mesh.dashboard", "dashboard"), dashboard=name)
