"""ratings as a process: Istio's payload, 400 for a bad id, health, the access log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from samples.bookinfo.src.common import testing
from samples.bookinfo.src.common.testing import HttpResult, ServiceProcess


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with testing.running_service("ratings", log_dir=tmp_path_factory.mktemp("ratings")) as running:
        yield running


def get(running: ServiceProcess, path: str, headers: dict[str, str] | None = None) -> HttpResult:
    return asyncio.run(testing.fetch(running.url.with_path(path), headers=headers))


def test_ratings_payload_is_istios(ratings: ServiceProcess) -> None:
    result = get(ratings, "/ratings/0")
    assert result.status == 200
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.json() == {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}


def test_ratings_echo_the_id_as_a_number(ratings: ServiceProcess) -> None:
    assert get(ratings, "/ratings/17").json()["id"] == 17


@pytest.mark.parametrize("path", ["/ratings/abc", "/ratings/", "/ratings/2b"])
def test_non_numeric_id_is_refused(ratings: ServiceProcess, path: str) -> None:
    result = get(ratings, path)
    assert result.status == 400
    assert result.json() == {"error": "please provide numeric product ID"}


def test_health(ratings: ServiceProcess) -> None:
    result = get(ratings, "/health")
    assert result.status == 200
    assert result.json() == {"status": "Ratings is healthy"}


def test_access_log_names_method_path_status_and_request_id(ratings: ServiceProcess) -> None:
    get(ratings, "/ratings/abc", headers={"x-request-id": "ratings-log-check"})
    line = ratings.wait_for_log("ratings-log-check")
    assert "GET /ratings/abc 400 x-request-id=ratings-log-check" in line
