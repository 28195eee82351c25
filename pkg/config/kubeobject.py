"""Objects of Kubernetes' own kinds (Service, Pod, Deployment, ...) as the loader reads them.

They have no proto: the whole object is checked against Kubernetes' published schema of its
kind (kubeschema.py: types, required fields, unknown fields refused as strict field validation
refuses them), and the names Kubernetes restricts further are checked as its API server does.
What remains is kept as written in `Resource.body`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from google.protobuf import struct_pb2

from pkg.config import kubeschema
from pkg.config.kinds import KindSchema
from pkg.config.resource import Metadata, Resource
from pkg.config.validation.names import is_dns1123_label
from pkg.config.validation.result import ValidationResult

_HEAD = ("apiVersion", "kind", "metadata")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Kinds whose names must be DNS labels rather than subdomains (Kubernetes' name validation).
_LABEL_NAMED = {"Namespace": "RFC 1123", "Service": "RFC 1035"}


def build(
    document: dict[str, Any],
    schema: KindSchema,
    metadata: Metadata | None,
    result: ValidationResult,
) -> Resource | None:
    """The document as a Resource of `schema`, or None with the problems in `result`."""
    for problem in kubeschema.validate(document, schema.openapi):
        result.error(problem.path, problem.message)
    if metadata is not None:
        _check_name(schema, metadata.name, result)
    if not result.ok or metadata is None:
        return None
    body = {k: copy.deepcopy(v) for k, v in document.items() if k not in _HEAD}
    spec = struct_pb2.Struct()
    if isinstance(body.get("spec"), dict):
        spec.update(body["spec"])
    return Resource(schema=schema, metadata=metadata, spec=spec, body=body)


def _check_name(schema: KindSchema, name: str, result: ValidationResult) -> None:
    rule = _LABEL_NAMED.get(schema.kind)
    if rule is None:
        return
    ok = (
        len(name) <= 63 and bool(_DNS1035_LABEL.match(name))
        if rule == "RFC 1035"
        else is_dns1123_label(name)
    )
    if not ok:
        start = "start with an alphabetic character" if rule == "RFC 1035" else "start"
        result.error(
            "metadata.name",
            f'Invalid value: "{name}": a DNS-{rule.split()[1]} label must consist of lower case '
            f"alphanumeric characters or '-', {start} and end with an alphanumeric character",
        )
