"""Run a registry double as its own process, for end-to-end tests of the whole mesh:

    python -m pkg.testing.doubles consul --address 127.0.0.1 --port 8500
    python -m pkg.testing.doubles eureka --address 127.0.0.1 --port 8761

Test support only: it prints `ready <url>` once serving and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pkg.aio.signals import serve_until_signalled
from pkg.testing.consul import FakeConsul
from pkg.testing.eureka import FakeEureka


async def _serve(kind: str, address: str, port: int) -> None:
    double = FakeConsul(host=address) if kind == "consul" else FakeEureka(host=address)
    double.port = port
    await double.start()
    print(f"ready {double.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await double.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="doubles", description=__doc__)
    parser.add_argument("kind", choices=["consul", "eureka"])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve_until_signalled(_serve(args.kind, args.address, args.port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
