"""Status bodies become the right error class and print as kubectl prints them."""

from __future__ import annotations

import pytest

from pkg.kube import errors


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", errors.BadRequest),
        (404, "NotFound", errors.NotFound),
        (409, "AlreadyExists", errors.AlreadyExists),
        (409, "Conflict", errors.Conflict),
        (410, "Expired", errors.Gone),
        (410, "Gone", errors.Gone),
        (422, "Invalid", errors.Invalid),
        (500, "InternalError", errors.Unavailable),
        (503, "ServiceUnavailable", errors.Unavailable),
        (415, "UnsupportedMediaType", errors.ApiError),
    ],
)
def test_status_maps_to_its_class(code, reason, cls):
    error = errors.from_status(status(code, reason, "why"))
    assert type(error) is cls
    assert (error.code, error.reason, error.message) == (code, reason, "why")


def test_prints_like_kubectl():
    error = errors.from_response(
        404,
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"virtualservices.networking.istio.io \\"reviews\\" not found",'
        b'"reason":"NotFound","details":{"name":"reviews"},"code":404}',
    )
    assert isinstance(error, errors.NotFound)
    assert str(error) == (
        'Error from server (NotFound): virtualservices.networking.istio.io "reviews" not found'
    )
    assert error.details == {"name": "reviews"}


def test_a_body_that_is_not_a_status_still_gives_an_error():
    error = errors.from_response(502, b"<html>bad gateway</html>")
    assert isinstance(error, errors.Unavailable)
    assert (error.code, error.reason, error.message) == (
        502,
        "BadGateway",
        "<html>bad gateway</html>",
    )


def test_unreachable_names_the_url_and_is_not_from_the_server():
    error = errors.Unavailable.unreachable("http://127.0.0.1:8001", "connection refused")
    assert (
        str(error) == "cannot reach the config store at http://127.0.0.1:8001: connection refused"
    )
    assert isinstance(error, errors.ApiError)
