"""QuotaSpec and QuotaSpecBinding (config.istio.io/v1alpha2) through the loader."""

import pathlib

import pytest
import yaml

from pkg.config import loader

SAMPLES = pathlib.Path(__file__).resolve().parents[3] / "samples/bookinfo/policy"


def test_the_rate_limit_sample_binds_its_quota_to_productpage():
    resources = {
        r.schema.kind: r
        for r in loader.load_file(SAMPLES / "mixer-rule-productpage-ratelimit.yaml")
    }
    spec = resources["QuotaSpec"].spec
    assert [(q.quota, q.charge) for q in spec.rules[0].quotas] == [("requestcountquota", 1)]
    binding = resources["QuotaSpecBinding"].spec
    assert [(s.name, s.namespace) for s in binding.services] == [("productpage", "default")]
    assert [(r.name, r.namespace) for r in binding.quota_specs] == [
        ("request-count", "istio-system")
    ]


def _problems(kind: str, spec: dict) -> list[str]:
    doc = {
        "apiVersion": "config.istio.io/v1alpha2",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "istio-system"},
        "spec": spec,
    }
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(yaml.safe_dump(doc))
    return [str(p) for e in caught.value.errors for p in e.problems]


def test_bad_quota_specs_are_refused_naming_the_field():
    assert _problems("QuotaSpec", {}) == ["spec.rules: at least one rule must be specified"]
    assert _problems("QuotaSpec", {"rules": [{"quotas": [{"charge": -1}]}]}) == [
        "spec.rules[0].quotas[0].quota: the quota name must be specified",
        "spec.rules[0].quotas[0].charge: the charge must be positive, got -1",
    ]
    assert _problems(
        "QuotaSpec",
        {
            "rules": [
                {
                    "match": [{"clause": {"request.path": {"prefix": ""}}}],
                    "quotas": [{"quota": "q", "charge": 1}],
                }
            ]
        },
    ) == [
        "spec.rules[0].match[0].clause.request.path.prefix: the prefix match of 'request.path' must not be empty"
    ]
    regex = _problems(
        "QuotaSpec",
        {
            "rules": [
                {
                    "match": [{"clause": {"request.path": {"regex": "(a"}}}],
                    "quotas": [{"quota": "q", "charge": 1}],
                }
            ]
        },
    )
    assert regex[0].startswith(
        "spec.rules[0].match[0].clause.request.path.regex: invalid regular expression"
    )
    assert "not supported by this mesh's proxies" in regex[1]


def test_bad_quota_spec_bindings_are_refused_naming_the_field():
    assert _problems("QuotaSpecBinding", {}) == [
        "spec.services: at least one service must be specified",
        "spec.quotaSpecs: at least one quota spec must be specified",
    ]
    assert _problems(
        "QuotaSpecBinding",
        {
            "services": [
                {"name": "Product_Page", "service": "x.default.svc.cluster.local"},
                {"namespace": "default"},
            ],
            "quotaSpecs": [{"namespace": "Not A Label"}],
        },
    ) == [
        "spec.services[0]: name and service cannot be specified together",
        "spec.services[0].name: 'Product_Page' is not a valid service name",
        "spec.services[1]: a service needs a name or a service (FQDN)",
        "spec.quotaSpecs[0].name: the quota spec's name is required",
        "spec.quotaSpecs[0].namespace: 'Not A Label' is not a valid namespace",
    ]


def test_a_binding_to_every_service_is_valid():
    doc = """
apiVersion: config.istio.io/v1alpha2
kind: QuotaSpecBinding
metadata: {name: all, namespace: istio-system}
spec:
  services: [{service: '*'}]
  quotaSpecs: [{name: request-count}]
"""
    (binding,) = loader.load_text(doc)
    assert binding.spec.services[0].service == "*"
