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

from pilot.configstore.server import ConfigStoreServer, Options
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
    args = parser.parse_args(argv)
    db = pathlib.Path(args.db)
    # Under `bazel run` the working directory is the runfiles tree; relative paths mean the
    # user's directory.
    if not db.is_absolute() and os.environ.get("BUILD_WORKING_DIRECTORY"):
        db = pathlib.Path(os.environ["BUILD_WORKING_DIRECTORY"]) / db
    return Options(address=args.address, port=args.port, db=db, history=args.history)


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
