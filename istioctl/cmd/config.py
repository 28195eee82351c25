"""Config commands, kubectl's verbs over the config store: apply, create, replace, get, delete.

Files are validated locally with the shared loader before anything is sent; the store then
validates again with the same code, so both refuse with one message, and both warn alike
(istioctl prints `Warning: ...` lines, as kubectl prints the store's Warning headers). Each changed object is
reported as kubectl reports it (`virtualservice.networking.istio.io/reviews configured`); a
refused one is printed and the others still go through, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence

from istioctl.cmd import printing, sources
from pkg.config import loader
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Resource
from pkg.kube import errors
from pkg.kube.client import ConfigClient

# How many times apply re-reads and retries when another writer got in between.


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
        _add_files(parser, required=True)
        parser.set_defaults(handler=_write, verb=verb)

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
    get.set_defaults(handler=_get)

    delete = subparsers.add_parser(
        "delete",
        parents=parents,
        help="delete resources by kind and names, or as named in files",
        description="delete KIND NAME... | delete -f FILE",
    )
    delete.add_argument(
        "target", nargs="*", default=[], metavar="kind name", help="a kind, then names"
    )
    _add_files(delete, required=False)
    delete.set_defaults(handler=_delete)


def _add_files(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=required,
        default=[],
        metavar="FILE",
        help="a YAML/JSON file, a directory of them, or - for stdin (repeatable)",
    )


async def _write(args: argparse.Namespace) -> int:
    warnings: list[loader.DocumentError] = []
    try:
        resources = sources.load_resources(
            sources.read_sources(args.filename, sys.stdin), args.namespace, warnings
        )
    except (sources.SourceError, loader.LoadError) as error:
        print(error, file=sys.stderr)
        return 1
    # As kubectl prints the store's Warning headers: the store would send these very ones.
    for document in warnings:
        print(printing.warning_lines(document), file=sys.stderr)
    write = {"apply": _apply, "create": _create, "replace": _replace}[args.verb]
    status = 0
    async with ConfigClient(args.config_store) as client:
        for resource in resources:
            try:
                outcome = await write(client, resource)
            except errors.Unavailable:
                raise
            except errors.ApiError as error:
                print(error, file=sys.stderr)
                status = 1
                continue
            name = printing.qualified_name(resource.schema, resource.metadata.name)
            print(f"{name} {outcome}")
    return status


async def _create(client: ConfigClient, resource: Resource) -> str:
    await client.create(resource)
    return "created"


async def _apply(client: ConfigClient, resource: Resource) -> str:
    return await client.apply(resource)


async def _replace(client: ConfigClient, resource: Resource) -> str:
    # A resourceVersion in the file (from `get -o yaml`) makes this conditional, as in kubectl.
    await client.update(resource)
    return "replaced"


async def _get(args: argparse.Namespace) -> int:
    schema = _kind(args.kind)
    if schema is None:
        return 1
    if args.all_namespaces and args.names:
        print(
            "error: a resource cannot be retrieved by name across all namespaces", file=sys.stderr
        )
        return 1
    namespace = args.namespace or "default"
    status = 0
    async with ConfigClient(args.config_store) as client:
        if args.names:
            found = []
            for name in args.names:
                try:
                    found.append(await client.get(schema, name, namespace))
                except errors.NotFound as error:
                    print(error, file=sys.stderr)
                    status = 1
        else:
            listed = await client.list(schema, None if args.all_namespaces else namespace)
            found = listed.items
    if args.output == "yaml":
        sys.stdout.write(printing.as_yaml(found))
    elif args.output == "json":
        if found or not args.names:
            single = len(args.names) == 1
            sys.stdout.write(printing.as_json(found, single=single))
    elif found:
        now = datetime.datetime.now(datetime.UTC)
        sys.stdout.write(printing.table(found, all_namespaces=args.all_namespaces, now=now))
    elif not args.names:
        where = "any namespace" if args.all_namespaces else f"{namespace} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
    return status


async def _delete(args: argparse.Namespace) -> int:
    if args.filename and args.target:
        print("error: give either -f FILE or KIND NAME..., not both", file=sys.stderr)
        return 1
    if args.filename:
        try:
            targets = sources.read_references(
                sources.read_sources(args.filename, sys.stdin), args.namespace
            )
        except (sources.SourceError, loader.LoadError) as error:
            print(error, file=sys.stderr)
            return 1
    elif len(args.target) >= 2:
        schema = _kind(args.target[0])
        if schema is None:
            return 1
        namespace = args.namespace or "default"
        targets = [sources.Reference(schema, namespace, name) for name in args.target[1:]]
    else:
        print("error: give a kind and at least one name, or -f FILE", file=sys.stderr)
        return 1
    status = 0
    async with ConfigClient(args.config_store) as client:
        for target in targets:
            try:
                await client.delete(target.schema, target.name, target.namespace)
            except errors.NotFound as error:
                print(error, file=sys.stderr)
                status = 1
                continue
            print(f"{printing.qualified_name(target.schema, target.name)} deleted")
    return status


def _kind(name: str) -> KindSchema | None:
    try:
        return ALL.by_name(name)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return None
