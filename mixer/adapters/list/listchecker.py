"""The listchecker adapter: is a value on a list? (whitelists and blacklists)

Bookinfo's whitelist sample lets only versions v1 and v2 call ratings: a `listchecker`
handler with `overrides: [v1, v2]` and a `listentry` instance whose value is
`source.labels["version"]`. A whitelist denies values not on the list
(`v3 is not whitelisted`), a blacklist the values on it (`v3 is blacklisted`), both with
PERMISSION_DENIED.

With a `providerUrl` the list (plus `overrides`) is fetched at build time and then every
`refreshInterval` by a task the handler owns and `close()` stops. When the provider is
down the last list is kept, until `ttl` after the last successful fetch; after that, or
before any fetch succeeded, checks answer UNAVAILABLE rather than guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp

from mixer.adapter import api
from mixer.adapter.params import format_duration
from mixer.adapters.list.config import DEFAULT_PARAMS, Params, parse_params
from mixer.adapters.list.lists import EntryError, EntryList, build_list, parse_lines
from mixer.adapters.list.provider import FetchError, fetch_list
from mixer.template.templates import ListEntry

Clock = Callable[[], float]

# A fetch may take at most this long, and never longer than the refresh interval.
_MAX_FETCH_SECONDS = 30.0


class Handler:
    """Answers list checks from the current list; owns the refresh task and HTTP session."""

    def __init__(self, params: Params, env: api.Env, *, clock: Clock = time.monotonic) -> None:
        self._params = params
        self._log = env.logger
        self._clock = clock
        self._list: EntryList | None = None
        self._fetched_at = 0.0
        self._digest = b""
        self._last_error = "the list has not been fetched yet"
        self._session: aiohttp.ClientSession | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Loads the list now, so the handler is ready for traffic, then keeps it fresh."""
        if not self._params.provider_url:
            self._list = build_list(self._params.entry_type, self._params.overrides)
            return
        self._session = aiohttp.ClientSession()
        await self.refresh()
        # The runtime gives handlers no task group: this handler owns its one task, and
        # close() cancels and awaits it.
        self._refresher = asyncio.create_task(
            self._refresh_loop(), name=f"listchecker refresh {self._params.provider_url}"
        )

    async def handle_list_entry(self, instance: ListEntry) -> api.CheckResult:
        entries, why = self._current()
        if entries is None:
            return api.CheckResult(
                status_code=api.UNAVAILABLE,
                message=f"listchecker: the list from {self._params.provider_url} is not "
                f"available: {why}",
                valid_duration=datetime.timedelta(0),
                valid_use_count=0,
            )
        value = instance.value
        try:
            found = entries.contains(value)
        except ValueError as error:
            return self._result(api.INVALID_ARGUMENT, str(error))
        if self._params.blacklist:
            return (
                self._result(api.PERMISSION_DENIED, f"{value} is blacklisted")
                if found
                else self._result()
            )
        return (
            self._result()
            if found
            else self._result(api.PERMISSION_DENIED, f"{value} is not whitelisted")
        )

    async def refresh(self) -> bool:
        """Fetches the list once; keeps the old one (and says why) when that fails."""
        assert self._session is not None, "refresh() needs a providerUrl and start()"
        url = self._params.provider_url
        timeout = min(self._params.refresh_interval.total_seconds(), _MAX_FETCH_SECONDS)
        try:
            body = await fetch_list(self._session, url, timeout=timeout)
            digest = hashlib.sha256(body).digest()
            if self._list is None or digest != self._digest:
                # Parsing a long list (regexes, CIDRs) is CPU work: keep it off the loop.
                entries = await asyncio.to_thread(self._parse, body)
                self._list, self._digest = entries, digest
                self._log.info("listchecker: installed %d entries from %s", len(entries), url)
        except (FetchError, EntryError, UnicodeDecodeError) as error:
            self._last_error = str(error)
            self._log.warning("listchecker: keeping the previous list: %s", error)
            return False
        self._fetched_at = self._clock()
        self._last_error = ""
        return True

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _parse(self, body: bytes) -> EntryList:
        try:
            fetched = parse_lines(body.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise EntryError(f"list from {self._params.provider_url} is not UTF-8 text") from error
        try:
            return build_list(self._params.entry_type, [*self._params.overrides, *fetched])
        except EntryError as error:
            raise EntryError(f"list from {self._params.provider_url}: {error}") from None

    def _current(self) -> tuple[EntryList | None, str]:
        """The list to check against, or None and why there is none."""
        if self._list is None or not self._params.provider_url:
            return self._list, self._last_error
        if self._clock() - self._fetched_at > self._params.ttl.total_seconds():
            why = f"not refreshed within its ttl of {format_duration(self._params.ttl)}"
            return None, f"{why} (last error: {self._last_error})" if self._last_error else why
        return self._list, ""

    async def _refresh_loop(self) -> None:
        interval = self._params.refresh_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:  # a refresher that dies would silently freeze the list
                self._log.exception("listchecker: refresh failed")

    def _result(self, code: int = api.OK, message: str = "") -> api.CheckResult:
        return api.CheckResult(
            status_code=code,
            message=message,
            valid_duration=self._params.caching_interval,
            valid_use_count=self._params.caching_use_count,
        )


class Builder:
    def __init__(
        self,
        params: Mapping[str, Any],
        instances: Mapping[str, Sequence[str]] | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._params, self._errors = parse_params(params)

    def validate(self) -> list[api.ConfigError]:
        return list(self._errors)

    async def build(self, env: api.Env) -> Handler:
        if self._errors:
            raise ValueError("listchecker: invalid params: " + "; ".join(map(str, self._errors)))
        handler = Handler(self._params, env, clock=self._clock)
        started = False
        try:
            await handler.start()
            started = True
        finally:
            if not started:  # cancelled or failed mid-start: leave no session behind
                await handler.close()
        return handler


INFO = api.AdapterInfo(
    name="listchecker",
    description="Checks whether an entry is present in a list",
    templates=("listentry",),
    new_builder=Builder,
    default_params=DEFAULT_PARAMS,
)
