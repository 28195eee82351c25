"""redisquota against a real redis-server: shared limits across Mixers, windows, outages."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import pathlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from mixer.adapter import api, testing
from mixer.adapters.redisquota import redisquota
from mixer.adapters.redisquota.testing import RedisServer
from mixer.template.templates import Quota

INSTANCES = {"quota": [testing.QUOTA_INSTANCE]}


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    """A Redis this test may kill and restart."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def quota(
    name: str = testing.QUOTA_NAME,
    max_amount: int = 10,
    valid: str = "1h",
    algorithm: str = "FIXED_WINDOW",
    **extra: Any,
) -> dict[str, Any]:
    q = {
        "name": name,
        "maxAmount": max_amount,
        "validDuration": valid,
        "rateLimitAlgorithm": algorithm,
    }
    if algorithm == "ROLLING_WINDOW":
        q.setdefault("bucketDuration", "100ms" if valid == "1s" else "1m")
    q.update(extra)
    return q


def params_for(server: RedisServer, *quotas: Mapping[str, Any], pool: int = 10) -> dict[str, Any]:
    return {"redisServerUrl": server.address, "connectionPoolSize": pool, "quotas": list(quotas)}


def opener(server: RedisServer, algorithm: str):
    """The conformance suite's handler factory: its quotas, this Redis, this algorithm."""

    @contextlib.asynccontextmanager
    async def open_quota_handler(params: Mapping[str, Any]) -> AsyncIterator[Any]:
        quotas = [{**q, "rateLimitAlgorithm": algorithm} for q in params["quotas"]]
        if algorithm == "ROLLING_WINDOW":
            quotas = [{**q, "bucketDuration": "1m"} for q in quotas]
        async with testing.open_handler(
            redisquota.INFO, params_for(server, *quotas), INSTANCES
        ) as handler:
            yield handler

    return open_quota_handler


def ask(amount: int = 1, *, best_effort: bool = False, dedup: str = "") -> api.QuotaArgs:
    return api.QuotaArgs(deduplication_id=dedup, amount=amount, best_effort=best_effort)


def instance(**dimensions: Any) -> Quota:
    return Quota(name=testing.QUOTA_INSTANCE, dimensions=dimensions)


def unique() -> str:
    # Not `random`: hypothesis seeds it per example, and keys must never repeat in one Redis.
    return uuid.uuid4().hex[:12]


@pytest.mark.parametrize("algorithm", ["FIXED_WINDOW", "ROLLING_WINDOW"])
def test_quota_conformance(shared_redis: RedisServer, algorithm: str):
    testing.run_async(testing.check_quota_conformance)(opener(shared_redis, algorithm))


@pytest.mark.parametrize("algorithm", ["FIXED_WINDOW", "ROLLING_WINDOW"])
@testing.run_async(timeout=60)
async def test_two_mixers_never_grant_more_than_the_limit_together(
    shared_redis: RedisServer, algorithm: str
):
    params = params_for(shared_redis, quota(max_amount=50, algorithm=algorithm), pool=4)
    dims = {"source": unique()}
    async with (
        testing.open_handler(redisquota.INFO, params, INSTANCES) as mixer_a,
        testing.open_handler(redisquota.INFO, params, INSTANCES) as mixer_b,
    ):
        rng = random.Random(7)
        calls = []
        for n in range(300):
            mixer = mixer_a if n % 2 else mixer_b
            args = ask(rng.randint(1, 3), best_effort=rng.random() < 0.5, dedup=f"{dims}-{n}")
            calls.append(mixer.handle_quota(instance(**dims), args))
        results = await asyncio.gather(*calls)
    assert all(r.status_code in (api.OK, api.RESOURCE_EXHAUSTED) for r in results), results
    granted = [r.granted_amount for r in results]
    # 300 requests asking for ~600 against a limit of 50 between two Mixers: exactly 50.
    assert sum(granted) == 50
    assert all(g >= 0 for g in granted)


@pytest.mark.parametrize("algorithm", ["FIXED_WINDOW", "ROLLING_WINDOW"])
@testing.run_async
async def test_a_retry_reaching_the_other_mixer_is_not_charged_again(
    shared_redis: RedisServer, algorithm: str
):
    params = params_for(shared_redis, quota(max_amount=3, algorithm=algorithm))
    dims = {"source": unique()}
    async with (
        testing.open_handler(redisquota.INFO, params, INSTANCES) as mixer_a,
        testing.open_handler(redisquota.INFO, params, INSTANCES) as mixer_b,
    ):
        first = await mixer_a.handle_quota(instance(**dims), ask(2, dedup="req-1"))
        retry = await mixer_b.handle_quota(instance(**dims), ask(2, dedup="req-1"))
        assert first.granted_amount == retry.granted_amount == 2
        assert (await mixer_b.handle_quota(instance(**dims), ask(1))).granted_amount == 1


