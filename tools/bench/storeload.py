"""Filling a real config store for a benchmark, and waiting until Pilot has read it all."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient


async def load_store(url: str, resources: list[Resource], concurrency: int = 8) -> float:
    """Create every resource (`concurrency` writes in flight); seconds taken."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    async with ConfigClient(url, timeout=60) as client:

        async def create(resource: Resource) -> None:
            async with gate:
                await client.create(resource)

        async with asyncio.TaskGroup() as tasks:
            for resource in resources:
                tasks.create_task(create(resource))
    return time.perf_counter() - started


async def wait_pilot_has(
    pilot_url: str, count: int, *, timeout: float = 180, poll: float = 1.0
) -> None:
    """Until Pilot's informer holds `count` resources, then one debounce period more.

    /debug/configz serializes every resource: at thousands of them, poll less often.
    """
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        while True:
            async with session.get(f"{pilot_url}/debug/configz") as response:
                if len(await response.json()) >= count:
                    break
            await asyncio.sleep(poll)
    await asyncio.sleep(1.5)  # past PILOT_DEBOUNCE_MAX: the last push is done
