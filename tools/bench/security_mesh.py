"""Probing the benchmark mesh for the security benchmark: JSON from status endpoints, waiting
for a condition (and timing when it first held), killing a launched process, names.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from tools.bench import benchmesh
from tools.local.topology import NODE_AGENT_STATUS_PORT

TRUST_DOMAIN = "cluster.local"
ADMIN_PORT = 15000  # Envoy's admin
AGENT_STATUS_PORT = 15020  # pilot-agent's /healthz/ready
INBOUND_PORT = 15006
POLL = 0.01  # seconds between probes while timing something

Check = Callable[[], Awaitable[bool]]


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
        return await response.json(content_type=None)


async def answers(session: aiohttp.ClientSession, url: str) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def first_true(check: Check, *, timeout: float, interval: float = POLL) -> float | None:
    """The loop time at which `check()` first held, probing every `interval` seconds; None
    if it never did within `timeout`. A check that raises (nothing answering yet, a 503) has
    not held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            if await check():
                return loop.time()
        except (aiohttp.ClientError, RuntimeError, TimeoutError, ValueError):
            pass  # not answering yet
        await asyncio.sleep(interval)
    return None


async def wait_for(what: str, check: Check, timeout: float) -> None:
    """Until `check()` holds; RuntimeError naming `what` after `timeout` seconds."""
    if await first_true(check, timeout=timeout) is None:
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def negated(check: Callable[[], Awaitable[object]]) -> Check:
    async def inverse() -> bool:
        return not await check()

    return inverse


async def kill(bench: benchmesh.BenchMesh, name: str) -> None:
    """SIGKILL a launched process's group (an agent goes with its Envoy) and wait it out."""
    [process] = [p for p in bench.mesh.running() if p.name == name]
    os.killpg(process.pid, signal.SIGKILL)
    async with asyncio.timeout(10):
        # Not our child (the launcher's, read from its state): no exit to wait on, only /proc.
        while process.alive():  # noqa: ASYNC110  polls another process tree's /proc entry
            await asyncio.sleep(0.02)


def node_agent_url(bench: benchmesh.BenchMesh) -> str:
    return f"http://{bench.topology.control_address}:{NODE_AGENT_STATUS_PORT}/debug/secrets"


def identity_of(bench: benchmesh.BenchMesh, pod: str) -> str:
    account = bench.topology.pod(pod).service_account
    return f"spiffe://{TRUST_DOMAIN}/ns/default/sa/{account}"
