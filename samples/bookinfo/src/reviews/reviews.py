"""Bookinfo's reviews service, versions v1, v2 and v3 in one program (Java/Liberty in Istio).

    SERVICE_VERSION=v3 python -m samples.bookinfo.src.reviews.reviews [--address A] [--port P]

Environment, as Istio's images read it:
- `SERVICE_VERSION`: v1 (default), v2 or v3; picks the defaults of the next two.
- `ENABLE_RATINGS`: "true" to call ratings and show stars (v1: false, v2/v3: true).
- `STAR_COLOR`: the stars' color (v2: black, v3: red). Black waits 10 s for ratings, any
  other color 2.5 s, as Istio's v2 and v3 do (the fault-injection lesson depends on it).
- `POD_NAME` (default `reviews-<version>`) and `CLUSTER_NAME` (default "null", Java's
  rendering of an unset variable): reported as `podname` and `clustername`.
- `RATINGS_HOSTNAME`, `RATINGS_SERVICE_PORT`, `SERVICES_DOMAIN`: where ratings is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from samples.bookinfo.src.common import server
from samples.bookinfo.src.common.headers import forward_headers
from samples.bookinfo.src.common.product import parse_product_id
from samples.bookinfo.src.common.upstream import Upstream, fetch_json, new_client_session

SERVICE = "reviews"
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"

# (ratings enabled, star color) by version, when the environment does not say.
_VERSION_DEFAULTS: dict[str, tuple[bool, str]] = {
    "v1": (False, "black"),
    "v2": (True, "black"),
    "v3": (True, "red"),
}

# LibertyRestEndpoint.java's two reviews, in order.
_REVIEWS: tuple[tuple[str, str], ...] = (
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
        "plays by Shakespeare.",
    ),
)


@dataclass(frozen=True)
class ReviewsSettings:
    version: str
    pod_name: str
    cluster_name: str
    ratings_enabled: bool
    star_color: str
    ratings: Upstream

    @property
    def ratings_timeout(self) -> float:
        return 10.0 if self.star_color == "black" else 2.5

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReviewsSettings:
        version = env.get("SERVICE_VERSION") or "v1"
        default_enabled, default_color = _VERSION_DEFAULTS.get(version, (False, "black"))
        enabled = env.get("ENABLE_RATINGS")
        return cls(
            version=version,
            pod_name=env.get("POD_NAME") or f"{SERVICE}-{version}",
            cluster_name=env.get("CLUSTER_NAME") or "null",
            # Java's Boolean.valueOf: "true" in any case is true, anything else false.
            ratings_enabled=default_enabled if enabled is None else enabled.lower() == "true",
            star_color=env.get("STAR_COLOR") or default_color,
            ratings=Upstream.from_env("ratings", env),
        )


def reviews_payload(
    product_id: int, settings: ReviewsSettings, stars: Mapping[str, int]
) -> dict[str, Any]:
    """The reviews JSON; a reviewer without stars gets the ratings error when ratings are on."""
    reviews = []
    for reviewer, text in _REVIEWS:
        review: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if settings.ratings_enabled:
            if reviewer in stars:
                review["rating"] = {"stars": stars[reviewer], "color": settings.star_color}
            else:
                review["rating"] = {"error": RATINGS_UNAVAILABLE}
        reviews.append(review)
    return {
        # A string, as the Java service writes it.
        "id": str(product_id),
        "podname": settings.pod_name,
        "clustername": settings.cluster_name,
        "reviews": reviews,
    }


async def fetch_stars(
    session: aiohttp.ClientSession,
    settings: ReviewsSettings,
    product_id: int,
    headers: Mapping[str, str],
) -> dict[str, int]:
    """Stars by reviewer from ratings; empty when ratings cannot be reached or answer badly."""
    reply = await fetch_json(
        session,
        settings.ratings.url("ratings", str(product_id)),
        headers=headers,
        timeout=settings.ratings_timeout,
    )
    ratings = reply.body.get("ratings") if reply.ok and isinstance(reply.body, dict) else None
    if not isinstance(ratings, dict):
        return {}
    return {
        reviewer: value
        for reviewer, value in ratings.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }


_SETTINGS = web.AppKey("settings", ReviewsSettings)
_SESSION = web.AppKey("session", aiohttp.ClientSession)


async def _reviews(request: web.Request) -> web.Response:
    settings = request.app[_SETTINGS]
    product_id = parse_product_id(request.match_info["id"])
    if product_id is None:
        return web.json_response({"error": "please provide numeric product ID"}, status=400)
    stars: dict[str, int] = {}
    if settings.ratings_enabled:
        headers = forward_headers(request.headers)
        stars = await fetch_stars(request.app[_SESSION], settings, product_id, headers)
    return web.json_response(reviews_payload(product_id, settings, stars))


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "Reviews is healthy"})


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    async with new_client_session() as session:
        app[_SESSION] = session
        yield


def build_app(settings: ReviewsSettings | None = None) -> web.Application:
    app = web.Application()
    app[_SETTINGS] = settings or ReviewsSettings.from_env(os.environ)
    app.cleanup_ctx.append(_client_session)
    app.router.add_get("/reviews/{id:.*}", _reviews)
    app.router.add_get("/health", _health)
    return app


if __name__ == "__main__":
    sys.exit(server.main(SERVICE, build_app))
