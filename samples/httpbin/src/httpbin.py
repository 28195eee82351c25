"""httpbin on the local platform: the endpoints Istio's traffic tasks call, as go-httpbin
(the image Istio's samples/httpbin/httpbin.yaml runs) answers them.

python -m samples.httpbin.src.httpbin [-host 127.0.0.1] [-port 8080] [-max-duration 10s]
                                      [-use-real-hostname]

httpbin's own endpoints: /get, /headers, /ip, /hostname, /status/<codes>, /delay/<seconds>,
/anything[/...]. `HOST` and `PORT` in the environment are go-httpbin's, and flags win.

The local platform adds what a test needs to see and steer one pod, under `/_local/` (no
httpbin path starts so):

- `GET /_local/requests`: what this pod served, counted: in total, per path, per Host
  (a mirrored copy's has `-shadow` appended), and per `x-request-id` (Envoy keeps a request's
  id on its retries and its mirrored copy, so the count per id is the attempts this pod saw);
- `PUT /_local/faults` with JSON `{"status": 503, "delay": 0.5, "first": 2}`: answer every
  httpbin request with that status, after that delay, for only the first `first` attempts of
  each request id (no `first`: every attempt); `DELETE /_local/faults` is healthy again.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

_MAX_IDS = 10_000  # request ids remembered (oldest forgotten first)
log = logging.getLogger("httpbin")


@dataclasses.dataclass(frozen=True)
class Options:
    host: str = "0.0.0.0"
    port: int = 8080
    max_duration: float = 10.0  # go-httpbin's -max-duration: the longest /delay
    hostname: str = "go-httpbin"  # what /hostname says (-use-real-hostname: the pod's name)


@dataclasses.dataclass
class Fault:
    status: int = 0  # 0: answer as httpbin would
    delay: float = 0.0
    first: int | None = None  # only the first N attempts of each request id


class Faults:
    def __init__(self) -> None:
        self.current = Fault()

    def set(self, body: Any) -> Fault:
        """A fault from `PUT /_local/faults`; ValueError says which field is wrong."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(body) - {"status", "delay", "first"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}: give status, delay, first")
        status, delay, first = body.get("status", 0), body.get("delay", 0), body.get("first")
        if not isinstance(status, int) or not (status == 0 or 100 <= status <= 599):
            raise ValueError(f"status: {status!r} is not an HTTP status")
        if not isinstance(delay, int | float) or not 0 <= delay <= 60:
            raise ValueError(f"delay: {delay!r} is not a number of seconds from 0 to 60")
        if first is not None and (not isinstance(first, int) or first < 1):
            raise ValueError(f"first: {first!r} is not a positive number of attempts")
        self.current = Fault(status, float(delay), first)
        return self.current


class Stats:
    def __init__(self) -> None:
        self.total = 0
        self.by_path: collections.Counter[str] = collections.Counter()
        self.by_host: collections.Counter[str] = collections.Counter()
        self.by_request_id: collections.OrderedDict[str, int] = collections.OrderedDict()

    def count(self, path: str, host: str, request_id: str) -> int:
        """Counts one request; returns which attempt of its request id it is (1, 2, ...)."""
        self.total += 1
        self.by_path[path] += 1
        self.by_host[host] += 1
        if not request_id:
            return 1
        attempt = self.by_request_id.pop(request_id, 0) + 1
        self.by_request_id[request_id] = attempt
        while len(self.by_request_id) > _MAX_IDS:
            self.by_request_id.popitem(last=False)
        return attempt

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_path": dict(self.by_path),
            "by_host": dict(self.by_host),
            "by_request_id": dict(self.by_request_id),
        }


_STATS = web.AppKey("stats", Stats)
_FAULTS = web.AppKey("faults", Faults)
_OPTIONS = web.AppKey("options", Options)


