"""The local Zipkin collector: `python -m tools.zipkin.main --address 127.0.0.1 --port 9411`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from pkg.aio import program
from tools.zipkin.server import build_app
from tools.zipkin.store import SpanStore, StoreOptions


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    store = SpanStore(
        StoreOptions(max_traces=args.max_traces, max_spans_per_trace=args.max_spans_per_trace)
    )
    runner = web.AppRunner(build_app(store), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.address, args.port).start()
        logging.getLogger("zipkin").info(
            "Zipkin v2 API on http://%s:%d (keeping %d traces)",
            args.address,
            args.port,
            args.max_traces,
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zipkin", description=__doc__)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9411, help="Zipkin's port")
    parser.add_argument("--max-traces", type=int, default=1000, help="traces kept in memory")
    parser.add_argument("--max-spans-per-trace", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.max_traces < 1 or args.max_spans_per_trace < 1:
        parser.error("--max-traces and --max-spans-per-trace must be at least 1")
    return program.run(lambda stop: serve(args, stop), name="zipkin")


if __name__ == "__main__":
    sys.exit(main())
