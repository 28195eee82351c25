"""Bookinfo's productpage: the web page and JSON API in front of details, reviews and ratings.

    python -m samples.bookinfo.src.productpage.productpage [--address 127.0.0.1] [--port 9080]

Upstreams are named `http://<svc><.SERVICES_DOMAIN>:9080` (`DETAILS_HOSTNAME`,
`REVIEWS_HOSTNAME`, `RATINGS_HOSTNAME`, `<SVC>_SERVICE_PORT` override) and reached through
`http_proxy` when it is set: in the mesh, the sidecar Envoy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import prometheus_client
from aiohttp import web

from samples.bookinfo.src.common import server
from samples.bookinfo.src.common.headers import forward_headers
from samples.bookinfo.src.common.upstream import new_client_session
from samples.bookinfo.src.productpage import templates
from samples.bookinfo.src.productpage.backends import BackendClient, Backends, Result
from samples.bookinfo.src.productpage.products import PRODUCTS

SERVICE = "productpage"
# 0.2-0.8 kept the signed-in user in this cookie; routing rules of that era matched it.
USER_COOKIE = "user"
HTML = "text/html"

_BACKENDS = web.AppKey("backends", Backends)
_CLIENT = web.AppKey("client", BackendClient)
_REGISTRY = web.AppKey("metrics", prometheus_client.CollectorRegistry)
_RESULTS = web.AppKey("results", prometheus_client.Counter)


def _counted(request: web.Request, destination: str, result: Result) -> Result:
    """Istio's productpage counts its calls' results (`request_result`), served on /metrics."""
    request.app[_RESULTS].labels(
        destination_app=destination, response_code=str(result.status)
    ).inc()
    return result


async def _metrics(request: web.Request) -> web.Response:
    body = prometheus_client.generate_latest(request.app[_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


def _user(request: web.Request) -> str:
    return request.cookies.get(USER_COOKIE, "")


def _outbound_headers(request: web.Request) -> dict[str, str]:
    """The propagated headers, with `end-user` naming the signed-in user (Istio 1.0+)."""
    headers = forward_headers(request.headers)
    user = _user(request)
    if user:
        headers["end-user"] = user
    return headers


def _json(result: Result) -> web.Response:
    return web.json_response(result.body, status=result.status)


async def _index(request: web.Request) -> web.Response:
    page = templates.render_index(user=_user(request), topology=request.app[_BACKENDS].topology())
    return web.Response(text=page, content_type=HTML)


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="Product page is healthy")


async def _login(request: web.Request) -> web.Response:
    form = await request.post()
    username = form.get("username")
    response = web.Response(status=302, headers={"Location": "/productpage"})
    if isinstance(username, str) and username:
        response.set_cookie(USER_COOKIE, username, path="/")
    return response


async def _logout(request: web.Request) -> web.Response:
    response = web.Response(status=302, headers={"Location": "/productpage"})
    response.del_cookie(USER_COOKIE, path="/")
    return response


async def _product_page(request: web.Request) -> web.Response:
    product = PRODUCTS[0]
    headers = _outbound_headers(request)
    client = request.app[_CLIENT]
    details = _counted(request, "details", await client.get_details(product.id, headers))
    reviews = _counted(request, "reviews", await client.get_reviews(product.id, headers))
    page = templates.render_product_page(
        user=_user(request), product=product, details=details, reviews=reviews
    )
    return web.Response(text=page, content_type=HTML)


async def _api_products(request: web.Request) -> web.Response:
    return web.json_response([product.to_json() for product in PRODUCTS])


async def _api_product(request: web.Request) -> web.Response:
    client = request.app[_CLIENT]
    result = await client.get_details(request.match_info["id"], _outbound_headers(request))
    return _json(_counted(request, "details", result))


async def _api_reviews(request: web.Request) -> web.Response:
    client = request.app[_CLIENT]
    result = await client.get_reviews(request.match_info["id"], _outbound_headers(request))
    return _json(_counted(request, "reviews", result))


async def _api_ratings(request: web.Request) -> web.Response:
    client = request.app[_CLIENT]
    result = await client.get_ratings(request.match_info["id"], _outbound_headers(request))
    return _json(_counted(request, "ratings", result))


async def _client(app: web.Application) -> AsyncIterator[None]:
    async with new_client_session() as session:
        app[_CLIENT] = BackendClient(backends=app[_BACKENDS], session=session)
        yield


def build_app(backends: Backends | None = None) -> web.Application:
    app = web.Application()
    app[_BACKENDS] = backends or Backends.from_env(os.environ)
    app[_REGISTRY] = registry = prometheus_client.CollectorRegistry()
    app[_RESULTS] = prometheus_client.Counter(
        "request_result",
        "Results of requests",
        ["destination_app", "response_code"],
        registry=registry,
    )
    app.cleanup_ctx.append(_client)
    app.router.add_get("/", _index)
    app.router.add_get("/index.html", _index)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/login", _login)
    app.router.add_get("/logout", _logout)
    app.router.add_get("/productpage", _product_page)
    app.router.add_get("/api/v1/products", _api_products)
    app.router.add_get("/api/v1/products/{id}", _api_product)
    app.router.add_get("/api/v1/products/{id}/reviews", _api_reviews)
    app.router.add_get("/api/v1/products/{id}/ratings", _api_ratings)
    return app


if __name__ == "__main__":
    sys.exit(server.main(SERVICE, build_app))
