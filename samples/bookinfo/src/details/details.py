"""Bookinfo's details service: the book's static facts (Istio's details v1, in Ruby there).

python -m samples.bookinfo.src.details.details [--address 127.0.0.1] [--port 9080]
"""

from __future__ import annotations

import sys
from typing import Any

from aiohttp import web

from samples.bookinfo.src.common import server
from samples.bookinfo.src.common.product import parse_product_id

SERVICE = "details"


def book_details(product_id: int) -> dict[str, Any]:
    """Istio's payload, field for field (details.rb `get_book_details`)."""
    return {
        "id": product_id,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


async def _details(request: web.Request) -> web.Response:
    product_id = parse_product_id(request.match_info["id"])
    if product_id is None:
        return web.json_response({"error": "please provide numeric product id"}, status=400)
    return web.json_response(book_details(product_id))


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "Details is healthy"})


def build_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/details/{id}", _details)
    app.router.add_get("/health", _health)
    return app


if __name__ == "__main__":
    sys.exit(server.main(SERVICE, build_app))
