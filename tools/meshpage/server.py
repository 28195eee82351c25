"""The mesh page's HTTP server (Kiali's role, on Kiali's port 20001).

    GET /                      the page (static/index.html, app.js, style.css)
    GET /vendor/cytoscape.min.js   cytoscape.js from the page's npm packages
    GET /api/graph             nodes and edges with rates, errors, p50/p99 and mTLS
    GET /api/apps/{app}        the app's VirtualServices/DestinationRules and recent traces
    GET /api/traces/{id}       one trace's spans
    GET /healthz               200 while serving

The server holds no state of its own: each call asks Prometheus, Zipkin and the config store.
A source that fails is named in the answer's `errors`, never a 500.
"""

from __future__ import annotations

import asyncio
import datetime
import pathlib
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from tools.meshpage.graph import build_graph
from tools.meshpage.sources import SourceError, Sources

HERE = pathlib.Path(__file__).resolve().parent
STATIC = HERE / "static"
CYTOSCAPE = HERE / "node_modules" / "cytoscape" / "dist" / "cytoscape.min.js"

_SOURCES = web.AppKey("sources", Sources)
_REFRESH = web.AppKey("refresh", float)
_APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{1,32}$")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


async def _graph(request: web.Request) -> web.Response:
    sources = request.app[_SOURCES]
    errors: list[str] = []
    results: Mapping[str, list[Mapping[str, Any]]] = {}
    workloads = []
    metrics, known = await asyncio.gather(
        sources.query_graph(), sources.workloads(), return_exceptions=True
    )
    for answer in (metrics, known):
        if isinstance(answer, SourceError):
            errors.append(str(answer))
        elif isinstance(answer, BaseException):
            raise answer
    if isinstance(metrics, dict):
        results = metrics
    if isinstance(known, list):
        workloads = known
    graph = build_graph(results, workloads)
    graph.update(
        generated_at=_now(),
        window=sources.options.window,
        refresh_seconds=request.app[_REFRESH],
        errors=errors,
    )
    return web.json_response(graph)


def _summary(trace: list[dict[str, Any]]) -> dict[str, Any]:
    starts = [s.get("timestamp") or 0 for s in trace]
    ends = [(s.get("timestamp") or 0) + (s.get("duration") or 0) for s in trace]
    root = next((s for s in trace if not s.get("parentId")), trace[0])
    services = sorted({(s.get("localEndpoint") or {}).get("serviceName", "") for s in trace} - {""})
    return {
        "traceId": root.get("traceId"),
        "root": root.get("name", ""),
        "spans": len(trace),
        "services": services,
        "start": min(starts) if starts else 0,
        "duration_ms": round((max(ends) - min(starts)) / 1000, 2) if trace else 0,
    }


async def _app(request: web.Request) -> web.Response:
    app = request.match_info["app"]
    if not _APP_NAME.match(app):
        return web.json_response({"error": f"{app!r} is not an app name"}, status=400)
    sources = request.app[_SOURCES]
    errors: list[str] = []
    names = [app] + ([app.removeprefix("istio-")] if app.startswith("istio-") else [])
    routing, *traced = await asyncio.gather(
        sources.routing(app), *(sources.traces(n) for n in names), return_exceptions=True
    )
    if isinstance(routing, SourceError):
        errors.append(str(routing))
        routing = []
    traces: list[dict[str, Any]] = []
    for answer in traced:
        if isinstance(answer, SourceError):
            errors.append(str(answer))
        elif isinstance(answer, list):
            traces += [_summary(t) for t in answer if t]
    for answer in (routing, *traced):
        if isinstance(answer, BaseException) and not isinstance(answer, SourceError):
            raise answer
    traces.sort(key=lambda t: t["start"], reverse=True)
    return web.json_response({"app": app, "routing": routing, "traces": traces, "errors": errors})


async def _trace(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"]
    if not _TRACE_ID.match(trace_id):
        return web.json_response({"error": f"{trace_id!r} is not a trace id"}, status=400)
    try:
        spans = await request.app[_SOURCES].trace(trace_id)
    except SourceError as error:
        return web.json_response({"traceId": trace_id, "spans": [], "errors": [str(error)]})
    return web.json_response({"traceId": trace_id, "spans": spans, "errors": []})


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def _cytoscape(request: web.Request) -> web.StreamResponse:
    if not CYTOSCAPE.is_file():
        return web.Response(
            status=503,
            text=f"cytoscape is not installed ({CYTOSCAPE}); run tools/setup.sh (npm ci)\n",
        )
    return web.FileResponse(CYTOSCAPE, headers={"Content-Type": "text/javascript"})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def build_app(sources: Sources, *, refresh: float = 5.0) -> web.Application:
    app = web.Application()
    app[_SOURCES] = sources
    app[_REFRESH] = refresh

    async def lifecycle(_: web.Application):
        await sources.start()
        yield
        await sources.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", _index)
    app.router.add_get("/vendor/cytoscape.min.js", _cytoscape)
    app.router.add_get("/api/graph", _graph)
    app.router.add_get("/api/apps/{app}", _app)
    app.router.add_get("/api/traces/{trace_id}", _trace)
    app.router.add_get("/healthz", _healthz)
    app.router.add_static("/static/", STATIC)
    return app
