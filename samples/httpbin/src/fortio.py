"""fortio on the local platform: the load generator Istio's circuit-breaking task runs in a
pod beside its sidecar (samples/httpbin/sample-client/fortio-deploy.yaml), as fortio does it.

python -m samples.httpbin.src.fortio load [-c 2] [-qps 0] [-n 20 | -t 5s] [-H 'k: v'] URL
python -m samples.httpbin.src.fortio server [-http-port [host:]8080]

`load` keeps `-c` connections open, each sending its share of `-n` requests one after another
(or for `-t`), at `-qps` in all (0: as fast as each answer comes), and prints the count of
each response code as fortio does (`Code 503 : 9 (45.0 %)`); a request that got no answer
counts under code -1. `server` answers fortio's REST API, `GET /fortio/rest/run?url=...&c=
&qps=&n=&t=&H=`, with the run's result as fortio's JSON (`RetCodes`, `DurationHistogram`, ...),
so a test can make the pod itself generate the load. Requests honour `http_proxy`: in the
mesh, the pod's sidecar carries them (the local platform sets it for every container).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp import web

ERROR_CODE = -1  # fortio's code for a request that got no HTTP answer
MAX_REQUESTS = 100_000
log = logging.getLogger("fortio")


class LoadError(ValueError):
    """A run asked for something fortio would refuse: which parameter, why."""


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    url: str
    connections: int = 4  # fortio's -c default
    qps: float = 8.0  # fortio's -qps default; 0 is as fast as possible
    requests: int = 0  # -n: total requests (0: run for `duration`)
    duration: float = 5.0  # -t, seconds
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 3.0  # per request, fortio's -timeout default

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise LoadError(f"url: {self.url!r} is not an http:// or https:// URL")
        if not 1 <= self.connections <= 1000:
            raise LoadError(f"c: {self.connections} connections, want 1 to 1000")
        if self.qps < 0:
            raise LoadError(f"qps: {self.qps} is negative")
        if not 0 <= self.requests <= MAX_REQUESTS:
            raise LoadError(f"n: {self.requests} requests, want 0 to {MAX_REQUESTS}")
        if self.requests == 0 and not 0 < self.duration <= 600:
            raise LoadError(f"t: {self.duration}s, want more than 0 and at most 600s")


@dataclasses.dataclass
class Result:
    options: LoadOptions
    codes: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    latencies: list[float] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The parts of fortio's result JSON that Istio's tasks read."""
        count = len(self.latencies)
        return {
            "RunType": "HTTP",
            "URL": self.options.url,
            "NumThreads": self.options.connections,
            "RequestedQPS": "max" if self.options.qps == 0 else str(self.options.qps),
            "ActualQPS": count / self.elapsed if self.elapsed else 0.0,
            "ActualDuration": int(self.elapsed * 1e9),
            "RetCodes": {str(code): n for code, n in sorted(self.codes.items())},
            "DurationHistogram": {
                "Count": count,
                "Min": min(self.latencies, default=0.0),
                "Max": max(self.latencies, default=0.0),
                "Avg": sum(self.latencies) / count if count else 0.0,
            },
        }

    def report(self) -> str:
        total = sum(self.codes.values()) or 1
        lines = [
            f"Ended after {self.elapsed:.3f}s : {len(self.latencies)} calls. "
            f"qps={self.as_json()['ActualQPS']:.4g}"
        ]
        lines += [
            f"Code {code:3d} : {n} ({100 * n / total:.1f} %)"
            for code, n in sorted(self.codes.items())
        ]
        return "\n".join(lines)


