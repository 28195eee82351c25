"""What the Mixer benchmark sends: its config sets and its Check and Report requests.

A config set is Mixer's standard telemetry (`mixer/config/telemetry.yaml`: 4 rules, the
Prometheus metrics and the access log, here written to a file) plus N policy rules for
Check. Policy rule i matches on the destination's and the source's labels, as Bookinfo's
deny samples do, and alternates between the two policy adapters:

- even i: a `denier` handler and a `checknothing` instance,
  `destination.labels["app"] == "svc-<i>" && source.labels["version"] == "v3"`;
- odd i: a `listchecker` whitelist of versions v1 and v2 and a `listentry` instance of
  `source.labels["version"]`,
  `destination.labels["app"] == "svc-<i>" && source.labels["app"] == "reviews"`.

The benchmark's request goes from reviews v3 to svc-<N-1>, so exactly one policy rule, the
last, matches and every other one is evaluated and fails: with N even the last is a
listchecker, which looks v3 up and denies it (PERMISSION_DENIED, "v3 is not whitelisted").
All rules live in istio-system, which applies to all traffic, so every rule is evaluated
for every request (the worst case of namespace scoping).

Requests carry the attributes an inbound sidecar sends (with the workload attributes
Istio's kubernetesenv adapter would add): 31 for Check, 40 per Report attribute set.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from typing import Any

from api.mixer.v1 import check_pb2, report_pb2
from mixer.attribute.compressed import encode, encode_report
from pkg.config import loader
from pkg.config.resource import Resource

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
TELEMETRY = ROOT / "mixer/config/telemetry.yaml"
TELEMETRY_RULES = 4  # promhttp, promtcp, stdio, stdiotcp
NAMESPACE = "istio-system"
PERMISSION_DENIED = 7
OK = 0

# The stdio handler as telemetry.yaml declares it; the benchmark points it at a file.
_STDIO_PARAMS = "  compiledAdapter: stdio\n  params:\n    outputAsJson: true\n"


def telemetry_yaml(access_log: pathlib.Path) -> str:
    """telemetry.yaml with the access log appended to `access_log` instead of stdout."""
    text = TELEMETRY.read_text()
    if text.count(_STDIO_PARAMS) != 1:
        raise ValueError(f"{TELEMETRY}: the stdio handler's params are not where expected")
    to_file = f"    logStream: FILE\n    outputPath: {json.dumps(str(access_log))}\n"
    return text.replace(_STDIO_PARAMS, _STDIO_PARAMS + to_file)


def destination_app(rules: int) -> str:
    """The app the benchmark's requests go to: the last policy rule's."""
    return f"svc-{max(rules - 1, 0)}"


def expected_check_code(rules: int) -> int:
    """With no policy rule a Check is allowed; otherwise the last rule denies it."""
    return PERMISSION_DENIED if rules else OK


def policy_yaml(rules: int) -> str:
    """`rules` policy rules (each with its handler and instance), as one YAML stream."""
    documents = []
    for i in range(rules):
        app = f"svc-{i}"
        if i % 2 == 0:
            documents += [
                _doc(
                    "handler",
                    f"deny-{i}",
                    {
                        "compiledAdapter": "denier",
                        "params": {"status": {"code": PERMISSION_DENIED, "message": f"{app}: v3"}},
                    },
                ),
                _doc("instance", f"deny-{i}", {"compiledTemplate": "checknothing"}),
                _doc(
                    "rule",
                    f"deny-{i}",
                    {
                        "match": f'destination.labels["app"] == "{app}" '
                        '&& source.labels["version"] == "v3"',
                        "actions": [{"handler": f"deny-{i}", "instances": [f"deny-{i}"]}],
                    },
                ),
            ]
        else:
            documents += [
                _doc(
                    "handler",
                    f"versions-{i}",
                    {
                        "compiledAdapter": "listchecker",
                        "params": {"overrides": ["v1", "v2"], "blacklist": False},
                    },
                ),
                _doc(
                    "instance",
                    f"version-{i}",
                    {
                        "compiledTemplate": "listentry",
                        "params": {"value": 'source.labels["version"]'},
                    },
                ),
                _doc(
                    "rule",
                    f"versions-{i}",
                    {
                        "match": f'destination.labels["app"] == "{app}" '
                        '&& source.labels["app"] == "reviews"',
                        "actions": [{"handler": f"versions-{i}", "instances": [f"version-{i}"]}],
                    },
                ),
            ]
    # JSON is YAML: one document per line, no quoting surprises in the expressions.
    return "".join(f"---\n{json.dumps(d)}\n" for d in documents)


def config_set(rules: int, access_log: pathlib.Path) -> list[Resource]:
    """Telemetry (4 rules) and `rules` policy rules, as resources to apply."""
    resources = loader.load_text(telemetry_yaml(access_log), source=str(TELEMETRY))
    if rules:
        resources += loader.load_text(policy_yaml(rules), source=f"<{rules} policy rules>")
    return resources


def _doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


# Requests.

_REQUEST_TIME = datetime.datetime(2026, 11, 21, 20, 0, 0, tzinfo=datetime.UTC)


def check_attributes(app: str, request_id: str = "f5b6a0c2-6d1e-9a4b-8c3d-2e1f0a9b8c7d") -> dict:
    """An inbound sidecar's Check for `GET /<app>/0` from reviews v3: 31 attributes."""
    source_pod = "reviews-v3-7dbcdcbc56-4kx9p"
    destination_pod = f"{app}-v1-5f8d7c6b9d-q2m4x"
    return {
        "source.uid": f"kubernetes://{source_pod}.default",
        "source.name": source_pod,
        "source.namespace": "default",
        "source.principal": "cluster.local/ns/default/sa/bookinfo-reviews",
        "source.ip": bytes([10, 28, 11, 20]),
        "source.labels": {"app": "reviews", "version": "v3", "pod-template-hash": "7dbcdcbc56"},
        "source.workload.name": "reviews-v3",
        "source.workload.namespace": "default",
        "destination.uid": f"kubernetes://{destination_pod}.default",
        "destination.name": destination_pod,
        "destination.namespace": "default",
        "destination.principal": f"cluster.local/ns/default/sa/bookinfo-{app}",
        "destination.ip": bytes([10, 28, 12, 31]),
        "destination.port": 9080,
        "destination.labels": {"app": app, "version": "v1", "pod-template-hash": "5f8d7c6b9d"},
        "destination.workload.name": f"{app}-v1",
        "destination.workload.namespace": "default",
        "destination.service.host": f"{app}.default.svc.cluster.local",
        "destination.service.name": app,
        "destination.service.namespace": "default",
        "request.headers": {
            ":authority": f"{app}:9080",
            ":path": f"/{app}/0",
            ":method": "GET",
            "user-agent": "python-requests/2.31.0",
            "accept": "application/json",
            "x-request-id": request_id,
            "x-forwarded-proto": "http",
            "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
        },
        "request.id": request_id,
        "request.path": f"/{app}/0",
        "request.host": f"{app}:9080",
        "request.method": "GET",
        "request.scheme": "http",
        "request.useragent": "python-requests/2.31.0",
        "request.time": _REQUEST_TIME,
        "context.protocol": "http",
        "context.reporter.kind": "inbound",
        "connection.mtls": True,
    }


