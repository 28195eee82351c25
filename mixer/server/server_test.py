"""mixs against a real config store: Bookinfo's policy samples, telemetry, bad input, swaps."""

import asyncio
import collections
import datetime
import gc
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.mixer.v1 import attributes_pb2, check_pb2
from mixer.adapter import api as adapter_api
from mixer.attribute.compressed import encode
from mixer.runtime import snapshot as snapshot_module
from mixer.server.testing import (
    POLICY,
    TELEMETRY,
    apply,
    delete,
    mixer_client,
    running_mixer,
    wait_for_snapshot,
)
from pilot.configstore.testing import StoreThread
from pilot.xds.testing import run_async
from pkg.testing.wait import eventually

PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8

REVIEWS_V3_TO_RATINGS = {
    "source.labels": {"app": "reviews", "version": "v3"},
    "destination.labels": {"app": "ratings", "version": "v1"},
    "destination.namespace": "default",
}


@pytest.fixture
def store(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:
        yield store


def test_deny_label_sample(store):
    @run_async
    async def scenario():
        await apply(store.url, POLICY / "mixer-rule-deny-label.yaml")
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            denied = await client.check(REVIEWS_V3_TO_RATINGS)
            assert denied.precondition.status.code == PERMISSION_DENIED
            assert "Not allowed" in denied.precondition.status.message
            v2 = {**REVIEWS_V3_TO_RATINGS, "source.labels": {"app": "reviews", "version": "v2"}}
            allowed = await client.check(v2)
            assert allowed.precondition.status.code == 0
            assert allowed.precondition.valid_use_count > 0
            # The answer depended on exactly these map keys: what a client cache keys on.
            matches = allowed.precondition.referenced_attributes.attribute_matches
            assert len(matches) >= 2

    scenario()


def test_whitelist_sample(store):
    @run_async
    async def scenario():
        await apply(store.url, POLICY / "mixer-rule-deny-whitelist.yaml")
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            v3 = await client.check(REVIEWS_V3_TO_RATINGS)
            assert v3.precondition.status.code == PERMISSION_DENIED
            assert "v3" in v3.precondition.status.message
            v1 = {**REVIEWS_V3_TO_RATINGS, "source.labels": {"app": "reviews", "version": "v1"}}
            assert (await client.check(v1)).precondition.status.code == 0
            # Not to ratings: the rule does not match, nothing is checked.
            other = {**REVIEWS_V3_TO_RATINGS, "destination.labels": {"app": "details"}}
            assert (await client.check(other)).precondition.status.code == 0

    scenario()


def test_productpage_rate_limit_with_a_source_override(store):
    @run_async
    async def scenario():
        await apply(store.url, POLICY / "mixer-rule-productpage-ratelimit.yaml")
        to_productpage = {
            "destination.labels": {"app": "productpage"},
            "request.headers": {"x-forwarded-for": "10.0.0.1"},
        }
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            granted = []
            for _ in range(4):
                response = await client.check(to_productpage, quotas={"requestcountquota": 1})
                granted.append(response.quotas["requestcountquota"].granted_amount)
            assert granted == [1, 1, 0, 0]  # 2 per 5 s for productpage
            trusted = {**to_productpage, "request.headers": {"x-forwarded-for": "10.28.11.20"}}
            for _ in range(5):
                response = await client.check(trusted, quotas={"requestcountquota": 1})
                assert response.quotas["requestcountquota"].granted_amount == 1
            # The same deduplication id is one request: retried, it is not charged again.
            other = {"destination.labels": {"app": "details"}}
            first = await client.check(other, quotas={"requestcountquota": 1}, dedup="call-1")
            again = await client.check(other, quotas={"requestcountquota": 1}, dedup="call-1")
            assert (
                first.quotas["requestcountquota"].granted_amount
                == again.quotas["requestcountquota"].granted_amount
                == 1
            )
            # A quota no rule speaks for is granted in full.
            free = await client.check(other, quotas={"unknownquota": 7})
            assert free.quotas["unknownquota"].granted_amount == 7

    scenario()


def test_default_telemetry_reaches_prometheus(store):
    @run_async
    async def scenario():
        await apply(store.url, TELEMETRY)
        request = {
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
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            await client.report(request, {**request, "response.code": 503})
            body = await asyncio.to_thread(_get, f"http://{mixer.metrics_address}/metrics")
            families = {f.name: f for f in text_string_to_metric_families(body)}
            samples = [
                s for s in families["istio_requests"].samples if s.name == "istio_requests_total"
            ]
            by_code = {s.labels["response_code"]: s.value for s in samples}
            assert by_code == {"200": 1.0, "503": 1.0}
            labels = samples[0].labels
            assert labels["destination_service"] == "reviews.default.svc.cluster.local"
            assert labels["source_app"] == "productpage"
            assert labels["destination_version"] == "v2"
            assert labels["reporter"] == "destination"
            assert "istio_request_duration_seconds" in families

    scenario()


def test_malformed_attributes_are_invalid_argument_and_mixer_keeps_serving(store):
    @run_async
    async def scenario():
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            bad_index = check_pb2.CheckRequest(
                attributes=attributes_pb2.CompressedAttributes(strings={5000: 1})
            )
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await client.stub.Check(bad_index, timeout=5)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "5000" in error.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await client.check({"response.code": "two hundred"})
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "response.code" in error.value.details()
            assert "INT64" in error.value.details()
            assert (await client.check({"response.code": 200})).precondition.status.code == 0
            assert mixer.invalid_requests == 2

    scenario()


class _Hanging:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def handle_check_nothing(self, instance):
        if self.fail:
            raise RuntimeError("backend exploded")
        await asyncio.sleep(3600)

    async def close(self):
        pass


class _HangingBuilder:
    def __init__(self, params, instances):
        self.params = params

    def validate(self):
        return []

    async def build(self, env):
        return _Hanging(self.params.get("fail", False))


HANGING = adapter_api.AdapterInfo("hanging", "a broken backend", ("checknothing",), _HangingBuilder)

BROKEN_POLICY = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {{name: broken, namespace: istio-system, annotations: {{policy.istio.io/fail-open: "{open}"}}}}
spec: {{compiledAdapter: hanging, params: {{fail: {fail}}}}}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {{name: nothing, namespace: istio-system}}
spec: {{compiledTemplate: checknothing}}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {{name: broken, namespace: istio-system}}
spec:
  actions: [{{handler: broken, instances: [nothing]}}]
"""


@pytest.mark.parametrize(
    ("fail", "fail_open", "code"), [(False, False, 14), (True, False, 14), (False, True, 0)]
)
def test_an_adapter_that_hangs_or_fails_does_not_take_mixer_down(
    store, tmp_path, monkeypatch, fail, fail_open, code
):
    monkeypatch.setattr(
        snapshot_module, "ADAPTERS", {**snapshot_module.ADAPTERS, "hanging": HANGING}
    )
    policy = tmp_path / "broken.yaml"
    policy.write_text(BROKEN_POLICY.format(open=str(fail_open).lower(), fail=str(fail).lower()))

    @run_async
    async def scenario():
        await apply(store.url, policy)
        async with (
            running_mixer(store.url, adapter_timeout=0.2) as mixer,
            mixer_client(mixer.grpc_address) as client,
        ):
            results = await asyncio.gather(*(client.check({"request.path": "/"}) for _ in range(5)))
            assert {r.precondition.status.code for r in results} == {code}
            counters = mixer.dispatcher.counters
            assert counters.adapter_timeouts + counters.adapter_errors == 5
            assert counters.adapter_errors == (5 if fail else 0)

    scenario()


def test_config_changes_apply_without_restart_and_without_failing_requests(store):
    @run_async
    async def scenario():
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            stop = asyncio.Event()
            answers: list[int] = []

            async def load():
                while not stop.is_set():
                    response = await client.check(REVIEWS_V3_TO_RATINGS)
                    answers.append(response.precondition.status.code)

            worker = asyncio.create_task(load())
            await apply(store.url, POLICY / "mixer-rule-deny-label.yaml")
            # The sample's three objects may land in two snapshots (the writes can be slower
            # than the debounce): wait for the one that has the rule, not for the first.
            await wait_for_rule(mixer, "denyreviewsv3")
            assert (
                await client.check(REVIEWS_V3_TO_RATINGS)
            ).precondition.status.code == PERMISSION_DENIED
            swapped = mixer.snapshot.id
            await delete(store.url, POLICY / "mixer-rule-deny-label.yaml")
            await wait_for_snapshot(mixer, swapped)
            assert (await client.check(REVIEWS_V3_TO_RATINGS)).precondition.status.code == 0
            stop.set()
            await worker
            # Every request in flight across both swaps got one of the two right answers.
            assert answers
            assert set(answers) <= {0, PERMISSION_DENIED}

    scenario()


async def wait_for_rule(mixer, name: str, timeout: float = 10.0) -> None:
    await eventually(
        lambda: name in {r.name for r in mixer.snapshot.rules},
        timeout=timeout,
        interval=0.01,
        what=f"a snapshot with rule {name}",
    )


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_rule_errors_are_reported_not_fatal(store, tmp_path):
    policy = tmp_path / "dangling.yaml"
    policy.write_text(
        "apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {name: dangling, namespace: istio-system}\n"
        "spec: {actions: [{handler: nosuchhandler, instances: [nosuchinstance]}]}\n"
    )

    @run_async
    async def scenario():
        await apply(store.url, policy, POLICY / "mixer-rule-deny-label.yaml")
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            assert any("nosuchhandler" in e for e in mixer.snapshot.errors)
            assert (
                await client.check(REVIEWS_V3_TO_RATINGS)
            ).precondition.status.code == PERMISSION_DENIED

    scenario()


_CHECK_STRING = b"\x1a\x04call"  # deduplication_id, a proto3 string
_REPORT_STRING = b"\x12\x04word"  # default_words[0]


@pytest.mark.parametrize(
    ("check_bytes", "report_bytes"),
    [
        (b"\xff" * 16, b"\xff" * 16),
        (_CHECK_STRING[:-2], _REPORT_STRING[:-2]),
        (_CHECK_STRING[:2] + b"\xc3\x28ll", _REPORT_STRING[:2] + b"\xc3\x28rd"),
    ],
    ids=["random", "truncated", "invalid-utf8"],
)
def test_undecodable_requests_are_invalid_argument(store, check_bytes, report_bytes):
    @run_async
    async def scenario():
        async with (
            running_mixer(store.url) as mixer,
            grpc.aio.insecure_channel(mixer.grpc_address) as channel,
        ):
            for method, data in (("Check", check_bytes), ("Report", report_bytes)):
                call = channel.unary_unary(f"/istio.mixer.v1.Mixer/{method}")
                with pytest.raises(grpc.aio.AioRpcError) as error:
                    await call(data, timeout=5)
                assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
                assert f"cannot parse the request as istio.mixer.v1.{method}Request" in (
                    error.value.details()
                )
            assert mixer.invalid_requests == 2

    scenario()


def test_a_burst_of_2000_concurrent_checks_is_answered_in_full(store):
    # A bare grpc.aio server dropped some of these (CANCELLED) from gRPC core's queue.
    @run_async(timeout=60)
    async def scenario():
        await apply(store.url, POLICY / "mixer-rule-deny-label.yaml")
        async with running_mixer(store.url) as mixer:
            await wait_for_rule(mixer, "denyreviewsv3")
            request = check_pb2.CheckRequest(
                attributes=encode(REVIEWS_V3_TO_RATINGS), deduplication_id="burst"
            ).SerializeToString()
            codes: collections.Counter[str] = collections.Counter()
            async with grpc.aio.insecure_channel(mixer.grpc_address) as channel:
                check = channel.unary_unary(
                    "/istio.mixer.v1.Mixer/Check",
                    response_deserializer=check_pb2.CheckResponse.FromString,
                )
                await channel.channel_ready()

                async def one() -> None:
                    try:
                        response = await check(request, timeout=30)
                        codes[f"OK/{response.precondition.status.code}"] += 1
                    except grpc.aio.AioRpcError as error:
                        codes[error.code().name] += 1

                await asyncio.gather(*(one() for _ in range(2000)))
            # Every Check answered, and answered right: the rule denies reviews v3.
            assert codes == {f"OK/{PERMISSION_DENIED}": 2000}

    scenario()


def test_mixs_takes_full_collections_over_and_hands_them_back_when_it_stops(store):
    # The full collection runs at mixs' quiet moments (pkg/aio/idle_gc), not in the middle of
    # a Check: while it serves, CPython's own never comes due and the heap is frozen; every
    # request marks mixs busy; stopped, the thresholds are CPython's again.
    before = gc.get_threshold()

    @run_async
    async def scenario():
        async with running_mixer(store.url) as mixer, mixer_client(mixer.grpc_address) as client:
            await eventually(lambda: gc.get_threshold()[2] > 1_000_000, timeout=5)
            assert gc.get_freeze_count() > 0
            quiet_since = mixer.idle_gc.last_busy
            await client.check(REVIEWS_V3_TO_RATINGS)
            assert mixer.idle_gc.last_busy > quiet_since

    assert gc.get_threshold() == before
