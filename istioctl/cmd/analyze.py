"""`analyze`: Istio's coded diagnostics over files and the live config store.
Handler: istioctl/analyze/command.py."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.flags import LEVELS, add_boolean, duration, level
from istioctl.cmd.handler import Ref


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    analyze = subparsers.add_parser(
        "analyze",
        parents=parents,
        help="analyze Istio configuration and print validation messages",
        description="Analyzes the live config store's resources, together with the files "
        "given (as if applied over them), and prints Istio's coded messages (IST0101 ...). "
        "Exit status 79 when a message reaches --failure-threshold, 65 when a file cannot "
        "be parsed.",
        epilog="examples: istioctl analyze | istioctl analyze -A | "
        "istioctl analyze --use-kube=false a.yaml dir/ | istioctl analyze -L | "
        "istioctl analyze -S 'IST0102=Namespace default'",
    )
    analyze.add_argument(
        "files", nargs="*", metavar="file", help="files or directories; - for stdin"
    )
    analyze.add_argument(
        "-L", "--list-analyzers", action="store_true", help="list the analyzers and exit"
    )
    add_boolean(
        analyze,
        "-k",
        "--use-kube",
        default=True,
        help="analyze the live config store too (default true; --use-kube=false: files only)",
    )
    analyze.add_argument(
        "-A", "--all-namespaces", action="store_true", help="analyze all namespaces"
    )
    analyze.add_argument(
        "-o",
        "--output",
        type=str.lower,
        choices=("log", "json", "yaml"),
        default="log",
        help="output format (default log)",
    )
    analyze.add_argument(
        "-S",
        "--suppress",
        action="append",
        default=[],
        metavar="CODE=RESOURCE",
        help="suppress a code on a resource, e.g. 'IST0102=Namespace default'; "
        "'*' matches any part ('IST0101=VirtualService *.default'); repeatable",
    )
    analyze.add_argument(
        "--failure-threshold",
        type=level,
        default="Error",
        metavar="LEVEL",
        help=f"the level from which messages make a non-zero exit status: {list(LEVELS)} "
        "(default Error)",
    )
    analyze.add_argument(
        "--output-threshold",
        type=level,
        default="Info",
        metavar="LEVEL",
        help=f"the level from which messages are printed: {list(LEVELS)} (default Info)",
    )
    analyze.add_argument(
        "-R", "--recursive", action="store_true", help="read directories recursively"
    )
    add_boolean(
        analyze,
        "--color",
        default=None,
        help="color the levels (default: when stdout is a terminal and $TERM is not dumb)",
    )
    analyze.add_argument(
        "--ignore-unknown",
        action="store_true",
        help="do not complain about input documents that cannot be parsed",
    )
    analyze.add_argument("-v", "--verbose", action="store_true", help="list the analyzers run")
    analyze.add_argument(
        "--timeout",
        type=duration,
        default=30.0,
        metavar="DURATION",
        help="how long to wait for the config store (default 30s)",
    )
    analyze.set_defaults(handler=Ref("istioctl.analyze.command", "analyze"))
