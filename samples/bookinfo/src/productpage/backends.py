"""productpage's calls to details, reviews and ratings, with Istio's timeouts and error texts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from samples.bookinfo.src.common.upstream import Reply, Upstream, fetch_json

# Istio's productpage gives each call 3 s and tries reviews twice (its fault-injection lesson
# relies on that bug: a 7 s ratings delay makes the page give up after about 6 s).
CALL_TIMEOUT_SECONDS = 3.0
REVIEWS_TRIES = 2

DETAILS_UNAVAILABLE = "Sorry, product details are currently unavailable for this book."
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Sorry, product ratings are currently unavailable for this book."


@dataclass(frozen=True)
class Result:
    """An upstream's answer as productpage passes it on: 200 and its JSON, or an error body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


def _result(reply: Reply, error: str) -> Result:
    if reply.ok and isinstance(reply.body, dict):
        return Result(status=200, body=reply.body)
    # The upstream's own error status when it sent one; 500 when it sent nothing usable.
    status = reply.status if reply.status not in (None, 200) else 500
    return Result(status=status, body={"error": error})


@dataclass(frozen=True)
class Backends:
    details: Upstream
    reviews: Upstream
    ratings: Upstream

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Backends:
        return cls(
            details=Upstream.from_env("details", env),
            reviews=Upstream.from_env("reviews", env),
            ratings=Upstream.from_env("ratings", env),
        )

    def topology(self) -> dict[str, Any]:
        """The call graph the index page draws (Istio's `productpage` dict)."""

        def node(upstream: Upstream, *children: dict[str, Any]) -> dict[str, Any]:
            return {
                "name": str(upstream.base_url),
                "endpoint": upstream.service,
                "children": list(children),
            }

        return {
            "name": "productpage",
            "endpoint": "productpage",
            "children": [node(self.details), node(self.reviews, node(self.ratings))],
        }


class BackendClient:
    """Fetches from the three upstreams over one session; never raises for their failures."""

    def __init__(self, *, backends: Backends, session: aiohttp.ClientSession) -> None:
        self._backends = backends
        self._session = session

    async def get_details(self, product_id: int | str, headers: Mapping[str, str]) -> Result:
        url = self._backends.details.url("details", str(product_id))
        reply = await fetch_json(self._session, url, headers=headers, timeout=CALL_TIMEOUT_SECONDS)
        return _result(reply, DETAILS_UNAVAILABLE)

    async def get_reviews(self, product_id: int | str, headers: Mapping[str, str]) -> Result:
        url = self._backends.reviews.url("reviews", str(product_id))
        reply = Reply(status=None)
        for _ in range(REVIEWS_TRIES):
            reply = await fetch_json(
                self._session, url, headers=headers, timeout=CALL_TIMEOUT_SECONDS
            )
            if reply.ok:
                break
        return _result(reply, REVIEWS_UNAVAILABLE)

    async def get_ratings(self, product_id: int | str, headers: Mapping[str, str]) -> Result:
        url = self._backends.ratings.url("ratings", str(product_id))
        reply = await fetch_json(self._session, url, headers=headers, timeout=CALL_TIMEOUT_SECONDS)
        return _result(reply, RATINGS_UNAVAILABLE)
