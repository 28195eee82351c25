"""`istioctl get`: one kind's resources as kubectl shows them (a table, YAML or JSON).

Reads only: neither the loader nor the validators are imported, so this, the command run
most, starts quickly (tools/bench/istioctl_startup.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from istioctl import target
from istioctl.resources import printing
from pkg.config.kinds import ALL, KindSchema
from pkg.kube import errors, rest


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
    table = args.output == "short"
    # kubectl's way: the server prints the table; the objects come as it sent them.
    accept = rest.TABLE if table else rest.JSON
    status = 0
    answers: list[dict[str, Any]] = []
    with target.store_client(args) as client:
        if args.names:
            for name in args.names:
                try:
                    answers.append(client.get_raw(rest.item_path(schema, namespace, name), accept))
                except errors.NotFound as error:
                    print(error, file=sys.stderr)
                    status = 1
        else:
            where = None if args.all_namespaces else namespace
            answers.append(client.get_raw(schema.collection_path(where), accept))
    if table:
        text = printing.table(answers, all_namespaces=args.all_namespaces)
        sys.stdout.write(text)
        if not text and not args.names:
            where_text = "any namespace" if args.all_namespaces else f"{namespace} namespace"
            print(f"No resources found in {where_text}.", file=sys.stderr)
        return status
    found = answers if args.names else [o for a in answers for o in a.get("items") or []]
    if args.output == "yaml":
        sys.stdout.write(printing.as_yaml(found))
    elif found or not args.names:
        sys.stdout.write(printing.as_json(found, single=len(args.names) == 1))
    return status


def kind_schema(name: str) -> KindSchema | None:
    """The kind a user typed (`vs`, `virtualservices`, `VirtualService`), or None, said why."""
    try:
        return ALL.by_name(name)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return None
