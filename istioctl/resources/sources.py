"""What `-f` names, read and parsed: files, directories of YAML, or `-` for stdin.

Every file is read and validated before anything is sent, with the shared loader, so a refused
file is reported exactly as the config store would refuse it and nothing half-applies.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterable
from typing import Any, TextIO

import yaml

from pkg.config import loader
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Resource
from pkg.config.validation.result import Problem

_SUFFIXES = (".yaml", ".yml", ".json")


class SourceError(Exception):
    """A `-f` argument that cannot be read (missing path, empty directory, no objects)."""


@dataclasses.dataclass(frozen=True)
class Source:
    name: str  # the path as given, or "<stdin>"
    text: str


@dataclasses.dataclass(frozen=True)
class Reference:
    """Which object a document names, for `delete -f`: no spec needed."""

    schema: KindSchema
    namespace: str
    name: str


def read_sources(paths: Iterable[str], stdin: TextIO) -> list[Source]:
    sources = []
    for given in paths:
        if given == "-":
            sources.append(Source("<stdin>", stdin.read()))
            continue
        path = pathlib.Path(given)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
            if not files:
                raise SourceError(f'error: no YAML or JSON files in directory "{given}"')
            sources.extend(Source(str(p), _read(p)) for p in files)
        elif path.exists():
            sources.append(Source(given, _read(path)))
        else:
            raise SourceError(f'error: the path "{given}" does not exist')
    return sources


def load_resources(
    sources: Iterable[Source],
    namespace: str | None,
    warnings: list[loader.DocumentError] | None = None,
) -> list[Resource]:
    """Every resource of every source; raises one LoadError listing every refused document.

    The warnings of the accepted documents are appended to `warnings` when it is given.
    """
    resources: list[Resource] = []
    refused: list[loader.DocumentError] = []
    for source in sources:
        try:
            resources.extend(
                loader.load_text(
                    source.text, source=source.name, namespace=namespace, warnings=warnings
                )
            )
        except loader.LoadError as error:
            refused.extend(error.errors)
    if refused:
        raise loader.LoadError(refused)
    if not resources:
        raise SourceError("error: no objects passed")
    return resources


def read_references(sources: Iterable[Source], namespace: str | None) -> list[Reference]:
    """The objects the sources name, reading only their headers: a file whose spec no longer
    validates can still be deleted with it. Problems are reported as the loader reports them."""
    references: list[Reference] = []
    refused: list[loader.DocumentError] = []
    for source in sources:
        try:
            documents = list(yaml.safe_load_all(source.text))
        except yaml.YAMLError as error:
            refused.append(_refusal(source.name, 1, "", "", f"not valid YAML: {error}"))
            continue
        for index, document in enumerate(documents, start=1):
            if document is None:
                continue
            found = _reference(document, namespace)
            if isinstance(found, Reference):
                references.append(found)
            else:
                refused.append(_refusal(source.name, index, *found))
    if refused:
        raise loader.LoadError(refused)
    if not references:
        raise SourceError("error: no objects passed")
    return references


def _reference(document: Any, namespace: str | None) -> Reference | tuple[str, str, str]:
    """The reference, or (resource label, field path, reason) when the header is wrong."""
    if not isinstance(document, dict):
        return "", "", "a resource must be an object"
    meta: dict[str, Any] = (
        document["metadata"] if isinstance(document.get("metadata"), dict) else {}
    )
    name, kind = meta.get("name"), document.get("kind")
    ns = meta.get("namespace") or namespace or "default"
    label = f"{kind} {ns}/{name}" if kind and name else ""
    schema = ALL.by_kind(str(document.get("apiVersion")), str(kind))
    if schema is None:
        return label, "kind", f"unknown kind {kind!r} of apiVersion {document.get('apiVersion')!r}"
    if not isinstance(name, str) or not name:
        return label, "metadata.name", "missing: every resource needs a name"
    if namespace is not None and ns != namespace:
        return (
            label,
            "metadata.namespace",
            f"is {ns!r} but the request is for namespace {namespace!r}",
        )
    return Reference(schema, ns, name)


def _refusal(source: str, index: int, label: str, path: str, reason: str) -> loader.DocumentError:
    return loader.DocumentError(source, index, label, (Problem(path, reason),))


def _read(path: pathlib.Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise SourceError(f'error: cannot read "{path}": {error.strerror}') from None
