"""The broker's records (ServiceInstance, ServiceBinding) in the config store.

Records are read straight from the store, never from a cache, so every decision sees the
latest write; updates carry the resourceVersion they read, so two brokers (or a request and
a background operation) can never overwrite each other silently: the loser gets
`errors.Conflict` and answers ConcurrencyError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import AsyncIterator

from api.broker.v1alpha1 import service_binding_pb2, service_instance_pb2
from broker import names
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Metadata, Resource
from pkg.kube import errors
from pkg.kube.client import ConfigClient


def _kind(kind: str) -> KindSchema:
    schema = ALL.by_kind("broker.istio.io/v1alpha1", kind)
    assert schema is not None, f"{kind} missing from kinds.yaml"
    return schema


INSTANCE = _kind("ServiceInstance")
BINDING = _kind("ServiceBinding")
Operation = service_instance_pb2.Operation


@dataclasses.dataclass(frozen=True)
class Stored:
    """A record as read: its metadata (resourceVersion for the next update) and spec."""

    metadata: Metadata
    spec: service_instance_pb2.ServiceInstance | service_binding_pb2.ServiceBinding


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class Records:
    def __init__(self, client: ConfigClient, namespace: str) -> None:
        self._client = client
        self.namespace = namespace

    async def instance(self, instance_id: str) -> Stored | None:
        return await self._get(INSTANCE, names.instance_record(instance_id), instance_id)

    async def binding(self, instance_id: str, binding_id: str) -> Stored | None:
        stored = await self._get(
            BINDING, names.binding_record(instance_id, binding_id), instance_id
        )
        if stored is not None and stored.spec.binding_id != binding_id:
            return None  # a key collision: another binding's record
        return stored

    async def _get(self, schema: KindSchema, name: str, instance_id: str) -> Stored | None:
        try:
            resource = await self._client.get(schema, name, self.namespace)
        except errors.NotFound:
            return None
        if resource.spec.instance_id != instance_id:
            return None  # a key collision: another instance's record
        return Stored(resource.metadata, resource.spec)

    async def create_instance(
        self, instance_id: str, spec: service_instance_pb2.ServiceInstance
    ) -> Stored:
        """Raises errors.AlreadyExists if a record is there already."""
        return await self._create(INSTANCE, names.instance_record(instance_id), instance_id, spec)

    async def create_binding(
        self, instance_id: str, binding_id: str, spec: service_binding_pb2.ServiceBinding
    ) -> Stored:
        return await self._create(
            BINDING, names.binding_record(instance_id, binding_id), instance_id, spec
        )

    async def _create(self, schema: KindSchema, name: str, instance_id: str, spec) -> Stored:
        metadata = Metadata(name=name, namespace=self.namespace, labels=names.labels(instance_id))
        created = await self._client.create(Resource(schema, metadata, spec))
        return Stored(created.metadata, created.spec)

    async def update(self, stored: Stored, spec) -> Stored:
        """Replaces the record's spec if nobody wrote it since `stored` was read; raises
        errors.Conflict (changed) or errors.NotFound (deleted) otherwise."""
        schema = INSTANCE if isinstance(spec, service_instance_pb2.ServiceInstance) else BINDING
        updated = await self._client.update(Resource(schema, stored.metadata, spec))
        return Stored(updated.metadata, updated.spec)

    async def delete(self, stored: Stored) -> None:
        schema = (
            INSTANCE if isinstance(stored.spec, service_instance_pb2.ServiceInstance) else BINDING
        )
        with contextlib.suppress(errors.NotFound):
            await self._client.delete(schema, stored.metadata.name, self.namespace)

    async def instances(self) -> list[Stored]:
        listed = await self._client.list(INSTANCE, self.namespace)
        return [Stored(r.metadata, r.spec) for r in listed.items]

    async def bindings(self, instance_id: str | None = None) -> list[Stored]:
        """Every binding record (of one instance, when given)."""
        listed = await self._client.list(BINDING, self.namespace)
        return [
            Stored(r.metadata, r.spec)
            for r in listed.items
            if instance_id is None or r.spec.instance_id == instance_id
        ]

    async def iter_all(self) -> AsyncIterator[Stored]:
        for stored in await self.instances():
            yield stored
        for stored in await self.bindings():
            yield stored
