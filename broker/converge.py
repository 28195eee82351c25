"""Making the mesh hold what the broker's records say.

`converge(instance_id)` reads every instance record, writes what the instance should own
(fence, ALLOW policy, templates; nothing once it is being deprovisioned) and deletes the
recorded resources no longer wanted, refreshes the fences of the other instances of the same
service and the broker's mesh-wide fence (both depend on what is bound elsewhere), then
reads the records again: if any changed meanwhile (another request, another broker), it goes
round again. Whoever writes a record last therefore also converges last, so the mesh never
stays behind the records, however requests interleave.
"""

from __future__ import annotations

import contextlib
import logging

from api.broker.v1alpha1 import service_instance_pb2
from broker import names, resources
from broker.osb import errors
from broker.records import Operation, Records, Stored
from pkg.config.resource import Resource
from pkg.kube import errors as kube_errors
from pkg.kube.client import ConfigClient

log = logging.getLogger("broker")
ATTEMPTS = 10


def leaving(record: service_instance_pb2.ServiceInstance) -> bool:
    """Deprovisioned, or being deprovisioned: it owns nothing and admits no one any more."""
    op = record.last_operation
    return record.deprovisioned or (
        op.type == Operation.DEPROVISION and op.state == Operation.IN_PROGRESS
    )


def _service(record: service_instance_pb2.ServiceInstance) -> tuple:
    target = record.target
    return (target.namespace, tuple(sorted(target.workload_labels.items())))


def _inputs(stored: list[Stored], instance_id: str | None) -> tuple:
    """What a converge of `instance_id` writes depends on: its own record, and who is bound
    (to its service, for its fence and its siblings'; anywhere, for the broker's fence)."""
    own = next((s for s in stored if s.spec.instance_id == instance_id), None)
    live = [s.spec for s in stored if not leaving(s.spec)]
    bound = frozenset((_service(r), i) for r in live for i in r.bound_identities)
    return (own.metadata.resource_version if own else None, bound)


class Converger:
    def __init__(self, client: ConfigClient, records: Records, settings: resources.Settings):
        self._client = client
        self._records = records
        self.settings = settings

    async def converge(self, instance_id: str | None = None) -> None:
        """The instance's resources (none: only the broker's fence), until what they are made
        of holds still."""
        for _ in range(ATTEMPTS):
            listed = await self._records.instances()
            await self._write(instance_id, [s.spec for s in listed])
            if _inputs(await self._records.instances(), instance_id) == _inputs(
                listed, instance_id
            ):
                return
        raise errors.ConcurrencyError(
            f"the broker's records kept changing while {instance_id!r}'s resources were "
            "written; try again"
        )

    async def _write(
        self, instance_id: str | None, records: list[service_instance_pb2.ServiceInstance]
    ) -> None:
        live = [r for r in records if not leaving(r)]
        mine = next((r for r in records if r.instance_id == instance_id), None)
        if mine is not None:
            siblings = [r for r in live if _service(r) == _service(mine)]
            admitted = {i for r in siblings for i in r.bound_identities}
            await self._apply(mine.instance_id, mine, admitted)
            for sibling in siblings:
                if sibling.instance_id != instance_id:
                    fence = self.desired(sibling.instance_id, sibling, admitted)[0]
                    await self._put(fence, sibling.instance_id)
        bound = {i for r in live for i in r.bound_identities}
        fence = resources.broker_fence(bound, self.settings)
        # Until the first instance no binding identity can exist: no fence, so a mesh that
        # never used the broker carries no policy of its. Once written it stays (a revoked
        # binding's certificate is still valid until it expires).
        if records or await self._exists(fence):
            await self._put(fence, None)

    async def _apply(
        self, instance_id: str, record: service_instance_pb2.ServiceInstance, admitted: set[str]
    ) -> None:
        wanted = [] if leaving(record) else self.desired(instance_id, record, admitted)
        for resource in wanted:
            await self._put(resource, instance_id)
        keep = {resources.key(r) for r in resources.refs(wanted)}
        for ref in record.resources:
            if resources.key(ref) not in keep:
                await self.remove(instance_id, ref)

    def desired(
        self,
        instance_id: str,
        record: service_instance_pb2.ServiceInstance,
        admitted: set[str] | None = None,
    ) -> list[Resource]:
        return resources.desired(
            instance_id, record, record.provisioning, self.settings, admitted or set()
        )

    def desired_refs(
        self, instance_id: str, record: service_instance_pb2.ServiceInstance
    ) -> list[service_instance_pb2.OwnedResource]:
        return resources.refs(self.desired(instance_id, record))

    async def _put(self, resource: Resource, instance_id: str | None) -> None:
        """Create or update `resource`, unless the name is taken by something not ours."""
        meta = resource.metadata
        try:
            current = await self._client.get(resource.schema, meta.name, meta.namespace)
        except kube_errors.NotFound:
            current = None
        if current is not None and not _owned_by(current, instance_id):
            raise errors.Conflict(
                f"{resource.schema.kind} {meta.namespace}/{meta.name} exists and is not the "
                "broker's; the broker leaves it alone",
                error="ResourceNotOwned",
            )
        await self._client.apply(resource)

    async def _exists(self, resource: Resource) -> bool:
        meta = resource.metadata
        try:
            await self._client.get(resource.schema, meta.name, meta.namespace)
        except kube_errors.NotFound:
            return False
        return True

    async def remove(self, instance_id: str, ref: service_instance_pb2.OwnedResource) -> None:
        schema = resources.schema_of(ref)
        if schema is None:
            log.warning("cannot delete %s %s/%s: unknown kind", ref.kind, ref.namespace, ref.name)
            return
        try:
            current = await self._client.get(schema, ref.name, ref.namespace)
        except kube_errors.NotFound:
            return
        if not _owned_by(current, instance_id):
            log.warning("not deleting %s %s/%s: not ours", ref.kind, ref.namespace, ref.name)
            return
        with contextlib.suppress(kube_errors.NotFound):
            await self._client.delete(schema, ref.name, ref.namespace)


def _owned_by(resource: Resource, instance_id: str | None) -> bool:
    """The instance's (by its label), or, for instance None, the broker's own."""
    labels = resource.metadata.labels
    if instance_id is None:
        return labels.get(names.MANAGED_BY) == names.BROKER and names.INSTANCE_LABEL not in labels
    return labels.get(names.INSTANCE_LABEL) == names.instance_key(instance_id)
