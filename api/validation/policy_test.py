"""Mixer's config kinds (config.istio.io/v1alpha2) through the loader."""

import pytest
import yaml

from api import loader

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
