"""The store without HTTP: metadata it manages, refusals, durability, watch history."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pilot.configstore import status
from pilot.configstore.mergepatch import merge_patch
from pilot.configstore.store import Store, StoreOptions
from pilot.configstore.watch import Overflowed
from pkg.config.kinds import ALL

VS = ALL.by_name("virtualservice")
DR = ALL.by_name("destinationrule")


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


def run(db: pathlib.Path, scenario: Callable[[Store], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        store = Store(options=StoreOptions(db=db, **options))
        await store.open()
        try:
            async with asyncio.timeout(20):
                await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_create_sets_server_metadata(tmp_path):
    async def scenario(store: Store) -> None:
        created = await store.create(VS, "default", vs(resourceVersion="99", uid="mine"))
        meta = created["metadata"]
        assert meta["resourceVersion"] == "1"
        assert meta["generation"] == 1
        assert meta["uid"]
        assert meta["uid"] != "mine"
        assert meta["creationTimestamp"].endswith("Z")
        assert store.get(VS, "default", "reviews") == created
        assert store.resource_version == 1

    run(tmp_path / "db", scenario)


def test_update_bumps_generation_only_when_the_spec_changes(tmp_path):
    async def scenario(store: Store) -> None:
        created = await store.create(VS, "default", vs())
        relabeled = await store.update(
            VS, "default", "reviews", vs(labels={"app": "reviews"}, resourceVersion="1")
        )
        assert relabeled["metadata"]["resourceVersion"] == "2"
        assert relabeled["metadata"]["generation"] == 1
        assert relabeled["metadata"]["uid"] == created["metadata"]["uid"]
        assert (
            relabeled["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
        )
        rerouted = await store.update(
            VS,
            "default",
            "reviews",
            vs(subset="v2", labels={"app": "reviews"}, resourceVersion="2"),
        )
        assert rerouted["metadata"]["generation"] == 2
        assert rerouted["metadata"]["resourceVersion"] == "3"
        # The same object again: no write, no new version.
        same = await store.update(
            VS,
            "default",
            "reviews",
            vs(subset="v2", labels={"app": "reviews"}, resourceVersion="3"),
        )
        assert same == rerouted
        assert store.resource_version == 3

    run(tmp_path / "db", scenario)


def test_an_update_must_name_the_version_it_replaces(tmp_path):
    async def scenario(store: Store) -> None:
        await store.create(VS, "default", vs())
        with pytest.raises(status.StatusError) as refused:
            await store.update(VS, "default", "reviews", vs(subset="v2"))
        assert (refused.value.code, refused.value.reason) == (422, "Invalid")
        assert refused.value.message == (
            'virtualservices.networking.istio.io "reviews" is invalid: '
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        )
        with pytest.raises(status.StatusError) as missing:
            await store.update(VS, "default", "ratings", vs("ratings"))
        assert missing.value.code == 404  # as on a real server, "not there" comes first
        assert store.resource_version == 1

    run(tmp_path / "db", scenario)


def test_generate_name(tmp_path):
    async def scenario(store: Store) -> None:
        body = vs()
        body["metadata"] = {"generateName": "reviews-"}
        first = await store.create(VS, "default", body)
        second = await store.create(VS, "default", body)
        for made in (first, second):
            name = made["metadata"]["name"]
            assert made["metadata"]["generateName"] == "reviews-"
            assert name.startswith("reviews-")
            assert len(name) == len("reviews-") + 5
            assert set(name[len("reviews-") :]) <= set("bcdfghjklmnpqrstvwxz2456789")
        assert first["metadata"]["name"] != second["metadata"]["name"]
        long = vs()
        long["metadata"] = {"generateName": "x" * 80}
        assert len((await store.create(VS, "default", long))["metadata"]["name"]) == 63

    run(tmp_path / "db", scenario)


def test_annotations_are_capped_at_256_kib(tmp_path):
    async def scenario(store: Store) -> None:
        at_cap = {"a": "x" * (256 * 1024 - 1)}
        await store.create(VS, "default", vs(annotations=at_cap))
        over = {"a": "x" * (256 * 1024)}
        with pytest.raises(status.StatusError) as refused:
            await store.create(VS, "default", vs("ratings", annotations=over))
        assert refused.value.code == 422
        assert "metadata.annotations: Too long: must have at most 262144 bytes" in (
            refused.value.message
        )
        assert store.resource_version == 1

    run(tmp_path / "db", scenario)


def test_refusals(tmp_path):
    async def scenario(store: Store) -> None:
        await store.create(VS, "default", vs())
        with pytest.raises(status.StatusError) as exists:
            await store.create(VS, "default", vs())
        assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")
        with pytest.raises(status.StatusError) as stale:
            await store.update(VS, "default", "reviews", vs(subset="v2", resourceVersion="0"))
        assert (stale.value.code, stale.value.reason) == (409, "Conflict")
        with pytest.raises(status.StatusError) as missing:
            await store.delete(VS, "default", "ratings")
        assert missing.value.code == 404
        assert missing.value.message == 'virtualservices.networking.istio.io "ratings" not found'
        with pytest.raises(status.StatusError) as wrong_kind:
            await store.create(DR, "default", vs())
        assert wrong_kind.value.code == 400
        with pytest.raises(status.StatusError) as wrong_ns:
            await store.create(VS, "default", vs("x", namespace="other"))
        assert wrong_ns.value.code == 400
        with pytest.raises(status.StatusError) as wrong_name:
            await store.update(VS, "default", "reviews", vs("ratings", resourceVersion="1"))
        assert wrong_name.value.code == 400
        assert store.resource_version == 1

    run(tmp_path / "db", scenario)


def test_invalid_object_is_refused_with_the_loaders_message(tmp_path):
    async def scenario(store: Store) -> None:
        bad = vs("ratings")
        bad["spec"]["http"][0]["route"][0]["weight"] = -5
        with pytest.raises(status.StatusError) as refused:
            await store.create(VS, "default", bad)
        assert refused.value.code == 422
        assert refused.value.message == (
            "<request>: document 1 (VirtualService default/ratings): "
            "spec.http[0].route[0].weight: weight -5 < 0"
        )
        assert refused.value.to_dict()["details"]["causes"][0]["field"] == (
            "spec.http[0].route[0].weight"
        )
        assert store.list(VS, None) == ([], 0)

    run(tmp_path / "db", scenario)


def test_patch_merges_and_validates(tmp_path):
    async def scenario(store: Store) -> None:
        await store.create(VS, "default", vs(labels={"app": "reviews"}))
        relabel = {"metadata": {"labels": {"version": "v1", "app": None}}}
        patched = await store.patch(VS, "default", "reviews", lambda o: merge_patch(o, relabel))
        assert patched["metadata"]["labels"] == {"version": "v1"}
        assert patched["spec"]["hosts"] == ["reviews"]
        bad = {"spec": {"http": [{"route": [{"destination": {"host": "r"}, "weight": -1}]}]}}
        with pytest.raises(status.StatusError) as refused:
            await store.patch(VS, "default", "reviews", lambda o: merge_patch(o, bad))
        assert refused.value.code == 422
        assert store.get(VS, "default", "reviews") == patched

    run(tmp_path / "db", scenario)


def test_everything_acknowledged_survives_reopening(tmp_path):
    db = tmp_path / "db"
    kept: dict[str, Any] = {}

    async def write(store: Store) -> None:
        await store.create(VS, "default", vs("reviews"))
        await store.create(VS, "bookinfo", vs("ratings"))
        await store.delete(VS, "default", "reviews")
        kept["ratings"] = store.get(VS, "bookinfo", "ratings")

    async def read(store: Store) -> None:
        assert store.resource_version == 3  # the deletion's version is kept too
        items, version = store.list(VS, None)
        assert items == [kept["ratings"]]
        assert version == 3
        created = await store.create(VS, "default", vs("details"))
        assert created["metadata"]["resourceVersion"] == "4"

    run(db, write)
    run(db, read)


def test_watch_replays_after_a_version_then_follows(tmp_path):
    async def scenario(store: Store) -> None:
        await store.create(VS, "default", vs("a"))
        await store.create(DR, "default", _dr("a"))
        await store.create(VS, "other", vs("b"))
        await store.delete(VS, "default", "a")
        subscription = store.watch(VS, None, "1")
        batch = await subscription.next_batch()
        assert [(e.type, e.object["metadata"]["name"], e.resource_version) for e in batch] == [
            ("ADDED", "b", 3),
            ("DELETED", "a", 4),
        ]
        assert batch[1].object["metadata"]["resourceVersion"] == "4"
        only_default = store.watch(VS, "default", "")
        assert await _next_within(only_default, 0.05) == []  # nothing left in default
        await store.create(VS, "default", vs("c"))
        (live,) = await subscription.next_batch()
        assert (live.type, live.object["metadata"]["name"]) == ("ADDED", "c")
        assert [e.object["metadata"]["name"] for e in await only_default.next_batch()] == ["c"]
        store.unsubscribe(subscription)
        store.unsubscribe(only_default)
        assert store.watch_count == 0

    run(tmp_path / "db", scenario)


def test_watch_from_a_version_older_than_the_history_is_expired(tmp_path):
    async def scenario(store: Store) -> None:
        for name in "abcd":
            await store.create(VS, "default", vs(name))
        with pytest.raises(status.StatusError) as expired:
            store.watch(VS, None, "1")
        assert (expired.value.code, expired.value.reason) == (410, "Expired")
        replay = store.watch(VS, None, "2")  # events 3 and 4 are still kept
        assert [e.resource_version for e in await replay.next_batch()] == [3, 4]
        with pytest.raises(status.StatusError) as too_new:
            store.watch(VS, None, "5")
        assert too_new.value.code == 410
        store.close_watches()
        assert await replay.next_batch() == []

    run(tmp_path / "db", scenario, history=2)


def test_a_watcher_that_falls_behind_is_dropped(tmp_path):
    async def scenario(store: Store) -> None:
        slow = store.watch(VS, None, "")
        for name in "abc":
            await store.create(VS, "default", vs(name))
        with pytest.raises(Overflowed):
            await slow.next_batch()

    run(tmp_path / "db", scenario, watch_queue_limit=2)


def _dr(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "DestinationRule",
        "metadata": {"name": name},
        "spec": {"host": name},
    }


async def _next_within(subscription: Any, seconds: float) -> list[Any]:
    try:
        async with asyncio.timeout(seconds):
            return await subscription.next_batch()
    except TimeoutError:
        return []


def test_defaults_the_request_wrote_are_kept(tmp_path):
    # proto3 JSON leaves out the first value of an enum; Kubernetes keeps what was written.
    se = ALL.by_name("serviceentry")

    async def scenario(store: Store) -> None:
        body: dict[str, Any] = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": "httpbin"},
            "spec": {
                "hosts": ["httpbin.org"],
                "location": 0,
                "resolution": "NONE",
                "ports": [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 0}],
            },
        }
        created = await store.create(se, "default", body)
        assert created["spec"]["location"] == "MESH_EXTERNAL"  # written as a number
        assert created["spec"]["resolution"] == "NONE"
        assert created["spec"]["ports"][0]["targetPort"] == 0
        body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
        assert await store.update(se, "default", "httpbin", body) == created  # no change
        assert store.resource_version == 1

    run(tmp_path / "db", scenario)
