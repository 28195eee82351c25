"""The catalog from ServiceClass, ServicePlan and annotated ServiceEntry resources."""

from __future__ import annotations

import pathlib

from broker import catalog
from pkg.config import loader

DEMO = pathlib.Path(__file__).with_name("example") / "demo_catalog.yaml"

ENTRY = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata:
  name: ratings
  namespace: default
  annotations: {"broker.istio.io/catalog": "true", "broker.istio.io/description": "Stars"}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
"""


def _build(*texts: str, paths: tuple[pathlib.Path, ...] = ()) -> catalog.CatalogIndex:
    resources = [r for p in paths for r in loader.load_file(p)]
    resources += [r for t in texts for r in loader.load_text(t)]
    by_kind: dict[str, list] = {"ServiceClass": [], "ServicePlan": [], "ServiceEntry": []}
    for r in resources:
        by_kind[r.schema.kind].append(r)
    return catalog.build(by_kind["ServiceClass"], by_kind["ServicePlan"], by_kind["ServiceEntry"])


def test_istio_demo_catalog_as_istio_08_assembled_it():
    index = _build(paths=(DEMO,))
    (service,) = index.catalog.to_json()["services"]
    assert service["name"] == "istio-bookinfo-productpage"
    assert service["id"] == "4395a443-f49a-41b0-8d14-d17294cf612f"
    assert service["bindable"] is True
    assert [(p["name"], p["id"]) for p in service["plans"]] == [
        ("istio-monthly", "58646b26-867a-4954-a1b9-233dac07815b"),
        ("istio-yearly", "cdd76b03-a28b-4638-b4e2-19ee44b36db7"),
    ]
    offering = index.offerings[service["id"]]
    assert (offering.namespace, offering.deployment) == ("default", "productpage")
    assert index.problems == ()


def test_annotated_service_entry_gets_a_default_plan_with_stable_ids():
    first, again = _build(ENTRY), _build(ENTRY)
    (service,) = first.catalog.to_json()["services"]
    assert service["name"] == "ratings.default"
    assert service["description"] == "Stars"
    assert [p["name"] for p in service["plans"]] == ["default"]
    assert again.catalog == first.catalog  # the same ids on every build


def test_unannotated_or_selectorless_entries_stay_out():
    plain = ENTRY.replace('"broker.istio.io/catalog": "true", ', "")
    assert _build(plain).catalog.services == ()
    external = ENTRY.replace("  workloadSelector: {labels: {app: ratings}}\n", "")
    index = _build(external)
    assert index.catalog.services == ()
    assert "no workloadSelector" in index.problems[0]


def test_a_class_without_plans_and_duplicate_ids_are_left_out_with_reasons():
    lonely = """
apiVersion: broker.istio.io/v1alpha1
kind: ServiceClass
metadata: {name: lonely, namespace: default}
spec:
  deployment: {instance: details}
  entry: {name: lonely, id: lonely-id, description: d}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServiceClass
metadata: {name: zz-copy, namespace: default}
spec:
  deployment: {instance: details}
  entry: {name: copy, id: 4395a443-f49a-41b0-8d14-d17294cf612f, description: d}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: copy-plan, namespace: default}
spec:
  plan: {name: p, id: copy-plan-id, description: d}
  services: [service-class/default/zz-copy]
"""
    index = _build(lonely, paths=(DEMO,))
    assert [s.name for s in index.catalog.services] == ["istio-bookinfo-productpage"]
    assert index.problems == (
        "ServiceClass default/lonely: no plan lists it; left out",
        "ServiceClass default/zz-copy: service id "
        "'4395a443-f49a-41b0-8d14-d17294cf612f' is taken; left out",
    )


def test_a_plan_shared_by_two_classes_gets_an_id_per_offering():
    shared = """
apiVersion: broker.istio.io/v1alpha1
kind: ServiceClass
metadata: {name: details, namespace: default}
spec:
  deployment: {instance: details}
  entry: {name: details, id: details-id, description: d}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServiceClass
metadata: {name: reviews, namespace: default}
spec:
  deployment: {instance: reviews}
  entry: {name: reviews, id: reviews-id, description: d}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: both, namespace: default}
spec:
  plan: {name: both, id: both-id, description: d}
  services: [service-class/default/details, service-class/default/reviews]
  provisioning: {asynchronous: true, readyTimeout: 2m}
"""
    index = _build(shared)
    plans = {s.name: s.plans[0] for s in index.catalog.services}
    assert plans["details"].id != plans["reviews"].id
    assert {plans["details"].id, plans["reviews"].id}.isdisjoint({"both-id"})
    # An asynchronous plan tells platforms how long to poll.
    assert plans["details"].maximum_polling_duration == 180
    assert index.plan("details-id", plans["details"].id).provisioning.asynchronous
