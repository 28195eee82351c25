"""broker.istio.io validators, driven through the loader."""

from __future__ import annotations

import pytest
import yaml

from pkg.config import loader


def load(kind: str, spec: dict):
    doc = {
        "apiVersion": "broker.istio.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }
    return loader.load_text(yaml.safe_dump(doc))


def problems(kind: str, spec: dict) -> list[str]:
    with pytest.raises(loader.LoadError) as caught:
        load(kind, spec)
    return [str(p) for e in caught.value.errors for p in e.problems]


def test_istio_08_demo_catalog_loads():
    # Istio 0.8's broker/example/demo_catalog.yaml, at this API version.
    (service_class,) = load(
        "ServiceClass",
        {
            "deployment": {"instance": "productpage"},
            "entry": {
                "name": "istio-bookinfo-productpage",
                "id": "4395a443-f49a-41b0-8d14-d17294cf612f",
                "description": "A book info service",
            },
        },
    )
    assert service_class.spec.entry.name == "istio-bookinfo-productpage"
    (plan,) = load(
        "ServicePlan",
        {
            "plan": {
                "name": "istio-monthly",
                "id": "58646b26-867a-4954-a1b9-233dac07815b",
                "description": "monthly subscription",
            },
            "services": ["service-class/default/productpage-service-class"],
        },
    )
    assert list(plan.spec.services) == ["service-class/default/productpage-service-class"]


def test_service_class_needs_a_listing_and_a_service():
    assert problems("ServiceClass", {"entry": {"name": "has space", "id": " "}}) == [
        "spec.entry.name: 'has space' is not CLI-friendly: use letters, digits, periods and hyphens",
        "spec.entry.id: an id must be a non-blank string of at most 255 characters",
        "spec.entry.description: a catalog entry needs a description",
        "spec.deployment.instance: name the service (a ServiceEntry or host)",
    ]


def test_service_plan_keys_and_provisioning_templates():
    spec = {
        "plan": {"name": "gold", "id": "p1", "description": "d"},
        "services": ["productpage", "service-class/default/productpage"],
        "provisioning": {
            "serviceEntry": {"hosts": ["api.example.com"], "ports": [{"number": 0}]},
            "bindingTtl": "10s",
        },
    }
    found = problems("ServicePlan", spec)
    assert found[0] == (
        "spec.services[0]: 'productpage' is not a ServiceClass key: "
        "want service-class/<namespace>/<name>"
    )
    assert any(p.startswith("spec.provisioning.serviceEntry.ports[0]") for p in found), found
    assert found[-1] == "spec.provisioning.bindingTtl: must be between 1m and 2160h, got 10s"


def test_records_need_their_ids():
    assert problems("ServiceInstance", {"instanceId": "i"}) == [
        "spec.serviceId: required",
        "spec.planId: required",
    ]
    assert problems(
        "ServiceBinding",
        {
            "bindingId": "b",
            "instanceId": "i",
            "serviceId": "s",
            "planId": "p",
            "lastOperation": {"state": "SUCCEEDED"},
            "credentials": {"certificateChain": "pem"},
        },
    ) == [
        "spec.lastOperation.finished: a finished operation needs its finish time",
        "spec.spiffeId: credentials need the identity they were issued for",
    ]
