"""PATCH bodies by Content-Type, as a Kubernetes API server reads them for custom resources.

    application/merge-patch+json     RFC 7386 (mergepatch.py)
    application/json-patch+json      RFC 6902, by the `jsonpatch` library
    application/apply-patch+yaml     server-side apply (apply.py)
    application/strategic-merge-patch+json   Kubernetes' own kinds (strategicpatch.py); 415 for
                                     a custom resource, which has no patch directives
    anything else                    415

A patch applies to the object at the version the request names; errors are Kubernetes'
(a malformed patch 400, one that cannot apply 422, more than 10,000 operations 413).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from pilot.configstore import codec, status, strategicpatch
from pilot.configstore.mergepatch import merge_patch
from pkg.config.kinds import KindSchema

_Object = dict[str, Any]
MAX_JSON_PATCH_OPERATIONS = 10_000


def accepted(schema: KindSchema) -> tuple[str, ...]:
    """The patch types a kind takes (apply included)."""
    if schema.is_kubernetes:
        return (*codec.PATCH_TYPES, codec.STRATEGIC_PATCH)
    return codec.PATCH_TYPES


def applier(media: str, patch: Any, schema: KindSchema | None = None) -> Callable[[_Object], Any]:
    """The function that patches an object, for a merge, JSON or (Kubernetes kinds) strategic
    merge patch; 4xx when it is not one."""
    if media == codec.STRATEGIC_PATCH and schema is not None and schema.is_kubernetes:
        if not isinstance(patch, dict):
            raise status.bad_request("a strategic merge patch must be a JSON object")
        return lambda obj: strategicpatch.apply(schema, obj, patch)
    if media == codec.MERGE_PATCH:
        if not isinstance(patch, dict):
            raise status.bad_request("a merge patch must be a JSON object")
        return lambda obj: merge_patch(obj, patch)
    if media == codec.JSON_PATCH:
        return _json_patch(patch)
    raise codec.unsupported(accepted(schema) if schema is not None else codec.PATCH_TYPES)


def _json_patch(operations: Any) -> Callable[[_Object], Any]:
    if not isinstance(operations, list):
        raise status.bad_request("a JSON patch must be a JSON array of operations")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise status.StatusError(
            413,
            "RequestEntityTooLarge",
            f"Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}",
        )
    try:
        # Every operation is parsed here: a malformed one is the request's fault (400).
        patch = jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError) as error:
        raise status.bad_request(f"invalid JSON patch: {error}") from None

    def apply(obj: _Object) -> Any:
        try:
            return patch.apply(obj, in_place=False)
        except (
            jsonpatch.JsonPatchException,
            jsonpointer.JsonPointerException,
            KeyError,
            IndexError,
            TypeError,
        ) as error:
            # Kubernetes' reason and opening words, then what did not apply.
            why = re.sub(r" \(<class '\w+'>\)", "", str(error))
            raise status.StatusError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request: "
                f"the JSON patch does not apply: {why}",
            ) from None

    return apply
