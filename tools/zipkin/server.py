"""A small Zipkin collector speaking Zipkin's v2 HTTP API, for the local mesh's traces.

    POST /api/v2/spans             JSON list of v2 spans (Envoy's HTTP_JSON); 202 when stored
    GET  /api/v2/services          service names seen
    GET  /api/v2/spans?serviceName=  span names of one service
    GET  /api/v2/traces?serviceName=&spanName=&minDuration=&endTs=&lookback=&limit=
    GET  /api/v2/trace/{traceId}   one trace's spans; 404 if not kept
    GET  /health                   200 while serving

Istio ships Zipkin (or Jaeger) as an add-on; this stands in for it on one machine, keeping
recent traces in memory (store.py). A malformed body is a 400 that says which span and field,
and stores nothing of that request.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from tools.zipkin.store import SpanError, SpanStore, normalize

log = logging.getLogger("zipkin")

_STORE = web.AppKey("store", SpanStore)
MAX_BODY = 8 * 1024 * 1024  # a batch of spans from one Envoy is a few KiB
_QUERY_INTEGERS = ("minDuration", "endTs", "lookback", "limit")


def _bad(message: str) -> web.Response:
    return web.Response(status=400, text=message + "\n")


async def _post_spans(request: web.Request) -> web.Response:
    if request.content_type not in ("application/json", ""):
        return web.Response(
            status=415, text=f"spans are JSON (application/json), not {request.content_type}\n"
        )
    body = await request.read()
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return _bad(f"the body is not JSON: {error}")
    if not isinstance(data, list):
        return _bad(f"the body must be a JSON list of spans, got {type(data).__name__}")
    try:
        spans = [normalize(span, f"spans[{i}]") for i, span in enumerate(data)]
    except SpanError as error:
        return _bad(str(error))
    request.app[_STORE].add(spans)
    return web.Response(status=202)


def _query(request: web.Request) -> dict[str, str]:
    query = dict(request.query)
    for name in _QUERY_INTEGERS:
        value = query.get(name)
        if value is not None and (not value.isdigit() or (name == "limit" and int(value) == 0)):
            raise web.HTTPBadRequest(text=f"{name}: {value!r} is not a positive integer\n")
    return query


async def _traces(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STORE].traces(_query(request)))


async def _trace(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"]
    spans = None
    if trace_id and len(trace_id) <= 32 and all(c in "0123456789abcdefABCDEF" for c in trace_id):
        spans = request.app[_STORE].trace(trace_id)
    if spans is None:
        return web.Response(status=404, text=f"trace {trace_id} not found\n")
    return web.json_response(spans)


async def _services(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STORE].services())


async def _span_names(request: web.Request) -> web.Response:
    service = request.query.get("serviceName")
    if not service:
        return _bad("serviceName is required")
    return web.json_response(request.app[_STORE].span_names(service))


async def _health(request: web.Request) -> web.Response:
    store = request.app[_STORE]
    return web.json_response({"status": "UP", "spans": store.accepted, "dropped": store.dropped})


def build_app(store: SpanStore) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[_STORE] = store
    app.router.add_post("/api/v2/spans", _post_spans)
    app.router.add_get("/api/v2/spans", _span_names)
    app.router.add_get("/api/v2/traces", _traces)
    app.router.add_get("/api/v2/trace/{trace_id}", _trace)
    app.router.add_get("/api/v2/services", _services)
    app.router.add_get("/health", _health)
    return app
