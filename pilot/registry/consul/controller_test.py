"""The Consul registry through the real py-consul client against the HTTP API double."""

import asyncio
import contextlib

import consul.aio

from pilot.model.discovery import ServiceRegistry
from pilot.registry import conformance
from pilot.registry.consul.client import ConsulAddress, PyConsulClient
from pilot.registry.consul.controller import ConsulOptions, ConsulRegistry, next_index
from pkg.testing.aio import run_async
from pkg.testing.consul import FakeConsul
from pkg.testing.wait import eventually

FAST = ConsulOptions(wait="2s", interval=0.01, backoff_min=0.05, backoff_max=0.2)
REVIEWS = "reviews.service.consul"


@contextlib.asynccontextmanager
async def running(fake: FakeConsul, options: ConsulOptions = FAST):
    client = PyConsulClient(ConsulAddress(fake.host, fake.port), timeout=2.0)
    registry = ConsulRegistry(client=client, options=options)
    changes = []

    async def record(event) -> None:
        changes.append(event)

    registry.append_service_handler(record)
    task = asyncio.create_task(registry.run())
    try:
        yield registry, changes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def consul_agent(fake: FakeConsul):
    """The real py-consul client, as a Consul agent's users register services."""
    agent = consul.aio.Consul(host=fake.host, port=fake.port)
    try:
        yield agent
    finally:
        await agent.close()


def addresses(registry: ConsulRegistry, port: int = 9080) -> list[str]:
    return sorted(e.address for e in registry.instances(REVIEWS, port))


async def register(agent, service_id: str, address: str, version: str, **kwargs) -> None:
    await agent.agent.service.register(
        "reviews", service_id=service_id, address=address, port=9080,
        tags=[f"version|{version}"], meta={"protocol": "http"}, **kwargs,
    )  # fmt: skip


def test_an_index_that_goes_backwards_resets_and_one_never_blocks_on_zero():
    assert next_index(10, 12) == 12
    assert next_index(12, 9) == 0  # a snapshot restore: ask again without blocking
    assert next_index(0, 0) == 1  # 0 would not block: a busy loop


