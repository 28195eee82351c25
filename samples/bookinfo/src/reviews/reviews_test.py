"""reviews v1/v2/v3 as processes, against a real ratings process or a recording stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from samples.bookinfo.src.common import testing
from samples.bookinfo.src.common.headers import PROPAGATED_HEADERS
from samples.bookinfo.src.common.testing import HttpResult, RecordingServer, ServiceProcess
from samples.bookinfo.src.reviews.reviews import ReviewsSettings

REVIEW_TEXTS = {
    "Reviewer1": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    "Reviewer2": "Absolutely fun and entertaining. The play lacks thematic depth when compared to "
    "other plays by Shakespeare.",
}
RATINGS_DOWN = {"error": "Ratings service is currently unavailable"}
RATINGS_BODY = {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reviews")


@pytest.fixture(scope="module")
def ratings(log_dir: Path) -> Iterator[ServiceProcess]:
    with testing.running_service("ratings", log_dir=log_dir) as running:
        yield running


@pytest.fixture(scope="module")
def reviews(log_dir: Path, ratings: ServiceProcess) -> Iterator[dict[str, ServiceProcess]]:
    """v1 and v3 configured as Istio's deployments do; v2 from SERVICE_VERSION alone."""
    envs = {
        "v1": {"SERVICE_VERSION": "v1", "ENABLE_RATINGS": "false"},
        "v2": {"SERVICE_VERSION": "v2"},
        "v3": {"SERVICE_VERSION": "v3", "ENABLE_RATINGS": "true", "STAR_COLOR": "red"},
    }
    started: dict[str, ServiceProcess] = {}
    try:
        for version, env in envs.items():
            env = env | testing.upstream_env("ratings", ratings.url)
            started[version] = testing.start_service(
                "reviews", log_dir=log_dir, env=env, name=f"reviews-{version}"
            )
        yield started
    finally:
        for running in started.values():
            running.stop()


def get(running: ServiceProcess, path: str, headers: dict[str, str] | None = None) -> HttpResult:
    return asyncio.run(testing.fetch(running.url.with_path(path), headers=headers))


def ratings_of(body: dict) -> dict[str, object]:
    return {review["reviewer"]: review.get("rating") for review in body["reviews"]}


def test_v1_has_no_ratings(reviews: dict[str, ServiceProcess]) -> None:
    result = get(reviews["v1"], "/reviews/0")
    assert result.status == 200
    assert result.json() == {
        "id": "0",
        "podname": "reviews-v1",
        "clustername": "null",
        "reviews": [
            {"reviewer": "Reviewer1", "text": REVIEW_TEXTS["Reviewer1"]},
            {"reviewer": "Reviewer2", "text": REVIEW_TEXTS["Reviewer2"]},
        ],
    }


def test_v2_has_black_stars_from_ratings(reviews: dict[str, ServiceProcess]) -> None:
    body = get(reviews["v2"], "/reviews/0").json()
    assert body["podname"] == "reviews-v2"
    assert ratings_of(body) == {
        "Reviewer1": {"stars": 5, "color": "black"},
        "Reviewer2": {"stars": 4, "color": "black"},
    }
    assert [review["text"] for review in body["reviews"]] == list(REVIEW_TEXTS.values())


def test_v3_has_red_stars_from_ratings(reviews: dict[str, ServiceProcess]) -> None:
    body = get(reviews["v3"], "/reviews/0").json()
    assert body["podname"] == "reviews-v3"
    assert ratings_of(body) == {
        "Reviewer1": {"stars": 5, "color": "red"},
        "Reviewer2": {"stars": 4, "color": "red"},
    }


def test_request_id_reaches_ratings(
    reviews: dict[str, ServiceProcess], ratings: ServiceProcess
) -> None:
    get(reviews["v2"], "/reviews/0", headers={"x-request-id": "through-reviews-1"})
    line = ratings.wait_for_log("through-reviews-1")
    assert "GET /ratings/0 200" in line


def test_id_is_echoed_as_a_string(reviews: dict[str, ServiceProcess]) -> None:
    assert get(reviews["v1"], "/reviews/12").json()["id"] == "12"


def test_non_numeric_id_is_refused(reviews: dict[str, ServiceProcess]) -> None:
    result = get(reviews["v2"], "/reviews/abc")
    assert result.status == 400
    assert result.json() == {"error": "please provide numeric product ID"}


def test_health(reviews: dict[str, ServiceProcess]) -> None:
    result = get(reviews["v1"], "/health")
    assert result.status == 200
    assert result.json() == {"status": "Reviews is healthy"}


