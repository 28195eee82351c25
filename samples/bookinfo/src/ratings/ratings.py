"""Bookinfo's ratings service: the star counts each reviewer gave (Istio's ratings v1, Node.js there).

python -m samples.bookinfo.src.ratings.ratings [--address 127.0.0.1] [--port 9080]
"""

from __future__ import annotations

import sys
from typing import Any

from aiohttp import web

from samples.bookinfo.src.common import server
from samples.bookinfo.src.common.product import parse_product_id

SERVICE = "ratings"


def product_ratings(product_id: int) -> dict[str, Any]:
    """Istio's local ratings (ratings.js `getLocalReviews`)."""
    return {"id": product_id, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}


async def _ratings(request: web.Request) -> web.Response:
    product_id = parse_product_id(request.match_info["id"])
    if product_id is None:
        return web.json_response({"error": "please provide numeric product ID"}, status=400)
    return web.json_response(product_ratings(product_id))


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "Ratings is healthy"})


def build_app() -> web.Application:
    app = web.Application()
    # `{id:.*}` rather than `{id}` so an empty id is refused with 400 as Istio does, not 404.
    app.router.add_get("/ratings/{id:.*}", _ratings)
    app.router.add_get("/health", _health)
    return app


if __name__ == "__main__":
    sys.exit(server.main(SERVICE, build_app))
