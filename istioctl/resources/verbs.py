"""kubectl's writing verbs over the config store: apply, create, replace, delete.

Files are validated locally with the shared loader before anything is sent; the store then
validates again with the same code, so both refuse with one message. Each changed object is
reported as kubectl reports it (`virtualservice.networking.istio.io/reviews configured`); a
refused one is printed and the others still go through, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys

from istioctl import target
from istioctl.resources import printing, sources
from istioctl.resources.get import kind_schema
from pkg.config import loader
from pkg.config.resource import Resource
from pkg.kube import errors
from pkg.kube.syncclient import SyncConfigClient


def write(args: argparse.Namespace) -> int:
    warnings: list[loader.DocumentError] = []
    try:
        resources = sources.load_resources(
            sources.read_sources(args.filename, sys.stdin), args.namespace, warnings
        )
    except (sources.SourceError, loader.LoadError) as error:
        print(error, file=sys.stderr)
        return 1
    # The files' own warnings, with file and document, where kubectl prints the store's
    # Warning headers: the store would send these very ones, so those are not printed again.
    for document in warnings:
        print(printing.warning_lines(document), file=sys.stderr)
    write_one = {"apply": _apply, "create": _create, "replace": _replace}[args.verb]
    status = 0
    with target.store_client(args, store_warnings=False) as client:
        for resource in resources:
            try:
                outcome = write_one(client, resource)
            except errors.Unavailable:
                raise
            except errors.ApiError as error:
                print(error, file=sys.stderr)
                status = 1
                continue
            name = printing.qualified_name(resource.schema, resource.metadata.name)
            print(f"{name} {outcome}")
    return status


def _create(client: SyncConfigClient, resource: Resource) -> str:
    client.create(resource)
    return "created"


def _apply(client: SyncConfigClient, resource: Resource) -> str:
    return client.apply(resource)


def _replace(client: SyncConfigClient, resource: Resource) -> str:
    # A resourceVersion in the file (from `get -o yaml`) makes this conditional, as in kubectl.
    client.update(resource)
    return "replaced"


def delete(args: argparse.Namespace) -> int:
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
        schema = kind_schema(args.target[0])
        if schema is None:
            return 1
        namespace = target.namespace(args)
        targets = [sources.Reference(schema, namespace, name) for name in args.target[1:]]
    else:
        print("error: give a kind and at least one name, or -f FILE", file=sys.stderr)
        return 1
    status = 0
    with target.store_client(args) as client:
        for reference in targets:
            try:
                client.delete(reference.schema, reference.name, reference.namespace)
            except errors.NotFound as error:
                print(error, file=sys.stderr)
                status = 1
                continue
            print(f"{printing.qualified_name(reference.schema, reference.name)} deleted")
    return status
