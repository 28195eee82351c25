"""The agent's Eureka registration, against the Eureka REST API double."""

import asyncio
import contextlib
import dataclasses
import pathlib

from pkg.testing.aio import run_async
from pkg.testing.eureka import FakeEureka
from pkg.testing.wait import eventually
from proxy.agent.eureka_registration import EurekaRegistrar, EurekaRegistration
from proxy.agent.options import AgentOptions


def _options(url: str) -> EurekaRegistration:
    agent = AgentOptions(
        proxy_type="sidecar", ip="127.0.1.4", pod="reviews-v1",
        labels={"app": "reviews", "version": "v1"}, ports={"http": 9080},
        run_dir=pathlib.Path("/nonexistent"), registry="Eureka", registry_url=url,
    )  # fmt: skip
    return dataclasses.replace(EurekaRegistration.for_agent(agent, url), renewal_interval=0.05)


def test_the_instance_says_what_istios_eureka_adapter_reads():
    registration = _options("http://127.0.0.1:8761/eureka/")
    assert (registration.app, registration.hostname) == ("REVIEWS", "reviews.eureka")
    assert registration.metadata == {"app": "reviews", "version": "v1", "istio.protocol": "http"}
    assert registration.instance_id == "127.0.1.4:reviews:9080"


def test_labels_that_are_not_xml_names_are_not_sent_as_metadata():
    agent = AgentOptions(
        proxy_type="sidecar", ip="127.0.1.4", pod="reviews-v1", ports={"http": 9080},
        labels={"app": "reviews", "app.kubernetes.io/name": "reviews", "2x": "y"},
        run_dir=pathlib.Path("/nonexistent"), registry="Eureka", registry_url="http://e/eureka/",
    )  # fmt: skip
    assert set(EurekaRegistration.for_agent(agent, "http://e/eureka/").metadata) == {
        "app", "istio.protocol"
    }  # fmt: skip


@run_async(timeout=30)
async def test_registered_renewed_re_registered_after_eviction_and_cancelled_on_stop():
    fake = FakeEureka()
    await fake.start()
    registration = _options(fake.url)
    registrar = EurekaRegistrar(options=registration)
    task = asyncio.create_task(registrar.register())
    try:
        await eventually(lambda: registration.instance_id in fake.apps.get("REVIEWS", {}))
        instance = fake.apps["REVIEWS"][registration.instance_id]
        assert instance["hostName"] == "reviews.eureka"
        assert instance["status"] == "UP"
        assert instance["port"] == {"$": 9080, "@enabled": "true"}

        del fake.apps["REVIEWS"]  # the lease was evicted: the next heartbeat gets a 404
        await eventually(lambda: registration.instance_id in fake.apps.get("REVIEWS", {}))

        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await registrar.deregister()
        assert "REVIEWS" not in fake.apps
    finally:
        task.cancel()
        await fake.stop()
