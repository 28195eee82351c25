"""The OSB API over HTTP (aiohttp): routing, basic auth, the version header, the spec's status
codes and error bodies. What an operation does is the `ServiceBroker`'s business (model.py).

Order of checks, as a platform sees them: credentials (401), X-Broker-API-Version (412), the
path (404) and method (405, with Allow), then the request itself (400), then the broker.
Every answer, refusals included, is JSON, and echoes X-Broker-API-Request-Identity.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from broker.osb import errors, model, parse

log = logging.getLogger("broker.osb")

REQUEST_IDENTITY = "X-Broker-API-Request-Identity"
MAX_BODY = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class BasicAuth:
    """The platform's credentials (`username:password` pairs; any one of them signs in)."""

    accounts: tuple[tuple[str, str], ...]
    realm: str = "istio-broker"

    def check(self, header: str | None) -> str:
        """The user the Authorization header signs in as; raises Unauthorized."""
        if not header or not header[:6].lower() == "basic ":
            raise errors.Unauthorized("this broker needs HTTP basic authentication")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.Unauthorized(
                "the Authorization header is not base64 of user:password"
            ) from None
        username, sep, password = decoded.partition(":")
        # Compare against every account, in constant time, so timing tells nothing.
        matched = False
        for user, secret in self.accounts:
            same_user = hmac.compare_digest(username.encode(), user.encode())
            same_secret = hmac.compare_digest(password.encode(), secret.encode())
            matched |= bool(sep) and same_user and same_secret
        if not matched:
            raise errors.Unauthorized("wrong username or password")
        return username


@dataclasses.dataclass(frozen=True)
class _Call:
    """One request, routed: its ids and everything the operation handlers read."""

    request: web.Request
    broker: model.ServiceBroker
    info: model.RequestInfo
    instance_id: str = ""
    binding_id: str = ""


_Op = Callable[[_Call], Awaitable[web.Response]]
_BROKER: web.AppKey[model.ServiceBroker] = web.AppKey("broker", model.ServiceBroker)
_AUTH: web.AppKey[BasicAuth] = web.AppKey("auth", BasicAuth)
_READY: web.AppKey[Callable[[], bool]] = web.AppKey("ready")
_INFO: web.RequestKey[model.RequestInfo] = web.RequestKey("info", model.RequestInfo)


def make_app(
    broker: model.ServiceBroker, auth: BasicAuth, *, ready: Callable[[], bool] | None = None
) -> web.Application:
    """The OSB API of `broker`; with `ready`, also GET /ready (no credentials needed) for
    the platform's health checks: 200 when ready() holds, 503 before."""
    # Every request goes through _serve, whatever aiohttp's router made of its path: ids are
    # matched on the raw path, so an id holding an encoded '/' (%2F) or newline is still one
    # path segment.
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_osb])
    app[_BROKER] = broker
    app[_AUTH] = auth
    if ready is not None:
        app[_READY] = ready

        async def readiness(_: web.Request) -> web.Response:
            ok = ready()
            return web.json_response({"ready": ok}, status=200 if ok else 503)

        app.router.add_get("/ready", readiness)
    return app


@web.middleware
async def _osb(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.rel_url.raw_path == "/ready" and request.method == "GET":
        return await handler(request)
    return await _serve(request)


async def _serve(request: web.Request) -> web.StreamResponse:
    started = time.monotonic()
    try:
        response = await _dispatch(request)
    except errors.OsbError as error:
        response = _error_response(error)
    except Exception:
        log.exception("%s %s failed", request.method, request.rel_url.raw_path)
        response = _error_response(errors.OsbError("internal error; see the broker's log"))
    identity = request.headers.get(REQUEST_IDENTITY)
    if identity:
        response.headers[REQUEST_IDENTITY] = identity
    _log_request(request, response, request.get(_INFO), time.monotonic() - started)
    return response


async def _dispatch(request: web.Request) -> web.Response:
    username = request.app[_AUTH].check(request.headers.get("Authorization"))
    version = parse.api_version(request.headers.get("X-Broker-API-Version"))
    ready = request.app.get(_READY)
    if ready is not None and not ready():
        raise errors.ServiceUnavailable("the broker is starting; try again in a moment")
    operation, ids = _route(request)
    request[_INFO] = model.RequestInfo(api_version=version, username=username)
    # Who asked matters for what changes, and is recorded with it; reads ignore the header.
    origin = None
    if request.method != "GET":
        origin = parse.originating_identity(
            request.headers.get("X-Broker-API-Originating-Identity")
        )
    info = model.RequestInfo(
        api_version=version,
        username=username,
        originating_identity=origin,
        request_identity=request.headers.get(REQUEST_IDENTITY, ""),
    )
    request[_INFO] = info  # for the log line, whatever the answer
    call = _Call(request, request.app[_BROKER], info, *ids)
    return await operation(call)


def _route(request: web.Request) -> tuple[_Op, tuple[str, ...]]:
    segments = request.rel_url.raw_path.split("/")
    if len(segments) < 3 or segments[0] != "" or segments[1] != "v2":
        raise errors.NotFound(f"no such endpoint: {request.rel_url.raw_path}")
    rest = segments[2:]
    shape: tuple[str, ...]
    ids: list[str] = []
    if rest == ["catalog"]:
        shape = ("catalog",)
    elif len(rest) in (2, 3, 4, 5) and rest[0] == "service_instances":
        ids.append(rest[1])
        tail = rest[2:]
        if len(tail) >= 2 and tail[0] == "service_bindings":
            ids.append(tail[1])
            tail = tail[2:]
            shape = ("binding", *tail)
        else:
            shape = ("instance", *tail)
    else:
        raise errors.NotFound(f"no such endpoint: {request.rel_url.raw_path}")
    methods = _ROUTES.get(shape)
    if methods is None or any(not i for i in ids):
        raise errors.NotFound(f"no such endpoint: {request.rel_url.raw_path}")
    operation = methods.get(request.method)
    if operation is None:
        allowed = tuple(methods)
        raise errors.MethodNotAllowed(
            f"{request.method} is not supported here; use {', '.join(allowed)}", allowed
        )
    return operation, tuple(_unquote(i) for i in ids)


def _unquote(segment: str) -> str:
    try:
        return urllib.parse.unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise errors.BadRequest(f"the id {segment!r} is not percent-encoded UTF-8") from None


async def _body(call: _Call) -> dict[str, Any]:
    try:
        raw = await call.request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes") from None
    return parse.json_body(raw, call.request.headers.get("Content-Type", ""))


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None):
    return web.json_response(body, status=status, headers=headers)


