"""The registry of resource kinds, built once from kinds.yaml.

A KindSchema says everything a component needs to handle one kind: its Kubernetes names (for
YAML headers and REST paths), the proto message of its spec, and which components read it.
Stores and servers are generic over a set of schemas; none hard-codes a kind.
"""

from __future__ import annotations

import dataclasses
import importlib
import pathlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from google.protobuf.message import Message

_KINDS_FILE = pathlib.Path(__file__).with_name("kinds.yaml")


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """A column `kubectl get` shows, as a CRD's additionalPrinterColumns declare it."""

    name: str
    type: str  # string | integer | number | boolean | date
    json_path: str  # a simple JSONPath, e.g. .spec.hosts
    description: str = ""
    priority: int = 0  # 0: always shown; more: only with -o wide
    format: str = ""
    # Kubernetes' built-in kinds: a cell Kubernetes computes (READY `2/2`, PORT(S)
    # `9080/TCP`), by the name of its printer in pilot/configstore/printers.py.
    printer: str = ""


@dataclasses.dataclass(frozen=True)
class KindSchema:
    group: str  # "" for Kubernetes' core group
    version: str  # the stored version; the one objects carry inside the mesh
    kind: str
    plural: str
    # Istio's kinds: the full proto name of the spec (istio.networking.v1alpha3.VirtualService)
    # and the .proto file declaring it, relative to the workspace root. "" for Kubernetes' own.
    message: str
    proto: str
    sets: frozenset[str]
    short_names: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()  # every version served, the preferred first; () = (version,)
    categories: tuple[str, ...] = ()
    columns: tuple[PrinterColumn, ...] = ()
    scope: str = "Namespaced"  # or "Cluster"
    # Kubernetes' built-in kinds: the OpenAPI model whose schema validates the whole object
    # (io.k8s.api.core.v1.Service; see kubeschema.py), and the subresources served.
    openapi: str = ""
    subresources: tuple[str, ...] = ()

    @property
    def is_kubernetes(self) -> bool:
        """One of Kubernetes' own kinds (no proto; validated by Kubernetes' schema)."""
        return bool(self.openapi)

    @property
    def api_version(self) -> str:
        return self.api_version_at(self.version)

    def api_version_at(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def served_versions(self) -> tuple[str, ...]:
        return self.versions or (self.version,)

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def python_module(self) -> str:
        return self.proto.removesuffix(".proto").replace("/", ".") + "_pb2"

    def message_class(self) -> type[Message]:
        """The generated class of the spec; imports its module on first use."""
        if self.is_kubernetes:
            raise TypeError(f"{self.kind} is a Kubernetes kind: it has no proto")
        # Imported here: a command that only lists or prints objects never needs protobuf.
        from google.protobuf import message_factory, symbol_database

        importlib.import_module(self.python_module)
        descriptor = symbol_database.Default().pool.FindMessageTypeByName(self.message)
        return message_factory.GetMessageClass(descriptor)

    def new_spec(self) -> Message:
        return self.message_class()()

    def collection_path(self, namespace: str | None, version: str | None = None) -> str:
        """The Kubernetes REST path of the kind's collection (all namespaces when None)."""
        version = version or self.version
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        if namespace is None or not self.namespaced:
            return f"{base}/{self.plural}"
        return f"{base}/namespaces/{namespace}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}/{self.version}"


class KindSet:
    """An immutable set of kinds, looked up by any of the names users and servers use."""

    def __init__(self, schemas: Iterable[KindSchema]) -> None:
        self._schemas = tuple(schemas)
        self._by_kind: dict[tuple[str, str], KindSchema] = {}
        self._by_plural: dict[tuple[str, str, str], KindSchema] = {}
        self._by_name: dict[str, list[KindSchema]] = {}
        for schema in self._schemas:
            for version in schema.served_versions:
                key = (schema.api_version_at(version), schema.kind)
                if key in self._by_kind:
                    raise ValueError(f"kind {schema} is declared twice")
                self._by_kind[key] = schema
                self._by_plural[(schema.group, version, schema.plural)] = schema
            for name in {schema.singular, schema.plural, *schema.short_names}:
                self._by_name.setdefault(name, []).append(schema)

    def __iter__(self) -> Iterator[KindSchema]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)

    def by_kind(self, api_version: str, kind: str) -> KindSchema | None:
        """The kind at any version it is served at (`networking.istio.io/v1alpha3` or `/v1`)."""
        return self._by_kind.get((api_version, kind))

    def by_plural(self, group: str, version: str, plural: str) -> KindSchema | None:
        return self._by_plural.get((group, version, plural))

    def by_name(self, name: str) -> KindSchema:
        """A kind from what a user types (`virtualservice`, `vs`, `virtualservices`)."""
        found = self._by_name.get(name.lower(), [])
        if len(found) != 1:
            known = ", ".join(sorted(s.kind.lower() for s in self._schemas))
            reason = "is ambiguous" if found else "is not a known resource type"
            raise KeyError(f"{name!r} {reason}; known types: {known}")
        return found[0]

    def in_set(self, name: str) -> KindSet:
        return KindSet(s for s in self._schemas if name in s.sets)

    def kinds_of_version(self, api_version: str) -> list[str]:
        return [k for (v, k) in self._by_kind if v == api_version]

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Each group and its served versions, the preferred first, in declaration order."""
        out: dict[str, tuple[str, ...]] = {}
        for schema in self._schemas:
            seen = out.get(schema.group, ())
            out[schema.group] = seen + tuple(v for v in schema.served_versions if v not in seen)
        return out

    def at(self, group: str, version: str) -> list[KindSchema]:
        """The kinds served at group/version."""
        return [s for s in self._schemas if s.group == group and version in s.served_versions]


def _load(path: pathlib.Path) -> KindSet:
    schemas = []
    # libyaml's loader where PyYAML has it: eight times faster on this file, which every
    # program (istioctl's commands too) reads at start-up.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for group in yaml.load(path.read_text(), Loader=loader):
        versions = tuple(group["versions"])
        if group["storage"] not in versions:
            raise ValueError(f"{path}: group {group['group']!r} stores a version it does not serve")
        for entry in group["kinds"]:
            if bool(entry.get("openapi")) == bool(entry.get("message")):
                raise ValueError(
                    f"{path}: kind {entry['kind']!r} needs a proto message or an openapi model"
                )
            schemas.append(
                KindSchema(
                    group=group["group"],
                    version=group["storage"],
                    versions=versions,
                    kind=entry["kind"],
                    plural=entry["plural"],
                    message=entry.get("message", ""),
                    proto=entry.get("proto", ""),
                    short_names=tuple(entry.get("short", ())),
                    sets=frozenset(entry["sets"]),
                    categories=tuple(entry.get("categories", group.get("categories", ()))),
                    columns=tuple(
                        PrinterColumn(
                            name=c["name"],
                            type=c["type"],
                            json_path=c.get("jsonPath", ""),
                            description=c.get("description", ""),
                            priority=c.get("priority", 0),
                            format=c.get("format", ""),
                            printer=c.get("printer", ""),
                        )
                        for c in entry.get("columns", ())
                    ),
                    scope=entry.get("scope", "Namespaced"),
                    openapi=entry.get("openapi", ""),
                    subresources=tuple(entry.get("subresources", ())),
                )
            )
    return KindSet(schemas)


ALL = _load(_KINDS_FILE)
ISTIO = KindSet(s for s in ALL if not s.is_kubernetes)
KUBERNETES = KindSet(s for s in ALL if s.is_kubernetes)
PILOT = ALL.in_set("pilot")
MIXER = ALL.in_set("mixer")
BROKER = ALL.in_set("broker")
