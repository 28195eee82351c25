"""Mixer's config kinds (config.istio.io/v1alpha2) through the loader."""

import pytest
import yaml

from pkg.config import loader
from pkg.config.validation import policy
from pkg.lang.types import ValueType

DENY_REVIEWS_V3 = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: denyreviewsv3handler}
spec:
  compiledAdapter: denier
  params:
    status: {code: 7, message: Not allowed}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: denyreviewsv3request}
spec:
  compiledTemplate: checknothing
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: denyreviewsv3}
spec:
  match: destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3"
  actions:
  - handler: denyreviewsv3handler
    instances: [denyreviewsv3request]
"""


def test_deny_sample_loads():
    handler, instance, rule = loader.load_text(DENY_REVIEWS_V3)
    assert handler.spec.compiled_adapter == "denier"
    assert handler.spec.params["status"]["code"] == 7
    assert instance.spec.compiled_template == "checknothing"
    assert rule.spec.actions[0].instances == ["denyreviewsv3request"]


ACTIONS = [{"handler": "denier", "instances": ["nothing"]}]


def _problems(kind: str, spec: dict) -> list[str]:
    doc = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(yaml.safe_dump(doc))
    return [str(p) for e in caught.value.errors for p in e.problems]


def test_bad_mixer_config():
    assert _problems("handler", {}) == ["spec.adapter: a handler needs an adapter"]
    assert _problems("instance", {}) == ["spec.template: an instance needs a template"]
    assert _problems("rule", {"actions": [{"instances": ["a"]}]}) == [
        "spec.actions[0].handler: an action needs a handler"
    ]
    assert _problems(
        "attributemanifest", {"attributes": {"Source.IP": {"valueType": "IP_ADDRESS"}, "a.b": {}}}
    ) == [
        "spec.attributes.Source.IP: 'Source.IP' is not a valid attribute name",
        "spec.attributes.a.b.valueType: an attribute needs a value type",
    ]


def test_attribute_manifest_allows_istio_camel_case():
    doc = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "attributemanifest",
        "metadata": {"name": "k"},
        "spec": {"attributes": {"source.serviceAccount": {"valueType": "STRING"}}},
    }
    (manifest,) = loader.load_text(yaml.safe_dump(doc))
    assert "source.serviceAccount" in manifest.spec.attributes


def test_the_standard_vocabulary_loads_and_is_what_validation_uses():
    manifests = loader.load_file(policy.STANDARD_VOCABULARY)
    assert [m.metadata.name for m in manifests] == ["istioproxy", "kubernetes"]
    declared = {
        name: ValueType(info.value_type)
        for m in manifests
        for name, info in m.spec.attributes.items()
    }
    assert declared == dict(policy.standard_vocabulary())
    assert declared["request.headers"] is ValueType.STRING_MAP


SAMPLES = """
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: checkversion}
spec:
  match: destination.labels["app"] == "ratings"
  actions:
  - {handler: whitelist.listchecker, instances: [appversion.listentry]}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: appversion}
spec:
  compiledTemplate: listentry
  params:
    value: source.labels["version"]
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount}
spec:
  compiledTemplate: quota
  params:
    dimensions:
      source: source.labels["app"] | source.service | "unknown"
      sourceVersion: source.labels["version"] | "unknown"
      destination: destination.labels["app"] | destination.service | "unknown"
      destinationVersion: destination.labels["version"] | "unknown"
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestduration}
spec:
  compiledTemplate: metric
  params:
    value: response.duration | "0ms"
    dimensions:
      reporter: conditional((context.reporter.kind | "inbound") == "outbound", "source", "destination")
      response_code: response.code | 200
      connection_security_policy: conditional((context.reporter.kind | "inbound") == "outbound", "unknown", conditional(connection.mtls | false, "mutual_tls", "none"))
    monitored_resource_type: '"UNSPECIFIED"'
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: accesslog}
spec:
  compiledTemplate: logentry
  params:
    severity: '"Info"'
    timestamp: request.time
    variables:
      sourceIp: source.ip | ip("0.0.0.0")
      latency: response.duration | "0ms"
      responseSize: response.size | 0
      userAgent: request.useragent | ""
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: requestcount-metric}
spec:
  compiledTemplate: metric
  params:
    value: 1
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: promtcp}
spec:
  match: context.protocol == "tcp"
  actions:
  - {handler: prometheus, instances: [requestcount-metric]}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: always}