@web.middleware
async def _counted(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every httpbin request is counted, then meets the fault set on this pod, if any."""
    if request.path.startswith("/_local/"):
        return await handler(request)  # type: ignore[no-any-return]
    attempt = request.app[_STATS].count(
        request.path, request.host, request.headers.get("x-request-id", "")
    )
    fault = request.app[_FAULTS].current
    if (fault.status or fault.delay) and (fault.first is None or attempt <= fault.first):
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status:
            return web.Response(status=fault.status)
    return await handler(request)  # type: ignore[no-any-return]


def _headers(request: web.Request) -> dict[str, str]:
    # go-httpbin joins repeated headers with commas; names in canonical case, as Go writes them.
    out: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        out.setdefault("-".join(p.capitalize() for p in name.split("-")), []).append(value)
    return {k: ",".join(v) for k, v in out.items()}


def _origin(request: web.Request) -> str:
    forwarded = request.headers.get("x-forwarded-for", "")
    return forwarded.split(",")[0].strip() if forwarded else (request.remote or "")


def _args(request: web.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query.items():
        out.setdefault(key, []).append(value)
    return out


def _echo(request: web.Request) -> dict[str, Any]:
    return {
        "args": _args(request),
        "headers": _headers(request),
        "origin": _origin(request),
        "url": str(request.url),
    }


async def _get(request: web.Request) -> web.Response:
    return web.json_response(_echo(request))


async def _headers_handler(request: web.Request) -> web.Response:
    return web.json_response({"headers": _headers(request)})


async def _ip(request: web.Request) -> web.Response:
    return web.json_response({"origin": _origin(request)})


async def _hostname(request: web.Request) -> web.Response:
    return web.json_response({"hostname": request.app[_OPTIONS].hostname})


async def _anything(request: web.Request) -> web.Response:
    data = await request.text()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = None
    return web.json_response(
        {**_echo(request), "method": request.method, "data": data, "json": parsed}
    )


def choose_status(spec: str, rng: random.Random | None = None) -> int:
    """`/status/<codes>`: one code, or a weighted choice (`200:0.7,503:0.3`, weights default 1).
    ValueError for a code outside 100-599 or a bad weight."""
    codes: list[int] = []
    weights: list[float] = []
    for part in spec.split(","):
        code_text, _, weight_text = part.partition(":")
        code = int(code_text)
        weight = float(weight_text) if weight_text else 1.0
        if not 100 <= code <= 599 or weight < 0:
            raise ValueError(part)
        codes.append(code)
        weights.append(weight)
    if len(codes) == 1:
        return codes[0]
    return (rng or random).choices(codes, weights)[0]


async def _status(request: web.Request) -> web.Response:
    spec = request.match_info["codes"]
    try:
        code = choose_status(spec)
    except ValueError:
        return web.json_response({"error": f"invalid status code: {spec}"}, status=400)
    return web.Response(status=code)


async def _delay(request: web.Request) -> web.Response:
    text = request.match_info["seconds"]
    try:
        seconds = float(text.removesuffix("s"))
    except ValueError:
        seconds = -1
    limit = request.app[_OPTIONS].max_duration
    if not 0 <= seconds <= limit:
        return web.json_response(
            {"error": f"invalid duration {text}: from 0 to {limit:g}s"}, status=400
        )
    await asyncio.sleep(seconds)
    return web.json_response(_echo(request))


async def _requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATS].as_json())


async def _put_faults(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        fault = request.app[_FAULTS].set(body)
    except ValueError as error:
        return web.json_response({"error": f"PUT /_local/faults: {error}"}, status=400)
    log.info("fault set: %s", fault)
    return web.json_response(dataclasses.asdict(fault))


async def _delete_faults(request: web.Request) -> web.Response:
    request.app[_FAULTS].current = Fault()
    log.info("faults cleared")
    return web.json_response(dataclasses.asdict(Fault()))


def build_app(options: Options | None = None) -> web.Application:
    app = web.Application(middlewares=[_counted])
    app[_OPTIONS] = options or Options()
    app[_STATS] = Stats()
    app[_FAULTS] = Faults()
    app.router.add_get("/get", _get)
    app.router.add_get("/headers", _headers_handler)
    app.router.add_get("/ip", _ip)
    app.router.add_get("/hostname", _hostname)
    app.router.add_route("*", "/anything", _anything)
    app.router.add_route("*", "/anything/{tail:.*}", _anything)
    app.router.add_route("*", "/status/{codes}", _status)
    app.router.add_route("*", "/delay/{seconds}", _delay)
    app.router.add_get("/_local/requests", _requests)
    app.router.add_put("/_local/faults", _put_faults)
    app.router.add_delete("/_local/faults", _delete_faults)
    return app


def _duration(text: str) -> float:
    """Go durations as go-httpbin's flag takes them (`10s`, `600s`, `1m`, `250ms`)."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * scale
    raise argparse.ArgumentTypeError(f"{text!r} is not a duration (10s, 1m, 250ms)")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    # go-httpbin's single-dash flags; environment first, flags win.
    parser = argparse.ArgumentParser(prog="go-httpbin", description=__doc__.split("\n\n")[0])
    parser.add_argument("-host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("-port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("-max-duration", type=_duration, default=10.0)
    parser.add_argument("-use-real-hostname", action="store_true")
    args = parser.parse_args(argv)
    hostname = os.environ.get("HOSTNAME") or socket.gethostname() if args.use_real_hostname else ""
    return Options(args.host, args.port, args.max_duration, hostname or "go-httpbin")


async def serve(options: Options, stop: asyncio.Event) -> None:
    runner = web.AppRunner(build_app(options), access_log=logging.getLogger("httpbin.access"))
    await runner.setup()
    try:
        await web.TCPSite(runner, options.host, options.port).start()
        log.info("go-httpbin listening on http://%s:%d", options.host, options.port)
        await stop.wait()
    finally:
        await runner.cleanup()


async def _main(options: Options) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(options, stop)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    asyncio.run(_main(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
