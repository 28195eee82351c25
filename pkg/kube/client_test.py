"""The client against a real config store on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from api.networking.v1alpha3 import virtual_service_pb2
from pilot.configstore.server import ConfigStoreServer, Options, serving
from pkg.config import loader
from pkg.config.kinds import ALL
from pkg.config.resource import Metadata, Resource
from pkg.kube import errors
from pkg.kube.client import ConfigClient, WatchEvent

VS = ALL.by_name("vs")
GW = ALL.by_name("gateway")

Scenario = Callable[[ConfigStoreServer, ConfigClient], Awaitable[None]]


def run(db: pathlib.Path, scenario: Scenario, **options: Any) -> None:
    async def main() -> None:
        async with (
            asyncio.timeout(30),
            serving(Options(port=0, db=db, **options)) as server,
            ConfigClient(server.url) as client,
        ):
            await scenario(server, client)

    asyncio.run(main())


def vs(name: str, subset: str = "v1", namespace: str = "default") -> Resource:
    (resource,) = loader.load_text(
        f"""
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}, labels: {{app: {name}}}}}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: {name}, subset: {subset}}}
"""
    )
    return resource


def test_crud_with_typed_resources_and_server_metadata(tmp_path):
    async def scenario(server: ConfigStoreServer, client: ConfigClient) -> None:
        created = await client.create(vs("reviews"))
        meta = created.metadata
        assert (meta.resource_version, meta.generation) == ("1", 1)
        assert meta.uid
        assert meta.creation_timestamp
        assert meta.labels == {"app": "reviews"}
        assert created.spec == vs("reviews").spec

        assert await client.get(VS, "reviews") == created
        await client.create(vs("ratings", namespace="bookinfo"))
        everywhere = await client.list(VS)
        assert [r.metadata.name for r in everywhere.items] == ["ratings", "reviews"]
        assert everywhere.resource_version == "2"
        assert [r.metadata.name for r in (await client.list(VS, "default")).items] == ["reviews"]
        assert (await client.list(GW)).items == []

        # An update carrying the version it read is a precondition...
        moved = with_spec(created, vs("reviews", "v2"))
        updated = await client.update(moved)
        assert (updated.metadata.resource_version, updated.metadata.generation) == ("3", 2)
        assert updated.metadata.uid == meta.uid
        with pytest.raises(errors.Conflict):
            await client.update(moved)  # ...that has gone stale now
        # ...and one without a version is unconditional.
        assert (await client.update(vs("reviews", "v3"))).metadata.generation == 3

        patched = await client.patch(VS, "reviews", {"metadata": {"labels": {"team": "a"}}})
        assert patched.metadata.labels == {"app": "reviews", "team": "a"}

        await client.delete(VS, "reviews")
        with pytest.raises(errors.NotFound) as missing:
            await client.get(VS, "reviews")
        assert str(missing.value) == (
            'Error from server (NotFound): virtualservices.networking.istio.io "reviews" not found'
        )
        with pytest.raises(errors.NotFound):
            await client.delete(VS, "reviews")

    run(tmp_path / "db", scenario)


def with_spec(resource: Resource, other: Resource) -> Resource:
    return Resource(resource.schema, resource.metadata, other.spec)


def test_refusals_raise_their_own_errors(tmp_path):
    async def scenario(server: ConfigStoreServer, client: ConfigClient) -> None:
        await client.create(vs("reviews"))
        with pytest.raises(errors.AlreadyExists):
            await client.create(vs("reviews"))
        # A resource built in code, bypassing the loader: the store still refuses it.
        spec = virtual_service_pb2.VirtualService(hosts=["ratings"])
        route = spec.http.add().route.add()
        route.destination.host = "ratings"
        route.weight = -5
        bad = Resource(VS, Metadata(name="ratings"), spec)
        with pytest.raises(errors.Invalid) as invalid:
            await client.create(bad)
        with pytest.raises(loader.LoadError) as local:
            loader.load_object(bad.to_dict(), source="<request>")
        assert invalid.value.message == str(local.value)
        assert "spec.http[0].route[0].weight" in str(invalid.value)
        assert [r.metadata.name for r in (await client.list(VS)).items] == ["reviews"]

    run(tmp_path / "db", scenario)


def test_watch_events_and_gone(tmp_path):
    async def scenario(server: ConfigStoreServer, client: ConfigClient) -> None:
        await client.create(vs("a"))
        start = (await client.list(VS)).resource_version
        seen: list[WatchEvent] = []

        async def follow() -> None:
            async with contextlib.aclosing(client.watch(VS, None, start)) as events:
                async for event in events:
                    seen.append(event)
                    if len(seen) == 3:
                        return

        follower = asyncio.create_task(follow())
        await client.create(vs("b", namespace="other"))
        await client.update(vs("a", "v2"))
        await client.delete(VS, "b", "other")
        await follower
        assert [(e.type, e.resource.metadata.name) for e in seen] == [
            ("ADDED", "b"),
            ("MODIFIED", "a"),
            ("DELETED", "b"),
        ]
        assert [e.resource.metadata.resource_version for e in seen] == ["2", "3", "4"]
        assert seen[1].resource.spec.http[0].route[0].destination.subset == "v2"

        with pytest.raises(errors.Gone):
            async for _ in client.watch(VS, None, "1"):
                pass

    run(tmp_path / "db", scenario, history=2)


def test_watch_ends_when_the_server_stops(tmp_path):
    async def main() -> None:
        async with asyncio.timeout(30):
            server = ConfigStoreServer(options=Options(port=0, db=tmp_path / "db"))
            await server.start()
            async with ConfigClient(server.url) as client:
                await client.create(vs("a"))
                events = client.watch(VS)
                assert (await anext(events)).type == "ADDED"
                await server.stop()
                assert [e async for e in events] == []

    asyncio.run(main())


def test_unreachable_store_is_unavailable_naming_the_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    async def main() -> None:
        async with asyncio.timeout(30), ConfigClient(url, timeout=2) as client:
            with pytest.raises(errors.Unavailable) as refused:
                await client.list(VS)
            assert str(refused.value) == (
                f"cannot reach the config store at {url}: connection refused"
            )
            with pytest.raises(errors.Unavailable):
                async for _ in client.watch(VS):
                    pass

    asyncio.run(main())
