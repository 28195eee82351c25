"""`version`: istioctl's and the control plane's versions. Handler: istioctl/mesh/version.py."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.flags import boolean
from istioctl.cmd.handler import Ref


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    version = subparsers.add_parser(
        "version",
        parents=parents,
        help="prints out build version information",
        description="The client's version and, with --remote (the default), the control "
        "plane's (Pilot's /version) and every connected proxy's.",
    )
    version.add_argument(
        "--remote",
        type=boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="use --remote=false to suppress control plane check",
    )
    version.add_argument(
        "-s",
        "--short",
        type=boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="use --short=false to generate full version information",
    )
    version.add_argument("-o", "--output", choices=("yaml", "json"), help="one of yaml or json")
    version.set_defaults(handler=Ref("istioctl.mesh.version", "version"))
