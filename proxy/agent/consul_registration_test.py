"""The agent's Consul registration, against the Consul HTTP API double."""

import asyncio
import contextlib
import pathlib

import consul.aio

from pkg.testing.aio import run_async
from pkg.testing.consul import FakeConsul
from pkg.testing.wait import eventually
from proxy.agent.consul_registration import ConsulRegistrar, ConsulRegistration
from proxy.agent.options import AgentOptions


def _options(url: str) -> ConsulRegistration:
    agent = AgentOptions(
        proxy_type="sidecar", ip="127.0.1.5", pod="reviews-v2",
        labels={"app": "reviews", "version": "v2"}, ports={"http": 9080},
        run_dir=pathlib.Path("/nonexistent"), sds_socket=pathlib.Path("/run/sds.sock"),
        registry="Consul", registry_url=url,
    )  # fmt: skip
    return ConsulRegistration.for_agent(agent, url)


def test_the_registration_says_what_istios_consul_adapter_reads():
    registration = _options("http://127.0.0.1:8500")
    assert (registration.service, registration.service_id) == ("reviews", "reviews-v2")
    assert (registration.address, registration.port, registration.protocol) == (
        "127.0.1.5", 9080, "http"
    )  # fmt: skip
    assert set(registration.tags) == {
        "app|reviews", "version|v2", "security.istio.io/tlsMode|istio"
    }  # fmt: skip


@run_async(timeout=30)
async def test_registered_then_passing_while_running_and_gone_after_deregister():
    fake = FakeConsul()
    await fake.start()
    reader = consul.aio.Consul(host=fake.host, port=fake.port)
    registrar = ConsulRegistrar(options=_options(fake.url))
    task = asyncio.create_task(registrar.register())

    async def passing() -> list:
        _, entries = await reader.health.service("reviews", passing=True)
        return entries

    try:
        await eventually(passing)
        (entry,) = await passing()
        assert entry["Service"]["Address"] == "127.0.1.5"
        assert entry["Service"]["Meta"] == {"protocol": "http"}
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await registrar.deregister()
        _, entries = await reader.health.service("reviews")
        assert entries == []
    finally:
        task.cancel()
        await reader.close()
        await fake.stop()


@run_async(timeout=30)
async def test_a_consul_that_comes_up_late_still_gets_the_registration():
    fake = FakeConsul()
    await fake.start()
    await fake.stop()  # the port is known, nothing listens yet
    reader = consul.aio.Consul(host=fake.host, port=fake.port)
    registrar = ConsulRegistrar(options=_options(fake.url))
    task = asyncio.create_task(registrar.register())
    try:
        await asyncio.sleep(0.5)
        await fake.start()

        async def registered() -> bool:
            _, entries = await reader.health.service("reviews", passing=True)
            return bool(entries)

        await eventually(registered)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await registrar.deregister()
        await reader.close()
        await fake.stop()
