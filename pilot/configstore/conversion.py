"""Objects between the version a request names and the one the store keeps.

Every served version of a kind has the same schema (as Istio's CRDs: conversion strategy
None), so converting rewrites `apiVersion` and nothing else; `managedFields` keep the version
each manager wrote at, as on a real server.
"""

from __future__ import annotations

from typing import Any

from pilot.configstore import status
from pkg.config.kinds import KindSchema

_Object = dict[str, Any]


def outgoing(obj: _Object, schema: KindSchema, version: str) -> _Object:
    """A stored object as the client asked for it."""
    api_version = schema.api_version_at(version)
    if obj.get("apiVersion") == api_version:
        return obj
    return {"apiVersion": api_version, **{k: v for k, v in obj.items() if k != "apiVersion"}}


def incoming(body: Any, schema: KindSchema, version: str) -> Any:
    """A request's object at the stored version; its apiVersion and kind must be the path's.

    A body without them gets the path's (as kubectl and the clients rely on); one with others
    is the client's bug (400, Kubernetes' wording).
    """
    if not isinstance(body, dict):
        return body  # the loader says what is wrong with it
    expected = schema.api_version_at(version)
    api_version = body.get("apiVersion", expected)
    kind = body.get("kind", schema.kind)
    if api_version != expected:
        raise status.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({expected})"
        )
    if kind != schema.kind:
        raise status.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({schema.kind})"
        )
    return {**body, "apiVersion": schema.api_version, "kind": kind}
