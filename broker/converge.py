"""Making the mesh hold what an instance's record says it should own.

`converge` reads the record, writes every desired resource and deletes the recorded ones no
longer desired (all of them once the instance is being deprovisioned), then reads the record
again: if anyone changed it meanwhile (another request, another broker), it goes round again.
Whoever writes a record last therefore also converges last, so the resources never stay
behind a record, however requests interleave.
"""

from __future__ import annotations

import contextlib
import logging

from api.broker.v1alpha1 import service_instance_pb2
from broker import names, resources
from broker.osb import errors
from broker.records import Operation, Records
from pkg.config.resource import Resource
from pkg.kube import errors as kube_errors
from pkg.kube.client import ConfigClient

log = logging.getLogger("broker")
ATTEMPTS = 10


class Converger:
    def __init__(self, client: ConfigClient, records: Records, settings: resources.Settings):
        self._client = client
        self._records = records
        self.settings = settings

    async def converge(self, instance_id: str) -> None:
        for _ in range(ATTEMPTS):
            stored = await self._records.instance(instance_id)
            if stored is None:
                return
            await self._apply(instance_id, stored.spec)
            again = await self._records.instance(instance_id)
            if again is None or again.metadata.resource_version == stored.metadata.resource_version:
                return
        raise errors.ConcurrencyError(
            f"instance {instance_id!r} kept changing while its resources were written; try again"
        )

    async def _apply(self, instance_id: str, record: service_instance_pb2.ServiceInstance) -> None:
        op = record.last_operation
        leaving = record.deprovisioned or (
            op.type == Operation.DEPROVISION and op.state == Operation.IN_PROGRESS
        )
        wanted = [] if leaving else self.desired(instance_id, record)
        for resource in wanted:
            await self._put(instance_id, resource)
        keep = {resources.key(r) for r in resources.refs(wanted)}
        for ref in record.resources:
            if resources.key(ref) not in keep:
                await self.remove(instance_id, ref)

    def desired(
        self, instance_id: str, record: service_instance_pb2.ServiceInstance
    ) -> list[Resource]:
        return resources.desired(instance_id, record, record.provisioning, self.settings)

    def desired_refs(
        self, instance_id: str, record: service_instance_pb2.ServiceInstance
    ) -> list[service_instance_pb2.OwnedResource]:
        return resources.refs(self.desired(instance_id, record))

    async def _put(self, instance_id: str, resource: Resource) -> None:
        meta = resource.metadata
        try:
            current = await self._client.get(resource.schema, meta.name, meta.namespace)
        except kube_errors.NotFound:
            current = None
        if current is not None and not _owned_by(current, instance_id):
            raise errors.Conflict(
                f"{resource.schema.kind} {meta.namespace}/{meta.name} exists and is not this "
                "instance's; the broker leaves it alone",
                error="ResourceNotOwned",
            )
        await self._client.apply(resource)

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


def _owned_by(resource: Resource, instance_id: str) -> bool:
    return resource.metadata.labels.get(names.INSTANCE_LABEL) == names.instance_key(instance_id)