def test_ratings_down_gives_the_ratings_error(tmp_path: Path) -> None:
    with testing.refused_port() as port:
        env = {"SERVICE_VERSION": "v2", "RATINGS_HOSTNAME": "127.0.0.1"}
        env["RATINGS_SERVICE_PORT"] = str(port)
        with testing.running_service("reviews", log_dir=tmp_path, env=env) as running:
            result = get(running, "/reviews/0")
    assert result.status == 200
    assert ratings_of(result.json()) == {"Reviewer1": RATINGS_DOWN, "Reviewer2": RATINGS_DOWN}


def test_against_a_recording_ratings(tmp_path: Path) -> None:
    """Headers propagate, ratings errors and partial answers show, v1 never calls ratings."""
    inbound = {name: f"value-of-{name}" for name in PROPAGATED_HEADERS}
    inbound["x-not-propagated"] = "secret"

    async def scenario() -> None:
        async with RecordingServer(testing.json_routes({"/ratings/": RATINGS_BODY})) as fake:
            env = testing.upstream_env("ratings", fake.url) | {
                "SERVICE_VERSION": "v3",
                "POD_NAME": "reviews-v3-7f9c",
                "CLUSTER_NAME": "west",
            }
            async with testing.serving("reviews", log_dir=tmp_path, env=env) as v3:
                # Propagation: exactly the listed headers reach ratings, to /ratings/<id>.
                body = (await testing.fetch(v3.url.with_path("/reviews/0"), headers=inbound)).json()
                assert body["podname"] == "reviews-v3-7f9c"
                assert body["clustername"] == "west"
                assert ratings_of(body)["Reviewer1"] == {"stars": 5, "color": "red"}
                [call] = fake.requests
                assert call.method == "GET"
                assert call.target == "/ratings/0"
                assert call.host == f"127.0.0.1:{fake.url.port}"
                for name in PROPAGATED_HEADERS:
                    assert call.headers.get(name) == f"value-of-{name}", name
                assert "x-not-propagated" not in call.headers

                # ratings answering an error status: both reviewers show the error.
                fake.respond = lambda request: web.json_response({}, status=500)
                body = (await testing.fetch(v3.url.with_path("/reviews/0"))).json()
                assert ratings_of(body) == {"Reviewer1": RATINGS_DOWN, "Reviewer2": RATINGS_DOWN}

                # ratings knowing only one reviewer: the other shows the error.
                fake.respond = testing.json_routes({"/ratings/": {"ratings": {"Reviewer1": 2}}})
                body = (await testing.fetch(v3.url.with_path("/reviews/0"))).json()
                assert ratings_of(body) == {
                    "Reviewer1": {"stars": 2, "color": "red"},
                    "Reviewer2": RATINGS_DOWN,
                }

            calls_before_v1 = len(fake.requests)
            env = testing.upstream_env("ratings", fake.url) | {"SERVICE_VERSION": "v1"}
            async with testing.serving("reviews", log_dir=tmp_path, env=env, name="v1") as v1:
                assert (await testing.fetch(v1.url.with_path("/reviews/0"))).status == 200
            assert len(fake.requests) == calls_before_v1

    asyncio.run(scenario())


def test_settings_follow_the_version_unless_told() -> None:
    v1 = ReviewsSettings.from_env({})
    assert (v1.version, v1.pod_name, v1.ratings_enabled, v1.star_color) == (
        "v1",
        "reviews-v1",
        False,
        "black",
    )
    v3 = ReviewsSettings.from_env({"SERVICE_VERSION": "v3"})
    assert (v3.ratings_enabled, v3.star_color, v3.ratings_timeout) == (True, "red", 2.5)
    v2 = ReviewsSettings.from_env({"SERVICE_VERSION": "v2", "ENABLE_RATINGS": "FALSE"})
    assert (v2.ratings_enabled, v2.star_color, v2.ratings_timeout) == (False, "black", 10.0)
    custom = ReviewsSettings.from_env({"ENABLE_RATINGS": "True", "STAR_COLOR": "blue"})
    assert (custom.ratings_enabled, custom.star_color, custom.ratings_timeout) == (
        True,
        "blue",
        2.5,
    )


def test_ratings_address_follows_istios_variables() -> None:
    default = ReviewsSettings.from_env({})
    assert str(default.ratings.url("ratings", "0")) == "http://ratings:9080/ratings/0"
    custom = ReviewsSettings.from_env(
        {
            "RATINGS_HOSTNAME": "stars",
            "RATINGS_SERVICE_PORT": "9999",
            "SERVICES_DOMAIN": "default.svc.cluster.local",
        }
    )
    assert str(custom.ratings.url("ratings", "3")) == (
        "http://stars.default.svc.cluster.local:9999/ratings/3"
    )
