"""The telemetry config shipped with the install: it loads, it hangs together, every
expression type-checks, and a request's attributes come out as Istio's metrics and access log."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import pathlib
from collections.abc import Mapping
from typing import Any

import prometheus_client
import pytest
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from mixer.adapter.api import AdapterInfo, Env
from mixer.adapters.prometheus import prometheus
from mixer.adapters.stdio import stdio
from mixer.template.templates import LogEntry, Metric
from pkg.config import loader
from pkg.config.resource import Resource
from pkg.lang import vocabulary
from pkg.lang.bag import DictBag
from pkg.lang.compiler import compile_expression
from pkg.lang.errors import LangError
from pkg.lang.types import ValueType

TELEMETRY = pathlib.Path(__file__).with_name("telemetry.yaml")
ATTRIBUTES = pathlib.Path(__file__).parents[2] / "api" / "policy" / "v1beta1" / "attributes.yaml"
ADAPTERS: Mapping[str, AdapterInfo] = {"prometheus": prometheus.INFO, "stdio": stdio.INFO}
NAMESPACE = "istio-system"
HTTP_LABELS = [
    "reporter",
    "source_app",
    "source_principal",
    "source_workload",
    "source_workload_namespace",
    "source_version",
    "destination_app",
    "destination_principal",
    "destination_workload",
    "destination_workload_namespace",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "connection_security_policy",
]
TCP_LABELS = [label for label in HTTP_LABELS if label not in ("request_protocol", "response_code")]


def resources() -> dict[tuple[str, str], Resource]:
    return {(r.schema.kind, r.metadata.name): r for r in loader.load_file(TELEMETRY)}


def params(resource: Resource) -> dict[str, Any]:
    return json_format.MessageToDict(resource.spec.params)


def instances_by_template(
    config: Mapping[tuple[str, str], Resource], handler: str
) -> dict[str, list[str]]:
    """What the rules send `handler`, as the runtime hands it to the builder."""
    out: dict[str, list[str]] = {}
    for (kind, _), rule in sorted(config.items()):
        if kind != "rule":
            continue
        for action in rule.spec.actions:
            if action.handler != handler:
                continue
            for name in action.instances:
                instance = config[("instance", name)]
                out.setdefault(instance.spec.compiled_template, []).append(f"{name}.{NAMESPACE}")
    return out


def test_loads_as_istios_objects_in_istio_system():
    config = resources()
    assert sorted(config) == [
        ("handler", "prometheus"),
        ("handler", "stdio"),
        ("instance", "accesslog"),
        ("instance", "requestcount"),
        ("instance", "requestduration"),
        ("instance", "requestsize"),
        ("instance", "responsesize"),
        ("instance", "tcpaccesslog"),
        ("instance", "tcpbytereceived"),
        ("instance", "tcpbytesent"),
        ("rule", "promhttp"),
        ("rule", "promtcp"),
        ("rule", "stdio"),
        ("rule", "stdiotcp"),
    ]
    assert {r.metadata.namespace for r in config.values()} == {NAMESPACE}


def test_rules_send_each_handler_instances_of_templates_it_supports():
    config = resources()
    rules = {name: r.spec for (kind, name), r in config.items() if kind == "rule"}
    assert {
        name: (spec.match, [(a.handler, list(a.instances)) for a in spec.actions])
        for name, spec in rules.items()
    } == {
        "promhttp": (
            'context.protocol == "http" || context.protocol == "grpc"',
            [("prometheus", ["requestcount", "requestduration", "requestsize", "responsesize"])],
        ),
        "promtcp": (
            'context.protocol == "tcp"',
            [("prometheus", ["tcpbytesent", "tcpbytereceived"])],
        ),
        "stdio": (
            'context.protocol == "http" || context.protocol == "grpc"',
            [("stdio", ["accesslog"])],
        ),
        "stdiotcp": ('context.protocol == "tcp"', [("stdio", ["tcpaccesslog"])]),
    }
    for (kind, name), resource in config.items():
        if kind == "handler":
            info = ADAPTERS[resource.spec.compiled_adapter]
            assert info.name == name
            assert set(instances_by_template(config, name)) <= set(info.templates)


@pytest.mark.parametrize("handler", ["prometheus", "stdio"])
def test_handler_params_validate_and_build(handler: str):
    config = resources()
    resource = config[("handler", handler)]
    builder = ADAPTERS[resource.spec.compiled_adapter].new_builder(
        params(resource), instances_by_template(config, handler)
    )
    assert builder.validate() == []

    async def main() -> None:
        built = await builder.build(
            Env(logging.getLogger("telemetry_test"), prometheus_client.CollectorRegistry())
        )
        await built.close()

    asyncio.run(main())


def test_prometheus_metrics_are_istios_and_labelled_by_every_dimension():
    config = resources()
    metrics = params(config[("handler", "prometheus")])["metrics"]
    summary = {
        m["name"]: (m["instanceName"], m["kind"], m["labelNames"], m.get("buckets"))
        for m in metrics
    }
    exponential = {"exponentialBuckets": {"numFiniteBuckets": 8, "scale": 1, "growthFactor": 10}}
    assert summary == {
        "requests_total": ("requestcount.instance.istio-system", "COUNTER", HTTP_LABELS, None),
        "request_duration_seconds": (
            "requestduration.instance.istio-system",
            "DISTRIBUTION",
            HTTP_LABELS,
            {
                "explicitBuckets": {
                    "bounds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
                }
            },
        ),
        "request_bytes": (
            "requestsize.instance.istio-system",
            "DISTRIBUTION",
            HTTP_LABELS,
            exponential,
        ),
        "response_bytes": (
            "responsesize.instance.istio-system",
            "DISTRIBUTION",
            HTTP_LABELS,
            exponential,
        ),
        "tcp_sent_bytes_total": ("tcpbytesent.instance.istio-system", "COUNTER", TCP_LABELS, None),
        "tcp_received_bytes_total": (
            "tcpbytereceived.instance.istio-system",
            "COUNTER",
            TCP_LABELS,
            None,
        ),
    }
    for metric in metrics:
        instance = config[("instance", metric["instanceName"].split(".")[0])]
        assert instance.spec.compiled_template == "metric"
        assert sorted(params(instance)["dimensions"]) == sorted(metric["labelNames"])


def expressions(config: Mapping[tuple[str, str], Resource]) -> list[tuple[str, str, str | None]]:
    """(where, expression, the type it must have or None) for every expression of the config."""
    out: list[tuple[str, str, str | None]] = []
    for (kind, name), resource in sorted(config.items()):
        if kind == "rule":
            out.append((f"rule {name}: match", resource.spec.match, "BOOL"))
        if kind != "instance":
            continue
        p = params(resource)
        wanted = {
            "severity": "STRING",
            "timestamp": "TIMESTAMP",
            "monitored_resource_type": "STRING",
            "value": None,
        }
        for field, want in wanted.items():
            if field in p:
                out.append((f"instance {name}: {field}", p[field], want))
        for group in ("dimensions", "variables"):
            for key, text in sorted((p.get(group) or {}).items()):
                out.append((f"instance {name}: {group}.{key}", text, None))
    return out


def test_every_expression_type_checks_against_istios_vocabulary():
    types = vocabulary.load(ATTRIBUTES)
    found = expressions(resources())
    assert len(found) == 4 + 6 * 2 + 4 * 17 + 2 * 15 + 2 * 3 + 36 + 25
    failures = []
    for where, text, want in found:
        try:
            expression = compile_expression(
                str(text), types, want=None if want is None else ValueType[want]
            )
        except LangError as error:
            failures.append(f"{where}: {text!r}: {error}")
            continue
        if where.endswith(": value"):  # metric values must be numbers or durations
            assert expression.type in (ValueType.INT64, ValueType.DOUBLE, ValueType.DURATION), where
    assert failures == []


# A request from productpage to reviews-v2, reported by the server's sidecar over mTLS.
REQUEST = {
    "context.protocol": "http",
    "context.reporter.kind": "inbound",
    "connection.mtls": True,
    "source.labels": {"app": "productpage", "version": "v1"},
    "source.principal": "cluster.local/ns/default/sa/bookinfo-productpage",
    "source.workload.name": "productpage-v1",
    "source.workload.namespace": "default",
    "source.ip": bytes([127, 0, 1, 2]),
    "destination.labels": {"app": "reviews", "version": "v2"},
    "destination.workload.name": "reviews-v2",
    "destination.workload.namespace": "default",
    "destination.service.host": "reviews.default.svc.cluster.local",
    "destination.service.name": "reviews",
    "destination.service.namespace": "default",
    "request.headers": {"x-request-id": "abc", ":authority": "reviews:9080"},
    "request.method": "GET",
    "request.path": "/reviews/0",
    "request.size": 0,
    "request.time": datetime.datetime(2019, 3, 16, 10, 0, 0, tzinfo=datetime.UTC),
    "response.code": 200,
    "response.size": 2100,
    "response.duration": datetime.timedelta(milliseconds=42),
    "response.time": datetime.datetime(2019, 3, 16, 10, 0, 0, 42000, tzinfo=datetime.UTC),
}


def evaluate(instance: Resource, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """An instance's params evaluated as the runtime would: expression text -> value."""
    bag = DictBag(attributes)
    types = vocabulary.load(ATTRIBUTES)

    def value(text: Any) -> Any:
        return compile_expression(str(text), types).evaluate(bag)

    out: dict[str, Any] = {}
    for field, raw in params(instance).items():
        out[field] = {k: value(v) for k, v in raw.items()} if isinstance(raw, dict) else value(raw)
    return out


