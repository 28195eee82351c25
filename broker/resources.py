"""The mesh resources an instance owns, as a pure function of its record and its plan.

Every instance gets one AuthorizationPolicy, the fence: DENY, on the service's workloads,
for every identity the instance could hand out (a prefix of service accounts) except the
ones bound now. It touches no other caller, so it is safe on any service, and it is what
makes unbinding revoke a certificate that is still within its validity. Plans may add an
ALLOW policy for the bound identities (for services that ALLOW policies lock down), and a
ServiceEntry and a VirtualService copied from the plan's templates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from api.broker.v1alpha1 import service_instance_pb2, service_plan_pb2
from api.security.v1beta1 import authorization_pb2
from broker import names
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Metadata, Resource

AUTHORIZATION_POLICY = ALL.by_kind("security.istio.io/v1beta1", "AuthorizationPolicy")
SERVICE_ENTRY = ALL.by_kind("networking.istio.io/v1alpha3", "ServiceEntry")
VIRTUAL_SERVICE = ALL.by_kind("networking.istio.io/v1alpha3", "VirtualService")
OWNABLE: tuple[KindSchema, ...] = tuple(
    s for s in (AUTHORIZATION_POLICY, SERVICE_ENTRY, VIRTUAL_SERVICE) if s is not None
)


@dataclasses.dataclass(frozen=True)
class Settings:
    trust_domain: str
    namespace: str  # where binding identities live (and the broker's records)


def desired(
    instance_id: str,
    record: service_instance_pb2.ServiceInstance,
    provisioning: service_plan_pb2.Provisioning,
    settings: Settings,
) -> list[Resource]:
    target = record.target
    bound = sorted(names.principal(i) for i in record.bound_identities)
    selector = {"match_labels": dict(target.workload_labels)}
    fence = authorization_pb2.AuthorizationPolicy(
        selector=selector,
        action=authorization_pb2.AuthorizationPolicy.DENY,
        rules=[
            {
                "from": [
                    {
                        "source": {
                            "principals": [
                                names.instance_principals(
                                    settings.trust_domain, settings.namespace, instance_id
                                )
                            ],
                            "not_principals": bound,
                        }
                    }
                ]
            }
        ],
    )
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


def _resource(
    schema: KindSchema | None, instance_id: str, what: str, namespace: str, spec
) -> Resource:
    assert schema is not None
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
