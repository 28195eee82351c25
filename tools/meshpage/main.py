"""The mesh page: `python -m tools.meshpage.main --port 20001 --prometheus URL --zipkin URL ...`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys

from aiohttp import web

from pkg.aio.signals import serve_until_signalled
from tools.meshpage.server import build_app
from tools.meshpage.sources import SourceOptions, Sources

_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(text: str) -> float:
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 5s or 1m")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _window(text: str) -> str:
    _seconds(text)  # a PromQL range: the same syntax
    return text


async def serve(args: argparse.Namespace) -> None:
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
        await asyncio.Event().wait()
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
        "--refresh", type=_seconds, default=5.0, help="how often the page redraws (e.g. 5s)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve_until_signalled(serve(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