@pytest.mark.parametrize("algorithm", ["FIXED_WINDOW", "ROLLING_WINDOW"])
@testing.run_async
async def test_quota_is_granted_again_after_the_window(shared_redis: RedisServer, algorithm: str):
    params = params_for(shared_redis, quota(max_amount=2, valid="1s", algorithm=algorithm))
    dims = {"source": unique()}
    async with testing.open_handler(redisquota.INFO, params, INSTANCES) as handler:
        first = await handler.handle_quota(instance(**dims), ask(2))
        assert first.granted_amount == 2
        assert datetime.timedelta(0) < first.valid_duration <= datetime.timedelta(seconds=1)
        assert (await handler.handle_quota(instance(**dims), ask(1))).granted_amount == 0

        async def granted_again() -> bool:
            return (await handler.handle_quota(instance(**dims), ask(1))).granted_amount == 1

        await testing.eventually(granted_again, timeout=10, interval=0.1)


async def open_on_fake_time(
    server: RedisServer, clock: testing.FakeClock, *quotas: Mapping[str, Any]
) -> redisquota.Handler:
    merged = testing.merged_params(redisquota.INFO, params_for(server, *quotas))
    return await testing.build(redisquota.Builder(merged, INSTANCES, clock=clock))


@testing.run_async
async def test_fixed_window_on_fake_time(shared_redis: RedisServer):
    clock = testing.FakeClock()
    handler = await open_on_fake_time(shared_redis, clock, quota(max_amount=10, valid="10s"))
    q = instance(source=unique())
    try:
        first = await handler.handle_quota(q, ask(6))
        assert (first.granted_amount, first.valid_duration) == (6, datetime.timedelta(seconds=10))
        clock.advance(4)
        second = await handler.handle_quota(q, ask(4))
        assert (second.granted_amount, second.valid_duration) == (4, datetime.timedelta(seconds=6))
        assert (await handler.handle_quota(q, ask(1))).granted_amount == 0
        clock.advance(6)  # the window that began with the first grant is over: all back
        assert (await handler.handle_quota(q, ask(10))).granted_amount == 10
    finally:
        await handler.close()


@testing.run_async
async def test_rolling_window_on_fake_time(shared_redis: RedisServer):
    clock = testing.FakeClock()
    handler = await open_on_fake_time(
        shared_redis,
        clock,
        quota(max_amount=10, valid="10s", algorithm="ROLLING_WINDOW", bucketDuration="1s"),
    )
    q = instance(source=unique())
    try:
        assert (await handler.handle_quota(q, ask(6))).granted_amount == 6
        clock.advance(5)
        assert (await handler.handle_quota(q, ask(4))).granted_amount == 4
        assert (await handler.handle_quota(q, ask(1))).granted_amount == 0
        clock.advance(6)  # the first 6 (and their 1 s bucket) left the window; the 4 have not
        assert (await handler.handle_quota(q, ask(7, best_effort=True))).granted_amount == 6
        clock.advance(11)
        assert (await handler.handle_quota(q, ask(10))).granted_amount == 10
    finally:
        await handler.close()


@hypothesis.settings(max_examples=100, deadline=None, database=None)
@hypothesis.given(
    max_amount=st.integers(1, 12),
    steps=st.lists(
        st.tuples(st.integers(0, 700), st.integers(1, 6), st.booleans()), min_size=1, max_size=40
    ),
)
def test_rolling_window_matches_its_definition(shared_redis: RedisServer, max_amount: int, steps):
    """Exactly what the definition allows: grants in buckets not yet wholly out of the window."""
    window, bucket = 1000, 100  # ms

    async def run() -> None:
        clock = testing.FakeClock(now=5000.0)
        handler = await open_on_fake_time(
            shared_redis,
            clock,
            quota(
                max_amount=max_amount,
                valid="1s",
                algorithm="ROLLING_WINDOW",
                bucketDuration="100ms",
            ),
        )
        q = instance(source=unique())
        grants: list[tuple[int, int]] = []  # (bucket start ms, amount)
        try:
            for delay, amount, best_effort in steps:
                clock.advance(delay / 1000)
                now = round(clock() * 1000)
                in_use = sum(n for start, n in grants if start > now - window - bucket)
                available = max_amount - in_use
                expected = (
                    amount if amount <= available else (max(available, 0) if best_effort else 0)
                )
                result = await handler.handle_quota(q, ask(amount, best_effort=best_effort))
                assert result.granted_amount == expected, (now, grants, amount, best_effort)
                if expected:
                    grants.append((now - now % bucket, expected))
        finally:
            await handler.close()

    asyncio.run(run())


