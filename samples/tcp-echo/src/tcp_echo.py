"""tcp-echo on the local platform: the server Istio's tcp-echo image runs.

python samples/tcp-echo/src/tcp_echo.py PORTS PREFIX [--address ADDRESS]

PORTS is comma-separated (`9000,9001,9002`); on each, every line a client sends is answered
with `PREFIX <line>`, as Istio's echo server answers it, until the client closes. The image
listens on every address; `--address` (the image table passes the pod's) keeps pods on
loopback addresses apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

log = logging.getLogger("tcp-echo")
MAX_LINE = 64 * 1024  # a longer line is refused (the connection closed), not buffered forever


def parse_ports(text: str) -> list[int]:
    """`9000,9001` -> [9000, 9001]; raises ValueError naming the bad entry."""
    ports = []
    for entry in text.split(","):
        try:
            port = int(entry)
        except ValueError:
            raise ValueError(f"PORTS: {entry!r} is not a port number (in {text!r})") from None
        if not 0 < port < 65536:
            raise ValueError(f"PORTS: {port} is out of range 1-65535 (in {text!r})")
        ports.append(port)
    if len(set(ports)) != len(ports):
        raise ValueError(f"PORTS: a port is given twice in {text!r}")
    return ports


def answer(prefix: str, line: bytes) -> bytes:
    """What the echo server sends back for one line (its newline kept)."""
    return prefix.encode() + b" " + line


async def _echo(prefix: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(answer(prefix, line))
            await writer.drain()
    except (ConnectionError, ValueError):  # ValueError: a line past MAX_LINE
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def serve(address: str, ports: Sequence[int], prefix: str, stop: asyncio.Event) -> None:
    servers = []
    try:
        for port in ports:
            server = await asyncio.start_server(
                lambda r, w: _echo(prefix, r, w), address or None, port, limit=MAX_LINE
            )
            servers.append(server)
            log.info("listening on %s:%d, prefix: %s", address or "0.0.0.0", port, prefix)
        await stop.wait()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tcp-echo", description=__doc__)
    parser.add_argument("ports", help="comma-separated ports, e.g. 9000,9001,9002")
    parser.add_argument("prefix", help="what each answer starts with")
    parser.add_argument("--address", default="", help="listen on this address only")
    args = parser.parse_args(argv)
    try:
        ports = parse_ports(args.ports)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.address, ports, args.prefix, stop)

    try:
        asyncio.run(run())
    except OSError as error:
        print(f"tcp-echo: cannot listen: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