@run_async(timeout=30)
async def test_registered_services_appear_and_a_deregistered_one_disappears():
    fake = FakeConsul()
    await fake.start()
    try:
        async with consul_agent(fake) as agent, running(fake) as (registry, _):
            await register(agent, "reviews-v1", "10.0.0.4", "v1")
            await register(agent, "reviews-v2", "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
            assert registry.has_synced()
            assert registry.status().state == "synced"
            v1 = next(e for e in registry.instances(REVIEWS, 9080) if e.address == "10.0.0.4")
            assert v1.labels == {"version": "v1"}
            assert registry.get_service(REVIEWS).ports[0].protocol.value == "HTTP"

            assert await agent.agent.service.deregister("reviews-v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            assert not await agent.agent.service.deregister("reviews-v2")  # 404: unknown ID
    finally:
        await fake.stop()


@run_async(timeout=30)
async def test_a_blocking_query_returns_on_change_rather_than_polling():
    fake = FakeConsul()
    await fake.start()
    try:
        async with consul_agent(fake) as agent, running(fake) as (registry, _):
            await register(agent, "reviews-v1", "10.0.0.4", "v1")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            # Every watch (the catalog; the health of `consul` and of `reviews`) comes back to
            # block on the server...
            await eventually(lambda: fake.parked == 3)
            asked = len(fake.requests)
            await asyncio.sleep(0.5)  # ...and, nothing changing, stays there: no polling
            assert len(fake.requests) == asked
            assert fake.parked == 3
            assert any("index=" in r and "wait=2s" in r for r in fake.requests)
            await register(agent, "reviews-v2", "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"], timeout=1.5)
    finally:
        await fake.stop()


@run_async(timeout=30)
async def test_only_instances_whose_checks_pass_get_traffic_and_a_flapping_check_follows():
    fake = FakeConsul()
    await fake.start()
    try:
        async with consul_agent(fake) as agent, running(fake) as (registry, changes):
            await register(agent, "reviews-v1", "10.0.0.4", "v1")
            # A TTL check starts critical: the instance gets no traffic until it passes.
            await register(agent, "reviews-v2", "10.0.0.5", "v2", check=consul.Check.ttl("30s"))
            await eventually(lambda: registry.status().instances == 2)
            assert addresses(registry) == ["10.0.0.4"]
            for _ in range(3):
                await agent.agent.check.ttl_pass("service:reviews-v2")
                await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"])
                await agent.agent.check.ttl_fail("service:reviews-v2")
                await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            await agent.agent.check.ttl_warn("service:reviews-v2")  # warning is not passing
            await asyncio.sleep(0.2)
            assert addresses(registry) == ["10.0.0.4"]
            assert registry.status().healthy_instances == 1
            assert len(changes) >= 7  # the ADD, then instance changes each way
    finally:
        await fake.stop()


@run_async(timeout=30)
async def test_an_index_reset_by_a_snapshot_restore_is_followed():
    fake = FakeConsul()
    await fake.start()
    try:
        async with consul_agent(fake) as agent, running(fake) as (registry, _):
            for n in range(5):
                await register(agent, f"reviews-{n}", f"10.0.0.{10 + n}", "v1")
            await eventually(lambda: len(addresses(registry)) == 5)
            await fake.restore_snapshot(2)  # every index is now below what the watches hold
            await register(agent, "reviews-late", "10.0.0.99", "v1")
            await eventually(lambda: "10.0.0.99" in addresses(registry), timeout=3)
    finally:
        await fake.stop()


@run_async(timeout=40)
async def test_consul_down_keeps_the_last_view_and_it_catches_up_when_back():
    fake = FakeConsul()
    await fake.start()
    try:
        async with consul_agent(fake) as agent, running(fake) as (registry, _):
            await register(agent, "reviews-v1", "10.0.0.4", "v1")
            await eventually(lambda: addresses(registry) == ["10.0.0.4"])
            await fake.stop()
            await eventually(lambda: registry.status().state == "unreachable", timeout=10)
            assert addresses(registry) == ["10.0.0.4"]  # the last good view stays
            assert registry.status().last_error

            await fake.start()  # back, on the same port, with what it had plus a new instance
            await register(agent, "reviews-v2", "10.0.0.5", "v2")
            await eventually(lambda: addresses(registry) == ["10.0.0.4", "10.0.0.5"], timeout=10)
            await eventually(lambda: registry.status().state == "synced")
    finally:
        await fake.stop()


class ConsulDriver:
    """Changes Consul through its own API, for the conformance suite: a service is its
    instances in Consul, so a service starts as one instance whose check never passes."""

    target_ports = False  # one port per Consul instance: the service's

    def __init__(self, agent) -> None:
        self._agent = agent
        self._ids: dict[str, list[str]] = {}

    async def add_service(self, name: str, namespace: str, port: int) -> str:
        # Consul knows a service only through an instance: this one's TTL check is never
        # passed, so the service exists with no healthy instance, as the suite expects.
        never_healthy = f"{name}-registered"
        await self._agent.agent.service.register(
            name, service_id=never_healthy, address="127.30.9.9", port=port,
            meta={"protocol": "http"}, check=consul.Check.ttl("60s"),
        )  # fmt: skip
        self._ids[name] = [never_healthy]
        return f"{name}.service.consul"

    async def set_instances(self, hostname, port, instances) -> None:
        name = hostname.split(".")[0]
        for n, instance in enumerate(instances):
            service_id = f"{name}-{n}"
            await self._agent.agent.service.register(
                name, service_id=service_id, address=instance.address, port=instance.port,
                tags=[f"{k}|{v}" for k, v in instance.labels.items()], meta={"protocol": "http"},
            )  # fmt: skip
            self._ids[name].append(service_id)

    async def remove_service(self, hostname: str) -> None:
        for service_id in self._ids.pop(hostname.split(".")[0], []):
            await self._agent.agent.service.deregister(service_id)


@contextlib.asynccontextmanager
async def _conformance_factory():
    fake = FakeConsul()
    await fake.start()
    registry = ConsulRegistry(
        client=PyConsulClient(ConsulAddress(fake.host, fake.port), timeout=2.0), options=FAST
    )
    try:
        async with consul_agent(fake) as agent:
            yield registry, ConsulDriver(agent)
    finally:
        await fake.stop()


_check: ServiceRegistry = ConsulRegistry(client=PyConsulClient(ConsulAddress("127.0.0.1", 1)))


@run_async(timeout=60)
async def test_conformance():
    await conformance.check_all(_conformance_factory)
