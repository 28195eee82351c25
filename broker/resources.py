"""The mesh resources the broker owns, as pure functions of its records.

Binding identities all live in the broker's namespace (`<td>/ns/<namespace>/sa/osb-...`), so
AuthorizationPolicies can fence them by prefix without touching any other caller:

- the broker's fence (one, mesh-wide in the root namespace): DENY every binding identity that
  is not bound now. Unbinding or deprovisioning therefore revokes a certificate everywhere,
  though it is still within its validity;
- an instance's fence (one per instance, on its service's workloads): DENY every binding
  identity not bound to an instance of that service, so that at a service only its own
  bindings get in;
- plans may add an ALLOW policy for the instance's bound identities (for services that ALLOW
  policies lock down, as Istio's allow-nothing posture does), and a ServiceEntry and a
  VirtualService copied from the plan's templates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from api.broker.v1alpha1 import service_instance_pb2, service_plan_pb2
from api.security.v1beta1 import authorization_pb2
from broker import names
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Metadata, Resource


def _kind(api_version: str, kind: str) -> KindSchema:
    schema = ALL.by_kind(api_version, kind)
    assert schema is not None, f"{kind} missing from kinds.yaml"
    return schema


AUTHORIZATION_POLICY = _kind("security.istio.io/v1beta1", "AuthorizationPolicy")
SERVICE_ENTRY = _kind("networking.istio.io/v1alpha3", "ServiceEntry")
VIRTUAL_SERVICE = _kind("networking.istio.io/v1alpha3", "VirtualService")


BROKER_FENCE = "istio-broker-fence"


@dataclasses.dataclass(frozen=True)
class Settings:
    trust_domain: str
    namespace: str  # where binding identities live (and the broker's records)
    root_namespace: str = "istio-system"  # where mesh-wide policies live

    @property
    def identities(self) -> str:
        """Every binding identity, as an AuthorizationPolicy principal prefix."""
        return f"{self.trust_domain}/ns/{self.namespace}/sa/osb-*"


def _fence(selector: dict | None, admitted: Iterable[str], settings: Settings):
    return authorization_pb2.AuthorizationPolicy(
        selector=selector,
        action=authorization_pb2.AuthorizationPolicy.DENY,
        rules=[
            {
                "from": [
                    {
                        "source": {
                            "principals": [settings.identities],
                            "not_principals": sorted({names.principal(i) for i in admitted}),
                        }
                    }
                ]
            }
        ],
    )


def broker_fence(bound: Iterable[str], settings: Settings) -> Resource:
    """The mesh-wide DENY of every binding identity not bound now (`bound`: SPIFFE ids)."""
    metadata = Metadata(
        name=BROKER_FENCE,
        namespace=settings.root_namespace,
        labels={names.MANAGED_BY: names.BROKER},
    )
    return Resource(AUTHORIZATION_POLICY, metadata, _fence(None, bound, settings))


def desired(
    instance_id: str,
    record: service_instance_pb2.ServiceInstance,
    provisioning: service_plan_pb2.Provisioning,
    settings: Settings,
    admitted: Iterable[str] = (),
) -> list[Resource]:
    """What the instance owns. `admitted`: the identities bound to any instance of the same
    service (its own included), which the instance's fence lets through."""
    target = record.target
    bound = sorted(names.principal(i) for i in record.bound_identities)
    selector = {"match_labels": dict(target.workload_labels)}
    fence = _fence(selector, {*admitted, *record.bound_identities}, settings)
    resources = [_resource(AUTHORIZATION_POLICY, instance_id, "fence", target.namespace, fence)]
    if provisioning.allow_policy:
        allow = authorization_pb2.AuthorizationPolicy(
            selector=selector,
            action=authorization_pb2.AuthorizationPolicy.ALLOW,
            # No rules while nothing is bound: an ALLOW policy without rules admits no one.
            rules=[{"from": [{"source": {"principals": bound}}]}] if bound else [],
        )
        resources.append(
            _resource(AUTHORIZATION_POLICY, instance_id, "allow", target.namespace, allow)
        )
    if provisioning.HasField("service_entry"):
        resources.append(
            _resource(SERVICE_ENTRY, instance_id, "", target.namespace, provisioning.service_entry)
        )
    if provisioning.HasField("virtual_service"):
        resources.append(
            _resource(
                VIRTUAL_SERVICE, instance_id, "", target.namespace, provisioning.virtual_service
            )
        )
    return resources


def _resource(schema: KindSchema, instance_id: str, what: str, namespace: str, spec) -> Resource:
    copy = schema.new_spec()
    copy.CopyFrom(spec)
    metadata = Metadata(
        name=names.owned(instance_id, what), namespace=namespace, labels=names.labels(instance_id)
    )
    return Resource(schema=schema, metadata=metadata, spec=copy)


def refs(resources: Iterable[Resource]) -> list[service_instance_pb2.OwnedResource]:
    return [
        service_instance_pb2.OwnedResource(
            api_version=r.schema.api_version,
            kind=r.schema.kind,
            namespace=r.metadata.namespace,
            name=r.metadata.name,
        )
        for r in resources
    ]


def schema_of(ref: service_instance_pb2.OwnedResource) -> KindSchema | None:
    return ALL.by_kind(ref.api_version, ref.kind)


def key(ref: service_instance_pb2.OwnedResource) -> tuple[str, str, str, str]:
    return (ref.api_version, ref.kind, ref.namespace, ref.name)
