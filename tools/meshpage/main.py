"""The mesh page: `python -m tools.meshpage.main --port 20001 --prometheus URL --zipkin URL ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys

from aiohttp import web

from pkg.aio import program
from pkg.cli import duration
from tools.meshpage.server import build_app
from tools.meshpage.sources import SourceOptions, Sources

_RANGE = re.compile(r"^[1-9]\d*(ms|s|m|h)$")  # a PromQL range, as the page's queries use it


def _refresh(text: str) -> float:
    value = duration.flag_seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the page needs a refresh period above 0")
    return value


def _window(text: str) -> str:
    if not _RANGE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 30s or 1m")
    return text


async def serve(args: argparse.Namespace, stop: asyncio.Event) -> None:
    sources = Sources(
        SourceOptions(
            prometheus=args.prometheus.rstrip("/"),
            zipkin=args.zipkin.rstrip("/"),
            config_store=args.config_store.rstrip("/"),
            window=args.window,
        )
    )
    runner = web.AppRunner(build_app(sources, refresh=args.refresh), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.address, args.port).start()
        logging.getLogger("meshpage").info("the mesh page on http://%s:%d", args.address, args.port)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="meshpage", description=__doc__)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=20001, help="Kiali's port")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--zipkin", default="http://127.0.0.1:9411")
    parser.add_argument("--config-store", default="http://127.0.0.1:8001")
    parser.add_argument("--window", type=_window, default="30s", help="rates over this range")
    parser.add_argument(
        "--refresh", type=_refresh, default=5.0, help="how often the page redraws (e.g. 5s)"
    )
    args = parser.parse_args(argv)
    return program.run(lambda stop: serve(args, stop), name="meshpage")


if __name__ == "__main__":
    sys.exit(main())
