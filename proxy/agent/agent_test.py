"""pilot-agent as a process: real Envoy, the fake ADS server and the config store stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import pytest

from pkg.config.kinds import ALL
from pkg.testing import programs
from proxy.agent import testing
from proxy.agent.agent import Agent
from proxy.agent.options import AgentOptions

TEST_TIMEOUT = 90.0
# The stored version's path: the agent's client writes where the store keeps the kind.
ENTRIES = ALL.by_name("workloadentry").collection_path("default")


@dataclasses.dataclass
class RunningAgent:
    ip: str
    process: asyncio.subprocess.Process
    ads: testing.FakeAds
    store: testing.FakeStore
    log: pathlib.Path

    def envoy_pid(self) -> int | None:
        children = testing.child_pids(self.process.pid)
        return children[0] if len(children) == 1 else None

    async def status(self, port: int = 15020) -> tuple[int, str]:
        """The readiness answer: from the agent (15020) or through Envoy (15021)."""
        if self.process.returncode is not None:
            raise AssertionError(f"the agent exited with {self.process.returncode}")
        url = f"http://{self.ip}:{port}/healthz/ready"
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client,
                client.get(url) as response,
            ):
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            return 0, str(error)

    async def is_ready(self, port: int = 15020) -> bool:
        return (await self.status(port))[0] == 200


@contextlib.asynccontextmanager
async def running_agent(
    tmp_path: pathlib.Path, *, listeners: bool = True, drain: str = "2s"
) -> AsyncIterator[RunningAgent]:
    ip = testing.free_pod_ip()
    resources: dict[str, Sequence[Any]] = {
        testing.LISTENER_TYPE: testing.sidecar_listeners(ip) if listeners else []
    }
    ads = testing.FakeAds(options=testing.FakeAdsOptions(resources=resources))
    store = testing.FakeStore()
    await ads.start()
    await store.start()
    log = tmp_path / "agent.log"
    command = programs.command(
        "proxy.agent.main",
        "proxy",
        "sidecar",
        f"--ip={ip}",
        "--pod=reviews-v1",
        "--namespace=default",
        "--labels=app=reviews,version=v1",
        "--service-account=bookinfo-reviews",
        "--ports=http=9080",
        f"--discovery-address={ads.address}",
        f"--config-store={store.url}",
        f"--run-dir={tmp_path / 'run'}",
        f"--drain-duration={drain}",
    )
    environ = programs.environ(ISTIO_META_TEST_MARK="agent-test")
    with await asyncio.to_thread(open, log, "wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=output, stderr=asyncio.subprocess.STDOUT, env=environ
        )
    agent = RunningAgent(ip, process, ads, store, log)
    envoys: set[int] = set()
    try:
        yield agent
    finally:
        # Whatever happened, no process of this test outlives it.
        envoys.update(testing.child_pids(process.pid))
        if process.returncode is None:
            process.kill()
            await process.wait()
        for pid in envoys:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await store.stop()
        await ads.stop()


def run(scenario: Callable[[], Awaitable[None]], log_of: list[pathlib.Path]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(TEST_TIMEOUT):
            await scenario()

    try:
        asyncio.run(bounded())
    except BaseException:
        for log in log_of:  # the agent's own account, in the pytest report
            if log.exists():
                print(log.read_text()[-5000:])
        raise


def test_ready_through_envoy_once_pilot_has_sent_the_listeners(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_agent(tmp_path, listeners=False) as agent:
            await testing.eventually(
                lambda: _status_contains(agent, "listener virtualOutbound is not active yet"),
                what="503 for want of listeners",
            )
            agent.ads.set_resources(testing.LISTENER_TYPE, testing.sidecar_listeners(agent.ip))
            await testing.eventually(agent.is_ready, what="agent readiness")
            # The same answer through Envoy's health listener, as a kubelet would probe it.
            await testing.eventually(lambda: agent.is_ready(15021), what="readiness via 15021")
            node = agent.ads.requests[0].node
            assert node.id == f"sidecar~{agent.ip}~reviews-v1.default~default.svc.cluster.local"
            assert node.metadata.fields["TEST_MARK"].string_value == "agent-test"
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://{agent.ip}:15090/stats/prometheus") as response,
            ):
                assert response.status == 200
                assert "envoy_server_live" in await response.text()
            # The agent's merged endpoint: Envoy's stats followed by the agent's own.
            async with (
                aiohttp.ClientSession() as client,
                client.get(f"http://{agent.ip}:15020/stats/prometheus") as response,
            ):
                assert response.status == 200
                merged = await response.text()
                assert "envoy_server_live" in merged
                assert 'istio_agent_scrapes_total{type="envoy"}' in merged

    run(scenario, [tmp_path / "agent.log"])


async def _status_contains(agent: RunningAgent, text: str) -> bool:
    code, body = await agent.status()
    return code == 503 and text in body


def test_registers_and_restarts_a_killed_envoy(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_agent(tmp_path) as agent:
            await testing.eventually(agent.is_ready, what="readiness")
            entry = agent.store.objects()[f"{ENTRIES}/reviews-v1"]
            assert entry["spec"]["address"] == agent.ip
            assert entry["spec"]["labels"]["security.istio.io/tlsMode"] == "disabled"  # no SDS
            first = agent.envoy_pid()
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await testing.eventually(
                lambda: agent.envoy_pid() not in (None, first), what="a new envoy"
            )
            await testing.eventually(agent.is_ready, what="readiness after the restart")

    run(scenario, [tmp_path / "agent.log"])


def test_sigterm_deregisters_stops_envoy_and_exits_zero(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_agent(tmp_path) as agent:
            await testing.eventually(agent.is_ready, what="readiness")
            envoy = agent.envoy_pid()
            assert envoy is not None
            agent.process.send_signal(signal.SIGTERM)
            assert await agent.process.wait() == 0
            assert not testing.pid_alive(envoy)
            assert agent.store.objects() == {}
            assert [r.method for r in agent.store.requests] == ["POST", "DELETE"]
            log = agent.log.read_text()
            assert "deregistered WorkloadEntry default/reviews-v1" in log
            assert log.index("deregistered") < log.index("stopped: status 0")

    run(scenario, [tmp_path / "agent.log"])


def test_a_killed_agent_takes_its_envoy_along(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_agent(tmp_path) as agent:
            await testing.eventually(agent.is_ready, what="readiness")
            envoy = agent.envoy_pid()
            assert envoy is not None
            agent.process.kill()
            await agent.process.wait()
            await testing.eventually(
                lambda: not testing.pid_alive(envoy), what="envoy gone with its agent"
            )

    run(scenario, [tmp_path / "agent.log"])


def test_a_second_signal_stops_at_once(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        async with running_agent(tmp_path, drain="80s") as agent:
            await testing.eventually(agent.is_ready, what="readiness")
            envoy = agent.envoy_pid()
            assert envoy is not None
            # An idle connection nobody closes would hold the drain for its whole 80s.
            _, writer = await asyncio.open_connection(agent.ip, 15001)
            agent.process.send_signal(signal.SIGTERM)
            await testing.eventually(
                lambda: "draining envoy (pid" in agent.log.read_text(), what="drain started"
            )
            agent.process.send_signal(signal.SIGTERM)
            assert await agent.process.wait() == 1
            assert not testing.pid_alive(envoy)
            assert "stopped at once by a second signal" in agent.log.read_text()
            writer.close()

    run(scenario, [tmp_path / "agent.log"])


def test_a_failing_part_stops_the_agent_and_leaves_the_mesh(tmp_path: pathlib.Path) -> None:
    # In-process: Envoy cannot even start, so the supervisor fails and takes the agent down.
    async def scenario() -> None:
        store = testing.FakeStore()
        await store.start()
        try:
            options = AgentOptions(
                proxy_type="sidecar",
                ip=testing.free_pod_ip(),
                pod="reviews-v1",
                run_dir=tmp_path,
                config_store=store.url,
                envoy_binary=tmp_path / "no-envoy-here",
            )
            agent = Agent(options=options, environ={})
            with pytest.raises(ExceptionGroup) as raised:
                await agent.run(asyncio.Event())
            assert raised.group_contains(FileNotFoundError)
            assert store.objects() == {}
        finally:
            await store.stop()

    run(scenario, [])
