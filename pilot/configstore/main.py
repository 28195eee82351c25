"""config-store: the embedded Kubernetes-style config API server, persisted in SQLite.

    python -m pilot.configstore.main [--address 127.0.0.1] [--port 8001] [--db config-store.db]

Logs to stderr, one line when ready; SIGTERM or SIGINT ends every watch, lets writes in flight
finish and closes the database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import sys

from pilot.configstore.allocator import DEFAULT_SERVICE_RANGE, Allocator
from pilot.configstore.server import ConfigStoreServer, Options
from pilot.configstore.subresources import DEFAULT_KUBELET_PORT
from pkg.aio import program

log = logging.getLogger("config-store")


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="config-store", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (0: any free)")
    parser.add_argument("--db", default="config-store.db", help="the SQLite database file")
    parser.add_argument(
        "--history",
        type=int,
        default=10_000,
        help="events kept for watches resuming from a resourceVersion",
    )
    parser.add_argument(
        "--service-cluster-ip-range",
        default=DEFAULT_SERVICE_RANGE,
        help="the range Services' cluster IPs are allocated from (Kubernetes' flag)",
    )
    parser.add_argument(
        "--kubelet-port",
        type=int,
        default=DEFAULT_KUBELET_PORT,
        help="the port of each node's kubelet, where pods' logs are read (Kubernetes' flag)",
    )
    parser.add_argument(
        "--system-namespaces",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="create default, kube-system and kube-public, as a cluster has them",
    )
    args = parser.parse_args(argv)
    try:
        Allocator.parse(args.service_cluster_ip_range)
    except ValueError as error:
        parser.error(str(error))
    db = pathlib.Path(args.db)
    # Under `bazel run` the working directory is the runfiles tree; relative paths mean the
    # user's directory.
    if not db.is_absolute() and os.environ.get("BUILD_WORKING_DIRECTORY"):
        db = pathlib.Path(os.environ["BUILD_WORKING_DIRECTORY"]) / db
    return Options(
        address=args.address,
        port=args.port,
        db=db,
        history=args.history,
        service_cluster_ip_range=args.service_cluster_ip_range,
        kubelet_port=args.kubelet_port,
        system_namespaces=args.system_namespaces,
    )


async def serve(options: Options, stop: asyncio.Event) -> None:
    server = ConfigStoreServer(options=options)
    try:
        await server.start()
    except OSError as error:
        raise OSError(f"cannot serve on {options.address}:{options.port}: {error}") from None
    log.info(
        "ready: serving %s (db %s, resourceVersion %d)",
        server.url,
        options.db,
        server.store.resource_version,
    )
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await server.stop()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    return program.run(lambda stop: serve(options, stop), name="config-store")


if __name__ == "__main__":
    sys.exit(main())
