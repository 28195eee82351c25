"""The REST logic without any I/O: operations driven by hand with scripted answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pkg.config import loader
from pkg.config.kinds import ALL
from pkg.config.resource import Resource
from pkg.kube import errors, rest

VS = ALL.by_name("vs")
CODEC = rest.Codec(ALL, "http://store.test")


def reviews(subset: str = "v1", version: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "reviews", "namespace": "default"}
    if version:
        meta["resourceVersion"] = version
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta,
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews", "subset": subset}}]}]},
    }  # fmt: skip


def ok(body: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> rest.Response:
    return rest.Response(status, json.dumps(body).encode(), headers)


def status(code: int, reason: str, message: str = "m") -> rest.Response:
    body = {"kind": "Status", "code": code, "reason": reason, "message": message}
    return ok(body, code)


def drive(
    operation: rest.Operation[Any], answers: list[rest.Response]
) -> tuple[list[rest.Request], Any]:
    """Runs an operation against scripted answers; the requests it made and its result."""
    sent = [next(operation)]
    try:
        for answer in answers:
            sent.append(operation.send(answer))
    except StopIteration as done:
        return sent, done.value
    raise AssertionError(f"the operation wanted more answers after {sent}")


def resource(data: dict[str, Any]) -> Resource:
    return loader.load_object(data)


def test_requests_name_kubernetes_paths_and_bodies():
    sent, _ = drive(rest.get(CODEC, VS, "reviews", "bookinfo"), [ok(reviews())])
    assert sent == [
        rest.Request(
            "GET", "/apis/networking.istio.io/v1/namespaces/bookinfo/virtualservices/reviews"
        )
    ]
    assert sent[0].headers() == {"Accept": "application/json"}

    sent, created = drive(rest.create(CODEC, resource(reviews())), [ok(reviews(version="7"), 201)])
    (post,) = sent
    assert (post.method, post.path) == (
        "POST",
        "/apis/networking.istio.io/v1/namespaces/default/virtualservices",
    )
    assert post.headers()["Content-Type"] == "application/json"
    assert json.loads(post.body or b"") == reviews()
    assert created.metadata.resource_version == "7"

    sent, _ = drive(
        rest.patch(CODEC, VS, "reviews", {"metadata": {"labels": {"a": "b"}}}, "default"),
        [ok(reviews())],
    )
    assert sent[0].method == "PATCH"
    assert sent[0].content_type == rest.MERGE_PATCH

    everywhere = rest.list_resources(CODEC, VS, None)
    sent, listed = drive(
        everywhere, [ok({"items": [reviews()], "metadata": {"resourceVersion": "9"}})]
    )
    assert sent[0].path == "/apis/networking.istio.io/v1/virtualservices"
    assert ([r.metadata.name for r in listed.items], listed.resource_version) == (["reviews"], "9")

    watch = rest.watch_request(VS, "default", "12", timeout_seconds=30)
    assert watch.path.endswith("/virtualservices?watch=true&resourceVersion=12&timeoutSeconds=30")  # fmt: skip


def test_an_error_status_becomes_its_error_class():
    with pytest.raises(errors.NotFound) as missing:
        drive(
            rest.get(CODEC, VS, "nope", "default"),
            [status(404, "NotFound", 'virtualservices "nope" not found')],
        )
    assert str(missing.value) == 'Error from server (NotFound): virtualservices "nope" not found'
    with pytest.raises(errors.Unavailable):
        drive(rest.delete(VS, "x", "default"), [rest.Response(502, b"<html>bad gateway</html>")])
    with pytest.raises(errors.ApiError, match="not JSON"):
        drive(rest.get(CODEC, VS, "x", "default"), [rest.Response(200, b"<html>")])


def test_apply_creates_updates_or_leaves_alone():
    wanted = resource(reviews("v2"))
    # Absent: create.
    sent, outcome = drive(
        rest.apply(CODEC, wanted), [status(404, "NotFound"), ok(reviews("v2", "1"), 201)]
    )
    assert ([r.method for r in sent], outcome) == (["GET", "POST"], "created")
    # Different: update, conditional on the version just read.
    sent, outcome = drive(
        rest.apply(CODEC, wanted), [ok(reviews("v1", "4")), ok(reviews("v2", "5"))]
    )
    assert ([r.method for r in sent], outcome) == (["GET", "PUT"], "configured")
    assert json.loads(sent[1].body or b"")["metadata"]["resourceVersion"] == "4"
    # The same: nothing written.
    sent, outcome = drive(rest.apply(CODEC, wanted), [ok(reviews("v2", "5"))])
    assert ([r.method for r in sent], outcome) == (["GET"], "unchanged")
    # Another writer got in between: read again and retry.
    answers = [
        ok(reviews("v1", "4")),
        status(409, "Conflict"),
        ok(reviews("v1", "6")),
        ok(reviews("v2", "7")),
    ]
    sent, outcome = drive(rest.apply(CODEC, wanted), answers)
    assert ([r.method for r in sent], outcome) == (["GET", "PUT", "GET", "PUT"], "configured")
    # ...but not for ever.
    with pytest.raises(errors.Conflict):
        drive(
            rest.apply(CODEC, wanted, attempts=2),
            [ok(reviews("v1", "4")), status(409, "Conflict")] * 2,
        )


def test_apply_sees_a_changed_secret():
    def secret(value: str, version: str = "") -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "cred", "namespace": "istio-system"}
        if version:
            meta["resourceVersion"] = version
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                "type": "kubernetes.io/tls", "data": {"tls.crt": value, "tls.key": "a2V5"}}  # fmt: skip

    wanted = resource(secret("bmV3"))
    # The data changed (a rotated certificate): written, though a Secret has no spec.
    sent, outcome = drive(
        rest.apply(CODEC, wanted), [ok(secret("b2xk", "3")), ok(secret("bmV3", "4"))]
    )
    assert ([r.method for r in sent], outcome) == (["GET", "PUT"], "configured")
    sent, outcome = drive(rest.apply(CODEC, wanted), [ok(secret("bmV3", "4"))])
    assert ([r.method for r in sent], outcome) == (["GET"], "unchanged")


def test_a_transport_error_thrown_in_ends_the_operation_with_it():
    operation = rest.apply(CODEC, resource(reviews()))
    next(operation)
    with pytest.raises(errors.Unavailable):
        operation.throw(errors.Unavailable.unreachable("http://store.test", "connection refused"))


def test_watch_stream_reassembles_lines_across_chunks():
    stream = rest.WatchStream(CODEC, VS)
    line = json.dumps({"type": "ADDED", "object": reviews(version="3")}).encode() + b"\n"
    bookmark = json.dumps(
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "4"}}}
    ).encode()
    assert stream.feed(line[:10]) == []
    (event,) = stream.feed(line[10:] + bookmark + b"\n" + b"not json\n")
    assert (event.type, event.resource.metadata.resource_version) == ("ADDED", "3")
    with pytest.raises(errors.Gone):
        stream.feed(
            json.dumps({"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}).encode()
            + b"\n"
        )


def test_objects_that_no_longer_load_are_skipped_from_lists():
    broken = reviews()
    broken["spec"]["http"][0]["route"][0]["weight"] = -1
    listed = CODEC.resource_list(
        VS, {"items": [broken, reviews()], "metadata": {"resourceVersion": "2"}}
    )
    assert [r.metadata.name for r in listed.items] == ["reviews"]
    with pytest.raises(errors.ApiError, match="asked for a Gateway, got a VirtualService"):
        CODEC.resource(ALL.by_name("gw"), reviews())


def test_warning_headers_as_kubectl_prints_them():
    response = ok({}, headers=(
        ("Content-Type", "application/json"),
        ("Warning", '299 - "spec.hosts: a \\"short\\" name resolves in the rule\'s namespace"'),
        ("warning", "299 - \"second\""),
        ("Warning", "not in RFC form"),
    ))  # fmt: skip
    assert rest.warnings(response) == [
        'spec.hosts: a "short" name resolves in the rule\'s namespace',
        "second",
        "not in RFC form",
    ]
    seen: list[str] = []
    rest.report_warnings(response, seen.append)
    assert len(seen) == 3