@testing.run_async(timeout=60)
async def test_redis_down_is_unavailable_and_recovers(own_redis: RedisServer):
    params = params_for(own_redis, quota(max_amount=100))
    async with testing.open_handler(redisquota.INFO, params, INSTANCES) as handler:
        assert (await handler.handle_quota(instance(source="a"), ask())).granted_amount == 1

        own_redis.stop()
        down = await handler.handle_quota(instance(source="a"), ask())
        assert (down.granted_amount, down.status_code) == (0, api.UNAVAILABLE)
        assert own_redis.address in down.message

        await asyncio.to_thread(own_redis.start)  # same port, empty, no scripts loaded

        async def served() -> bool:
            result = await handler.handle_quota(instance(source="a"), ask())
            return result.status_code == api.OK and result.granted_amount == 1

        await testing.eventually(served, timeout=10, interval=0.1)


@testing.run_async(timeout=60)
async def test_built_while_redis_is_down_then_serves_once_it_is_up(tmp_path: pathlib.Path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    server.stop()  # the port is known, nothing listens on it
    params = params_for(server, quota(max_amount=5))
    try:
        async with testing.open_handler(redisquota.INFO, params, INSTANCES) as handler:
            result = await handler.handle_quota(instance(source="a"), ask())
            assert result.status_code == api.UNAVAILABLE
            await asyncio.to_thread(server.start)

            async def served() -> bool:
                return (await handler.handle_quota(instance(source="a"), ask())).granted_amount == 1

            await testing.eventually(served, timeout=10, interval=0.1)
    finally:
        server.stop()


@testing.run_async
async def test_overrides_and_namespaced_keys(shared_redis: RedisServer):
    params = params_for(
        shared_redis,
        quota(max_amount=5, overrides=[{"dimensions": {"destination": "reviews"}, "maxAmount": 1}]),
        quota(name="other.instance.istio-system", max_amount=1),
    )
    instances = {"quota": [testing.QUOTA_INSTANCE, "other.istio-system"]}
    dims = {"source": unique()}
    async with testing.open_handler(redisquota.INFO, params, instances) as handler:
        reviews = instance(destination="reviews", **dims)
        assert (await handler.handle_quota(reviews, ask(1))).granted_amount == 1
        assert (await handler.handle_quota(reviews, ask(1))).granted_amount == 0
        # Same dimensions, another quota: its own key, its own count.
        other = Quota(name="other.istio-system", dimensions=reviews.dimensions)
        assert (await handler.handle_quota(other, ask(1))).granted_amount == 1
    assert await _keys(shared_redis, f"redisquota:{{{testing.QUOTA_NAME}|*")


async def _keys(server: RedisServer, pattern: str) -> list[bytes]:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host=server.host, port=server.port)
    try:
        return [key async for key in client.scan_iter(match=pattern)]
    finally:
        await client.aclose()


def test_config_errors_have_field_paths():
    errors = testing.config_errors(
        redisquota.INFO,
        {
            "redisServerUrl": "http://x",
            "connectionPoolSize": 0,
            "quotas": [
                {"name": "a", "maxAmount": 0, "validDuration": "0s"},
                {
                    "name": "b",
                    "maxAmount": 1,
                    "validDuration": "1s",
                    "rateLimitAlgorithm": "ROLLING_WINDOW",
                    "bucketDuration": "2s",
                    "overrides": [{"dimensions": {}, "maxAmount": 0, "validDuration": "1s"}],
                },
                {
                    "name": "c",
                    "maxAmount": 1,
                    "validDuration": "10s",
                    "rateLimitAlgorithm": "ROLLING_WINDOW",
                    "bucketDuration": "1ms",
                },
                {"name": "d", "maxAmount": 1, "validDuration": "1s", "rateLimitAlgorithm": "LEAKY"},
            ],
        },
        {"quota": ["requestcount.istio-system"]},
    )
    assert errors == [
        "quotas[0].maxAmount: must be > 0",
        "quotas[0].validDuration: must be at least 1ms (redisquota only does rate limits)",
        "quotas[1].bucketDuration: must be shorter than validDuration (1s) for ROLLING_WINDOW",
        "quotas[1].overrides[0].dimensions: must name at least one dimension",
        "quotas[1].overrides[0].maxAmount: must be > 0",
        "quotas[1].overrides[0].validDuration: unknown field (known: dimensions, maxAmount)",
        "quotas[2].bucketDuration: must be at least validDuration/1000 (10ms) so a window holds at most 1000 buckets",
        "quotas[3].rateLimitAlgorithm: expected one of FIXED_WINDOW, ROLLING_WINDOW, got 'LEAKY'",
        "redisServerUrl: must be host:port or a redis:// URL, got 'http://x'",
        "connectionPoolSize: must be > 0, got 0",
        "quotas: did not find limit defined for quota requestcount.istio-system",
    ]


def test_missing_url_and_quotas():
    assert testing.config_errors(redisquota.INFO, {}) == [
        "redisServerUrl: must not be empty (e.g. localhost:6379)",
        "quotas: must configure at least one quota",
    ]
    assert testing.config_errors(
        redisquota.INFO, {"redisServerUrl": "localhost", "quotas": [quota()]}
    ) == ["redisServerUrl: must name a host and a port (e.g. localhost:6379), got 'localhost'"]
