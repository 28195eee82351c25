"""details as a process: Istio's payload, 400 for a bad id, health, the access log."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from samples.bookinfo.src.common import testing
from samples.bookinfo.src.common.testing import HttpResult, ServiceProcess


@pytest.fixture(scope="module")
def details(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log_dir: Path = tmp_path_factory.mktemp("details")
    with testing.running_service("details", log_dir=log_dir) as running:
        yield running


def get(running: ServiceProcess, path: str, headers: dict[str, str] | None = None) -> HttpResult:
    return asyncio.run(testing.fetch(running.url.with_path(path), headers=headers))


def test_details_payload_is_istios(details: ServiceProcess) -> None:
    result = get(details, "/details/0")
    assert result.status == 200
    assert result.headers["Content-Type"].startswith("application/json")
    assert result.json() == {
        "id": 0,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


def test_details_echoes_the_id(details: ServiceProcess) -> None:
    assert get(details, "/details/42").json()["id"] == 42


@pytest.mark.parametrize("bad_id", ["abc", "1x", "-1", "%C2%B2"])
def test_non_numeric_id_is_refused(details: ServiceProcess, bad_id: str) -> None:
    result = get(details, f"/details/{bad_id}")
    assert result.status == 400
    assert result.json() == {"error": "please provide numeric product id"}


def test_health(details: ServiceProcess) -> None:
    result = get(details, "/health")
    assert result.status == 200
    assert result.json() == {"status": "Details is healthy"}


def test_unknown_path_is_404(details: ServiceProcess) -> None:
    assert get(details, "/nothing-here").status == 404


def test_access_log_names_method_path_status_and_request_id(details: ServiceProcess) -> None:
    get(details, "/details/3", headers={"x-request-id": "details-log-check"})
    line = details.wait_for_log("details-log-check")
    assert "GET /details/3 200 x-request-id=details-log-check" in line