def _error_response(error: errors.OsbError) -> web.Response:
    headers = {}
    if isinstance(error, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Basic realm="istio-broker", charset="UTF-8"'
    if isinstance(error, errors.MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    return _json(error.body(), error.status, headers)


def _async_body(operation: str | None) -> dict[str, Any]:
    return {"operation": operation} if operation else {}


async def _catalog(call: _Call) -> web.Response:
    return _json((await call.broker.catalog()).to_json())


async def _provision(call: _Call) -> web.Response:
    body = await _body(call)
    request = parse.provision(call.instance_id, body, call.request.query, call.info)
    result = await call.broker.provision(request)
    answer: dict[str, Any] = {}
    if result.dashboard_url:
        answer["dashboard_url"] = result.dashboard_url
    if result.metadata:
        answer["metadata"] = result.metadata
    if result.outcome is model.Outcome.ACCEPTED:
        answer.update(_async_body(result.operation))
    return _json(answer, result.outcome.value)


async def _update(call: _Call) -> web.Response:
    body = await _body(call)
    request = parse.update(call.instance_id, body, call.request.query, call.info)
    result = await call.broker.update(request)
    return _json(_async_body(result.operation), result.outcome.value)


async def _deprovision(call: _Call) -> web.Response:
    request = parse.deprovision(call.instance_id, call.request.query, call.info)
    result = await call.broker.deprovision(request)
    return _json(_async_body(result.operation), result.outcome.value)


async def _fetch_instance(call: _Call) -> web.Response:
    return _json((await call.broker.fetch_instance(call.instance_id)).to_json())


async def _bind(call: _Call) -> web.Response:
    body = await _body(call)
    request = parse.bind(call.instance_id, call.binding_id, body, call.request.query, call.info)
    result = await call.broker.bind(request)
    if result.outcome is model.Outcome.ACCEPTED:
        return _json(_async_body(result.operation), 202)
    assert result.binding is not None
    return _json(result.binding.to_json(), result.outcome.value)


async def _unbind(call: _Call) -> web.Response:
    request = parse.unbind(call.instance_id, call.binding_id, call.request.query, call.info)
    result = await call.broker.unbind(request)
    return _json(_async_body(result.operation), result.outcome.value)


async def _fetch_binding(call: _Call) -> web.Response:
    view = await call.broker.fetch_binding(call.instance_id, call.binding_id)
    return _json(view.to_json(fetched=True))


async def _last_operation(call: _Call) -> web.Response:
    request = parse.last_operation(call.instance_id, call.binding_id or None, call.request.query)
    result = await call.broker.last_operation(request)
    headers = {"Retry-After": str(result.retry_after)} if result.retry_after else None
    return _json(result.to_json(), headers=headers)


_ROUTES: dict[tuple[str, ...], dict[str, _Op]] = {
    ("catalog",): {"GET": _catalog},
    ("instance",): {
        "PUT": _provision,
        "PATCH": _update,
        "DELETE": _deprovision,
        "GET": _fetch_instance,
    },
    ("instance", "last_operation"): {"GET": _last_operation},
    ("binding",): {"PUT": _bind, "DELETE": _unbind, "GET": _fetch_binding},
    ("binding", "last_operation"): {"GET": _last_operation},
}


def _log_request(
    request: web.Request,
    response: web.StreamResponse,
    info: model.RequestInfo | None,
    seconds: float,
) -> None:
    who = ""
    if info is not None:
        who = f" user={info.username}"
        if info.originating_identity is not None:
            origin = info.originating_identity
            who += f" origin={origin.platform}:{_compact(origin.value)}"
        if info.request_identity:
            who += f" request={info.request_identity}"
    log.info(
        "%s %s -> %d%s (%.0fms)",
        request.method,
        request.rel_url.raw_path,
        response.status,
        who,
        seconds * 1000,
    )


def _compact(value: dict[str, Any], limit: int = 200) -> str:
    text = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def accounts_from_text(text: str, source: str) -> BasicAuth:
    """A credentials file: one `username:password` per line (# comments allowed)."""
    accounts: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, password = line.partition(":")
        if not sep or not username or not password:
            raise ValueError(f"{source}:{number}: want username:password")
        accounts.append((username, password))
    if not accounts:
        raise ValueError(f"{source}: no username:password line")
    return BasicAuth(tuple(accounts))


__all__: Sequence[str] = ("BasicAuth", "accounts_from_text", "make_app")
