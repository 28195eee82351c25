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

import yaml
from google.protobuf import message, message_factory, symbol_database

_KINDS_FILE = pathlib.Path(__file__).with_name("kinds.yaml")


@dataclasses.dataclass(frozen=True)
class KindSchema:
    group: str
    version: str
    kind: str
    plural: str
    message: str  # full proto name of the spec, e.g. istio.networking.v1alpha3.VirtualService
    proto: str  # the .proto file declaring it, relative to the workspace root
    short: str
    sets: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def python_module(self) -> str:
        return self.proto.removesuffix(".proto").replace("/", ".") + "_pb2"

    def message_class(self) -> type[message.Message]:
        """The generated class of the spec; imports its module on first use."""
        importlib.import_module(self.python_module)
        descriptor = symbol_database.Default().pool.FindMessageTypeByName(self.message)
        return message_factory.GetMessageClass(descriptor)

    def new_spec(self) -> message.Message:
        return self.message_class()()

    def collection_path(self, namespace: str | None) -> str:
        """The Kubernetes REST path of the kind's collection (all namespaces when None)."""
        base = f"/apis/{self.group}/{self.version}"
        if namespace is None:
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
            key = (schema.api_version, schema.kind)
            if key in self._by_kind:
                raise ValueError(f"kind {schema} is declared twice")
            self._by_kind[key] = schema
            self._by_plural[(schema.group, schema.version, schema.plural)] = schema
            for name in {schema.kind.lower(), schema.plural, schema.short}:
                self._by_name.setdefault(name, []).append(schema)

    def __iter__(self) -> Iterator[KindSchema]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)

    def by_kind(self, api_version: str, kind: str) -> KindSchema | None:
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
        return [s.kind for s in self._schemas if s.api_version == api_version]


def _load(path: pathlib.Path) -> KindSet:
    schemas = []
    for group in yaml.safe_load(path.read_text()):
        for entry in group["kinds"]:
            schemas.append(
                KindSchema(
                    group=group["group"],
                    version=group["version"],
                    kind=entry["kind"],
                    plural=entry["plural"],
                    message=entry["message"],
                    proto=entry["proto"],
                    short=entry["short"],
                    sets=frozenset(entry["sets"]),
                )
            )
    return KindSet(schemas)


ALL = _load(_KINDS_FILE)
PILOT = ALL.in_set("pilot")
MIXER = ALL.in_set("mixer")
BROKER = ALL.in_set("broker")
