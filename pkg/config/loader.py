"""The one way resources enter the mesh: YAML documents to validated, typed resources.

The config store, istioctl and every server call this module, so a resource refused in one
place is refused everywhere with the same message. A document is refused when its header,
metadata or spec has an error; a stream with any refused document returns nothing.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterable
from typing import Any

import yaml
from google.protobuf import json_format

from pkg.config import yamlstream
from pkg.config.kinds import ALL, KindSet
from pkg.config.resource import Metadata, Resource
from pkg.config.validation import specs
from pkg.config.validation.names import check_label, is_dns1123_label, is_dns1123_subdomain
from pkg.config.validation.result import FieldPath, Problem, ValidationResult
from pkg.config.validation.structure import check_message, type_name
from pkg.config.validation.values import check_json_value

_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_METADATA_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "managedFields",  # the server's record of field owners; checked and kept by the store
}
# Kubernetes' cap on all of an object's annotations together (keys and values, in bytes).
TOTAL_ANNOTATION_SIZE = 256 * 1024


@dataclasses.dataclass(frozen=True)
class DocumentError:
    """Everything wrong with one document of one source (its errors, or its warnings)."""

    source: str  # a file name, or "<stdin>", "<request>"
    document: int  # 1-based position in the stream
    resource: str  # "VirtualService default/reviews", or "" when unknown
    problems: tuple[Problem, ...]

    def __str__(self) -> str:
        where = f"{self.source}: document {self.document}"
        if self.resource:
            where += f" ({self.resource})"
        return "\n".join(f"{where}: {problem}" for problem in self.problems)


class LoadError(ValueError):
    """One or more documents were refused; nothing from the stream was accepted."""

    def __init__(self, errors: Iterable[DocumentError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def load_file(
    path: str | pathlib.Path,
    *,
    kinds: KindSet = ALL,
    warnings: list[DocumentError] | None = None,
) -> list[Resource]:
    path = pathlib.Path(path)
    return load_text(path.read_text(), source=str(path), kinds=kinds, warnings=warnings)


def load_text(
    text: str,
    *,
    source: str = "<input>",
    kinds: KindSet = ALL,
    namespace: str | None = None,
    warnings: list[DocumentError] | None = None,
) -> list[Resource]:
    """Every document of a YAML (or JSON) stream as a resource; raises LoadError.

    The warnings of accepted documents (removed fields, settings Istio warns about) are
    appended to `warnings` when it is given: callers that show them to a user pass a list.
    """
    resources: list[Resource] = []
    errors: list[DocumentError] = []
    found: list[DocumentError] = []
    index = 0
    try:
        for index, document in enumerate(yamlstream.documents(text), start=1):
            if document is None:
                continue  # an empty document, e.g. after a trailing '---'
            try:
                resources.append(
                    load_object(
                        document,
                        kinds=kinds,
                        namespace=namespace,
                        source=source,
                        index=index,
                        warnings=found,
                    )
                )
            except LoadError as error:
                errors.extend(error.errors)
    except yaml.YAMLError as error:
        # The parser cannot resume after a syntax error: the rest of the stream is unread.
        errors.append(DocumentError(source, index + 1, "", (_yaml_problem(error),)))
    if errors:
        raise LoadError(errors)
    if warnings is not None:
        warnings.extend(found)
    return resources


def _yaml_problem(error: yaml.YAMLError) -> Problem:
    line = ""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        line = f" at line {mark.line + 1}, column {mark.column + 1}"
    path = error.path if isinstance(error, yamlstream.DepthError) else ""
    return Problem(path, f"not valid YAML{line}: {getattr(error, 'problem', None) or error}")


def load_object(
    document: Any,
    *,
    kinds: KindSet = ALL,
    namespace: str | None = None,
    source: str = "<input>",
    index: int = 1,
    warnings: list[DocumentError] | None = None,
) -> Resource:
    """One decoded document (a dict) as a validated resource; raises LoadError.

    `namespace` fills in a missing metadata.namespace (as `kubectl -n` does) and must agree
    with one that is present. The document may come from YAML or JSON: anything that is not
    a plain JSON value is refused before any other check looks at it.
    """
    result = ValidationResult()
    check_json_value(document, result)
    label = _label(document, namespace, kinds)
    resource = _build(document, kinds, namespace, result) if result.ok else None
    if resource is not None and not resource.schema.is_kubernetes:
        specs.validate(resource, result)
    if not result.ok:
        raise LoadError([DocumentError(source, index, label, tuple(result.errors))])
    assert resource is not None
    if warnings is not None and result.warnings:
        warnings.append(DocumentError(source, index, label, tuple(result.warnings)))
    return resource


def _label(document: Any, namespace: str | None, kinds: KindSet) -> str:
    """How messages name the document: `VirtualService default/reviews`, when it says (a
    cluster-scoped kind by its name alone: `Namespace bookinfo`)."""
    if not isinstance(document, dict):
        return ""
    meta = document.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    name, kind = meta.get("name"), document.get("kind")
    ns = meta.get("namespace") or namespace or "default"
    if not (isinstance(kind, str) and kind and isinstance(name, str) and name):
        return ""
    schema = kinds.by_kind(str(document.get("apiVersion")), kind)
    if schema is not None and not schema.namespaced:
        return f"{kind} {name}"
    return f"{kind} {ns}/{name}"


def _build(
    document: Any, kinds: KindSet, namespace: str | None, result: ValidationResult
) -> Resource | None:
    if not isinstance(document, dict):
        result.error("", f"a resource must be an object, got {type_name(document)}")
        return None
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not kind:
        result.error("kind", "missing: every resource needs a kind")
    if not api_version:
        result.error("apiVersion", "missing: every resource needs an apiVersion")
    if not kind or not api_version:
        return None
    schema = kinds.by_kind(str(api_version), str(kind))
    if schema is None:
        known = kinds.kinds_of_version(str(api_version))
        hint = f" (kinds of {api_version}: {', '.join(known)})" if known else ""
        result.error("kind", f"unknown kind {kind!r} of apiVersion {api_version!r}{hint}")
        return None
    if schema.is_kubernetes:
        # Kubernetes' own kinds: their schema says which fields exist (data, subsets, ...).
        from pkg.config import kubeobject  # its schemas load on first use only

        metadata = _metadata(
            document.get("metadata"),
            namespace,
            result,
            kubernetes=True,
            namespaced=schema.namespaced,
        )
        return kubeobject.build(document, schema, metadata, result)
    for key in document:
        if key not in _TOP_LEVEL:
            result.error(str(key), f"unknown top-level field {key!r}")
    metadata = _metadata(document.get("metadata"), namespace, result)
    spec_data = document.get("spec")
    if spec_data is None:
        spec_data = {}
    spec = schema.new_spec()
    spec_path = FieldPath("spec")
    spec_data = check_message(spec_data, spec.DESCRIPTOR, spec_path, result)
    if not result.ok or metadata is None:
        return None
    try:
        json_format.ParseDict(spec_data, spec)
    except json_format.ParseError as error:
        result.error("spec", str(error))
        return None
    return Resource(schema=schema, metadata=metadata, spec=spec)


def _metadata(
    data: Any,
    namespace: str | None,
    result: ValidationResult,
    *,
    kubernetes: bool = False,
    namespaced: bool = True,
) -> Metadata | None:
    """`kubernetes`: a Kubernetes kind's, whose schema checked the other ObjectMeta fields
    (kept in `extra`); a kind that is not `namespaced` has no namespace ("")."""
    path = FieldPath("metadata")
    if not isinstance(data, dict):
        result.error(path, "missing: every resource needs metadata with a name")
        return None
    ok = True
    extra = {}
    for key in data:
        if key not in _METADATA_FIELDS:
            if kubernetes:
                extra[str(key)] = data[key]
                continue
            result.error(path / str(key), f"unknown metadata field {key!r}")
            ok = False
    name = data.get("name")
    if not isinstance(name, str) or not is_dns1123_subdomain(name):
        result.error(
            path / "name",
            f"{name!r} is not a valid name: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit",
        )
        ok = False
    ns = data.get("namespace")
    if not namespaced:
        ns = ""  # as the API server clears it: a cluster-scoped object is in no namespace
    elif ns is None:
        ns = namespace or "default"
    elif namespace is not None and ns != namespace:
        result.error(
            path / "namespace", f"is {ns!r} but the request is for namespace {namespace!r}"
        )
        ok = False
    if namespaced and (not isinstance(ns, str) or not is_dns1123_label(ns)):
        result.error(path / "namespace", f"{ns!r} is not a valid namespace name")
        ok = False
    maps = {}
    for field in ("labels", "annotations"):
        value = data.get(field) or {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            result.error(path / field, "must map strings to strings")
            ok = False
            value = {}
        maps[field] = value
    for key, value in maps["labels"].items():
        problem = check_label(key, value)
        if problem:
            result.error(path / "labels" / key, problem)
            ok = False
    size = sum(len(k.encode()) + len(v.encode()) for k, v in maps["annotations"].items())
    if size > TOTAL_ANNOTATION_SIZE:
        result.error(
            path / "annotations", f"Too long: must have at most {TOTAL_ANNOTATION_SIZE} bytes"
        )
        ok = False
    generate_name = data.get("generateName", "")
    if not isinstance(generate_name, str):
        result.error(path / "generateName", "must be a string")
        ok = False
    if not isinstance(data.get("managedFields", []), list):
        result.error(path / "managedFields", "must be a list of managed fields entries")
        ok = False
    if not ok:
        return None
    assert isinstance(name, str)  # checked above: not ok otherwise
    generation = data.get("generation", 0)
    return Metadata(
        name=name,
        generate_name=generate_name,
        namespace=ns,
        labels=dict(maps["labels"]),
        annotations=dict(maps["annotations"]),
        resource_version=str(data.get("resourceVersion") or ""),
        generation=generation if isinstance(generation, int) else 0,
        creation_timestamp=str(data.get("creationTimestamp") or ""),
        uid=str(data.get("uid") or ""),
        extra=extra,
    )
