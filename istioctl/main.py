"""istioctl: the operator's command line.

    istioctl [--config-store URL] [-n NS] apply|create|replace -f FILE
    istioctl get KIND [NAME...] [-n NS | -A] [-o short|yaml|json]
    istioctl delete KIND NAME... | delete -f FILE
    istioctl proxy-status [POD]
    istioctl proxy-config cluster|listener|route|endpoint|secret POD
    istioctl authn tls-check CLIENT-POD SERVER-POD

Commands come in groups, one module each under istioctl/cmd/ (config.py: the config verbs;
proxy.py: proxy-status and proxy-config).
A module joins the CLI by being listed in COMMAND_GROUPS: its `add_commands(subparsers,
parents)` adds its subcommands, each with `set_defaults(handler=...)`, an `async (args) -> int`.
"""

from __future__ import annotations

import pathlib
import sys

if __name__ == "__main__" and not __package__:
    # Run as a script, Python puts this folder first on sys.path (where cmd/ would shadow the
    # standard library's cmd); imports are rooted at the repository root.
    sys.path[0] = str(pathlib.Path(__file__).absolute().parents[1])

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from istioctl.cmd import authn, config, proxy
from pkg.kube import errors

DEFAULT_CONFIG_STORE = "http://127.0.0.1:8001"
Handler = Callable[[argparse.Namespace], Awaitable[int]]


class CommandGroup(Protocol):
    def add_commands(
        self,
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        parents: Sequence[argparse.ArgumentParser],
    ) -> None: ...


COMMAND_GROUPS: tuple[CommandGroup, ...] = (config, proxy, authn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="istioctl", description="Istio configuration command line utility."
    )
    _add_global_flags(parser, suppress=False)
    # The same flags after the subcommand (`istioctl get vs -n bookinfo`), as kubectl allows.
    # SUPPRESS keeps a subcommand's unset flag from overwriting one given before it.
    after = argparse.ArgumentParser(add_help=False)
    _add_global_flags(after, suppress=True)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(subparsers, [after])
    return parser


def _add_global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config-store",
        metavar="URL",
        default=default,
        help=f"the config store (default: $ISTIO_CONFIG_STORE, else {DEFAULT_CONFIG_STORE})",
    )
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: default)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # --help and usage errors: argparse has printed; report its status, don't exit.
        return exit_.code if isinstance(exit_.code, int) else 2
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    args.config_store = (
        args.config_store or os.environ.get("ISTIO_CONFIG_STORE") or DEFAULT_CONFIG_STORE
    )
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


async def run(args: argparse.Namespace) -> int:
    handler: Handler = args.handler
    try:
        return await handler(args)
    except errors.Unavailable as error:
        if error.reached:
            print(error, file=sys.stderr)
        else:
            print(
                f"error: {error} (is it running? see --config-store, ISTIO_CONFIG_STORE)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
