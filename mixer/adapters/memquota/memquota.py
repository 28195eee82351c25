"""The memquota adapter: quotas kept in this Mixer's memory.

Trivial to set up, but its counts live and die with one Mixer process: several Mixers each
grant the full limit (use redisquota to share one), and a restart forgets everything.

- Rate-limit quotas (validDuration > 0): at most maxAmount per rolling window of
  validDuration, counted in a bucketed rolling window (see window.py) per quota and per
  distinct set of instance dimensions.
- Allocation quotas (validDuration 0): at most maxAmount in total, never released by time.
- The first override whose dimensions all equal the instance's sets the limit.
- best_effort grants min(available, amount); otherwise amount or nothing.
- A deduplication id seen within minDeduplicationDuration gets the same answer, uncharged.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mixer.adapter import api, quotas
from mixer.adapter.params import format_duration
from mixer.adapters.memquota.config import Params, QuotaConfig, parse_params
from mixer.adapters.memquota.dedup import DedupCache
from mixer.adapters.memquota.window import RollingWindow
from mixer.template.templates import Quota

Clock = Callable[[], float]

# How often idle rolling windows (dimension sets not seen for a whole window) are dropped.
_SWEEP_INTERVAL = 30.0


class Handler:
    def __init__(self, params: Params, env: api.Env, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._log = env.logger
        self._configs = {q.name: q for q in params.quotas}
        self._names = [q.name for q in params.quotas]
        self._by_instance: dict[str, QuotaConfig | None] = {}
        self._dedup: DedupCache[api.QuotaResult] = DedupCache(
            params.min_deduplication_duration.total_seconds(), clock
        )
        self._cells: dict[tuple[str, str], int] = {}  # allocation quotas: in use
        self._windows: dict[tuple[str, str], RollingWindow] = {}  # rate limits
        self._next_sweep = clock() + _SWEEP_INTERVAL

    async def handle_quota(self, instance: Quota, args: api.QuotaArgs) -> api.QuotaResult:
        # No await below: on one event loop each request is charged atomically.
        config = self._config_for(instance.name)
        if config is None:
            return api.QuotaResult(
                0,
                status_code=api.INVALID_ARGUMENT,
                message=f"memquota: no quota is configured for instance {instance.name}",
            )
        if args.amount < 0:
            return api.QuotaResult(
                0, status_code=api.INVALID_ARGUMENT, message="memquota: amount must be >= 0"
            )
        dedup_key = (config.name, args.deduplication_id) if args.deduplication_id else None
        if dedup_key is not None:
            previous = self._dedup.get(dedup_key)
            if previous is not None:
                return previous
        result = self._alloc(config, instance.dimensions, args)
        if dedup_key is not None:
            self._dedup.put(dedup_key, result)
        return result

    async def close(self) -> None:
        self._cells.clear()
        self._windows.clear()

    def _config_for(self, instance_name: str) -> QuotaConfig | None:
        if instance_name not in self._by_instance:
            name = quotas.resolve(self._names, instance_name)
            self._by_instance[instance_name] = None if name is None else self._configs[name]
        return self._by_instance[instance_name]

    def _alloc(
        self, config: QuotaConfig, dimensions: Mapping[str, Any], args: api.QuotaArgs
    ) -> api.QuotaResult:
        now = self._clock()
        self._sweep(now)
        limit = config.limit_for(dimensions)
        key = (config.name, quotas.dimensions_key(dimensions))
        window: RollingWindow | None = None
        if limit.valid_duration > datetime.timedelta(0):
            window = self._windows.get(key)
            if window is None:
                window = RollingWindow(limit.max_amount, limit.valid_duration.total_seconds())
                self._windows[key] = window
            available = window.available(now)
        else:
            available = limit.max_amount - self._cells.get(key, 0)
        granted = _grant(args, available)
        if granted > 0 and window is not None:
            window.alloc(granted, now)
        elif granted > 0:
            self._cells[key] = self._cells.get(key, 0) + granted
        self._log.debug(
            "memquota %s %s: granted %d of %d (limit %d per %s)",
            config.name,
            key[1],
            granted,
            args.amount,
            limit.max_amount,
            format_duration(limit.valid_duration),
        )
        if granted == 0 and args.amount > 0:
            return api.QuotaResult(
                0,
                status_code=api.RESOURCE_EXHAUSTED,
                message=f"memquota: quota {config.name} exhausted "
                f"({limit.max_amount} per {format_duration(limit.valid_duration)})",
            )
        return api.QuotaResult(granted, valid_duration=limit.valid_duration)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for key in [k for k, w in self._windows.items() if w.is_idle(now)]:
            del self._windows[key]


def _grant(args: api.QuotaArgs, available: int) -> int:
    if args.amount <= available:
        return args.amount
    return max(available, 0) if args.best_effort else 0


class Builder:
    def __init__(
        self,
        params: Mapping[str, Any],
        instances: Mapping[str, Sequence[str]] | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._params, self._errors = parse_params(params, (instances or {}).get("quota", ()))

    def validate(self) -> list[api.ConfigError]:
        return list(self._errors)

    async def build(self, env: api.Env) -> Handler:
        if self._errors:
            raise ValueError("memquota: invalid params: " + "; ".join(map(str, self._errors)))
        return Handler(self._params, env, clock=self._clock)


INFO = api.AdapterInfo(
    name="memquota",
    description="Volatile memory-based quota tracking",
    templates=("quota",),
    new_builder=Builder,
    default_params={"minDeduplicationDuration": "1s"},
)
