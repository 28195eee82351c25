"""The binding's grpc.aio transport against the real mixs (config from a real store): Checks
are answered from the cache after the first, and Reports reach Mixer's adapters in batches."""

from __future__ import annotations

import asyncio
import datetime
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mixer.server.testing import POLICY, TELEMETRY, apply, running_mixer
from mixerclient.python.client import ClientOptions
from mixerclient.python.grpc_transport import TransportOptions, connect
from pilot.configstore.testing import StoreThread
from pkg.testing.aio import run_async
from pkg.testing.wait import eventually

PERMISSION_DENIED = 7

REVIEWS_V3_TO_RATINGS = {
    "source.labels": {"app": "reviews", "version": "v3"},
    "destination.labels": {"app": "ratings", "version": "v1"},
    "destination.namespace": "default",
    "request.path": "/ratings/0",
}

REQUEST = {
    "context.protocol": "http",
    "context.reporter.kind": "inbound",
    "source.labels": {"app": "productpage", "version": "v1"},
    "source.workload.name": "productpage-v1",
    "destination.labels": {"app": "reviews", "version": "v2"},
    "destination.workload.name": "reviews-v2",
    "destination.service.host": "reviews.default.svc.cluster.local",
    "destination.service.name": "reviews",
    "destination.service.namespace": "default",
    "request.size": 120,
    "response.size": 900,
    "response.code": 200,
    "response.duration": datetime.timedelta(milliseconds=12),
    "request.time": datetime.datetime(2026, 11, 21, tzinfo=datetime.UTC),
}


@pytest.fixture
def store(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:
        yield store


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@run_async
async def _deny_sample_is_cached(store_url: str) -> None:
    await apply(store_url, POLICY / "mixer-rule-deny-label.yaml")
    async with running_mixer(store_url) as mixer, connect(mixer.grpc_address) as client:
        denied = await client.check(REVIEWS_V3_TO_RATINGS)
        assert (denied.code, denied.check_cache_hit, denied.http_status) == (
            PERMISSION_DENIED,
            False,
            403,
        )
        assert "Not allowed" in denied.message
        # Mixer said which attributes its answer read (the labels); another path is a hit.
        other_path = {**REVIEWS_V3_TO_RATINGS, "request.path": "/ratings/1"}
        for _ in range(5):
            again = await client.check(other_path)
            assert (again.code, again.check_cache_hit) == (PERMISSION_DENIED, True)
        v2 = {**REVIEWS_V3_TO_RATINGS, "source.labels": {"app": "reviews", "version": "v2"}}
        allowed = await client.check(v2)
        assert allowed.ok
        assert not allowed.check_cache_hit
        assert (await client.check(v2)).check_cache_hit
        stats = client.stats()
        assert stats["total_check_calls"] == 8
        assert stats["total_remote_check_calls"] == 2
        assert mixer.dispatcher.counters.checks == 2  # what Mixer itself saw


def test_checks_are_answered_from_the_cache_after_the_first(store):
    _deny_sample_is_cached(store.url)


@run_async
async def _reports_arrive_batched(store_url: str) -> None:
    await apply(store_url, TELEMETRY)
    options = ClientOptions(max_batch_entries=10, max_batch_time_ms=200)
    async with running_mixer(store_url) as mixer:
        async with connect(mixer.grpc_address, options=options) as client:
            for i in range(25):
                client.report({**REQUEST, "response.code": 503 if i % 5 == 0 else 200})
            # Two full batches went at once; the last 5 go when the 200 ms timer fires.
            assert client.stats()["total_remote_report_calls"] == 2
            await eventually(
                lambda: mixer.dispatcher.counters.reports >= 3,
                timeout=10,
                interval=0.05,
                what="the third report batch at Mixer",
            )
            assert client.stats()["total_remote_report_calls"] == 3
            assert client.stats()["report_batches_failed"] == 0
        body = await asyncio.to_thread(_get, f"http://{mixer.metrics_address}/metrics")
        families = {f.name: f for f in text_string_to_metric_families(body)}
        samples = [
            s for s in families["istio_requests"].samples if s.name == "istio_requests_total"
        ]
        by_code = {s.labels["response_code"]: s.value for s in samples}
        assert by_code == {"200": 20.0, "503": 5.0}
        assert samples[0].labels["destination_service"] == "reviews.default.svc.cluster.local"
        assert samples[0].labels["reporter"] == "destination"


def test_reports_reach_mixer_in_batches(store):
    _reports_arrive_batched(store.url)


@run_async
async def _mixer_down(fail_open: bool) -> None:
    # Nothing listens on this port (bound, then closed): every call fails fast.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    options = ClientOptions(network_fail_open=fail_open)
    async with connect(
        address, options=options, transport_options=TransportOptions(check_timeout=0.5)
    ) as client:
        result = await client.check(REVIEWS_V3_TO_RATINGS)
        if fail_open:
            assert result.ok
        else:
            assert (result.code, result.http_status) == (14, 503)
        assert client.stats()["check_transport_errors"] == 1
        client.report(REQUEST)
        client.flush()
        await eventually(
            lambda: client.stats()["report_batches_failed"] >= 1,
            timeout=5,
            what="a failed report batch",
        )


@pytest.mark.parametrize("fail_open", [True, False])
def test_mixer_down_follows_the_fail_policy(fail_open):
    _mixer_down(fail_open)
