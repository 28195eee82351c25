"""The Eureka registry through the real py-eureka-client against the REST API double."""

import asyncio
import contextlib

from py_eureka_client import eureka_basic

from pilot.model.discovery import ServiceRegistry
from pilot.registry import conformance
from pilot.registry.eureka.client import PyEurekaClient
from pilot.registry.eureka.controller import EurekaOptions, EurekaRegistry
from pkg.testing.aio import run_async
from pkg.testing.eureka import FakeEureka
from pkg.testing.wait import eventually

FAST = EurekaOptions(interval=0.05, backoff_min=0.05, backoff_max=0.2)
HOST = "reviews.bookinfo.eureka"


@contextlib.asynccontextmanager
async def running(fake: FakeEureka, options: EurekaOptions = FAST):
    registry = EurekaRegistry(client=PyEurekaClient(fake.url, timeout=2.0), options=options)
    task = asyncio.create_task(registry.run())
    try:
        yield registry
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def register(fake: FakeEureka, ip: str, version: str) -> str:
    """As a Eureka client registers its instance (py-eureka-client's register call)."""
    instance = eureka_basic.Instance(
        instanceId=f"{ip}:reviews:9080", app="reviews", hostName=HOST, ipAddr=ip,
        port=eureka_basic.PortWrapper(9080, True), securePort=eureka_basic.PortWrapper(9443, False),
        vipAddress="reviews", status="UP",
        metadata={"istio.protocol": "http", "version": version},
    )  # fmt: skip
    await eureka_basic.register(fake.url, instance)
    return instance.instanceId


def addresses(registry: EurekaRegistry) -> list[str]:
    return sorted(e.address for e in registry.instances(HOST, 9080))


@run_async(timeout=30)
async def test_instances_appear_and_a_cancelled_one_is_removed_through_deltas():
    fake = FakeEureka()
    await fake.start()
    try:
        async with running(fake) as registry:
            await register(fake, "10.0.0.4", "v1")
            v2 = await register(fake, "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
            endpoint = next(e for e in registry.instances(HOST, 9080) if e.address == "10.0.0.4")
            assert endpoint.labels == {"version": "v1"}
            await eureka_basic.cancel(fake.url, "reviews", v2)
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            assert registry.status().delta_reads > 0  # the removal came as a DELETED delta
            assert any(r.startswith("GET /eureka/apps/delta") for r in fake.requests)
    finally:
        await fake.stop()


@run_async(timeout=30)
async def test_an_instance_marked_down_stops_getting_traffic_and_comes_back_up():
    fake = FakeEureka()
    await fake.start()
    try:
        async with running(fake) as registry:
            await register(fake, "10.0.0.4", "v1")
            v2 = await register(fake, "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
            await eureka_basic.status_update(fake.url, "reviews", v2, 0, status="DOWN")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            assert registry.status().instances == 2
            assert registry.status().up_instances == 1
            await eureka_basic.delete_status_override(fake.url, "reviews", v2, "0")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
    finally:
        await fake.stop()


@run_async(timeout=30)
async def test_a_copy_that_drifts_from_the_hash_is_replaced_by_a_full_read():
    # Changes older than the delta window are never seen as deltas: only the hash tells.
    fake = FakeEureka(retention=0.0)
    await fake.start()
    try:
        async with running(fake) as registry:
            await register(fake, "10.0.0.4", "v1")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            reads = registry.status().full_reads
            await register(fake, "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
            assert registry.status().full_reads > reads
    finally:
        await fake.stop()


@run_async(timeout=30)
async def test_with_deltas_disabled_full_reads_answer_304_while_nothing_changes():
    fake = FakeEureka()
    fake.disable_delta = True
    await fake.start()
    try:
        async with running(fake) as registry:
            await register(fake, "10.0.0.4", "v1")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            published = registry.snapshot
            await eventually(lambda: registry.status().full_reads > 5)
            assert registry.snapshot is published  # 304s: nothing converted again
            await register(fake, "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
    finally:
        await fake.stop()


@run_async(timeout=40)
async def test_eureka_down_keeps_the_last_view_and_it_catches_up_when_back():
    fake = FakeEureka()
    await fake.start()
    try:
        async with running(fake) as registry:
            await register(fake, "10.0.0.4", "v1")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            await fake.stop()
            await eventually(lambda: registry.status().state == "unreachable")
            assert addresses(registry) == ["10.0.0.4"]
            await fake.start()
            await register(fake, "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"], timeout=10)
            assert registry.status().state == "synced"
    finally:
        await fake.stop()


class EurekaDriver:
    """Changes Eureka through its own API, for the conformance suite: a service is the
    instances registered under its hostName, so it starts as one that is not UP yet."""

    target_ports = False  # one port per Eureka instance: the service's

    def __init__(self, fake: FakeEureka) -> None:
        self._fake = fake
        self._ids: dict[str, list[tuple[str, str]]] = {}

    async def _register(self, host, app, instance_id, ip, port, status, labels) -> None:
        instance = eureka_basic.Instance(
            instanceId=instance_id, app=app, hostName=host, ipAddr=ip,
            port=eureka_basic.PortWrapper(port, True), status=status,
            securePort=eureka_basic.PortWrapper(443, False),
            metadata={"istio.protocol": "http", **labels},
        )  # fmt: skip
        await eureka_basic.register(self._fake.url, instance)
        self._ids.setdefault(host, []).append((app, instance_id))

    async def add_service(self, name: str, namespace: str, port: int) -> str:
        host = f"{name}.{namespace}.eureka"
        await self._register(host, name, f"{name}-starting", "127.30.9.9", port, "STARTING", {})
        return host

    async def set_instances(self, hostname, port, instances) -> None:
        app = hostname.split(".")[0]
        for n, instance in enumerate(instances):
            await self._register(
                hostname, app, f"{app}-{n}", instance.address, instance.port, "UP",
                dict(instance.labels),
            )  # fmt: skip

    async def remove_service(self, hostname: str) -> None:
        for app, instance_id in self._ids.pop(hostname, []):
            await eureka_basic.cancel(self._fake.url, app, instance_id)


@contextlib.asynccontextmanager
async def _conformance_factory():
    fake = FakeEureka()
    await fake.start()
    registry = EurekaRegistry(client=PyEurekaClient(fake.url, timeout=2.0), options=FAST)
    try:
        yield registry, EurekaDriver(fake)
    finally:
        await fake.stop()


_check: ServiceRegistry = EurekaRegistry(client=PyEurekaClient("http://127.0.0.1:1/eureka/"))


@run_async(timeout=60)
async def test_conformance():
    await conformance.check_all(_conformance_factory)
