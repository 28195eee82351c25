"""memquota: the shared quota semantics, Bookinfo's rate limit sample, windows on fake time."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any

import yaml

from mixer.adapter import api, testing
from mixer.adapters.memquota import memquota
from mixer.template.templates import Quota

# spec of `mixer-rule-ratings-ratelimit`'s memquota handler (samples/bookinfo, Istio 0.8).
BOOKINFO_RATELIMIT = yaml.safe_load(
    """
quotas:
- name: requestcount.quota.istio-system
  maxAmount: 5000
  validDuration: 1s
  overrides:
  - dimensions:
      destination: ratings
      source: reviews
    maxAmount: 1
    validDuration: 1s
  - dimensions:
      destination: ratings
    maxAmount: 100
    validDuration: 1s
"""
)
INSTANCES = {"quota": ["requestcount.istio-system"]}


def request(amount: int = 1, *, best_effort: bool = False, dedup: str = "") -> api.QuotaArgs:
    return api.QuotaArgs(deduplication_id=dedup, amount=amount, best_effort=best_effort)


def instance(name: str = "requestcount.istio-system", **dimensions: Any) -> Quota:
    return Quota(name=name, dimensions=dimensions)


async def open_memquota(
    params: Mapping[str, Any], clock: testing.FakeClock | None = None
) -> memquota.Handler:
    merged = testing.merged_params(memquota.INFO, params)
    return await testing.build(
        memquota.Builder(merged, INSTANCES, clock=clock or testing.FakeClock())
    )


@contextlib.asynccontextmanager
async def memquota_handler(params: Mapping[str, Any]) -> AsyncIterator[memquota.Handler]:
    handler = await open_memquota(params)
    try:
        yield handler
    finally:
        await handler.close()


@testing.run_async
async def test_quota_conformance():
    await testing.check_quota_conformance(memquota_handler)


@testing.run_async
async def test_info_and_templates():
    async with testing.open_handler(memquota.INFO, BOOKINFO_RATELIMIT, INSTANCES) as handler:
        assert memquota.INFO.name == "memquota"
        assert memquota.INFO.templates == ("quota",)
        result = await handler.handle_quota(instance(source="productpage"), request())
        assert result.granted_amount == 1


@testing.run_async
async def test_bookinfo_sample_limits_reviews_to_ratings_at_one_per_second():
    clock = testing.FakeClock()
    handler = await open_memquota(BOOKINFO_RATELIMIT, clock)
    reviews = instance(source="reviews", destination="ratings", destinationVersion="v1")
    first = await handler.handle_quota(reviews, request())
    assert first.granted_amount == 1
    assert first.valid_duration == datetime.timedelta(seconds=1)
    second = await handler.handle_quota(reviews, request())
    assert (second.granted_amount, second.status_code) == (0, api.RESOURCE_EXHAUSTED)
    assert "requestcount.quota.istio-system" in second.message
    # Other callers of ratings get the 100/s override, everyone else 5000/s.
    other = await handler.handle_quota(
        instance(source="productpage", destination="ratings"), request(100)
    )
    assert other.granted_amount == 100
    bulk = await handler.handle_quota(instance(source="x", destination="details"), request(5000))
    assert bulk.granted_amount == 5000
    # The window rolls on: a second (and a bucket) later reviews may call ratings again.
    clock.advance(1.1)
    assert (await handler.handle_quota(reviews, request())).granted_amount == 1
    await handler.close()


@testing.run_async
async def test_rate_limit_window_rolls():
    clock = testing.FakeClock()
    params = {"quotas": [{"name": "requestcount", "maxAmount": 10, "validDuration": "10s"}]}
    handler = await open_memquota(params, clock)
    q = instance(source="a")
    assert (await handler.handle_quota(q, request(6))).granted_amount == 6
    clock.advance(5)
    assert (await handler.handle_quota(q, request(4))).granted_amount == 4
    assert (await handler.handle_quota(q, request(1))).granted_amount == 0
    clock.advance(6)  # the first 6 (and their 1 s bucket) left the window; the 4 have not
    assert (await handler.handle_quota(q, request(7, best_effort=True))).granted_amount == 6
    clock.advance(11)  # a window and a bucket after the last grant, all is back
    assert (await handler.handle_quota(q, request(10))).granted_amount == 10
    await handler.close()


@testing.run_async
async def test_allocation_quota_is_never_released_by_time():
    clock = testing.FakeClock()
    params = {"quotas": [{"name": "requestcount", "maxAmount": 3}]}
    handler = await open_memquota(params, clock)
    q = instance(source="a")
    granted = await handler.handle_quota(q, request(3))
    assert granted.granted_amount == 3
    assert granted.valid_duration == datetime.timedelta(0)
    clock.advance(3600 * 24)
    assert (await handler.handle_quota(q, request(1))).granted_amount == 0
    await handler.close()


@testing.run_async
async def test_deduplication_lasts_min_deduplication_duration():
    clock = testing.FakeClock()
    params = {
        "quotas": [{"name": "requestcount", "maxAmount": 1}],
        "minDeduplicationDuration": "2s",
    }
    handler = await open_memquota(params, clock)
    q = instance(source="a")
    assert (await handler.handle_quota(q, request(dedup="r1"))).granted_amount == 1
    clock.advance(1.9)
    assert (await handler.handle_quota(q, request(dedup="r1"))).granted_amount == 1
    # Once forgotten, the same id is a new request, and the quota is used up.
    clock.advance(0.2)
    assert (await handler.handle_quota(q, request(dedup="r1"))).granted_amount == 0
    # Requests without an id are never deduplicated.
    assert (await handler.handle_quota(q, request())).granted_amount == 0
    await handler.close()


@testing.run_async
async def test_override_without_valid_duration_takes_the_quotas():
    clock = testing.FakeClock()
    params = {
        "quotas": [
            {
                "name": "requestcount",
                "maxAmount": 10,
                "validDuration": "1s",
                "overrides": [{"dimensions": {"source": "reviews"}, "maxAmount": 1}],
            }
        ]
    }
    handler = await open_memquota(params, clock)
    reviews = instance(source="reviews")
    result = await handler.handle_quota(reviews, request())
    assert (result.granted_amount, result.valid_duration) == (1, datetime.timedelta(seconds=1))
    clock.advance(1.2)
    assert (await handler.handle_quota(reviews, request())).granted_amount == 1
    await handler.close()


@testing.run_async
async def test_dimension_values_compare_as_text():
    params = {
        "quotas": [
            {
                "name": "requestcount",
                "maxAmount": 10,
                "validDuration": "1s",
                # YAML reads 200 and true as a number and a boolean; users mean the text.
                "overrides": [{"dimensions": {"code": 200, "internal": True}, "maxAmount": 1}],
            }
        ]
    }
    handler = await open_memquota(params)
    q = instance(code=200, internal=True)
    assert (await handler.handle_quota(q, request(2))).granted_amount == 0
    assert (await handler.handle_quota(q, request(1))).granted_amount == 1
    await handler.close()


@testing.run_async
async def test_instance_names_resolve_across_istio_spellings():
    for configured in (
        "requestcount",
        "requestcount.quota.istio-system",
        "requestcount.instance.istio-system",
        "requestcount.istio-system",
        "requestcount.quota",
    ):
        params = {"quotas": [{"name": configured, "maxAmount": 1, "validDuration": "1s"}]}
        handler = await open_memquota(params)
        assert (await handler.handle_quota(instance(), request())).granted_amount == 1, configured
        assert (await handler.handle_quota(instance(), request())).granted_amount == 0, configured
        await handler.close()


@testing.run_async
async def test_unknown_instance_is_an_error_not_a_grant():
    handler = await open_memquota(BOOKINFO_RATELIMIT)
    result = await handler.handle_quota(instance("other.default"), request())
    assert (result.granted_amount, result.status_code) == (0, api.INVALID_ARGUMENT)
    await handler.close()


def test_config_errors_have_field_paths():
    errors = testing.config_errors(
        memquota.INFO,
        {
            "quotas": [
                {"name": "a", "maxAmount": 0, "validDuration": "-1s"},
                {
                    "name": "a",
                    "maxAmount": 5,
                    "overrides": [{"dimensions": {}, "maxAmount": -1, "validDuration": "x"}],
                },
                {"maxAmount": 1, "max_amount": 2},
            ],
            "minDeduplicationDuration": "0s",
        },
        {"quota": ["requestcount.istio-system"]},
    )
    assert errors == [
        "quotas[0].maxAmount: must be > 0",
        "quotas[0].validDuration: must be >= 0 (0 makes an allocation quota)",
        "quotas[1].overrides[0].dimensions: must name at least one dimension",
        "quotas[1].overrides[0].maxAmount: must be > 0",
        "quotas[1].overrides[0].validDuration: expected a duration such as 10s or 500ms, got 'x'",
        "quotas[2].name: must not be empty",
        "quotas[2].max_amount: unknown field (did you mean maxAmount?)",
        "minDeduplicationDuration: must be > 0",
        "quotas[1].name: duplicate quota 'a'",
        "quotas: did not find limit defined for quota requestcount.istio-system",
    ]


def test_bookinfo_sample_is_valid():
    assert testing.config_errors(memquota.INFO, BOOKINFO_RATELIMIT, INSTANCES) == []


@testing.run_async
async def test_idle_windows_are_forgotten():
    clock = testing.FakeClock()
    params = {"quotas": [{"name": "requestcount", "maxAmount": 5, "validDuration": "1s"}]}
    handler = await open_memquota(params, clock)
    for n in range(100):
        await handler.handle_quota(instance(source=f"caller-{n}"), request())
    assert len(handler._windows) == 100
    clock.advance(60)  # past the sweep interval; every window is idle by now
    await handler.handle_quota(instance(source="caller-0"), request())
    assert len(handler._windows) == 1
    await handler.close()