async def run_load(options: LoadOptions) -> Result:
    """`options.connections` workers, one connection each, sharing the requests out."""
    result = Result(options)
    started = time.monotonic()
    deadline = None if options.requests else started + options.duration
    shares = [options.requests // options.connections] * options.connections
    for i in range(options.requests % options.connections):
        shares[i] += 1
    # At a set qps, each connection sends every connections/qps seconds.
    interval = options.connections / options.qps if options.qps else 0.0
    await asyncio.gather(
        *(
            _worker(options, result, share, deadline, interval, started + i * interval / 2)
            for i, share in enumerate(shares if options.requests else [0] * options.connections)
        )
    )
    result.elapsed = time.monotonic() - started
    return result


async def _worker(
    options: LoadOptions,
    result: Result,
    share: int,
    deadline: float | None,
    interval: float,
    first: float,
) -> None:
    connector = aiohttp.TCPConnector(limit=1)  # one connection, kept alive between requests
    timeout = aiohttp.ClientTimeout(total=options.timeout)
    async with aiohttp.ClientSession(connector=connector, trust_env=True) as session:
        sent = 0
        next_at = first
        while (sent < share) if deadline is None else (time.monotonic() < deadline):
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
            began = time.monotonic()
            try:
                async with session.get(
                    options.url, headers=dict(options.headers), timeout=timeout
                ) as response:
                    await response.read()
                    code = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                log.debug("request failed: %r", error)
                code = ERROR_CODE
            result.latencies.append(time.monotonic() - began)
            result.codes[code] += 1
            sent += 1


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise LoadError(f"H: {text!r} is not `name: value`")
    return name.strip(), value.strip()


def parse_duration(text: str) -> float:
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            try:
                return float(text.removesuffix(suffix)) * scale
            except ValueError:
                break
    raise LoadError(f"t: {text!r} is not a duration (5s, 1m, 250ms)")


def options_from_query(query: Mapping[str, str], headers: Sequence[str]) -> LoadOptions:
    """The REST API's parameters, named as fortio names them."""
    try:
        return LoadOptions(
            url=query.get("url", ""),
            connections=int(query.get("c", "4")),
            qps=float(query.get("qps", "8")),
            requests=int(query.get("n", "0")),
            duration=parse_duration(query.get("t", "5s")),
            headers=tuple(parse_header(h) for h in headers),
            timeout=parse_duration(query.get("timeout", "3s")),
        )
    except ValueError as error:  # LoadError, or int()/float() of a bad number
        raise LoadError(str(error)) from None


async def _rest_run(request: web.Request) -> web.Response:
    try:
        options = options_from_query(request.query, request.query.getall("H", []))
    except LoadError as error:
        return web.json_response({"Error": str(error)}, status=400)
    result = await run_load(options)
    log.info("run %s: %s", options.url, dict(result.codes))
    return web.json_response(result.as_json())


async def _echo(request: web.Request) -> web.Response:
    return web.Response(text=await request.text())


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/fortio/rest/run", _rest_run)
    app.router.add_route("*", "/", _echo)
    return app


async def serve(host: str, port: int, stop: asyncio.Event) -> None:
    runner = web.AppRunner(build_app(), access_log=logging.getLogger("fortio.access"))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("fortio server listening on http://%s:%d", host, port)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _serve_until_signalled(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(host, port, stop)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fortio", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="generate load and count response codes")
    load.add_argument("-c", type=int, default=4, help="connections")
    load.add_argument("-qps", type=float, default=8.0, help="queries per second, 0 for max")
    load.add_argument("-n", type=int, default=0, help="total requests (default: run for -t)")
    load.add_argument("-t", default="5s", help="how long to run without -n")
    load.add_argument("-H", action="append", default=[], help="a header, `name: value`")
    load.add_argument("-timeout", default="3s")
    load.add_argument("-json", help="also write fortio's JSON result here (- for stdout)")
    load.add_argument("-loglevel", default="Info")
    load.add_argument("url")
    server = commands.add_parser("server", help="serve the REST API")
    # fortio binds every address; the local platform gives each pod its own (POD_IP).
    server.add_argument("-http-port", default="8080", help="[host:]port")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    if args.command == "server":
        host, _, port = args.http_port.rpartition(":")
        asyncio.run(_serve_until_signalled(host or os.environ.get("POD_IP", "0.0.0.0"), int(port)))
        return 0
    query = {"url": args.url, "c": str(args.c), "qps": str(args.qps), "n": str(args.n)}
    try:
        options = options_from_query({**query, "t": args.t, "timeout": args.timeout}, args.H)
    except LoadError as error:
        print(f"fortio load: {error}", file=sys.stderr)
        return 2
    result = asyncio.run(run_load(options))
    print(result.report())
    if args.json:
        text = json.dumps(result.as_json(), indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as out:
                out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
