"""Which inbound headers a service passes on."""

from __future__ import annotations

from multidict import CIMultiDict

from samples.bookinfo.src.common.headers import PROPAGATED_HEADERS, forward_headers


def test_the_tracing_and_identity_headers_are_propagated() -> None:
    assert {
        "x-request-id",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
        "x-ot-span-context",
        "traceparent",
        "tracestate",
        "end-user",
        "user-agent",
    } <= set(PROPAGATED_HEADERS)


def test_forward_headers_matches_names_case_insensitively_and_drops_the_rest() -> None:
    inbound = CIMultiDict(
        {
            "X-Request-Id": "req-1",
            "X-B3-TraceId": "trace-1",
            "End-User": "jason",
            "Host": "productpage:9080",
            "Content-Length": "0",
            "Authorization": "Bearer x",
        }
    )
    assert forward_headers(inbound) == {
        "x-request-id": "req-1",
        "x-b3-traceid": "trace-1",
        "end-user": "jason",
    }


def test_forward_headers_of_nothing_is_nothing() -> None:
    assert forward_headers({}) == {}
