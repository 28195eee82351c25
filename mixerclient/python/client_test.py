"""MixerClient through the binding: the check cache's semantics (absence keys, map sub-keys,
use counts, expiry, REGEX), quota, the fail policy, and report batching, on fake time with a
scripted Mixer."""

from __future__ import annotations

import asyncio
import collections
import datetime
import ipaddress

import pytest

from api.mixer.v1 import check_pb2, report_pb2
from mixer.attribute.compressed import decode_report
from mixerclient.python.client import ClientOptions, FakeTime, MixerClient
from pkg.testing.aio import run_async

PERMISSION_DENIED = 7
UNAVAILABLE = 14
RA = check_pb2.ReferencedAttributes


class ScriptedMixer:
    """A transport whose calls wait in queues until the test answers them."""

    def __init__(self) -> None:
        self.checks: collections.deque = collections.deque()
        self.reports: collections.deque = collections.deque()

    def check(self, request, completion) -> None:
        self.checks.append((check_pb2.CheckRequest.FromString(request), completion))

    def report(self, request, completion) -> None:
        self.reports.append((report_pb2.ReportRequest.FromString(request), completion))

    def answer(self, response: check_pb2.CheckResponse) -> check_pb2.CheckRequest:
        request, completion = self.checks.popleft()
        completion(0, "", response.SerializeToString())
        return request

    def fail(self, code: int = UNAVAILABLE, message: str = "connection refused") -> None:
        _, completion = self.checks.popleft()
        completion(code, message, b"")


def answer(code: int = 0, *matches: tuple, words=(), uses: int = 200, seconds: int | None = 10):
    """A CheckResponse whose precondition depended on `matches`: (name index, condition, map key index)."""
    response = check_pb2.CheckResponse()
    p = response.precondition
    p.status.code = code
    p.status.message = "Not allowed" if code else ""
    p.valid_use_count = uses
    if seconds is not None:
        p.valid_duration.seconds = seconds
    p.referenced_attributes.words.extend(words)
    for name, condition, *key in matches:
        m = p.referenced_attributes.attribute_matches.add(name=name, condition=condition)
        if key:
            m.map_key = key[0]
        if condition == RA.REGEX:
            m.regex = "^v.*"
    return response


# Global word indexes: source.uid 3, source.labels 5, request.path 17, destination.labels 156.
def reviews(version: str, **extra) -> dict:
    return {
        "source.labels": {"app": "reviews", "version": version},
        "destination.labels": {"app": "ratings"},
        "request.path": f"/ratings/{version}",
        **extra,
    }


def make(options: ClientOptions | None = None):
    # Refresh ahead off: these tests answer each Check as it comes, in step with the cache's
    # semantics (test_a_busy_answer_is_refreshed_ahead covers it).
    mixer = ScriptedMixer()
    time = FakeTime()
    options = options or ClientOptions(check_refresh_fraction=0)
    return MixerClient(mixer, options=options, time=time), mixer, time


async def checked(client, mixer, attributes, response=None, quotas=None):
    """Runs one check; if it goes to Mixer, answers it with `response`."""
    task = asyncio.ensure_future(client.check(attributes, quotas))
    await asyncio.sleep(0)
    if not task.done():
        assert mixer.checks, "the check neither hit the cache nor reached Mixer"
        if response is None:
            mixer.fail()
        else:
            mixer.answer(response)
    return await task


@run_async
async def test_map_sub_keys_the_answer_read_are_the_cache_key():
    client, mixer, _ = make()
    deny = answer(
        PERMISSION_DENIED, (5, RA.EXACT, -1), (156, RA.EXACT, -2), words=["version", "app"]
    )
    first = await checked(client, mixer, reviews("v3"), deny)
    assert (first.code, first.check_cache_hit, first.http_status) == (PERMISSION_DENIED, False, 403)
    # Other labels, another path: the answer did not read them, so it still applies.
    other = reviews("v3", **{"request.path": "/other"})
    other["source.labels"]["pod-template-hash"] = "x1"
    second = await checked(client, mixer, other)
    assert (second.code, second.check_cache_hit) == (PERMISSION_DENIED, True)
    # A different version is a different key: Mixer is asked.
    third = await checked(
        client, mixer, reviews("v2"), answer(0, (5, RA.EXACT, -1), words=["version"])
    )
    assert third.ok
    assert not third.check_cache_hit
    assert client.stats()["total_remote_check_calls"] == 2


@run_async
async def test_absence_keys_must_stay_absent():
    client, mixer, _ = make()
    ok = answer(0, (3, RA.ABSENCE), (5, RA.ABSENCE, -1), words=["canary"])
    assert (await checked(client, mixer, reviews("v1"), ok)).ok
    assert (await checked(client, mixer, reviews("v9"))).check_cache_hit
    with_uid = reviews("v1", **{"source.uid": "kubernetes://reviews-v1.default"})
    assert not (await checked(client, mixer, with_uid, ok)).check_cache_hit
    canary = reviews("v1")
    canary["source.labels"]["canary"] = "yes"
    assert not (await checked(client, mixer, canary, ok)).check_cache_hit


@run_async
async def test_use_counts_run_out():
    client, mixer, _ = make()
    await checked(client, mixer, reviews("v1"), answer(0, (17, RA.EXACT), uses=2))
    hits = [
        (await checked(client, mixer, reviews("v1"), answer(0))).check_cache_hit for _ in range(3)
    ]
    assert hits == [True, True, False]


