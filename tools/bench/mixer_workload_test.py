import asyncio
import logging
import pathlib

import prometheus_client
import pytest

from api.mixer.v1 import report_pb2
from mixer.adapter import api as adapter_api
from mixer.attribute.bag import Bag, TrackingBag
from mixer.attribute.compressed import decode_check, decode_report
from mixer.runtime.dispatcher import Dispatcher
from mixer.runtime.snapshot import Snapshot, build_snapshot
from mixer.server.attribute_types import type_errors
from mixer.server.server import standard_types
from tools.bench import mixer_workload


def by_kind(rules: int, folder: pathlib.Path) -> dict[str, list]:
    configs: dict[str, list] = {}
    for resource in mixer_workload.config_set(rules, folder / "access.log"):
        configs.setdefault(resource.schema.kind, []).append(resource)
    return configs


async def compiled(rules: int, folder: pathlib.Path) -> Snapshot:
    env = adapter_api.Env(
        logger=logging.getLogger("test"), metrics=prometheus_client.CollectorRegistry()
    )
    return await build_snapshot(1, by_kind(rules, folder), base_types=standard_types(), env=env)


async def close(snapshot: Snapshot) -> None:
    for entry in snapshot.handlers.values():
        await entry.handler.close()


def test_the_access_log_goes_to_the_given_file(tmp_path: pathlib.Path) -> None:
    configs = by_kind(0, tmp_path)
    stdio = next(h for h in configs["handler"] if h.metadata.name == "stdio")
    params = dict(stdio.spec.params.items())
    assert params["logStream"] == "FILE"
    assert params["outputPath"] == str(tmp_path / "access.log")
    assert params["outputAsJson"] is True


@pytest.mark.parametrize("rules", [0, 1, 10, 100])
def test_a_config_set_is_telemetry_plus_a_handler_instance_and_rule_per_policy_rule(
    rules: int, tmp_path: pathlib.Path
) -> None:
    telemetry = by_kind(0, tmp_path)
    configs = by_kind(rules, tmp_path)
    assert len(configs["rule"]) == mixer_workload.TELEMETRY_RULES + rules
    for kind in ("handler", "instance"):
        assert len(configs[kind]) == len(telemetry[kind]) + rules
    names = [r.metadata.name for r in configs["rule"]]
    assert len(set(names)) == len(names)
    assert {r.metadata.namespace for r in configs["rule"]} == {mixer_workload.NAMESPACE}


@pytest.mark.parametrize("rules", [0, 1, 2, 10, 100])
def test_exactly_the_last_policy_rule_matches_and_decides(
    rules: int, tmp_path: pathlib.Path
) -> None:
    async def scenario() -> None:
        snapshot = await compiled(rules, tmp_path)
        try:
            assert snapshot.errors == ()
            assert len(snapshot.rules) == mixer_workload.TELEMETRY_RULES + rules
            request = mixer_workload.check_request(mixer_workload.destination_app(rules))
            bag = decode_check(request)
            policy = [r for r in snapshot.rules if r.name.startswith(("deny-", "versions-"))]
            matched = [r.name for r in policy if r.match is not None and r.match.evaluate(bag)]
            if rules:
                assert matched == [policy[-1].name]
            else:
                assert matched == []
            result = await Dispatcher().check(snapshot, TrackingBag(bag))
            assert result.status_code == mixer_workload.expected_check_code(rules)
            if rules % 2 == 0 and rules:  # the last is a listchecker whitelist
                assert result.message == "v3 is not whitelisted"
        finally:
            await close(snapshot)

    asyncio.run(scenario())


def test_the_check_request_carries_the_attributes_with_their_declared_types() -> None:
    attributes = mixer_workload.check_attributes("svc-9")
    request = mixer_workload.check_request("svc-9")
    bag = decode_check(request)
    assert bag == Bag(attributes)
    assert len(attributes) == 31
    assert len(attributes["request.headers"]) == 8
    assert type_errors(attributes.items(), standard_types()) == []


def test_a_report_is_delta_encoded_and_decodes_to_every_set(tmp_path: pathlib.Path) -> None:
    request = mixer_workload.report_request("svc-9", 10)
    assert request.repeated_attributes_semantics == report_pb2.ReportRequest.DELTA_ENCODING
    bags = decode_report(request)
    assert bags == [Bag(mixer_workload.report_attributes("svc-9", i)) for i in range(10)]
    # Later sets carry only what changed: far fewer attributes than the first.
    assert len(request.attributes[1].strings) < len(request.attributes[0].strings)
    types = standard_types()
    for bag in bags:
        assert type_errors(bag.items(), types) == []


def test_every_telemetry_instance_builds_from_a_report(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        snapshot = await compiled(10, tmp_path)
        try:
            dispatcher = Dispatcher()
            await dispatcher.report(snapshot, decode_report(mixer_workload.report_request("a", 3)))
            assert dispatcher.counters.instance_errors == 0
            assert dispatcher.counters.adapter_errors == 0
            # One batch to Prometheus (4 metrics) and one to the access log.
            assert dispatcher.counters.adapter_calls == 2
        finally:
            await close(snapshot)
        lines = (tmp_path / "access.log").read_text().splitlines()
        assert len(lines) == 3
        assert '"destinationApp":"a"' in lines[0]

    asyncio.run(scenario())


def test_expected_answers() -> None:
    assert mixer_workload.expected_check_code(0) == mixer_workload.OK
    assert mixer_workload.expected_check_code(10) == mixer_workload.PERMISSION_DENIED
    assert mixer_workload.destination_app(0) == "svc-0"
    assert mixer_workload.destination_app(100) == "svc-99"
