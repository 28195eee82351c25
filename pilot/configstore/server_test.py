"""The store over HTTP, as Kubernetes clients see it: paths, codes, Status bodies, watch streams."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import yaml

from pilot.configstore.server import ConfigStoreServer, Options, serving
from pkg.config import loader
from pkg.testing.wait import eventually

GROUP = "/apis/networking.istio.io/v1alpha3"
VS_DEFAULT = f"{GROUP}/namespaces/default/virtualservices"

Scenario = Callable[[ConfigStoreServer, aiohttp.ClientSession], Awaitable[None]]


def run(db: pathlib.Path, scenario: Scenario, **options: Any) -> None:
    async def main() -> None:
        async with (
            asyncio.timeout(30),
            serving(Options(port=0, db=db, **options)) as server,
            aiohttp.ClientSession(base_url=server.url) as http,
        ):
            await scenario(server, http)

    asyncio.run(main())


def vs(name: str = "reviews", subset: str = "v1", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": name, **meta},
        "spec": {
            "hosts": [name],
            "http": [{"route": [{"destination": {"host": name, "subset": subset}}]}],
        },
    }


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, path, json=body, **kw) as response:
        return response.status, await response.json(content_type=None)


def test_crud_round_trip(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        code, created = await call(http, "POST", VS_DEFAULT, vs())
        assert code == 201
        assert created["metadata"]["resourceVersion"] == "1"
        code, got = await call(http, "GET", f"{VS_DEFAULT}/reviews")
        assert (code, got) == (200, created)

        code, listed = await call(http, "GET", VS_DEFAULT)
        assert code == 200
        assert listed == {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "VirtualServiceList",
            "metadata": {"resourceVersion": "1"},
            "items": [created],
        }
        await call(http, "POST", f"{GROUP}/namespaces/bookinfo/virtualservices", vs("ratings"))
        _, everywhere = await call(http, "GET", f"{GROUP}/virtualservices")
        assert [i["metadata"]["namespace"] for i in everywhere["items"]] == ["bookinfo", "default"]
        _, empty = await call(http, "GET", f"{GROUP}/namespaces/nowhere/destinationrules")
        assert empty["items"] == []
        assert empty["kind"] == "DestinationRuleList"

        code, updated = await call(
            http, "PUT", f"{VS_DEFAULT}/reviews", vs(subset="v2", resourceVersion="1")
        )
        assert code == 200
        assert updated["metadata"]["generation"] == 2
        assert updated["spec"]["http"][0]["route"][0]["destination"]["subset"] == "v2"

        patch = json.dumps({"metadata": {"labels": {"app": "reviews"}}})
        code, patched = await call(
            http,
            "PATCH",
            f"{VS_DEFAULT}/reviews",
            data=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert code == 200
        assert patched["metadata"]["labels"] == {"app": "reviews"}
        assert patched["metadata"]["generation"] == 2

        code, deleted = await call(http, "DELETE", f"{VS_DEFAULT}/reviews")
        assert code == 200
        assert deleted["metadata"]["name"] == "reviews"
        code, missing = await call(http, "GET", f"{VS_DEFAULT}/reviews")
        assert code == 404
        assert missing == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'virtualservices.networking.istio.io "reviews" not found',
            "reason": "NotFound",
            "details": {
                "name": "reviews",
                "group": "networking.istio.io",
                "kind": "virtualservices",
            },
            "code": 404,
        }

    run(tmp_path / "db", scenario)


def test_refusals_are_kubernetes_statuses(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        _, created = await call(http, "POST", VS_DEFAULT, vs())
        cases = [
            ("POST", VS_DEFAULT, vs(), 409, "AlreadyExists"),
            ("PUT", f"{VS_DEFAULT}/reviews", vs(resourceVersion="0"), 409, "Conflict"),
            ("PUT", f"{VS_DEFAULT}/ratings", vs("ratings"), 404, "NotFound"),
            ("PUT", f"{VS_DEFAULT}/reviews", vs("ratings"), 400, "BadRequest"),
            ("PUT", f"{VS_DEFAULT}/reviews", vs(), 422, "Invalid"),  # no resourceVersion
            ("POST", VS_DEFAULT, vs("x", namespace="other"), 400, "BadRequest"),
            ("POST", f"{GROUP}/namespaces/default/gateways", vs("x"), 400, "BadRequest"),
            ("DELETE", f"{VS_DEFAULT}/ratings", None, 404, "NotFound"),
            ("GET", f"{GROUP}/namespaces/default/widgets", None, 404, "NotFound"),
            ("GET", "/apis/nothing.io/v1/things", None, 404, "NotFound"),
            ("POST", f"{GROUP}/virtualservices", vs("x"), 405, "MethodNotAllowed"),
        ]
        for method, path, body, code, reason in cases:
            got_code, got = await call(http, method, path, body)
            assert (got_code, got["kind"], got["reason"], got["code"]) == (
                code,
                "Status",
                reason,
                code,
            ), (method, path, got)
        code, conflict = await call(http, "PUT", f"{VS_DEFAULT}/reviews", vs(resourceVersion="0"))
        assert conflict["message"].startswith(
            'Operation cannot be fulfilled on virtualservices.networking.istio.io "reviews": '
        )
        json_type = {"Content-Type": "application/json"}
        code, not_json = await call(http, "POST", VS_DEFAULT, data=b"{nope", headers=json_type)
        assert (code, not_json["reason"]) == (400, "BadRequest")
        code, wrong_type = await call(
            http, "PATCH", f"{VS_DEFAULT}/reviews", data=b"{}", headers={"Content-Type": "text/x"}
        )
        assert (code, wrong_type["reason"]) == (415, "UnsupportedMediaType")
        # None of that changed anything.
        _, listed = await call(http, "GET", f"{GROUP}/virtualservices")
        assert listed["items"] == [created]
        assert listed["metadata"]["resourceVersion"] == "1"

    run(tmp_path / "db", scenario)


def test_invalid_resource_gets_422_with_the_loaders_message_and_is_not_stored(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        bad = vs("ratings")
        bad["spec"]["http"][0]["timeout"] = "soon"
        code, refused = await call(http, "POST", VS_DEFAULT, bad)
        assert code == 422
        assert refused["reason"] == "Invalid"
        assert refused["details"]["kind"] == "VirtualService"
        assert refused["details"]["name"] == "ratings"
        with pytest.raises(loader.LoadError) as local:
            loader.load_object(bad, namespace="default", source="<request>")
        assert refused["message"] == str(local.value)
        assert refused["message"].startswith(
            "<request>: document 1 (VirtualService default/ratings): spec.http[0].timeout: "
        )
        code, _ = await call(http, "GET", f"{VS_DEFAULT}/ratings")
        assert code == 404
        _, listed = await call(http, "GET", VS_DEFAULT)
        assert listed["metadata"]["resourceVersion"] == "0"

    run(tmp_path / "db", scenario)


async def watch_lines(
    http: aiohttp.ClientSession, path: str, **params: str
) -> AsyncGenerator[dict[str, Any], None]:
    async with http.get(path, params={"watch": "true", **params}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Transfer-Encoding"] == "chunked"
        async for line in response.content:
            yield json.loads(line)


def test_watch_from_a_version_replays_then_streams(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        for name in ("a", "b", "c"):
            await call(http, "POST", VS_DEFAULT, vs(name))
        stream = watch_lines(http, f"{GROUP}/virtualservices", resourceVersion="1")
        first, second = await anext(stream), await anext(stream)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in (first, second)] == [
            ("ADDED", "b"),
            ("ADDED", "c"),
        ]
        await call(http, "PUT", f"{VS_DEFAULT}/a", vs("a", subset="v2", resourceVersion="1"))
        await call(http, "DELETE", f"{VS_DEFAULT}/b")
        modified, deleted = await anext(stream), await anext(stream)
        assert (modified["type"], modified["object"]["metadata"]["resourceVersion"]) == (
            "MODIFIED",
            "4",
        )
        assert (deleted["type"], deleted["object"]["metadata"]["resourceVersion"]) == (
            "DELETED",
            "5",
        )
        assert server.store.watch_count == 1
        await stream.aclose()
        # The client hung up: its watch ends on the server too, without waiting for an event.
        await eventually(
            lambda: server.store.watch_count == 0, interval=0.01, what="the watch's end"
        )

    run(tmp_path / "db", scenario)


def test_watch_without_a_version_starts_with_every_object(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        await call(http, "POST", VS_DEFAULT, vs("a"))
        await call(http, "POST", f"{GROUP}/namespaces/other/virtualservices", vs("b"))
        stream = watch_lines(http, VS_DEFAULT, watch="1")
        added = await anext(stream)
        assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "a")
        await call(http, "POST", f"{GROUP}/namespaces/other/virtualservices", vs("c"))
        await call(http, "POST", VS_DEFAULT, vs("d"))
        live = await anext(stream)  # "c" is in another namespace
        assert live["object"]["metadata"]["name"] == "d"
        await stream.aclose()

    run(tmp_path / "db", scenario)


def test_watch_from_an_expired_version_is_410(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        for name in ("a", "b", "c"):
            await call(http, "POST", VS_DEFAULT, vs(name))
        code, gone = await call(
            http, "GET", VS_DEFAULT, params={"watch": "true", "resourceVersion": "1"}
        )
        assert code == 410
        assert (gone["kind"], gone["reason"], gone["code"]) == ("Status", "Expired", 410)
        assert gone["message"] == "too old resource version: 1 (2)"

    run(tmp_path / "db", scenario, history=1)


def test_timeout_seconds_ends_the_stream(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        events = [e async for e in watch_lines(http, VS_DEFAULT, timeoutSeconds="0.2")]
        assert events == []
        assert server.store.watch_count == 0

    run(tmp_path / "db", scenario)


def test_shutdown_ends_open_watches_cleanly(tmp_path):
    async def main() -> None:
        async with asyncio.timeout(30):
            server = ConfigStoreServer(options=Options(port=0, db=tmp_path / "db"))
            await server.start()
            async with aiohttp.ClientSession(base_url=server.url) as http:
                await call(http, "POST", VS_DEFAULT, vs("a"))
                stream = watch_lines(http, VS_DEFAULT)
                assert (await anext(stream))["type"] == "ADDED"
                assert server.store.watch_count == 1
                await server.stop()
                # The stream ends (no error, no hang) once the server is gone.
                assert [e async for e in stream] == []

    asyncio.run(main())


def test_discovery_and_health(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        async with http.get("/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")
        _, groups = await call(http, "GET", "/apis")
        names = [g["name"] for g in groups["groups"]]
        assert {"networking.istio.io", "security.istio.io", "config.istio.io"} <= set(names)
        _, resources = await call(http, "GET", GROUP)
        by_name = {r["name"]: r for r in resources["resources"]}
        assert by_name["virtualservices"]["kind"] == "VirtualService"
        assert by_name["virtualservices"]["shortNames"] == ["vs"]
        code, version = await call(http, "GET", "/version")
        assert code == 200
        assert "gitVersion" in version

    run(tmp_path / "db", scenario)


def test_bodies_by_content_type_and_the_size_limit(tmp_path):
    async def scenario(server: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        as_yaml = yaml.safe_dump(vs("ratings"))
        code, created = await call(
            http, "POST", VS_DEFAULT, data=as_yaml, headers={"Content-Type": "application/yaml"}
        )
        assert (code, created["metadata"]["name"]) == (201, "ratings")
        # No Content-Type at all means JSON, as on a real server.
        async with http.post(
            VS_DEFAULT,
            data=json.dumps(vs("details")).encode(),
            skip_auto_headers=["Content-Type"],
        ) as response:
            assert response.status == 201
        code, unreadable = await call(
            http,
            "POST",
            VS_DEFAULT,
            data=b"\x0a\x00",
            headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
        )
        assert (code, unreadable["reason"]) == (415, "UnsupportedMediaType")
        assert unreadable["message"] == (
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml"
        )
        code, twice = await call(
            http,
            "POST",
            VS_DEFAULT,
            data=b'{"kind": "VirtualService", "kind": "Gateway"}',
            headers={"Content-Type": "application/json"},
        )
        assert (code, twice["message"]) == (400, 'strict decoding error: duplicate field "kind"')
        huge = vs("huge")
        huge["metadata"]["annotations"] = {"a": "x" * (3 * 1024 * 1024)}
        code, too_large = await call(http, "POST", VS_DEFAULT, huge)
        assert (code, too_large["reason"], too_large["message"]) == (
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
        code, as_yaml_answer = 0, ""
        async with http.get(f"{VS_DEFAULT}/ratings", headers={"Accept": "application/yaml"}) as r:
            code, as_yaml_answer = r.status, await r.text()
            assert r.content_type == "application/yaml"
        assert code == 200
        assert yaml.safe_load(as_yaml_answer)["metadata"]["name"] == "ratings"
        code, refused = await call(
            http, "GET", VS_DEFAULT, headers={"Accept": "application/vnd.kubernetes.protobuf"}
        )
        assert (code, refused["reason"]) == (406, "NotAcceptable")
        _, listed = await call(http, "GET", VS_DEFAULT)
        assert [i["metadata"]["name"] for i in listed["items"]] == ["details", "ratings"]

    run(tmp_path / "db", scenario)
