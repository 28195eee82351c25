"""The span store: Zipkin's canonical ids, grouping, bounds, queries."""

import pytest

from tools.zipkin.store import SpanError, SpanStore, StoreOptions, normalize


def span(trace: str, span_id: str, service: str, ts: int, parent: str | None = None, **extra):
    data = {
        "traceId": trace,
        "id": span_id,
        "name": "GET /x",
        "timestamp": ts,
        "duration": 1000,
        "localEndpoint": {"serviceName": service},
        **extra,
    }
    if parent:
        data["parentId"] = parent
    return normalize(data, "spans[0]")


def test_ids_are_lower_case_and_padded_names_lower_case():
    s = span("ABC", "1", "Productpage", 5)
    assert (s["traceId"], s["id"], s["name"]) == ("0000000000000abc", "0000000000000001", "get /x")
    assert len(span("a" * 32, "2", "x", 1)["traceId"]) == 32


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"id": "1"}, "spans[0].traceId: None is not a hex id"),
        ({"traceId": "xyz", "id": "1"}, "spans[0].traceId: 'xyz' is not a hex id"),
        ({"traceId": "1", "id": "1" * 17}, "spans[0].id"),
        ({"traceId": "1", "id": "1", "kind": "SIDEWAYS"}, "spans[0].kind: 'SIDEWAYS'"),
        ({"traceId": "1", "id": "1", "timestamp": -3}, "spans[0].timestamp"),
        ({"traceId": "1", "id": "1", "tags": []}, "spans[0].tags: must be a JSON object"),
        ([], "spans[0]: a span is a JSON object, got list"),
    ],
)
def test_malformed_spans_say_where(bad, message):
    with pytest.raises(SpanError, match=message.replace("[", r"\[").replace("]", r"\]")):
        normalize(bad, "spans[0]")


def test_spans_group_by_trace_and_queries_match_zipkins():
    store = SpanStore()
    store.add(
        [span("1", "a", "istio-ingressgateway", 100), span("1", "b", "productpage", 110, "a")]
    )
    store.add([span("2", "c", "ratings", 200), span("1", "d", "details", 120, "b")])
    assert [s["id"][-1] for s in store.trace("1")] == ["a", "b", "d"]
    assert store.trace("0000000000000001") == store.trace("1")
    assert store.trace("9") is None
    assert store.services() == ["details", "istio-ingressgateway", "productpage", "ratings"]
    assert store.span_names("PRODUCTPAGE") == ["get /x"]
    newest_first = store.traces({})
    assert [t[0]["traceId"][-1] for t in newest_first] == ["2", "1"]
    assert [t[0]["traceId"][-1] for t in store.traces({"serviceName": "details"})] == ["1"]
    assert store.traces({"serviceName": "details", "minDuration": "5000"}) == []
    assert len(store.traces({"limit": "1"})) == 1


def test_a_resent_span_is_merged_not_doubled():
    store = SpanStore()
    store.add([span("1", "a", "x", 1)])
    store.add([span("1", "a", "x", 1, tags={"k": "v"})])
    (only,) = store.trace("1")
    assert only["tags"] == {"k": "v"}
    assert store.accepted == 1


def test_memory_is_bounded_by_traces_and_spans_per_trace():
    store = SpanStore(StoreOptions(max_traces=2, max_spans_per_trace=2))
    store.add([span("1", "a", "x", 1), span("2", "b", "x", 2)])
    store.add([span("1", "c", "x", 3)])  # trace 1 is now the most recently updated
    store.add([span("3", "d", "x", 4)])  # so trace 2 goes
    assert store.trace("2") is None
    assert store.trace("1") is not None
    store.add([span("1", "e", "x", 5)])  # trace 1 is full
    assert len(store.trace("1")) == 2
    assert store.dropped == 1
