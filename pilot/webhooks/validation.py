"""`/validate`: Istio's config validation webhook, with the shared loader.

CREATE and UPDATE of a kind the mesh knows are checked exactly as the config store and
istioctl check them (pkg/config/loader); the denial's message is the loader's, after
Istio's "configuration is invalid: ". Other operations are allowed, as Istio allows them.
"""

from __future__ import annotations

from typing import Any

from pilot.webhooks import admission
from pkg.config import loader
from pkg.config.kinds import ALL


def review(request: admission.AdmissionRequest) -> dict[str, Any]:
    if request.operation not in ("CREATE", "UPDATE"):
        return admission.allowed(request)
    document = request.object
    if not isinstance(document, dict):
        return admission.denied(request, "cannot decode configuration: the request has no object")
    api_version, kind = document.get("apiVersion", ""), document.get("kind", "")
    if ALL.by_kind(str(api_version), str(kind)) is None:
        return admission.denied(request, f"unrecognized type {kind}.{api_version}")
    try:
        loader.load_object(
            document, namespace=request.namespace or None, source="<admission request>"
        )
    except loader.LoadError as error:
        return admission.denied(request, f"configuration is invalid: {error}")
    return admission.allowed(request)
