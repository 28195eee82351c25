"""productpage end to end: real details, reviews v1/v2/v3 and ratings processes, plus
recording stand-ins where a test must see what crossed the wire (headers, retries, the proxy).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from samples.bookinfo.src.common import testing
from samples.bookinfo.src.common.testing import (
    HttpResult,
    RecordedRequest,
    RecordingServer,
    ServiceProcess,
)

FULL_STAR = 'class="glyphicon glyphicon-star"'
EMPTY_STAR = 'class="glyphicon glyphicon-star-empty"'
DETAILS_SORRY = "Sorry, product details are currently unavailable for this book."
REVIEWS_SORRY = "Sorry, product reviews are currently unavailable for this book."
RATINGS_SORRY = "Sorry, product ratings are currently unavailable for this book."
RATINGS_DOWN = "Ratings service is currently unavailable"

DETAILS_BODY = {"id": 0, "type": "paperback", "pages": 200, "publisher": "PublisherA"}
RATINGS_BODY = {"id": 0, "ratings": {"Reviewer1": 3, "Reviewer2": 1}}
REVIEWS_BODY = {
    "id": "0",
    "podname": "reviews-fake",
    "clustername": "null",
    "reviews": [
        {"reviewer": "Reviewer1", "text": "Fine.", "rating": {"stars": 2, "color": "black"}}
    ],
}
# What an edge proxy and a tracer would have put on the request reaching productpage.
TRACE_HEADERS = {
    "x-request-id": "e2e-request-1",
    "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
    "x-b3-spanid": "a2fb4a1d1a96d312",
    "x-b3-parentspanid": "0020000000000001",
    "x-b3-sampled": "1",
    "x-b3-flags": "1",
    "x-ot-span-context": "463ac35c9f6413ad;a2fb4a1d1a96d312;0000000000000000;cs",
    "traceparent": "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01",
    "tracestate": "vendor=value",
    "user-agent": "bookinfo-e2e/1.0",
}


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bookinfo")


@pytest.fixture(scope="module")
def mesh(log_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    """details, ratings, reviews v1/v2/v3, and one productpage per reviews version."""
    started: dict[str, ServiceProcess] = {}

    def start(name: str, service: str, env: dict[str, str]) -> ServiceProcess:
        started[name] = testing.start_service(service, log_dir=log_dir, env=env, name=name)
        return started[name]

    try:
        details = start("details", "details", {})
        ratings = start("ratings", "ratings", {})
        for version in ("v1", "v2", "v3"):
            reviews = start(
                f"reviews-{version}",
                "reviews",
                {"SERVICE_VERSION": version} | testing.upstream_env("ratings", ratings.url),
            )
            start(
                f"productpage-{version}",
                "productpage",
                testing.upstream_env("details", details.url)
                | testing.upstream_env("reviews", reviews.url)
                | testing.upstream_env("ratings", ratings.url),
            )
        yield started
    finally:
        for running in started.values():
            running.stop()


def get(running: ServiceProcess, path: str, headers: dict[str, str] | None = None) -> HttpResult:
    return asyncio.run(testing.fetch(running.url.with_path(path), headers=headers))


def product_page(running: ServiceProcess, **headers: str) -> str:
    result = get(running, "/productpage", headers=headers)
    assert result.status == 200
    assert result.headers["Content-Type"].startswith("text/html")
    return result.text


def colors(html: str) -> list[str]:
    return re.findall(r'<font color="([^"]*)">', html)


def test_index_and_health(mesh: dict[str, ServiceProcess]) -> None:
    productpage = mesh["productpage-v1"]
    index = get(productpage, "/")
    assert index.status == 200
    assert "Normal user" in index.text
    assert "Test user" in index.text
    assert f"<td>http://127.0.0.1:{mesh['reviews-v1'].url.port}</td>" in index.text
    assert get(productpage, "/index.html").text == index.text
    health = get(productpage, "/health")
    assert (health.status, health.text) == (200, "Product page is healthy")


def test_v1_page_has_details_and_reviews_without_stars(mesh: dict[str, ServiceProcess]) -> None:
    html = product_page(mesh["productpage-v1"])
    assert "The Comedy of Errors" in html
    assert "<dt>Type:</dt><dd>paperback</dd>" in html
    assert "<dt>ISBN-10:</dt><dd>1234567890</dd>" in html
    assert "An extremely entertaining play by Shakespeare." in html
    assert "Absolutely fun and entertaining." in html
    assert FULL_STAR not in html
    assert EMPTY_STAR not in html
    assert "Reviews served by: reviews-v1" in html


def test_metrics_count_results_by_destination_and_code(mesh: dict[str, ServiceProcess]) -> None:
    productpage = mesh["productpage-v3"]
    product_page(productpage)
    product_page(productpage)
    metrics = get(productpage, "/metrics")
    assert metrics.status == 200
    assert 'request_result_total{destination_app="details",response_code="200"} 2.0' in metrics.text
    assert 'request_result_total{destination_app="reviews",response_code="200"} 2.0' in metrics.text


def test_v2_page_has_black_stars(mesh: dict[str, ServiceProcess]) -> None:
    html = product_page(mesh["productpage-v2"])
    assert (html.count(FULL_STAR), html.count(EMPTY_STAR)) == (5 + 4, 0 + 1)
    assert colors(html) == ["black", "black"]
    assert "Reviews served by: reviews-v2" in html


def test_v3_page_has_red_stars(mesh: dict[str, ServiceProcess]) -> None:
    html = product_page(mesh["productpage-v3"])
    assert (html.count(FULL_STAR), html.count(EMPTY_STAR)) == (9, 1)
    assert colors(html) == ["red", "red"]
    assert "Reviews served by: reviews-v3" in html


def test_api(mesh: dict[str, ServiceProcess]) -> None:
    productpage = mesh["productpage-v2"]
    products = get(productpage, "/api/v1/products")
    assert products.status == 200
    [product] = products.json()
    assert (product["id"], product["title"]) == (0, "The Comedy of Errors")
    assert "descriptionHtml" in product

    details = get(productpage, "/api/v1/products/0")
    assert details.status == 200
    assert details.json()["author"] == "William Shakespeare"

    reviews = get(productpage, "/api/v1/products/0/reviews")
    assert reviews.status == 200
    assert reviews.json()["podname"] == "reviews-v2"
    assert reviews.json()["reviews"][0]["rating"] == {"stars": 5, "color": "black"}

    ratings = get(productpage, "/api/v1/products/0/ratings")
    assert ratings.status == 200
    assert ratings.json() == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}

    # details refuses a non-numeric id; productpage passes its status on with its own text.
    bad = get(productpage, "/api/v1/products/abc")
    assert (bad.status, bad.json()) == (400, {"error": DETAILS_SORRY})


def test_login_and_logout(mesh: dict[str, ServiceProcess]) -> None:
    productpage = mesh["productpage-v2"]
    login = asyncio.run(
        testing.fetch(
            productpage.url.with_path("/login"), method="POST", data={"username": "jason"}
        )
    )
    assert login.status == 302
    assert login.headers["Location"] == "/productpage"
    assert re.match(r"user=jason(;|$)", login.headers["Set-Cookie"])

    html = product_page(productpage, cookie="user=jason")
    assert 'jason ( <a href="logout">sign out</a> )' in html
    assert 'action="login"' not in html

    logout = get(productpage, "/logout", headers={"cookie": "user=jason"})
    assert logout.status == 302
    assert logout.headers["Location"] == "/productpage"
    assert logout.headers["Set-Cookie"].startswith('user=""')
    assert "Max-Age=0" in logout.headers["Set-Cookie"]


def test_access_log(mesh: dict[str, ServiceProcess]) -> None:
    productpage = mesh["productpage-v1"]
    product_page(productpage, **{"x-request-id": "pp-log-1"})
    assert "GET /productpage 200 x-request-id=pp-log-1" in productpage.wait_for_log("pp-log-1")
    # The same id in details' and reviews' logs: productpage forwarded it.
    assert "GET /details/0 200" in mesh["details"].wait_for_log("pp-log-1")
    assert "GET /reviews/0 200" in mesh["reviews-v1"].wait_for_log("pp-log-1")


def test_headers_and_end_user_reach_details_reviews_and_ratings(tmp_path: Path) -> None:
    """productpage -> details (recorded) and productpage -> reviews v2 -> ratings (recorded)."""

    async def scenario() -> None:
        routes = {"/details/": DETAILS_BODY, "/ratings/": RATINGS_BODY}
        async with RecordingServer(testing.json_routes(routes)) as fake:
            reviews_env = {"SERVICE_VERSION": "v2"} | testing.upstream_env("ratings", fake.url)
            async with testing.serving("reviews", log_dir=tmp_path, env=reviews_env) as reviews:
                env = testing.upstream_env("details", fake.url) | testing.upstream_env(
                    "reviews", reviews.url
                )
                async with testing.serving("productpage", log_dir=tmp_path, env=env) as pp:
                    page = pp.url.with_path("/productpage")
                    signed_out = await testing.fetch(page, headers=TRACE_HEADERS)
                    assert signed_out.status == 200
                    # The stars come from the recorded ratings (3 and 1), through real reviews.
                    assert signed_out.text.count(FULL_STAR) == 3 + 1

                    signed_in = await testing.fetch(
                        page, headers=TRACE_HEADERS | {"cookie": "user=jason"}
                    )
                    assert signed_in.status == 200

        [details_out, details_in] = fake.requests_to("/details/")
        [ratings_out, ratings_in] = fake.requests_to("/ratings/")
        for call in (details_out, details_in, ratings_out, ratings_in):
            for name, value in TRACE_HEADERS.items():
                assert call.headers.get(name) == value, (call.path, name)
        assert details_out.target == "/details/0"
        assert ratings_out.target == "/ratings/0"
        assert "end-user" not in details_out.headers
        assert "end-user" not in ratings_out.headers
        # Signed in: the user's name reaches details, and ratings by way of reviews.
        assert details_in.headers["end-user"] == "jason"
        assert ratings_in.headers["end-user"] == "jason"

    asyncio.run(scenario())


def test_ratings_down_shows_the_ratings_error(tmp_path: Path) -> None:
    with testing.refused_port() as dead:
        dead_ratings = {"RATINGS_HOSTNAME": "127.0.0.1", "RATINGS_SERVICE_PORT": str(dead)}
        with (
            testing.running_service("details", log_dir=tmp_path) as details,
            testing.running_service(
                "reviews", log_dir=tmp_path, env={"SERVICE_VERSION": "v3"} | dead_ratings
            ) as reviews,
            testing.running_service(
                "productpage",
                log_dir=tmp_path,
                env=testing.upstream_env("details", details.url)
                | testing.upstream_env("reviews", reviews.url)
                | dead_ratings,
            ) as productpage,
        ):
            html = product_page(productpage)
            ratings_api = get(productpage, "/api/v1/products/0/ratings")
    assert html.count(f"<p><i>{RATINGS_DOWN}</i></p>") == 2
    assert FULL_STAR not in html
    assert "Book Details" in html
    assert "An extremely entertaining play" in html
    assert (ratings_api.status, ratings_api.json()) == (500, {"error": RATINGS_SORRY})


def test_failures_and_the_second_try_of_reviews(tmp_path: Path) -> None:
    """details unreachable; reviews (recorded) failing always, then only on the first try."""
    answers: list[int] = []

    def reviews_respond(request: RecordedRequest) -> web.Response:
        status = answers.pop(0) if answers else 200
        if status != 200:
            return web.json_response({"error": "overloaded"}, status=status)
        return web.json_response(REVIEWS_BODY)

    async def scenario() -> None:
        with testing.refused_port() as dead:
            async with RecordingServer(reviews_respond) as fake_reviews:
                env = {"DETAILS_HOSTNAME": "127.0.0.1", "DETAILS_SERVICE_PORT": str(dead)}
                env |= testing.upstream_env("reviews", fake_reviews.url)
                async with testing.serving("productpage", log_dir=tmp_path, env=env) as pp:
                    page = pp.url.with_path("/productpage")
                    api = pp.url.with_path("/api/v1/products/0/reviews")

                    answers[:] = [503, 503]
                    failed = await testing.fetch(page)
                    assert len(fake_reviews.requests) == 2
                    assert failed.status == 200
                    assert "Error fetching product details!" in failed.text
                    assert DETAILS_SORRY in failed.text
                    assert "Error fetching product reviews!" in failed.text
                    assert REVIEWS_SORRY in failed.text

                    answers[:] = [503, 503]
                    failed_api = await testing.fetch(api)
                    assert (failed_api.status, failed_api.json()) == (503, {"error": REVIEWS_SORRY})

                    answers[:] = [503]
                    recovered = await testing.fetch(page)
                    assert len(fake_reviews.requests) == 2 + 2 + 2
                    assert "Reviews served by: reviews-fake" in recovered.text
                    assert "Error fetching product reviews!" not in recovered.text

                    details_api = await testing.fetch(pp.url.with_path("/api/v1/products/0"))
                    assert (details_api.status, details_api.json()) == (
                        500,
                        {"error": DETAILS_SORRY},
                    )

    asyncio.run(scenario())


def test_calls_go_through_http_proxy_by_service_name(tmp_path: Path) -> None:
    """The sidecar contract: with http_proxy set, productpage asks the proxy for
    `http://reviews:9080/...` with Host `reviews:9080`, and never resolves the names itself."""

    async def scenario() -> None:
        routes = {"/details/": DETAILS_BODY, "/reviews/": REVIEWS_BODY}
        async with RecordingServer(testing.json_routes(routes)) as proxy:
            env = {"http_proxy": str(proxy.url)}
            async with testing.serving("productpage", log_dir=tmp_path, env=env) as pp:
                result = await testing.fetch(
                    pp.url.with_path("/productpage"), headers={"x-request-id": "via-proxy"}
                )
        assert result.status == 200
        assert "Reviews served by: reviews-fake" in result.text
        assert "<dt>Type:</dt><dd>paperback</dd>" in result.text
        lines = {(r.method, r.target, r.host) for r in proxy.requests}
        assert lines == {
            ("GET", "http://details:9080/details/0", "details:9080"),
            ("GET", "http://reviews:9080/reviews/0", "reviews:9080"),
        }
        assert all(r.headers["x-request-id"] == "via-proxy" for r in proxy.requests)

    asyncio.run(scenario())
