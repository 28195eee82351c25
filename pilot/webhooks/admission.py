"""AdmissionReview, `admission.k8s.io/v1` (and v1beta1, which the API server may still send):
the request a webhook receives and the response it answers with.

A response echoes the request's uid and apiVersion; a patch travels base64-encoded with
`patchType: JSONPatch`; a denial carries `allowed: false` and a `status` with the HTTP code
and the message the API server shows the user.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
KIND = "AdmissionReview"


class ReviewError(ValueError):
    """A body that is not an AdmissionReview request."""


@dataclasses.dataclass(frozen=True)
class AdmissionRequest:
    api_version: str
    uid: str
    kind: dict[str, str]
    namespace: str
    name: str
    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    object: Any
    old_object: Any
    dry_run: bool


def parse_review(body: bytes) -> AdmissionRequest:
    try:
        review = json.loads(body)
    except ValueError as error:
        raise ReviewError(f"could not decode body: {error}") from None
    if not isinstance(review, dict):
        raise ReviewError("could not decode body: an AdmissionReview is a JSON object")
    api_version = review.get("apiVersion")
    if api_version not in API_VERSIONS or review.get("kind") != KIND:
        raise ReviewError(
            f"could not decode body: want kind {KIND} of {' or '.join(API_VERSIONS)}, "
            f"got {review.get('kind')!r} of {api_version!r}"
        )
    request = review.get("request")
    if (
        not isinstance(request, dict)
        or not isinstance(request.get("uid"), str)
        or not request["uid"]
    ):
        raise ReviewError("could not decode body: the AdmissionReview has no request with a uid")
    kind: dict[str, Any] = request["kind"] if isinstance(request.get("kind"), dict) else {}
    return AdmissionRequest(
        api_version=api_version,
        uid=request["uid"],
        kind={k: str(v) for k, v in kind.items()},
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        operation=str(request.get("operation") or ""),
        object=request.get("object"),
        old_object=request.get("oldObject"),
        dry_run=bool(request.get("dryRun")),
    )


def allowed(
    request: AdmissionRequest | None,
    *,
    patch: list[Any] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {"allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(patch, separators=(",", ":")).encode()
        ).decode()
    if warnings:
        response["warnings"] = warnings
    return _review(request, response)


def denied(request: AdmissionRequest | None, message: str, *, code: int = 400) -> dict[str, Any]:
    reason = {400: "BadRequest", 403: "Forbidden", 422: "Invalid", 500: "InternalError"}.get(
        code, ""
    )
    status: dict[str, Any] = {"status": "Failure", "message": message, "code": code}
    if reason:
        status["reason"] = reason
    return _review(request, {"allowed": False, "status": status})


def _review(request: AdmissionRequest | None, response: dict[str, Any]) -> dict[str, Any]:
    # A body that could not be read has no uid to echo; the API server treats that as an error.
    return {
        "apiVersion": request.api_version if request else API_VERSIONS[0],
        "kind": KIND,
        "response": {"uid": request.uid if request else "", **response},
    }
