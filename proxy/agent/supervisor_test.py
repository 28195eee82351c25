"""The supervisor with a real Envoy, configured by the fake ADS server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from proxy.agent import bootstrap, testing
from proxy.agent.admin import AdminClient
from proxy.agent.options import AgentOptions
from proxy.agent.readiness import ReadinessOptions, check_ready
from proxy.agent.supervisor import EnvoyOptions, EnvoySupervisor, envoy_command

TEST_TIMEOUT = 60.0


@dataclasses.dataclass
class Pod:
    options: AgentOptions
    ads: testing.FakeAds
    envoy: EnvoySupervisor
    admin: AdminClient

    async def readiness(self) -> str | None:
        return await check_ready(
            self.admin, ReadinessOptions(proxy_type=self.options.proxy_type, ip=self.options.ip)
        )

    async def is_ready(self) -> bool:
        return await self.readiness() is None


@contextlib.asynccontextmanager
async def running_pod(
    tmp_path: pathlib.Path,
    proxy_type: str = "sidecar",
    *,
    pilot_down: bool = False,
    **envoy_changes: Any,
) -> AsyncIterator[Pod]:
    ip = testing.free_pod_ip()
    listeners = testing.sidecar_listeners(ip) if proxy_type == "sidecar" else []
    ads = testing.FakeAds(
        options=testing.FakeAdsOptions(resources={testing.LISTENER_TYPE: listeners})
    )
    address = await ads.start()
    options = AgentOptions(
        proxy_type=proxy_type,
        ip=ip,
        pod="reviews-v1",
        labels={"app": "reviews"},
        run_dir=tmp_path,
        discovery_address="127.0.0.1:1" if pilot_down else address,
        drain_duration=2.0,
    )
    bootstrap.write_bootstrap(options, {})
    envoy_options = dataclasses.replace(EnvoyOptions.for_agent(options), **envoy_changes)
    envoy = EnvoySupervisor(options=envoy_options)
    try:
        async with AdminClient(options.admin_url) as admin, asyncio.TaskGroup() as tasks:
            tasks.create_task(envoy.run(), name="envoy")
            try:
                yield Pod(options, ads, envoy, admin)
            finally:
                await envoy.stop()
    finally:
        await ads.stop()


def run(coroutine: object) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(TEST_TIMEOUT):
            await coroutine  # type: ignore[misc]

    asyncio.run(bounded())


def test_command_line() -> None:
    options = EnvoyOptions(
        binary=pathlib.Path("/bin/envoy"),
        config_path=pathlib.Path("/run/pod/envoy-rev.json"),
        log_path=pathlib.Path("/run/pod/envoy.log"),
        admin_url="http://127.0.1.5:15000",
        concurrency=2,
        drain_duration=4.5,
    )
    command = envoy_command(options)
    assert command[:3] == ["/bin/envoy", "-c", "/run/pod/envoy-rev.json"]
    assert "--disable-hot-restart" in command
    for flag, value in [("--concurrency", "2"), ("--drain-time-s", "5"), ("--log-level", "info")]:
        assert command[command.index(flag) + 1] == value


def test_envoy_gets_config_and_becomes_ready(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_pod(tmp_path) as pod:
            await testing.eventually(pod.is_ready, what="readiness")
            requests = pod.ads.requests
            assert requests[0].node.id.startswith(f"sidecar~{pod.options.ip}~reviews-v1.default")
            assert requests[0].node.metadata.fields["NAME"].string_value == "reviews-v1"
            # ACKs: every type was accepted at the version sent.
            assert pod.ads.requests_of(testing.LISTENER_TYPE)[-1].version_info == "1"
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://{pod.options.ip}:15001/anything") as response,
            ):
                assert response.status == 200
                assert await response.text() == testing.FAKE_BODY
            assert "envoy.log" in os.listdir(tmp_path)

    run(scenario())


def test_not_ready_until_pilot_answers_and_while_a_listener_is_missing(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        async with running_pod(tmp_path) as pod:
            # The fake server is up, but serves no listener: Envoy is LIVE, yet not ready.
            pod.ads.set_resources(
                testing.LISTENER_TYPE, testing.sidecar_listeners(pod.options.ip)[:1]
            )
            await testing.eventually(lambda: pod.envoy.pid is not None, what="envoy started")
            await testing.eventually(lambda: _admin_state_is(pod, "LIVE"), what="envoy live")
            await testing.eventually(
                lambda: _readiness_is(pod, "listener virtualInbound is not active yet"),
                what="not ready for want of virtualInbound",
            )
            pod.ads.set_resources(testing.LISTENER_TYPE, testing.sidecar_listeners(pod.options.ip))
            await testing.eventually(pod.is_ready, what="readiness")

    run(scenario())


async def _admin_state_is(pod: Pod, state: str) -> bool:
    try:
        return await pod.admin.server_state() == state
    except Exception:
        return False


async def _readiness_is(pod: Pod, reason: str) -> bool:
    return await pod.readiness() == reason


def test_not_ready_while_pilot_is_unreachable(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_pod(tmp_path, pilot_down=True) as pod:
            await testing.eventually(
                lambda: _readiness_is(
                    pod,
                    "envoy is not live yet: server state PRE_INITIALIZING; not connected to Pilot",
                ),
                what="not ready, not connected",
            )

    run(scenario())


def test_a_router_is_ready_with_any_listener(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_pod(tmp_path, "router") as pod:
            await testing.eventually(
                lambda: _readiness_is(pod, "no listener from Pilot is active yet"),
                what="not ready without listeners",
            )
            gateway = testing.http_listener("0.0.0.0_8080", pod.options.ip, 8080)
            pod.ads.set_resources(testing.LISTENER_TYPE, [gateway])
            await testing.eventually(pod.is_ready, what="readiness")
            assert pod.ads.requests[0].node.id.startswith("router~")

    run(scenario())


def test_two_envoys_side_by_side(tmp_path: pathlib.Path) -> None:
    # Several pods on one machine: no hot-restart shared memory ties them together.
    async def scenario() -> None:
        async with (
            running_pod(tmp_path / "a") as first,
            running_pod(tmp_path / "b") as second,
        ):
            await testing.eventually(first.is_ready, what="first pod ready")
            await testing.eventually(second.is_ready, what="second pod ready")
            assert first.envoy.pid != second.envoy.pid

    run(scenario())


def test_deprecated_fields_are_rejected(tmp_path: pathlib.Path) -> None:
    # The bootstrap's runtime flag: Pilot sending a deprecated field is NACKed, not warned.
    async def scenario() -> None:
        async with running_pod(tmp_path) as pod:
            await testing.eventually(pod.is_ready, what="readiness")
            listeners = testing.sidecar_listeners(pod.options.ip)
            listeners[0].reuse_port = True  # deprecated in favour of enable_reuse_port
            pod.ads.set_resources(testing.LISTENER_TYPE, listeners)
            await testing.eventually(
                lambda: any(
                    "deprecated" in r.error_detail.message
                    for r in pod.ads.requests_of(testing.LISTENER_TYPE)
                ),
                what="NACK of the deprecated field",
            )
            assert await pod.is_ready()  # the accepted config keeps serving

    run(scenario())


def test_killed_envoy_is_restarted_and_ready_again(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_pod(tmp_path) as pod:
            await testing.eventually(pod.is_ready, what="readiness")
            first = pod.envoy.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await testing.eventually(lambda: pod.envoy.pid not in (None, first), what="a new envoy")
            assert not testing.pid_alive(first)
            await testing.eventually(pod.is_ready, what="readiness after restart")
            assert pod.envoy.starts == 2, pod.options.envoy_log_path.read_text()[-3000:]

    run(scenario())


def test_stop_leaves_no_envoy_and_does_not_wait_without_connections(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pilot-agent.envoy")

    async def scenario() -> None:
        async with running_pod(tmp_path) as pod:
            await testing.eventually(pod.is_ready, what="readiness")
            pid = pod.envoy.pid
        assert pid is not None
        assert not testing.pid_alive(pid)
        assert pod.envoy.pid is None

    run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert not any("timed out" in m for m in messages), messages
    assert any("stopped: status 0" in m for m in messages), messages


def test_stop_waits_for_open_connections_up_to_the_drain_duration(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pilot-agent.envoy")

    async def scenario() -> None:
        async with running_pod(tmp_path, drain_duration=0.5) as pod:
            await testing.eventually(pod.is_ready, what="readiness")
            # An idle client connection that nobody closes holds the drain until time is up.
            _, writer = await asyncio.open_connection(pod.options.ip, 15001)
            await testing.eventually(lambda: _connections_are(pod, 1), what="connection counted")
            pid = pod.envoy.pid
            await pod.envoy.stop()
            assert pid is not None
            assert not testing.pid_alive(pid)
            writer.close()

    run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert any("timed out with connections open" in m for m in messages), messages


async def _connections_are(pod: Pod, count: int) -> bool:
    return await pod.admin.active_connections(ignore_ports=(15021, 15090)) == count


def test_an_envoy_that_keeps_failing_is_restarted_with_backoff(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pilot-agent.envoy")
    options = EnvoyOptions(
        binary=pathlib.Path("/bin/false"),
        config_path=tmp_path / "envoy-rev.json",
        log_path=tmp_path / "envoy.log",
        admin_url="http://127.0.0.1:1",
        min_backoff=0.01,
        max_backoff=0.04,
    )
    envoy = EnvoySupervisor(options=options)

    async def scenario() -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(envoy.run())
            await testing.eventually(lambda: envoy.starts >= 5, what="five starts")
            await envoy.stop()

    run(scenario())
    delays = [
        r.args[3]
        for r in caplog.records
        if isinstance(r.args, tuple)
        and r.getMessage().startswith("envoy (pid")
        and "restarting" in r.getMessage()
    ]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.04]
    assert envoy.pid is None


_ORPHAN_CHECK = """
import asyncio, pathlib, sys
from proxy.agent import supervisor
if sys.argv[2] == "preexec":
    supervisor._SETPRIV = None  # the fallback when util-linux's setpriv is missing
