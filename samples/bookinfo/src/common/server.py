"""What every Bookinfo service shares as a process: flags, logging, the access log, shutdown.

A service module builds its `web.Application` and hands it to `main`; this module binds it,
logs one access line per request, and stops cleanly on SIGTERM (or SIGINT), as a pod must.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 9080
# Long enough for productpage's slowest answer (two 3 s tries of reviews) to finish.
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class ServeOptions:
    """Where to listen. Port 0 asks the kernel for a free port; the log names the one bound."""

    address: str = DEFAULT_ADDRESS
    port: int = DEFAULT_PORT


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, path, status, the mesh's request id and, when the
    caller came over mutual TLS, its identity (the sidecar's x-forwarded-client-cert)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %d x-request-id=%s peer=%s %.1fms",
            request.method,
            request.raw_path,
            response.status,
            request.headers.get("x-request-id", "-"),
            peer_identity(request.headers.get("x-forwarded-client-cert", "")) or "-",
            time * 1000,
        )


def peer_identity(xfcc: str) -> str:
    """The caller's URI SAN from Envoy's x-forwarded-client-cert (`By=...;URI=spiffe://...`).

    The last element is the hop nearest to us: the sidecar that terminated the caller's TLS.
    """
    if not xfcc:
        return ""
    last = xfcc.split(",")[-1]
    for field in last.split(";"):
        key, _, value = field.partition("=")
        if key.strip().lower() == "uri":
            return value.strip().strip('"')
    return ""


def parse_args(service: str, argv: Sequence[str] | None = None) -> ServeOptions:
    parser = argparse.ArgumentParser(prog=service, description=f"Bookinfo's {service} service.")
    parser.add_argument("--address", default=DEFAULT_ADDRESS, help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    args = parser.parse_args(argv)
    return ServeOptions(address=args.address, port=args.port)


def configure_logging() -> None:
    # stdout, one record per line, flushed per record: the pod's log is its stdout.
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )


async def serve(
    service: str,
    app: web.Application,
    options: ServeOptions,
    *,
    stop: asyncio.Event,
) -> None:
    """Serve `app` until `stop` is set, then finish in-flight requests and close."""
    log = logging.getLogger(service)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger(f"{service}.access"),
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, options.address, options.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            log.info("%s listening on http://%s:%d", service, host, port)
        await stop.wait()
        log.info("%s stopping", service)
    finally:
        await runner.cleanup()


async def _serve_until_signalled(service: str, app: web.Application, options: ServeOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(service, app, options, stop=stop)


def main(
    service: str,
    build_app: Callable[[], web.Application],
    argv: Sequence[str] | None = None,
) -> int:
    """The body of every service's `__main__`: parse flags, serve until SIGTERM, exit 0."""
    options = parse_args(service, argv)
    configure_logging()
    asyncio.run(_serve_until_signalled(service, build_app(), options))
    return 0
