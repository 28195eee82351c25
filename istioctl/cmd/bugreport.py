"""`bug-report`: one tarball of what a bug report needs. Handler: istioctl/mesh/bugreport.py."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.flags import duration
from istioctl.cmd.handler import Ref


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    report = subparsers.add_parser(
        "bug-report",
        parents=parents,
        help="gather logs, config dumps, versions and the store's resources into a tarball",
        description="Collects, into one .tar.gz: the log of every mesh process (run/logs/, "
        "and each pod's Envoy log), every proxy's Envoy config dump and server info, Pilot's "
        "debug views, the versions of istioctl, Pilot and every proxy, and every resource in "
        "the config store.",
    )
    report.add_argument(
        "--run-dir",
        metavar="DIR",
        default="run",
        help="the local mesh's run folder, with logs/ and pods/ (default: ./run)",
    )
    report.add_argument(
        "--output-dir",
        "--dir",
        dest="output_dir",
        metavar="DIR",
        default=".",
        help="where to write the tarball (default: the current folder)",
    )
    report.add_argument(
        "--filename", metavar="NAME", default="bug-report.tar.gz", help="the tarball's name"
    )
    report.add_argument(
        "--timeout",
        type=duration,
        default=10.0,
        metavar="DURATION",
        help="each request's deadline (default 10s)",
    )
    report.set_defaults(handler=Ref("istioctl.mesh.bugreport", "bug_report"))