options = supervisor.EnvoyOptions(
    binary=pathlib.Path(sys.argv[1]),
    config_path=pathlib.Path("unused"),
    log_path=pathlib.Path(sys.argv[1]).with_suffix(".log"),
    admin_url="http://127.0.0.1:1",
)
async def main():
    envoy = supervisor.EnvoySupervisor(options=options)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(envoy.run())
        while envoy.pid is None:
            await asyncio.sleep(0.01)
        print(envoy.pid, flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["setpriv", "preexec"])
def test_the_child_dies_with_a_killed_supervisor(tmp_path: pathlib.Path, how: str) -> None:
    # A stand-in "envoy" that ignores its flags and would outlive everyone if it could.
    fake = tmp_path / "fake-envoy"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    root = pathlib.Path(__file__).absolute().parents[2]
    environ = {**os.environ, "PYTHONPATH": str(root)}
    agent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_CHECK, str(fake), how],
        stdout=subprocess.PIPE,
        text=True,
        env=environ,
    )
    child = 0
    try:
        assert agent.stdout is not None
        child = int(agent.stdout.readline())
        assert testing.pid_alive(child)
        agent.kill()
        agent.wait(timeout=10)

        async def gone() -> None:
            await testing.eventually(lambda: not testing.pid_alive(child), what="child gone")

        run(gone())
    finally:
        agent.kill()
        agent.wait(timeout=10)
        if child and testing.pid_alive(child):
            os.kill(child, signal.SIGKILL)
