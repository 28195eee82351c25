"""memquota's params, as Istio's YAML writes them, and their validation.

quotas:
- name: requestcount.quota.istio-system
  maxAmount: 5000
  validDuration: 1s
  overrides:
  - dimensions: {destination: ratings, source: reviews}
    maxAmount: 1
    validDuration: 1s
minDeduplicationDuration: 1s
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from mixer.adapter import quotas
from mixer.adapter.api import ConfigError
from mixer.adapter.params import ParamReader

DEFAULT_MIN_DEDUPLICATION = datetime.timedelta(seconds=1)
_ZERO = datetime.timedelta(0)


@dataclasses.dataclass(frozen=True)
class Limit:
    """What one request is measured against: the quota's own limit or an override's."""

    max_amount: int
    # 0: an allocation quota, never released by time; > 0: a rate limit over this window.
    valid_duration: datetime.timedelta


@dataclasses.dataclass(frozen=True)
class Override:
    dimensions: Mapping[str, str]
    max_amount: int
    # None: the quota's validDuration (an override that only changes the amount).
    valid_duration: datetime.timedelta | None = None


@dataclasses.dataclass(frozen=True)
class QuotaConfig:
    name: str
    max_amount: int
    valid_duration: datetime.timedelta = _ZERO
    overrides: tuple[Override, ...] = ()

    def limit_for(self, dimensions: Mapping[str, Any]) -> Limit:
        """The first matching override's limit, else the quota's own."""
        override = quotas.first_override(self.overrides, dimensions)
        if override is None:
            return Limit(self.max_amount, self.valid_duration)
        duration = override.valid_duration
        return Limit(override.max_amount, self.valid_duration if duration is None else duration)


@dataclasses.dataclass(frozen=True)
class Params:
    quotas: tuple[QuotaConfig, ...] = ()
    min_deduplication_duration: datetime.timedelta = DEFAULT_MIN_DEDUPLICATION


def parse_params(
    raw: Mapping[str, Any], instances: Sequence[str] = ()
) -> tuple[Params, list[ConfigError]]:
    """Params from a handler's params dict, with every problem found (field paths included).

    `instances` are the quota instance names the rules send this handler; each must have a
    quota configured for it.
    """
    reader = ParamReader(raw)
    configs = [_parse_quota(q) for q in reader.objects("quotas")]
    params = Params(
        quotas=tuple(configs),
        min_deduplication_duration=reader.duration(
            "minDeduplicationDuration", DEFAULT_MIN_DEDUPLICATION
        ),
    )
    reader.finish()
    errors = reader.errors
    if params.min_deduplication_duration <= _ZERO:
        errors.append(ConfigError("minDeduplicationDuration", "must be > 0"))
    seen: set[str] = set()
    for index, quota in enumerate(params.quotas):
        if quota.name and quota.name in seen:
            errors.append(ConfigError(f"quotas[{index}].name", f"duplicate quota {quota.name!r}"))
        seen.add(quota.name)
    names = [q.name for q in params.quotas]
    for name in quotas.unresolved(names, instances):
        errors.append(ConfigError("quotas", f"did not find limit defined for quota {name}"))
    return params, errors


def _parse_quota(reader: ParamReader) -> QuotaConfig:
    name = reader.string("name")
    if not name:
        reader.error("name", "must not be empty")
    max_amount = reader.integer("maxAmount")
    if max_amount <= 0:
        reader.error("maxAmount", "must be > 0")
    valid_duration = reader.duration("validDuration", _ZERO)
    if valid_duration < _ZERO:
        reader.error("validDuration", "must be >= 0 (0 makes an allocation quota)")
    overrides = tuple(_parse_override(o) for o in reader.objects("overrides"))
    reader.finish()
    return QuotaConfig(name, max_amount, valid_duration, overrides)


def _parse_override(reader: ParamReader) -> Override:
    dimensions = reader.string_map("dimensions")
    if not dimensions:
        reader.error("dimensions", "must name at least one dimension")
    max_amount = reader.integer("maxAmount")
    if max_amount <= 0:
        reader.error("maxAmount", "must be > 0")
    valid_duration = reader.optional_duration("validDuration")
    if valid_duration is not None and valid_duration < _ZERO:
        reader.error("validDuration", "must be >= 0")
    reader.finish()
    return Override(dimensions, max_amount, valid_duration)