def test_a_request_becomes_istios_metrics_and_access_log(capsys):
    config = resources()
    registry = prometheus_client.CollectorRegistry()
    env = Env(logging.getLogger("telemetry_test"), registry)

    async def main() -> str:
        handlers: dict[str, Any] = {}  # the prometheus and stdio handlers
        for name in ("prometheus", "stdio"):
            builder = ADAPTERS[name].new_builder(
                params(config[("handler", name)]), instances_by_template(config, name)
            )
            handlers[name] = await builder.build(env)
        metrics = []
        for name in ("requestcount", "requestduration", "requestsize", "responsesize"):
            fields = evaluate(config[("instance", name)], REQUEST)
            metrics.append(Metric(f"{name}.{NAMESPACE}", fields["value"], fields["dimensions"]))
        await handlers["prometheus"].handle_metric(metrics)
        log = evaluate(config[("instance", "accesslog")], REQUEST)
        await handlers["stdio"].handle_log_entry(
            [
                LogEntry(
                    f"accesslog.{NAMESPACE}",
                    log["variables"],
                    log["timestamp"],
                    log["severity"],
                )
            ]
        )
        scraped = prometheus_client.generate_latest(registry).decode()
        for handler in handlers.values():
            await handler.close()
        return scraped

    scraped = asyncio.run(main())
    expected_labels = {
        "reporter": "destination",
        "source_app": "productpage",
        "source_principal": "cluster.local/ns/default/sa/bookinfo-productpage",
        "source_workload": "productpage-v1",
        "source_workload_namespace": "default",
        "source_version": "v1",
        "destination_app": "reviews",
        "destination_principal": "unknown",
        "destination_workload": "reviews-v2",
        "destination_workload_namespace": "default",
        "destination_version": "v2",
        "destination_service": "reviews.default.svc.cluster.local",
        "destination_service_name": "reviews",
        "destination_service_namespace": "default",
        "request_protocol": "http",
        "response_code": "200",
        "connection_security_policy": "mutual_tls",
    }
    samples = {
        (s.name, s.labels.get("le")): (s.labels, s.value)
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
    }
    labels, value = samples[("istio_requests_total", None)]
    assert (labels, value) == (expected_labels, 1.0)
    assert samples[("istio_request_duration_seconds_sum", None)][1] == pytest.approx(0.042)
    assert samples[("istio_request_duration_seconds_bucket", "0.05")][1] == 1
    assert samples[("istio_request_duration_seconds_bucket", "0.025")][1] == 0
    assert samples[("istio_response_bytes_bucket", "10000.0")][1] == 1
    assert samples[("istio_response_bytes_bucket", "1000.0")][1] == 0
    assert samples[("istio_request_bytes_bucket", "1.0")][1] == 1

    line = json.loads(capsys.readouterr().out)
    assert {k: line[k] for k in ("level", "time", "instance")} == {
        "level": "info",
        "time": "2019-03-16T10:00:00.000000Z",
        "instance": "accesslog.istio-system",
    }
    assert line["sourceIp"] == "127.0.1.2"
    assert line["destinationIp"] == "0.0.0.0"
    assert line["latency"] == "42ms"
    assert line["responseTimestamp"] == "2019-03-16T10:00:00.042000Z"
    assert line["requestId"] == "abc"
    assert line["httpAuthority"] == "reviews:9080"
    assert line["responseCode"] == 200
    assert line["url"] == "/reviews/0"
    assert line["connection_security_policy"] == "mutual_tls"
    assert line["reporter"] == "destination"
    assert len(line) == 3 + 36
