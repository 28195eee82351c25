"""listchecker: Bookinfo's whitelist, each entry type, and a provider that comes and goes."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping
from typing import Any

import yaml

from mixer.adapter import api, testing
from mixer.adapters.list import listchecker
from mixer.adapters.list.testing import ListProvider
from mixer.template.templates import ListEntry

# spec of the `whitelist` handler in Istio's denial-and-list task (Bookinfo).
BOOKINFO_WHITELIST = yaml.safe_load(
    """
overrides: ["v1", "v2"]
blacklist: false
"""
)


def entry(value: Any) -> ListEntry:
    return ListEntry(name="appversion.default", value=value)


async def check(params: Mapping[str, Any], *values: Any) -> list[api.CheckResult]:
    async with testing.open_handler(listchecker.INFO, params) as handler:
        return [await handler.handle_list_entry(entry(v)) for v in values]


async def open_with_clock(
    params: Mapping[str, Any], clock: testing.FakeClock
) -> listchecker.Handler:
    merged = testing.merged_params(listchecker.INFO, params)
    return await testing.build(listchecker.Builder(merged, {}, clock=clock))


@testing.run_async
async def test_bookinfo_whitelist_lets_v1_and_v2_call_ratings():
    v1, v2, v3 = await check(BOOKINFO_WHITELIST, "v1", "v2", "v3")
    assert v1.ok
    assert v2.ok
    assert (v3.status_code, v3.message) == (api.PERMISSION_DENIED, "v3 is not whitelisted")
    # Istio's default caching: 300 s or 10000 uses.
    assert v1.valid_duration == v3.valid_duration == datetime.timedelta(seconds=300)
    assert v1.valid_use_count == 10000


@testing.run_async
async def test_blacklist_denies_what_is_listed():
    v1, v3 = await check({"overrides": ["v1"], "blacklist": True}, "v1", "v3")
    assert (v1.status_code, v1.message) == (api.PERMISSION_DENIED, "v1 is blacklisted")
    assert v3.ok


@testing.run_async
async def test_caching_params_are_returned():
    params = {"overrides": ["a"], "cachingInterval": "2s", "cachingUseCount": 7}
    (result,) = await check(params, "a")
    assert (result.valid_duration, result.valid_use_count) == (datetime.timedelta(seconds=2), 7)


@testing.run_async
async def test_strings_are_exact_unless_case_insensitive():
    params = {"overrides": ["Reviews"]}
    exact, folded = await check(params, "Reviews", "reviews")
    assert exact.ok
    assert not folded.ok
    params["entryType"] = "CASE_INSENSITIVE_STRINGS"
    assert all(r.ok for r in await check(params, "REVIEWS", "reviews"))


@testing.run_async
async def test_ip_addresses_match_ranges():
    params = {
        "overrides": ["10.57.0.0/16", "192.168.1.7", "2001:db8::/32"],
        "entryType": "IP_ADDRESSES",
    }
    results = await check(
        params,
        "10.57.3.4",
        "10.58.0.1",
        "192.168.1.7",
        "192.168.1.8",
        "2001:db8::1",
        ipaddress.ip_address("10.57.0.9").packed,  # IP_ADDRESS attributes arrive as bytes
        "not-an-ip",
    )
    assert [r.ok for r in results[:6]] == [True, False, True, False, True, True]
    assert results[6].status_code == api.INVALID_ARGUMENT
    assert "not a valid IP address" in results[6].message


@testing.run_async
async def test_regex_entries_match_anywhere_in_the_value():
    params = {"overrides": ["^v[12]$", "canary"], "entryType": "REGEX"}
    results = await check(params, "v1", "v2", "v3", "my-canary-build")
    assert [r.ok for r in results] == [True, True, False, True]


@testing.run_async
async def test_provider_list_is_fetched_with_overrides_and_refreshed():
    async with ListProvider("v1\n\n  v2  \n") as provider:
        params = {
            "providerUrl": provider.url,
            "refreshInterval": "1s",
            "ttl": "30s",
            "overrides": ["v9"],
        }
        async with testing.open_handler(listchecker.INFO, params) as handler:
            # Fetched before build() returned: ready for traffic at once.
            for value in ("v1", "v2", "v9"):
                assert (await handler.handle_list_entry(entry(value))).ok, value
            assert not (await handler.handle_list_entry(entry("v3"))).ok

            provider.body = "v3\n"

            async def v3_allowed() -> bool:
                return (await handler.handle_list_entry(entry("v3"))).ok

            await testing.eventually(v3_allowed, timeout=15)
            assert not (await handler.handle_list_entry(entry("v1"))).ok
            assert (await handler.handle_list_entry(entry("v9"))).ok


@testing.run_async
async def test_provider_down_keeps_the_list_until_ttl_then_unavailable():
    clock = testing.FakeClock()
    async with ListProvider("v1\n") as provider:
        # A long refresh interval: this test refreshes by hand, on fake time.
        params = {"providerUrl": provider.url, "refreshInterval": "60s", "ttl": "120s"}
        handler = await open_with_clock(params, clock)
        try:
            provider.status = 503
            assert not await handler.refresh()
            clock.advance(100)
            await provider.stop()
            assert not await handler.refresh()
            assert (await handler.handle_list_entry(entry("v1"))).ok  # still within ttl

            clock.advance(30)  # 130 s since the last good fetch
            down = await handler.handle_list_entry(entry("v1"))
            assert down.status_code == api.UNAVAILABLE
            assert "not refreshed within its ttl of 120s" in down.message
            assert "could not fetch list" in down.message
            assert down.valid_duration == datetime.timedelta(0)

            await provider.start()
            provider.status = 200
            assert await handler.refresh()
            assert (await handler.handle_list_entry(entry("v1"))).ok
        finally:
            await handler.close()


@testing.run_async
async def test_unreachable_provider_at_build_answers_unavailable_until_it_answers():
    provider = ListProvider("v1\n")
    await provider.start()
    await provider.stop()  # a port where nothing listens
    params = {"providerUrl": provider.url, "refreshInterval": "60s", "ttl": "120s"}
    async with testing.open_handler(listchecker.INFO, params) as handler:
        result = await handler.handle_list_entry(entry("v1"))
        assert result.status_code == api.UNAVAILABLE
        assert provider.url in result.message
        await provider.start()
        try:
            assert await handler.refresh()
            assert (await handler.handle_list_entry(entry("v1"))).ok
        finally:
            await provider.stop()


@testing.run_async
async def test_a_malformed_list_keeps_the_previous_one():
    async with ListProvider("10.0.0.0/8\n") as provider:
        params = {
            "providerUrl": provider.url,
            "refreshInterval": "60s",
            "ttl": "120s",
            "entryType": "IP_ADDRESSES",
        }
        async with testing.open_handler(listchecker.INFO, params) as handler:
            provider.body = "10.0.0.0/8\nnot a range\n"
            assert not await handler.refresh()
            assert (await handler.handle_list_entry(entry("10.1.2.3"))).ok


def test_config_errors_have_field_paths():
    errors = testing.config_errors(
        listchecker.INFO,
        {
            "providerUrl": "ftp://",
            "refreshInterval": "500ms",
            "ttl": "400ms",
            "cachingInterval": "-1s",
            "cachingUseCount": -5,
            "overrides": ["10.0.0.0/8", "10.0.0.0/33", 7],
            "entryType": "IP_ADDRESSES",
            "blacklist": "yes",
        },
    )
    assert errors == [
        "overrides[2]: expected a string, got an integer",
        "blacklist: expected true or false, got a string",
        "providerUrl: must be an http:// or https:// URL with a host",
        "refreshInterval: must be at least 1s, it is 500ms",
        "ttl: must be > refreshInterval, ttl is 400ms and refreshInterval is 500ms",
        "cachingInterval: must be >= 0",
        "cachingUseCount: must be >= 0",
        "overrides[1]: '10.0.0.0/33' is not an IP address or CIDR range",
    ]


def test_bad_regex_and_entry_type_are_reported():
    errors = testing.config_errors(listchecker.INFO, {"overrides": ["(a"], "entryType": "REGEX"})
    assert len(errors) == 1
    assert errors[0].startswith("overrides[0]: '(a' is not a valid RE2 expression")
    errors = testing.config_errors(listchecker.INFO, {"entryType": "WORDS"})
    assert errors == [
        "entryType: expected one of STRINGS, CASE_INSENSITIVE_STRINGS, IP_ADDRESSES, REGEX, got 'WORDS'"
    ]
