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

    @property
    def api_version(self) -> str:
        return self.schema.api_version_at(self.version)


def resolve(kinds: KindSet, group: str, version: str, rest: str) -> Target:
    """The target of `/apis/<group>/<version>/<rest>` (group "" for `/api/<version>/<rest>`)."""
    segments = rest.strip("/").split("/") if rest.strip("/") else []
    namespace: str | None = None
    if len(segments) >= 3 and segments[0] == "namespaces":
        namespace, segments = segments[1], segments[2:]
        namespaced = True
    else:
        namespaced = False
    if not segments or len(segments) > 2 or not all(segments):
        raise not_found()
    schema = kinds.by_plural(group, version, segments[0])
    if schema is None or (namespaced != schema.namespaced and (namespaced or len(segments) > 1)):
        # A namespaced kind's object is only under namespaces/<ns>/; a cluster kind has none.
        raise not_found()
    if not schema.namespaced:
        namespace = ""
    name = segments[1] if len(segments) == 2 else None
    return Target(schema, version, namespace, name)


def not_found() -> status.StatusError:
    return status.StatusError(404, "NotFound", "the server could not find the requested resource")


def from_request(request: web.Request, kinds: KindSet) -> Target:
    info = request.match_info
    return resolve(kinds, info.get("group", ""), info["version"], info.get("rest", ""))
