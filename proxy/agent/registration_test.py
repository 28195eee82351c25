"""Registration against a stand-in of the config store's REST API (testing.FakeStore)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pkg.config import loader
from pkg.config.kinds import ALL
from proxy.agent import testing
from proxy.agent.registration import Registrar, RegistrationOptions, workload_entry

COLLECTION = ALL.by_name("workloadentry").collection_path("default")
ENTRY = f"{COLLECTION}/reviews-v1"


def _options(store_url: str = "http://127.0.0.1:1", **changes: Any) -> RegistrationOptions:
    options = RegistrationOptions(
        store_url=store_url,
        pod="reviews-v1",
        namespace="default",
        ip="127.0.1.5",
        labels={"app": "reviews", "version": "v1"},
        service_account="bookinfo-reviews",
        ports={"http": 9080},
        min_backoff=0.01,
        max_backoff=0.05,
    )
    return dataclasses.replace(options, **changes)


def with_store(scenario: Callable[[testing.FakeStore], Awaitable[None]]) -> None:
    async def bounded() -> None:
        store = testing.FakeStore()
        await store.start()
        try:
            async with asyncio.timeout(30):
                await scenario(store)
        finally:
            await store.stop()

    asyncio.run(bounded())


def test_workload_entry_follows_istio() -> None:
    entry = workload_entry(_options(mtls=True)).to_dict()
    labels = {"app": "reviews", "version": "v1", "security.istio.io/tlsMode": "istio"}
    assert entry == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": "reviews-v1", "namespace": "default", "labels": labels},
        "spec": {
            "address": "127.0.1.5",
            "ports": {"http": 9080},
            "labels": labels,
            "serviceAccount": "bookinfo-reviews",
        },
    }


def test_a_sidecar_without_certificates_is_marked_so() -> None:
    entry = workload_entry(_options()).to_dict()
    assert entry["spec"]["labels"]["security.istio.io/tlsMode"] == "disabled"


def test_an_invalid_label_is_refused_at_once() -> None:
    with pytest.raises(loader.LoadError, match="labels"):
        Registrar(options=_options(labels={"app": "not a valid label value!"}))


def test_register_creates_and_deregister_deletes() -> None:
    async def scenario(store: testing.FakeStore) -> None:
        registrar = Registrar(options=_options(store.url))
        stored = await registrar.register()
        assert stored.metadata.resource_version
        assert [(r.method, r.path) for r in store.requests] == [("POST", COLLECTION)]
        assert store.objects()[ENTRY]["spec"]["address"] == "127.0.1.5"
        await registrar.deregister()
        assert store.requests[-1].method == "DELETE"
        assert store.requests[-1].path == ENTRY
        assert store.objects() == {}

    with_store(scenario)


def test_an_entry_left_by_an_earlier_run_is_replaced() -> None:
    async def scenario(store: testing.FakeStore) -> None:
        old = workload_entry(_options(ip="127.0.1.99")).to_dict()
        store.put_object(old)
        registrar = Registrar(options=_options(store.url))
        await registrar.register()
        methods = [r.method for r in store.requests]
        assert methods == ["POST", "GET", "PUT"]
        assert store.objects()[ENTRY]["spec"]["address"] == "127.0.1.5"

    with_store(scenario)


def test_register_retries_while_the_store_is_unavailable() -> None:
    async def scenario(store: testing.FakeStore) -> None:
        store.fail_next = 3
        registrar = Registrar(options=_options(store.url))
        await registrar.register()
        assert [r.method for r in store.requests] == ["POST"] * 4
        assert ENTRY in store.objects()

    with_store(scenario)


def test_register_retries_until_the_store_is_reachable() -> None:
    async def scenario(store: testing.FakeStore) -> None:
        # Nothing listens on port 1: connection refused, retried until cancelled.
        registrar = Registrar(options=_options("http://127.0.0.1:1"))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await registrar.register()

    with_store(scenario)


def test_deregister_of_an_entry_already_gone_is_fine() -> None:
    async def scenario(store: testing.FakeStore) -> None:
        registrar = Registrar(options=_options(store.url))
        await registrar.register()
        store.fail_next = 0
        await Registrar(options=_options(store.url)).deregister()  # never registered: no call
        assert [r.method for r in store.requests] == ["POST"]
        await registrar.deregister()
        await registrar.deregister()  # second time: nothing to do
        assert [r.method for r in store.requests] == ["POST", "DELETE"]

    with_store(scenario)


def test_deregister_gives_up_after_its_timeout() -> None:
    async def scenario(store: testing.FakeStore) -> None:
        registrar = Registrar(options=_options(store.url, deregister_timeout=0.3))
        await registrar.register()
        store.fail_next = 1_000_000  # the store stays down
        await registrar.deregister()  # returns: bounded
        assert store.requests[-1].method == "DELETE"
        assert ENTRY in store.objects()

    with_store(scenario)
