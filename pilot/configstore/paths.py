"""Kubernetes REST paths to what they name, for every kind of the store's set.

    /apis/<group>/<version>/namespaces/<ns>/<plural>[/<name>]   a namespaced kind
    /apis/<group>/<version>/<plural>                            all namespaces, or a cluster kind
    /apis/<group>/<version>/<plural>/<name>                     an object of a cluster kind
    /api/<version>/...                                          the same, for the core group ("")

Resolved by hand rather than by route patterns, because `namespaces/<x>` is both the prefix of
namespaced paths and (for the core kind Namespace) an object's path.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from pilot.configstore import status
from pkg.config.kinds import KindSchema, KindSet


@dataclasses.dataclass(frozen=True)
class Target:
    schema: KindSchema
    version: str  # the version the path asks for: bodies come and go at it
    namespace: str | None  # None: every namespace (a list or watch); "" for a cluster kind
    name: str | None  # None: the collection
    subresource: str = ""  # an object's `status`, `scale`, `log`, `binding`, when it has them

    @property
    def api_version(self) -> str:
        return self.schema.api_version_at(self.version)


# The subresources of Kubernetes' own kinds that are written to without a declaration of their
# own in kinds.yaml (the scheduler binds pods to nodes).
_IMPLIED = {"Pod": ("binding",)}


def resolve(kinds: KindSet, group: str, version: str, rest: str) -> Target:
    """The target of `/apis/<group>/<version>/<rest>` (group "" for `/api/<version>/<rest>`)."""
    segments = rest.strip("/").split("/") if rest.strip("/") else []
    if not all(segments):
        raise not_found()
    namespaced = (
        len(segments) >= 3
        and segments[0] == "namespaces"
        and (schema := kinds.by_plural(group, version, segments[2])) is not None
        and schema.namespaced
    )
    namespace: str | None = None
    if namespaced:
        namespace, segments = segments[1], segments[2:]
    if not segments or len(segments) > 3:
        raise not_found()
    schema = kinds.by_plural(group, version, segments[0])
    if schema is None or (not namespaced and schema.namespaced and len(segments) > 1):
        # A namespaced kind's object is only under namespaces/<ns>/.
        raise not_found()
    if not schema.namespaced:
        namespace = ""
    name = segments[1] if len(segments) >= 2 else None
    subresource = segments[2] if len(segments) == 3 else ""
    if subresource and subresource not in (*schema.subresources, *_IMPLIED.get(schema.kind, ())):
        raise not_found()
    return Target(schema, version, namespace, name, subresource)


def not_found() -> status.StatusError:
    return status.StatusError(404, "NotFound", "the server could not find the requested resource")


def from_request(request: web.Request, kinds: KindSet) -> Target:
    info = request.match_info
    return resolve(kinds, info.get("group", ""), info["version"], info.get("rest", ""))
