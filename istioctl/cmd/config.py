"""Config commands, kubectl's verbs over the config store: apply, create, replace, get, delete;
and `validate`, the same files checked with nothing sent. Handlers: istioctl/resources/."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.handler import Ref

_VERBS = "istioctl.resources.verbs"


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    for verb, summary in (
        ("apply", "create or update resources from files"),
        ("create", "create resources from files"),
        ("replace", "replace existing resources with the files' versions"),
    ):
        parser = subparsers.add_parser(verb, parents=parents, help=summary, description=summary)
        add_files(parser, required=True)
        parser.set_defaults(handler=Ref(_VERBS, "write"), verb=verb)

    get = subparsers.add_parser(
        "get", parents=parents, help="show resources", description="show resources of one kind"
    )
    get.add_argument("kind", help="kind: plural, singular, Kind or short name (vs, dr, gw, se)")
    get.add_argument(
        "names", nargs="*", default=[], metavar="name", help="only these (default: all)"
    )
    get.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list across all namespaces"
    )
    get.add_argument("-o", "--output", choices=("short", "yaml", "json"), default="short")
    get.set_defaults(handler=Ref("istioctl.resources.get", "get"))

    delete = subparsers.add_parser(
        "delete",
        parents=parents,
        help="delete resources by kind and names, or as named in files",
        description="delete KIND NAME... | delete -f FILE",
    )
    delete.add_argument(
        "target", nargs="*", default=[], metavar="kind name", help="a kind, then names"
    )
    add_files(delete, required=False)
    delete.set_defaults(handler=Ref(_VERBS, "delete"))

    validate = subparsers.add_parser(
        "validate",
        parents=parents,
        help="validate Istio policy and rules files",
        description="Validates each file with the loader the config store uses, sending "
        "nothing: prints each file's verdict; exit status 1 if any is invalid.",
    )
    add_files(validate, required=True)
    validate.add_argument(
        "-x",
        "--referential",
        action="store_true",
        default=True,
        help="accepted for Istio's compatibility; references are checked by `analyze`",
    )
    validate.set_defaults(handler=Ref("istioctl.resources.validate", "validate"))


def add_files(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=required,
        default=[],
        metavar="FILE",
        help="a YAML/JSON file, a directory of them, or - for stdin (repeatable)",
    )