spec:
  match: ""
  actions:
  - {handler: stdio, instances: [accesslog]}
"""


def test_istio_samples_validate():
    resources = loader.load_text(SAMPLES)
    assert len(resources) == 8


def test_a_rule_with_a_misspelled_attribute_is_refused():
    assert _problems(
        "rule", {"match": 'source.lables["app"] == "reviews"', "actions": ACTIONS}
    ) == ['spec.match: unknown attribute "source.lables" at 1:1']


@pytest.mark.parametrize(
    ("match", "problem"),
    [
        ('request.size == "big"', "== of INT64 and STRING at 1:14"),
        ('source.labels["app"]', "expression is STRING, want BOOL"),
        ("destination.port > ", "expected an operand, found end of expression at 1:20"),
        ('match(request.headers["x-user"])', "match() wants (STRING, STRING), got (STRING) at 1:1"),
        ('source.ip == ip("10.0.0")', "could not convert '10.0.0' to IP_ADDRESS at 1:14"),
    ],
)
def test_rule_match_problems(match, problem):
    assert _problems("rule", {"match": match, "actions": ACTIONS}) == [f"spec.match: {problem}"]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        # Istio 1.4 mixer/pkg/runtime/config/config_test.go
        pytest.param(
            {}, "spec.actions: No valid actions found in rule", id="empty rule is omitted"
        ),
        pytest.param(
            {"actions": [{"handler": "h", "instances": ["instance1", "instance1"]}]},
            "spec.actions[0].instances[1]: action specified the same instance multiple times: "
            "instance='instance1'",
            id="duplicate instance references in an action gets normalized to a single instance",
        ),
        pytest.param(
            {"actions": [{"handler": "h", "instances": ["i1", "i1.instance"]}]},
            "spec.actions[0].instances[1]: action specified the same instance multiple times: "
            "instance='i1.instance'",
            id="duplicate instance references, short and long names",
        ),
    ],
)
def test_rule_actions(spec, problem):
    assert _problems("rule", spec) == [problem]


def test_a_rule_with_header_operations_and_no_actions_is_valid():
    doc = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "rule",
        "metadata": {"name": "x"},
        "spec": {"requestHeaderOperations": [{"name": "x-user", "values": ['"a"']}]},
    }
    assert loader.load_text(yaml.safe_dump(doc))


def test_instance_params_problems():
    spec = {
        "compiledTemplate": "metric",
        "params": {
            "value": "request.sise | 0",
            "dimensions": {"good": '"x"', "bad": 'source.labels["a"] | 0', "nested": {"a": "b"}},
        },
    }
    assert _problems("instance", spec) == [
        'spec.params.value: unknown attribute "request.sise" at 1:1',
        "spec.params.dimensions.bad: | of STRING and INT64: both sides must have one type at 1:20",
        "spec.params.dimensions.nested: want an expression (a string)",
    ]
    assert _problems(
        "instance", {"compiledTemplate": "quota", "params": {"dimensions": ["source.name"]}}
    ) == ["spec.params.dimensions: want a map of expressions"]
    assert _problems(
        "instance",
        {
            "compiledTemplate": "logentry",
            "params": {
                "severity": "severity",
                "timestamp": "request.time +",
                "variables": {"v": "!1"},
            },
        },
    ) == [
        'spec.params.severity: unknown attribute "severity" at 1:1',
        "spec.params.timestamp: expected an operand, found end of expression at 1:15",
        "spec.params.variables.v: ! wants BOOL, got INT64 at 1:1",
    ]
    assert _problems("instance", {"compiledTemplate": "listentry", "params": {"value": ["a"]}}) == [
        "spec.params.value: want an expression (a string)"
    ]


def test_params_of_other_templates_are_not_expressions_here():
    doc = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": "instance",
        "metadata": {"name": "x"},
        "spec": {"compiledTemplate": "checknothing", "params": {"anything": "not an ( expression"}},
    }
    assert loader.load_text(yaml.safe_dump(doc))
