"""`istioctl get`: one kind's resources as kubectl shows them (a table, YAML or JSON).

Reads only: neither the loader nor the validators are imported, so this, the command run
most, starts quickly (tools/bench/istioctl_startup.py).
"""

from __future__ import annotations

import argparse
import datetime
import sys

from istioctl import target
from istioctl.resources import printing
from pkg.config.kinds import ALL, KindSchema
from pkg.kube import errors


def get(args: argparse.Namespace) -> int:
    schema = kind_schema(args.kind)
    if schema is None:
        return 1
    if args.all_namespaces and args.names:
        print(
            "error: a resource cannot be retrieved by name across all namespaces", file=sys.stderr
        )
        return 1
    namespace = target.namespace(args)
    status = 0
    with target.store_client(args) as client:
        if args.names:
            found = []
            for name in args.names:
                try:
                    found.append(client.get(schema, name, namespace))
                except errors.NotFound as error:
                    print(error, file=sys.stderr)
                    status = 1
        else:
            listed = client.list(schema, None if args.all_namespaces else namespace)
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


def kind_schema(name: str) -> KindSchema | None:
    """The kind a user typed (`vs`, `virtualservices`, `VirtualService`), or None, said why."""
    try:
        return ALL.by_name(name)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return None
