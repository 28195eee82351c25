"""The informer against a real store: sync, changes, an outage, and a relist after 410."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from pilot.configstore.server import ConfigStoreServer, Options
from pkg.config import loader
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient, WatchEvent
from pkg.kube.informer import Backoff, Informer

VS = ALL.by_name("vs")
DR = ALL.by_name("dr")
FAST = Backoff(initial=0.02, maximum=0.1)


def vs(name: str, subset: str = "v1", namespace: str = "default") -> Resource:
    (resource,) = loader.load_text(
        f"""
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: {name}, subset: {subset}}}
"""
    )
    return resource


def names(informer: Informer, schema: KindSchema = VS) -> list[str]:
    return [f"{r.metadata.namespace}/{r.metadata.name}" for r in informer.list(schema)]


async def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(informer.run(), name="informer")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def start(db: pathlib.Path, port: int = 0, **options: Any) -> ConfigStoreServer:
    server = ConfigStoreServer(options=Options(port=port, db=db, **options))
    await server.start()
    return server


def test_backoff_doubles_up_to_its_maximum():
    delays = Backoff(initial=0.5, maximum=3, factor=2).delays()
    assert [next(delays) for _ in range(6)] == [0.5, 1, 2, 3, 3, 3]


def test_syncs_then_follows_every_change(tmp_path):
    async def main() -> None:
        server = await start(tmp_path / "db")
        changes = 0

        async def on_change() -> None:
            nonlocal changes
            changes += 1

        try:
            async with asyncio.timeout(30), ConfigClient(server.url) as client:
                await client.create(vs("reviews"))
                informer = Informer(client, [VS, DR], on_change, backoff=FAST)
                assert not informer.has_synced()
                async with running(informer):
                    await asyncio.wait_for(informer.synced.wait(), 10)
                    assert names(informer) == ["default/reviews"]
                    assert informer.snapshot() == {VS: informer.list(VS), DR: []}
                    assert changes == 1  # the first list brought something new

                    await client.create(vs("ratings", namespace="bookinfo"))
                    await client.update(vs("reviews", "v2"))
                    await eventually(lambda: changes == 3)
                    assert names(informer) == ["bookinfo/ratings", "default/reviews"]
                    reviews = informer.get(VS, "reviews")
                    assert reviews is not None
                    assert reviews.spec.http[0].route[0].destination.subset == "v2"
                    assert reviews.metadata.generation == 2

                    await client.delete(VS, "ratings", "bookinfo")
                    await eventually(lambda: changes == 4)
                    assert names(informer) == ["default/reviews"]
                    assert informer.get(VS, "ratings", "bookinfo") is None
        finally:
            await server.stop()

    asyncio.run(main())


def test_on_events_says_what_changed_in_each_kind(tmp_path):
    async def main() -> None:
        server = await start(tmp_path / "db")
        seen: list[tuple[str, str, str]] = []

        async def on_events(schema: KindSchema, changes: list[tuple[str, Resource]]) -> None:
            seen.extend((schema.kind, kind, r.metadata.name) for kind, r in changes)

        try:
            async with asyncio.timeout(30), ConfigClient(server.url) as client:
                await client.create(vs("reviews"))
                informer = Informer(client, [VS, DR], backoff=FAST, on_events=on_events)
                async with running(informer):
                    await asyncio.wait_for(informer.synced.wait(), 10)
                    assert seen == [("VirtualService", "ADDED", "reviews")]  # the first list
                    await client.update(vs("reviews", "v2"))
                    await client.delete(VS, "reviews", "default")
                    await eventually(lambda: len(seen) == 3)
                    assert seen[1:] == [
                        ("VirtualService", "MODIFIED", "reviews"),
                        ("VirtualService", "DELETED", "reviews"),
                    ]
        finally:
            await server.stop()

    asyncio.run(main())


def test_keeps_serving_the_cache_while_the_store_is_down_then_catches_up(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pkg.kube.informer")

    async def main() -> None:
        db = tmp_path / "db"
        server = await start(db)
        port = int(server.url.rsplit(":", 1)[1])
        try:
            async with asyncio.timeout(30), ConfigClient(server.url, timeout=2) as client:
                await client.create(vs("reviews"))
                informer = Informer(client, [VS], backoff=FAST)
                async with running(informer) as task:
                    await asyncio.wait_for(informer.synced.wait(), 10)
                    await server.stop()
                    await eventually(lambda: "serving the last known config" in caplog.text)
                    assert names(informer) == ["default/reviews"]  # still served
                    assert not task.done()

                    server = await start(db, port)
                    await client.create(vs("details"))
                    await eventually(
                        lambda: names(informer) == ["default/details", "default/reviews"]
                    )
                    await eventually(lambda: "reconnected" in caplog.text)
        finally:
            await server.stop()

    asyncio.run(main())


class GatedClient(ConfigClient):
    """Holds the first watch until the test opens the gate, so the store can move on first."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gate = asyncio.Event()
        self.watches: list[str] = []

    async def watch(
        self,
        schema: KindSchema,
        namespace: str | None = None,
        resource_version: str = "",
        *,
        timeout_seconds: int | None = None,
    ) -> AsyncGenerator[WatchEvent, None]:
        self.watches.append(resource_version)
        await self.gate.wait()
        async for event in super().watch(schema, namespace, resource_version):
            yield event


def test_relists_when_its_version_has_expired(tmp_path):
    async def main() -> None:
        server = await start(tmp_path / "db", history=1)
        changes = 0

        async def on_change() -> None:
            nonlocal changes
            changes += 1

        try:
            async with asyncio.timeout(30), GatedClient(server.url) as client:
                await client.create(vs("a"))
                informer = Informer(client, [VS], on_change, backoff=FAST)
                async with running(informer):
                    await asyncio.wait_for(informer.synced.wait(), 10)
                    await eventually(lambda: client.watches == ["1"])
                    # Two writes while the watch is held: with one event of history, the store
                    # no longer has what follows version 1, and answers the watch with 410.
                    await client.create(vs("b"))
                    await client.create(vs("c"))
                    client.gate.set()
                    await eventually(
                        lambda: names(informer) == ["default/a", "default/b", "default/c"]
                    )
                    assert client.watches[:2] == ["1", "3"]
                    assert changes == 2  # the first list, then the relist
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_failing_handler_does_not_stop_the_informer(tmp_path, caplog):
    async def main() -> None:
        server = await start(tmp_path / "db")

        async def on_change() -> None:
            raise RuntimeError("handler bug")

        try:
            async with asyncio.timeout(30), ConfigClient(server.url) as client:
                informer = Informer(client, [VS], on_change, backoff=FAST)
                async with running(informer) as task:
                    await asyncio.wait_for(informer.synced.wait(), 10)
                    await client.create(vs("a"))
                    await eventually(lambda: names(informer) == ["default/a"])
                    await client.create(vs("b"))
                    await eventually(lambda: names(informer) == ["default/a", "default/b"])
                    assert not task.done()
                    assert "handler bug" in caplog.text
        finally:
            await server.stop()

    asyncio.run(main())