@run_async
async def test_a_busy_answer_is_refreshed_ahead_while_it_keeps_serving():
    client, mixer, _ = make(ClientOptions())  # refresh ahead at a tenth of the uses left
    await checked(client, mixer, reviews("v1"), answer(0, (17, RA.EXACT), uses=10))
    for _ in range(8):
        assert (await client.check(reviews("v1"))).check_cache_hit
    assert not mixer.checks
    assert (await client.check(reviews("v1"))).check_cache_hit
    assert len(mixer.checks) == 1  # the 9th use, one left, asked again in the background
    assert (await client.check(reviews("v1"))).check_cache_hit  # the 10th: no one waits
    mixer.answer(answer(7, (17, RA.EXACT), uses=10))
    denied = await client.check(reviews("v1"))
    assert denied.check_cache_hit
    assert denied.code == PERMISSION_DENIED
    assert client.stats()["total_remote_check_refreshes"] == 1
    assert client.stats()["total_remote_check_calls"] == 1


@run_async
async def test_entries_expire_after_valid_duration():
    client, mixer, time = make()
    await checked(client, mixer, reviews("v1"), answer(0, (17, RA.EXACT), seconds=5))
    time.advance_ms(4999)
    assert (await checked(client, mixer, reviews("v1"))).check_cache_hit
    time.advance_ms(1)
    assert not (await checked(client, mixer, reviews("v1"), answer(0))).check_cache_hit


@run_async
async def test_regex_answers_are_never_cached():
    client, mixer, _ = make()
    regex = answer(0, (5, RA.REGEX, -1), words=["version"])
    for _ in range(3):
        result = await checked(client, mixer, reviews("v1"), regex)
        assert result.ok
        assert not result.check_cache_hit
    assert client.stats()["check_uncacheable"] == 3


@run_async
async def test_fail_open_and_fail_close():
    client, mixer, _ = make()
    assert (await checked(client, mixer, reviews("v1"), None)).ok
    strict, mixer2, _ = make(ClientOptions(network_fail_open=False))
    result = await checked(strict, mixer2, reviews("v1"), None)
    assert (result.code, result.http_status) == (UNAVAILABLE, 503)
    assert "connection refused" in result.message


@run_async
async def test_a_transport_that_raises_counts_as_mixer_down():
    class Broken:
        def check(self, request, completion):
            raise RuntimeError("no route")

        def report(self, request, completion):
            raise RuntimeError("no route")

    client = MixerClient(Broken(), options=ClientOptions(network_fail_open=False), time=FakeTime())
    result = await client.check(reviews("v1"))
    assert result.code == UNAVAILABLE
    assert "no route" in result.message
    client.report(reviews("v1"))
    client.flush()
    assert client.stats()["report_batches_failed"] == 1


@run_async
async def test_quota_is_asked_with_the_check_and_denied_when_spent():
    client, mixer, _ = make(ClientOptions(quota_num_entries=0))
    quota = {"requestcount.quota.istio-system": 1}
    granted = answer(0, (17, RA.EXACT))
    granted.quotas["requestcount.quota.istio-system"].granted_amount = 1
    assert (await checked(client, mixer, reviews("v1"), granted, quota)).ok
    spent = answer(0, (17, RA.EXACT))
    spent.quotas["requestcount.quota.istio-system"].granted_amount = 0
    result = await checked(client, mixer, reviews("v1"), spent, quota)
    assert (result.code, result.http_status) == (8, 429)
    assert "requestcount.quota.istio-system" in result.message


@run_async
async def test_reports_batch_by_time_and_mixer_reads_every_entry():
    client, mixer, time = make()
    bags = [
        {
            **reviews("v1"),
            "response.code": 200,
            "response.duration": datetime.timedelta(milliseconds=3),
        },
        {
            **reviews("v1"),
            "response.code": 500,
            "response.duration": datetime.timedelta(milliseconds=3),
        },
        {
            **reviews("v2"),
            "response.code": 200,
            "response.duration": datetime.timedelta(milliseconds=4),
            "source.ip": ipaddress.ip_address("127.0.1.5"),
            "request.time": datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
        },
    ]
    for bag in bags:
        client.report(bag)
    assert not mixer.reports
    assert client.tick() == 1000
    time.advance_ms(1000)
    assert client.tick() == -1
    assert len(mixer.reports) == 1
    request, completion = mixer.reports.popleft()
    completion(0, "", b"")
    decoded = [b.as_dict() for b in decode_report(request)]
    assert decoded[0] == bags[0]
    assert decoded[1] == bags[1]
    assert decoded[2]["source.ip"] == ipaddress.ip_address("127.0.1.5").packed
    assert decoded[2]["request.time"] == bags[2]["request.time"]
    assert request.repeated_attributes_semantics == report_pb2.ReportRequest.DELTA_ENCODING
    assert len(request.attributes[1].strings) == 0  # only response.code changed
    assert client.stats()["total_remote_report_calls"] == 1


@run_async
async def test_bad_attribute_values_are_refused_with_their_name():
    client, _, _ = make()
    with pytest.raises(TypeError, match="attribute 'x': unsupported value type object"):
        await client.check({"x": object()})
    with pytest.raises(ValueError, match="attribute 't': a timestamp needs a timezone"):
        client.report({"t": datetime.datetime(2026, 1, 1)})
    with pytest.raises(TypeError, match="string map needs str keys and values"):
        client.report({"m": {"a": 1}})
    with pytest.raises(ValueError, match="does not fit in an int64"):
        client.report({"n": 2**63})
    assert client.stats()["total_report_calls"] == 0