def report_attributes(app: str, i: int) -> dict:
    """The i-th request's Report attributes: the Check's plus the response (40 in all).

    Consecutive sets differ in the request id, times, duration and sizes, as successive
    requests do, so delta encoding still carries those.
    """
    request_id = f"f5b6a0c2-6d1e-9a4b-8c3d-{i:012x}"
    started = _REQUEST_TIME + datetime.timedelta(milliseconds=7 * i)
    duration = datetime.timedelta(microseconds=1800 + 137 * i)
    return {
        **check_attributes(app, request_id),
        "request.time": started,
        "request.size": 0,
        "request.total_size": 612,
        "response.code": 200,
        "response.size": 295 + i,
        "response.total_size": 480 + i,
        "response.duration": duration,
        "response.time": started + duration,
        "response.headers": {
            ":status": "200",
            "content-type": "application/json",
            "server": "istio-envoy",
        },
        "context.reporter.uid": f"kubernetes://{app}-v1-5f8d7c6b9d-q2m4x.default",
    }


def check_request(app: str) -> check_pb2.CheckRequest:
    return check_pb2.CheckRequest(
        attributes=encode(check_attributes(app)), deduplication_id="mixer-bench"
    )


def report_request(app: str, sets: int) -> report_pb2.ReportRequest:
    """One Report of `sets` delta-encoded attribute sets."""
    return encode_report([report_attributes(app, i) for i in range(sets)])
