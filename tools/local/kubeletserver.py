"""The kubelet's HTTP port: containers' logs and commands for the API server's `pods/<name>/log`
and `pods/<name>/exec`, and health.

    GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&limitBytes=
    GET /exec/<namespace>/<pod>/<container>?command=...&stdin=&stdout=&stderr=   (WebSocket)
    GET /healthz
    GET /prometheus/targets?job=kubernetes-pods|envoy-stats

The last is Prometheus' HTTP service discovery (`http_sd_configs`) of this node's pods, what
Istio's Prometheus finds with its Kubernetes discovery (which Debian's Prometheus is built
without): the pods by their `prometheus.io/*` annotations, and the sidecars' 15090.

As a kubelet answers the API server's proxied request (plain HTTP here, on the node's address):
the log as text, the last `tailLines` lines, at most `limitBytes`, and with `follow` the new
lines as they are written, until the container's pod stops or the client hangs up.

An exec is Kubernetes' remote command protocol (pkg/kube/remotecommand.py), upgraded here as
the kubelet's streaming server upgrades it: the command runs in the container's sandbox as
its user (the runtime's `exec`, on a terminal with `tty`) and streams as execsession.py
says. A pod or container this kubelet does not run is refused before the upgrade; a command
that cannot start after it, as a Failure status on the error channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pkg.kube import remotecommand as rc
from tools.local import execsession
from tools.local.podruntime import ContainerExec, ExecError, PodSpec

FOLLOW_POLL = 0.2  # seconds between looks at a followed log
Lookup = Callable[[str, str], PodSpec | None]
Targets = Callable[[str], list[dict[str, Any]]]  # job -> Prometheus target groups
LOOKUP: web.AppKey[Lookup] = web.AppKey("lookup")
EXEC: web.AppKey[ContainerExec] = web.AppKey("exec")
TARGETS: web.AppKey[Targets] = web.AppKey("targets")
SCRAPE_JOBS = ("kubernetes-pods", "envoy-stats")


def make_app(
    lookup: Lookup, targets: Targets | None = None, runtime: ContainerExec | None = None
) -> web.Application:
    app = web.Application()
    app[LOOKUP] = lookup
    app[TARGETS] = targets or (lambda job: [])
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", _logs)
    if runtime is not None:
        app[EXEC] = runtime
        for method in ("GET", "POST"):
            app.router.add_route(method, "/exec/{namespace}/{pod}/{container}", _exec)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/prometheus/targets", _targets)
    return app


async def _targets(request: web.Request) -> web.Response:
    job = request.query.get("job", "")
    if job not in SCRAPE_JOBS:
        raise web.HTTPBadRequest(text=f"job must be one of {', '.join(SCRAPE_JOBS)}, not {job!r}")
    return web.json_response(request.app[TARGETS](job))


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def _number(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"{name}: must be a non-negative integer, got {raw!r}")
    return int(raw)


async def _logs(request: web.Request) -> web.StreamResponse:
    info = request.match_info
    pod = request.app[LOOKUP](info["namespace"], info["pod"])
    if pod is None:
        raise web.HTTPNotFound(text=f'pod "{info["pod"]}" is not running on this node')
    container = info["container"]
    if container not in {c.name for c in pod.containers}:
        raise web.HTTPBadRequest(text=f"container {container} is not valid for pod {pod.name}")
    if request.query.get("previous", "").lower() in ("true", "1"):
        raise web.HTTPBadRequest(
            text=f'previous terminated container "{container}" in pod "{pod.name}" not found'
        )
    tail, limit = _number(request, "tailLines"), _number(request, "limitBytes")
    follow = request.query.get("follow", "").lower() in ("true", "1")
    path = pod.log_path(container)
    whole = _read(path)
    offset = len(whole)
    data = _tail(whole, tail)
    if limit is not None:
        data = data[:limit]
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await response.write(data)
    sent = len(data)
    if follow and (limit is None or sent < limit):
        with contextlib.suppress(ConnectionError):
            while request.app[LOOKUP](pod.namespace, pod.name) is pod:
                await asyncio.sleep(FOLLOW_POLL)
                more, offset = _since(path, offset)
                if limit is not None:
                    more = more[: limit - sent]
                if more:
                    await response.write(more)
                    sent += len(more)
                if limit is not None and sent >= limit:
                    break
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


def _read(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _tail(data: bytes, tail: int | None) -> bytes:
    if tail is None:
        return data
    if tail == 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-tail:])


def _since(path: pathlib.Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            more = log.read()
    except FileNotFoundError:
        return b"", offset
    return more, offset + len(more)


async def _exec(request: web.Request) -> web.StreamResponse:
    info = request.match_info
    try:
        options = rc.parse_options(request.query, request.query.getall("command", []))
    except rc.ExecOptionsError as error:
        raise web.HTTPBadRequest(text=str(error)) from None
    pod = request.app[LOOKUP](info["namespace"], info["pod"])
    if pod is None:
        raise web.HTTPNotFound(text=f'pod "{info["pod"]}" is not running on this node')
    container = info["container"]
    if container not in {c.name for c in pod.containers if not c.init}:
        raise web.HTTPBadRequest(text=f'container not found ("{container}")')
    ws = web.WebSocketResponse(protocols=rc.PROTOCOLS, max_msg_size=4 * 1024 * 1024)
    if not ws.can_prepare(request).ok or ws.can_prepare(request).protocol is None:
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        raise web.HTTPBadRequest(
            text=f"exec needs a WebSocket upgrade with subprotocol {' or '.join(rc.PROTOCOLS)} "
            f"(offered: {offered or 'none'}); SPDY is not served"
        )
    await ws.prepare(request)
    try:
        session = await request.app[EXEC].exec(
            pod.uid, container, options.command, stdin=options.stdin, tty=options.tty
        )
    except ExecError as error:
        await ws.send_bytes(rc.status_frame(rc.failure(str(error))))
        await ws.close()
        return ws
    await execsession.run(ws, session, options)
    return ws
