"""The mesh resources an instance owns, from its record and plan."""

from __future__ import annotations

from api.broker.v1alpha1 import service_instance_pb2, service_plan_pb2
from broker import names, resources
from pkg.config import loader
from pkg.config.validation import specs
from pkg.config.validation.result import ValidationResult

SETTINGS = resources.Settings("cluster.local", "istio-broker")
BOUND = names.spiffe_id("cluster.local", "istio-broker", "inst", "b1")


def _record(*bound: str) -> service_instance_pb2.ServiceInstance:
    return service_instance_pb2.ServiceInstance(
        instance_id="inst",
        target=service_instance_pb2.Target(
            host="productpage.default.svc.cluster.local",
            namespace="default",
            workload_labels={"app": "productpage"},
        ),
        bound_identities=list(bound),
    )


def _plain(resource) -> dict:
    return resource.to_dict()


def test_every_instance_gets_a_fence_on_its_service_for_identities_bound_elsewhere():
    sibling = names.spiffe_id("cluster.local", "istio-broker", "other-instance", "b")
    (fence,) = resources.desired(
        "inst", _record(BOUND), service_plan_pb2.Provisioning(), SETTINGS, admitted={sibling}
    )
    body = _plain(fence)
    key = names.instance_key("inst")
    assert body["metadata"]["name"] == f"osb-{key}-fence"
    assert body["metadata"]["namespace"] == "default"
    assert body["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "istio-broker",
        "broker.istio.io/instance": key,
    }
    assert body["spec"] == {
        "selector": {"matchLabels": {"app": "productpage"}},
        "action": "DENY",
        "rules": [
            {
                "from": [
                    {
                        "source": {
                            "principals": ["cluster.local/ns/istio-broker/sa/osb-*"],
                            "notPrincipals": sorted(
                                [BOUND.removeprefix("spiffe://"), sibling.removeprefix("spiffe://")]
                            ),
                        }
                    }
                ]
            }
        ],
    }
    # Every binding identity falls under the fences' prefix.
    assert names.service_account("inst", "b1").startswith(f"osb-{key}-")


def test_the_broker_fence_is_mesh_wide_and_admits_only_what_is_bound():
    fence = resources.broker_fence({BOUND}, SETTINGS).to_dict()
    assert (fence["metadata"]["namespace"], fence["metadata"]["name"]) == (
        "istio-system",
        "istio-broker-fence",
    )
    assert fence["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "istio-broker"}
    assert "selector" not in fence["spec"]  # every workload of the mesh
    assert fence["spec"]["rules"][0]["from"][0]["source"] == {
        "principals": ["cluster.local/ns/istio-broker/sa/osb-*"],
        "notPrincipals": [BOUND.removeprefix("spiffe://")],
    }
    empty = resources.broker_fence(set(), SETTINGS).to_dict()
    assert "notPrincipals" not in empty["spec"]["rules"][0]["from"][0]["source"]


def test_allow_policy_admits_bound_identities_and_nobody_when_none_are():
    plan = service_plan_pb2.Provisioning(allow_policy=True)
    _, allow = resources.desired("inst", _record(BOUND), plan, SETTINGS)
    assert _plain(allow)["spec"]["rules"] == [
        {"from": [{"source": {"principals": [BOUND.removeprefix("spiffe://")]}}]}
    ]
    _, empty = resources.desired("inst", _record(), plan, SETTINGS)
    assert "rules" not in _plain(empty)["spec"]  # ALLOW without rules admits no one


def test_templates_are_copied_per_instance_and_still_validate():
    plan = loader.load_text(
        """
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: exposed}
spec:
  plan: {name: exposed, id: exposed, description: d}
  services: [service-class/default/productpage]
  provisioning:
    serviceEntry:
      hosts: [api.partner.example]
      location: MESH_EXTERNAL
      resolution: DNS
      ports: [{number: 443, name: tls, protocol: TLS}]
    virtualService:
      hosts: [productpage.partner.example]
      gateways: [istio-system/bookinfo-gateway]
      http: [{route: [{destination: {host: productpage.default.svc.cluster.local}}]}]
"""
    )[0].spec.provisioning
    made = resources.desired("inst", _record(), plan, SETTINGS)
    assert [(r.schema.kind, r.metadata.name) for r in made] == [
        ("AuthorizationPolicy", names.owned("inst", "fence")),
        ("ServiceEntry", names.owned("inst")),
        ("VirtualService", names.owned("inst")),
    ]
    for resource in made:
        result = ValidationResult()
        specs.validate(resource, result)
        assert result.ok, result.errors
    refs = resources.refs(made)
    assert [resources.schema_of(r) for r in refs] == [r.schema for r in made]
