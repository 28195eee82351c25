"""The redisquota adapter: rate limits kept in Redis, so several Mixers share one limit.

Each request runs one Lua script (EVALSHA; loaded again by the client if Redis lost it on a
restart) that charges the quota atomically: FIXED_WINDOW or ROLLING_WINDOW (see
scripts.py). Keys are namespaced by quota name and the instance's dimensions,
`redisquota:{<quota>|<dimensions>}.state` and friends; the braces keep one quota key's
records in one Redis Cluster slot. Semantics match memquota: the first matching override
sets the limit, best_effort grants what is left, otherwise all or nothing, and a retried
deduplication id gets its first answer again, from whichever Mixer it reaches.

When Redis cannot be reached the quota answers UNAVAILABLE with nothing granted (the
runtime's fail-open annotation decides what the caller sees), and the next request after
Redis is back is served again: the client reconnects by itself.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mixer.adapter import api, quotas
from mixer.adapters.redisquota.config import Params, QuotaConfig, parse_params
from mixer.adapters.redisquota.scripts import SCRIPTS
from mixer.template.templates import Quota

INTERNAL = 13  # google.rpc.Code INTERNAL

# Redis answers in well under a millisecond; past these something is wrong, and the runtime's
# own adapter timeout (1 s) is close.
CONNECT_TIMEOUT = 0.5
COMMAND_TIMEOUT = 0.5
POOL_WAIT_TIMEOUT = 0.5

_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def quota_key(quota_name: str, dimensions: Mapping[str, Any]) -> str:
    return f"redisquota:{{{quota_name}|{quotas.dimensions_key(dimensions)}}}"


def new_client(params: Params) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        params.redis_url,
        max_connections=params.connection_pool_size,
        timeout=POOL_WAIT_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        # One immediate retry on a fresh connection: after Redis restarts, pooled connections
        # are dead and the first command on each fails. A retried script is safe to repeat:
        # the deduplication record answers it without charging twice.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )
    return aioredis.Redis.from_pool(pool)


class Handler:
    def __init__(
        self,
        params: Params,
        env: api.Env,
        client: aioredis.Redis,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock  # None: Redis's clock, which all Mixers share
        self._log = env.logger
        self._client = client
        self._where = params.address  # never the URL: it may carry a password
        self._configs = {q.name: q for q in params.quotas}
        self._names = [q.name for q in params.quotas]
        self._by_instance: dict[str, QuotaConfig | None] = {}
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}

    async def check_connection(self) -> None:
        """Pings Redis; logs (does not fail) when it is down: quotas say UNAVAILABLE until it is up."""
        try:
            await self._client.ping()
        except _UNREACHABLE as error:
            self._log.warning(
                "redisquota: Redis at %s is not reachable yet: %s", self._where, error
            )

    async def handle_quota(self, instance: Quota, args: api.QuotaArgs) -> api.QuotaResult:
        config = self._config_for(instance.name)
        if config is None:
            return api.QuotaResult(
                0,
                status_code=api.INVALID_ARGUMENT,
                message=f"redisquota: no quota is configured for instance {instance.name}",
            )
        if args.amount < 0:
            return api.QuotaResult(
                0, status_code=api.INVALID_ARGUMENT, message="redisquota: amount must be >= 0"
            )
        if args.amount == 0:
            return api.QuotaResult(0, valid_duration=config.valid_duration)
        key = quota_key(config.name, instance.dimensions)
        keys = [f"{key}.state", f"{key}.index"]
        if args.deduplication_id:
            keys.append(f"{key}.dedup:{args.deduplication_id}")
        argv = [
            config.max_amount_for(instance.dimensions),
            _millis(config.valid_duration),
            max(_millis(config.bucket_duration), 1),
            1 if args.best_effort else 0,
            args.amount,
            1 if args.deduplication_id else 0,
            "" if self._clock is None else round(self._clock() * 1000),
        ]
        try:
            granted, valid_ms = await self._scripts[config.algorithm](keys=keys, args=argv)
        except _UNREACHABLE as error:
            self._log.warning("redisquota: Redis at %s is unavailable: %s", self._where, error)
            return api.QuotaResult(
                0,
                status_code=api.UNAVAILABLE,
                message=f"redisquota: Redis at {self._where} is unavailable: {error}",
            )
        except redis.exceptions.RedisError as error:
            self._log.error("redisquota: quota script failed for %s: %s", key, error)
            return api.QuotaResult(
                0, status_code=INTERNAL, message=f"redisquota: quota script failed: {error}"
            )
        if granted <= 0:
            return api.QuotaResult(
                0,
                status_code=api.RESOURCE_EXHAUSTED,
                message=f"redisquota: quota {config.name} exhausted",
            )
        return api.QuotaResult(
            int(granted), valid_duration=datetime.timedelta(milliseconds=valid_ms)
        )

    async def close(self) -> None:
        await self._client.aclose()

    def _config_for(self, instance_name: str) -> QuotaConfig | None:
        if instance_name not in self._by_instance:
            name = quotas.resolve(self._names, instance_name)
            self._by_instance[instance_name] = None if name is None else self._configs[name]
        return self._by_instance[instance_name]


def _millis(duration: datetime.timedelta) -> int:
    return duration // datetime.timedelta(milliseconds=1)


class Builder:
    def __init__(
        self,
        params: Mapping[str, Any],
        instances: Mapping[str, Sequence[str]] | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock
        self._params, self._errors = parse_params(params, (instances or {}).get("quota", ()))

    def validate(self) -> list[api.ConfigError]:
        # No network here: validate() runs on the event loop and must not block; an
        # unreachable Redis is a runtime condition (UNAVAILABLE), not a config error.
        return list(self._errors)

    async def build(self, env: api.Env) -> Handler:
        if self._errors:
            raise ValueError("redisquota: invalid params: " + "; ".join(map(str, self._errors)))
        handler = Handler(self._params, env, new_client(self._params), clock=self._clock)
        await handler.check_connection()
        return handler


INFO = api.AdapterInfo(
    name="redisquota",
    description="Redis-based quotas",
    templates=("quota",),
    new_builder=Builder,
    default_params={"connectionPoolSize": 10},
)
