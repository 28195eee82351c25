"""redisquota's params, as Istio's YAML writes them, and their validation.

redisServerUrl: localhost:6379        # or redis://host:port/db
connectionPoolSize: 10
quotas:
- name: requestcount.quota.istio-system
  maxAmount: 500
  validDuration: 1s
  bucketDuration: 500ms               # ROLLING_WINDOW only
  rateLimitAlgorithm: ROLLING_WINDOW  # | FIXED_WINDOW (the default)
  overrides:
  - dimensions: {destination: reviews}
    maxAmount: 1
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from mixer.adapter import quotas
from mixer.adapter.api import ConfigError
from mixer.adapter.params import ParamReader, format_duration

ALGORITHMS = ("FIXED_WINDOW", "ROLLING_WINDOW")
DEFAULT_POOL_SIZE = 10
# A rolling window is kept in buckets, each a step of one script call's work: bound them.
MAX_BUCKETS = 1000
_MS = datetime.timedelta(milliseconds=1)
_ZERO = datetime.timedelta(0)


@dataclasses.dataclass(frozen=True)
class Override:
    dimensions: Mapping[str, str]
    max_amount: int


@dataclasses.dataclass(frozen=True)
class QuotaConfig:
    name: str
    max_amount: int
    valid_duration: datetime.timedelta
    bucket_duration: datetime.timedelta = _ZERO
    algorithm: str = "FIXED_WINDOW"
    overrides: tuple[Override, ...] = ()

    def max_amount_for(self, dimensions: Mapping[str, Any]) -> int:
        override = quotas.first_override(self.overrides, dimensions)
        return self.max_amount if override is None else override.max_amount


@dataclasses.dataclass(frozen=True)
class Params:
    redis_url: str  # normalized: redis://host:port[/db]
    address: str  # host:port, for messages
    connection_pool_size: int = DEFAULT_POOL_SIZE
    quotas: tuple[QuotaConfig, ...] = ()


def parse_params(
    raw: Mapping[str, Any], instances: Sequence[str] = ()
) -> tuple[Params, list[ConfigError]]:
    """Params and every problem with them; `instances` each need a quota configured."""
    reader = ParamReader(raw)
    url = reader.string("redisServerUrl")
    pool_size = reader.integer("connectionPoolSize", DEFAULT_POOL_SIZE)
    configs = tuple(_parse_quota(q) for q in reader.objects("quotas"))
    reader.finish()
    errors = reader.errors
    redis_url = address = ""
    if not url:
        errors.append(ConfigError("redisServerUrl", "must not be empty (e.g. localhost:6379)"))
    else:
        redis_url, problem = normalize_url(url)
        if problem:
            errors.append(ConfigError("redisServerUrl", problem))
        else:
            parts = urllib.parse.urlsplit(redis_url)
            address = f"{parts.hostname}:{parts.port}"
    if pool_size <= 0:
        errors.append(ConfigError("connectionPoolSize", f"must be > 0, got {pool_size}"))
    if not configs:
        errors.append(ConfigError("quotas", "must configure at least one quota"))
    seen: set[str] = set()
    for index, quota in enumerate(configs):
        if quota.name and quota.name in seen:
            errors.append(ConfigError(f"quotas[{index}].name", f"duplicate quota {quota.name!r}"))
        seen.add(quota.name)
    for name in quotas.unresolved([q.name for q in configs], instances):
        errors.append(ConfigError("quotas", f"did not find limit defined for quota {name}"))
    return Params(redis_url, address, pool_size, configs), errors


def normalize_url(url: str) -> tuple[str, str]:
    """(redis://host:port[/db], problem): Istio's `host:port` or a redis:// URL
    (`redis://:password@host:port/db`, `rediss://` for TLS)."""
    full = url if "://" in url else f"redis://{url}"
    parts = urllib.parse.urlsplit(full)
    if parts.scheme not in ("redis", "rediss"):
        return "", f"must be host:port or a redis:// URL, got {url!r}"
    try:
        port = parts.port
    except ValueError:
        return "", f"has an invalid port: {url!r}"
    if not parts.hostname or port is None:
        return "", f"must name a host and a port (e.g. localhost:6379), got {url!r}"
    return full, ""


def _parse_quota(reader: ParamReader) -> QuotaConfig:
    name = reader.string("name")
    if not name:
        reader.error("name", "must not be empty")
    max_amount = reader.integer("maxAmount")
    if max_amount <= 0:
        reader.error("maxAmount", "must be > 0")
    valid = reader.duration("validDuration", _ZERO)
    if valid < _MS:
        reader.error("validDuration", "must be at least 1ms (redisquota only does rate limits)")
    bucket = reader.duration("bucketDuration", _ZERO)
    algorithm = reader.enum("rateLimitAlgorithm", ALGORITHMS, "FIXED_WINDOW")
    if algorithm == "ROLLING_WINDOW":
        if bucket < _MS:
            reader.error("bucketDuration", "must be at least 1ms for ROLLING_WINDOW")
        elif valid >= _MS and bucket >= valid:
            reader.error(
                "bucketDuration",
                f"must be shorter than validDuration ({format_duration(valid)}) for ROLLING_WINDOW",
            )
        elif valid / bucket > MAX_BUCKETS:
            reader.error(
                "bucketDuration",
                f"must be at least validDuration/{MAX_BUCKETS} "
                f"({format_duration(valid / MAX_BUCKETS)}) so a window holds at most "
                f"{MAX_BUCKETS} buckets",
            )
    overrides = tuple(_parse_override(o) for o in reader.objects("overrides"))
    reader.finish()
    return QuotaConfig(name, max_amount, valid, bucket, algorithm, overrides)


def _parse_override(reader: ParamReader) -> Override:
    dimensions = reader.string_map("dimensions")
    if not dimensions:
        reader.error("dimensions", "must name at least one dimension")
    max_amount = reader.integer("maxAmount")
    if max_amount <= 0:
        reader.error("maxAmount", "must be > 0")
    reader.finish()
    return Override(dimensions, max_amount)
