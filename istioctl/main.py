"""istioctl: the operator's command line.

    istioctl apply|create|replace -f FILE     istioctl get KIND [NAME...] [-A] [-o yaml]
    istioctl delete KIND NAME... | -f FILE    istioctl validate -f FILE
    istioctl analyze [FILE...] [-A]           istioctl version [--remote] [--short] [-o json]
    istioctl proxy-status [POD]               istioctl proxy-config cluster|listener|... POD
    istioctl authn tls-check CLIENT SERVER    istioctl x describe pod POD
    istioctl x authz check POD                istioctl dashboard envoy|controlz POD|prometheus|mesh|zipkin
    istioctl bug-report                       istioctl kube-inject -f FILE [-o OUT]
    istioctl manifest generate [--set ...]    istioctl install [-y] [--dry-run]
    istioctl verify-install

Commands come in groups, one module each under istioctl/cmd/, listed in COMMAND_GROUPS:
its `add_commands(subparsers, parents)` adds its subcommands, each naming its handler with
`set_defaults(handler=Ref(module, function))`. Only the chosen command's handler module is
imported, so `--help` loads nothing but argparse and a command only what it uses.

Exit status as Istio's istioctl: 0, 1 for an error, 64 for incorrect usage, and the
command's own codes (analyze: 79 when it finds issues, 65 when files do not parse).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Protocol

    class CommandGroup(Protocol):
        def add_commands(
            self,
            subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
            parents: Sequence[argparse.ArgumentParser],
        ) -> None: ...


EXIT_ERROR = 1
EXIT_INCORRECT_USAGE = 64
EXIT_INTERRUPTED = 130

# Each group's module and the commands (and aliases) it adds: a command line naming one
# builds only that group's parsers (building all of them is a tenth of `get`'s start-up).
COMMAND_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("istioctl.cmd.config", ("apply", "create", "replace", "get", "delete", "validate")),
    ("istioctl.cmd.analyze", ("analyze",)),
    ("istioctl.cmd.proxy", ("proxy-status", "ps", "proxy-config", "pc", "authn")),
    ("istioctl.cmd.experimental", ("experimental", "x", "exp")),
    ("istioctl.cmd.version", ("version",)),
    ("istioctl.cmd.dashboard", ("dashboard", "d", "dash")),
    ("istioctl.cmd.bugreport", ("bug-report",)),
    ("istioctl.cmd.install", ("kube-inject", "manifest", "install", "verify-install")),
)
# The global flags that take a value, to find the command after them.
_VALUED_FLAGS = {"--config-store", "-c", "--kubeconfig", "--context", "-n", "--namespace",
                 "-i", "--istioNamespace", "--pilot"}  # fmt: skip


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list names: its first word that is not a global flag's."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the group of `command` only (when it names one)."""
    groups = [m for m, names in COMMAND_GROUPS if command in names] or [
        m for m, _ in COMMAND_GROUPS
    ]
    parser = argparse.ArgumentParser(
        prog="istioctl", description="Istio configuration command line utility."
    )
    _add_global_flags(parser, suppress=False)
    # The same flags after the subcommand (`istioctl get vs -n bookinfo`), as cobra allows.
    # SUPPRESS keeps a subcommand's unset flag from overwriting one given before it.
    after = argparse.ArgumentParser(add_help=False)
    _add_global_flags(after, suppress=True)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in groups:
        group: CommandGroup = importlib.import_module(name)  # type: ignore[assignment]
        group.add_commands(subparsers, [after])
    return parser


def _add_global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config-store",
        metavar="URL",
        default=default,
        help="the config store (default: a kubeconfig's server if one is named, "
        "else $ISTIO_CONFIG_STORE, else $KUBECONFIG's, else http://127.0.0.1:8001)",
    )
    parser.add_argument(
        "-c", "--kubeconfig", metavar="FILE", default=default, help="kubeconfig file to use"
    )
    parser.add_argument(
        "--context", metavar="NAME", default=default, help="the kubeconfig context to use"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default=default,
        help="namespace (default: the kubeconfig context's, else default)",
    )
    parser.add_argument(
        "-i",
        "--istioNamespace",
        dest="istio_namespace",
        metavar="NAMESPACE",
        default=argparse.SUPPRESS if suppress else "istio-system",
        help="Istio system namespace (default: istio-system)",
    )
    parser.add_argument(
        "--pilot",
        metavar="URL",
        default=default,
        help="Pilot's debug HTTP address (default: $ISTIO_PILOT, else http://127.0.0.1:15014)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # --help (0) and usage errors: argparse has printed; report its status, don't exit.
        code = exit_.code if isinstance(exit_.code, int) else EXIT_INCORRECT_USAGE
        return EXIT_INCORRECT_USAGE if code == 2 else code
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_INCORRECT_USAGE
    from pkg.kube import errors

    try:
        from istioctl import target

        target.resolve(args)
        outcome = args.handler.resolve()(args)
        if isinstance(outcome, types.CoroutineType):
            import asyncio  # only the commands that wait on many things at once pay for it

            outcome = asyncio.run(outcome)
        return int(outcome)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except errors.Unavailable as error:
        if error.reached:
            print(error, file=sys.stderr)
        else:
            print(
                f"error: {error} (is it running? see --config-store, --kubeconfig, "
                "ISTIO_CONFIG_STORE)",
                file=sys.stderr,
            )
        return EXIT_ERROR
    except Exception as error:  # a clean line, not a traceback, for the errors users cause
        from pkg.kube.kubeconfig import KubeconfigError

        if isinstance(error, KubeconfigError | errors.ApiError):
            print(error, file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
