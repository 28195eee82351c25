"""listchecker's params, as Istio's YAML writes them, and their validation.

providerUrl: http://lists.example/allowed.txt   # optional: one entry per line
refreshInterval: 60s
ttl: 300s
cachingInterval: 300s
cachingUseCount: 10000
overrides: [v1, v2]                             # always in the list
entryType: STRINGS        # | CASE_INSENSITIVE_STRINGS | IP_ADDRESSES | REGEX
blacklist: false
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
from collections.abc import Mapping
from typing import Any

from mixer.adapter.api import ConfigError
from mixer.adapter.params import ParamReader, format_duration
from mixer.adapters.list.lists import ENTRY_TYPES, EntryError, check_entry

_ZERO = datetime.timedelta(0)
_MIN_REFRESH = datetime.timedelta(seconds=1)


@dataclasses.dataclass(frozen=True)
class Params:
    provider_url: str = ""
    refresh_interval: datetime.timedelta = datetime.timedelta(seconds=60)
    ttl: datetime.timedelta = datetime.timedelta(seconds=300)
    caching_interval: datetime.timedelta = datetime.timedelta(seconds=300)
    caching_use_count: int = 10000
    overrides: tuple[str, ...] = ()
    entry_type: str = "STRINGS"
    blacklist: bool = False


DEFAULTS = Params()

DEFAULT_PARAMS: Mapping[str, Any] = {
    "refreshInterval": "60s",
    "ttl": "300s",
    "cachingInterval": "300s",
    "cachingUseCount": DEFAULTS.caching_use_count,
    "entryType": DEFAULTS.entry_type,
    "blacklist": False,
}


def parse_params(raw: Mapping[str, Any]) -> tuple[Params, list[ConfigError]]:
    reader = ParamReader(raw)
    params = Params(
        provider_url=reader.string("providerUrl"),
        refresh_interval=reader.duration("refreshInterval", DEFAULTS.refresh_interval),
        ttl=reader.duration("ttl", DEFAULTS.ttl),
        caching_interval=reader.duration("cachingInterval", DEFAULTS.caching_interval),
        caching_use_count=reader.integer("cachingUseCount", DEFAULTS.caching_use_count),
        overrides=tuple(reader.strings("overrides")),
        entry_type=reader.enum("entryType", ENTRY_TYPES, DEFAULTS.entry_type),
        blacklist=reader.boolean("blacklist"),
    )
    reader.finish()
    errors = reader.errors
    if params.provider_url:
        url = urllib.parse.urlsplit(params.provider_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            errors.append(
                ConfigError("providerUrl", "must be an http:// or https:// URL with a host")
            )
        if params.refresh_interval < _MIN_REFRESH:
            errors.append(
                ConfigError(
                    "refreshInterval",
                    f"must be at least 1s, it is {format_duration(params.refresh_interval)}",
                )
            )
        if params.ttl <= params.refresh_interval:
            errors.append(
                ConfigError(
                    "ttl",
                    f"must be > refreshInterval, ttl is {format_duration(params.ttl)} and "
                    f"refreshInterval is {format_duration(params.refresh_interval)}",
                )
            )
    if params.caching_interval < _ZERO:
        errors.append(ConfigError("cachingInterval", "must be >= 0"))
    if params.caching_use_count < 0:
        errors.append(ConfigError("cachingUseCount", "must be >= 0"))
    for index, entry in enumerate(params.overrides):
        try:
            check_entry(params.entry_type, entry)
        except EntryError as error:
            errors.append(ConfigError(f"overrides[{index}]", str(error)))
    return params, errors
