"""Where analyzed resources come from: files (with the line of every field) and the store.

Files are read as Istio's analyze reads them: `-` for stdin, directories for their .yaml,
.yml and .json files (recursively with --recursive), other files skipped with a note. Each
document of an Istio kind goes through the shared loader; its validation errors become
IST0106 messages and the resource is still analyzed as far as its spec parses. Kubernetes
Namespaces, Services, Pods, Secrets and Deployments are read as they are; other kinds are ignored.
A document that cannot be parsed at all is a parse error (analyze's exit status 65).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import yaml
from google.protobuf import json_format

from istioctl.analyze.model import ISTIO_KINDS_GROUP_SUFFIX, KUBERNETES_KINDS, Entry, Origin
from pkg.config import loader
from pkg.config.kinds import ALL, KindSchema
from pkg.config.resource import Resource
from pkg.kube import errors

EXTENSIONS = (".json", ".yaml", ".yml")
# The Kubernetes kinds analyzers read from a live API server, where it serves them.
KUBERNETES_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "Service": "/api/v1/services",
    "Pod": "/api/v1/pods",
    "Secret": "/api/v1/secrets",
    "Deployment": "/apis/apps/v1/deployments",
}


@dataclasses.dataclass
class Read:
    entries: list[Entry] = dataclasses.field(default_factory=list)
    parse_errors: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)


def gather(
    paths: list[str], *, recursive: bool, stdin: TextIO
) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, text) of every file named, and the files skipped for their extension; raises
    OSError naming a path that cannot be read."""
    found: list[tuple[str, str]] = []
    skipped: list[str] = []
    for given in paths:
        if given == "-":
            found.append(("-", stdin.read()))
            continue
        path = pathlib.Path(given)
        if path.is_dir():
            walk = sorted(path.rglob("*") if recursive else path.iterdir())
            for child in walk:
                if child.is_file():
                    if child.suffix in EXTENSIONS:
                        found.append((str(child), child.read_text()))
                    else:
                        skipped.append(str(child))
        elif path.suffix in EXTENSIONS or not path.exists():
            found.append((given, path.read_text()))  # a missing path raises here
        else:
            skipped.append(given)
    return found, skipped


def read_files(files: list[tuple[str, str]], namespace: str) -> Read:
    read = Read(files=[name for name, _ in files])
    for name, text in files:
        try:
            documents = list(_documents(text))
        except yaml.YAMLError as error:
            read.parse_errors.append(f"{name}: {_yaml_problem(error)}")
            continue
        for node, data in documents:
            for item, lines in _items(node, data):
                problem = _add(read.entries, item, lines, name, namespace)
                if problem:
                    read.parse_errors.append(f"{name}:{lines.get('', 0)}: {problem}")
    return read


def read_store(client: Any) -> list[Entry]:
    """Every resource the store holds, of every Istio kind and of the Kubernetes kinds it
    serves (a store that serves none of them answers 404, and those are skipped)."""
    entries = []
    for schema in ALL:
        if not schema.group.endswith(ISTIO_KINDS_GROUP_SUFFIX):
            continue  # Kubernetes' own kinds are read as objects, below
        for resource in client.list(schema).items:
            entries.append(_from_store(schema, resource))
    for kind, path in KUBERNETES_PATHS.items():
        try:
            listed = client.get_raw(path)
        except errors.NotFound:
            continue
        group = path.split("/")[2] if path.startswith("/apis/") else ""
        for obj in listed.get("items") or []:
            obj = {"kind": kind, **obj}
            entry = _kubernetes(group, kind, obj, "", {})
            if entry is not None:
                entries.append(entry)
    return entries


def merge(store: list[Entry], files: list[Entry]) -> list[Entry]:
    """The store as it would be with the files applied over it, in order: of two versions
    of one resource the later wins, as with `istioctl apply -f`."""
    merged = {e.key(): e for e in store}
    for entry in files:
        merged[entry.key()] = entry
    return list(merged.values())


# Reading one document.


def _documents(text: str) -> Iterator[tuple[yaml.Node, Any]]:
    """Each document's node (with marks) and value."""
    parser = yaml.SafeLoader(text)
    try:
        while parser.check_node():
            node = parser.get_node()
            if node is None:
                continue
            yield node, parser.construct_document(node)
    finally:
        parser.dispose()


def _items(node: yaml.Node, data: Any) -> Iterator[tuple[Any, dict[str, int]]]:
    """The document, or the items of a `kind: List`, each with its fields' lines."""
    if data is None:
        return
    if (
        isinstance(data, dict)
        and data.get("kind") == "List"
        and isinstance(data.get("items"), list)
    ):
        items_node = _child(node, "items")
        for index, item in enumerate(data["items"]):
            sub = items_node.value[index] if isinstance(items_node, yaml.SequenceNode) else node
            yield item, _lines(sub)
        return
    yield data, _lines(node)


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _lines(node: yaml.Node) -> dict[str, int]:
    """Field path (`spec.http[0].route[0].destination.subset`) -> 1-based line; "" the document."""
    lines = {"": node.start_mark.line + 1}

    def walk(current: yaml.Node, path: str) -> None:
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                child = f"{path}.{key.value}" if path else str(key.value)
                lines.setdefault(child, key.start_mark.line + 1)
                walk(value, child)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                child = f"{path}[{index}]"
                lines.setdefault(child, item.start_mark.line + 1)
                walk(item, child)

    walk(node, "")
    return lines


def _add(
    entries: list[Entry], data: Any, lines: dict[str, int], file: str, namespace: str
) -> str | None:
    """Adds the document's entry; returns why it cannot be parsed, if it cannot."""
    if not isinstance(data, dict):
        return "a resource must be an object"
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not api_version or not kind:
        return "Object 'Kind' is missing" if not kind else "Object 'apiVersion' is missing"
    group = str(api_version).rpartition("/")[0]
    if not group.endswith(ISTIO_KINDS_GROUP_SUFFIX):
        entry = _kubernetes(group, str(kind), data, file, lines, namespace)
        if entry is not None:
            entries.append(entry)
        return None  # a kind analyze does not read
    schema = ALL.by_kind(str(api_version), str(kind))
    if schema is None:
        return f"unknown kind {kind!r} of apiVersion {api_version!r}"
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return "metadata.name is missing"
    ns = str(meta.get("namespace") or namespace)
    problems: tuple[str, ...] = ()
    spec: Any
    try:
        resource = loader.load_object(
            data, namespace=None if meta.get("namespace") else ns, source=file
        )
        spec = resource.spec
    except loader.LoadError as refused:
        problems = tuple(str(p) for error in refused.errors for p in error.problems)
        spec = _lenient_spec(schema, data.get("spec"))
    labels: dict[str, Any] = meta["labels"] if isinstance(meta.get("labels"), dict) else {}
    origin = Origin(
        kind=schema.kind,
        name=name,
        namespace=ns,
        file=file,
        line=lines.get("", 0),
        lines=lines,
        annotations=_strings(meta.get("annotations")),
    )
    entries.append(Entry(schema.group, schema.kind, origin, _strings(labels), spec, problems))
    return None


def _lenient_spec(schema: KindSchema, spec: Any) -> Any:
    """As much of a refused spec as parses into its proto, so other analyzers still see it;
    None when nothing does."""
    message = schema.new_spec()
    try:
        json_format.ParseDict(spec or {}, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError):
        return None
    return message


def _kubernetes(
    group: str,
    kind: str,
    data: dict[str, Any],
    file: str,
    lines: Mapping[str, int],
    namespace: str = "default",
) -> Entry | None:
    if (group, kind) not in KUBERNETES_KINDS:
        return None
    meta: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    ns = "" if kind == "Namespace" else str(meta.get("namespace") or namespace)
    origin = Origin(
        kind=kind,
        name=name,
        namespace=ns,
        file=file,
        line=lines.get("", 0),
        lines=dict(lines),
        annotations=_strings(meta.get("annotations")),
    )
    return Entry(group, kind, origin, _strings(meta.get("labels")), data)


def _from_store(schema: KindSchema, resource: Resource) -> Entry:
    meta = resource.metadata
    problems: tuple[str, ...] = ()
    try:
        loader.load_object(resource.to_dict(), source="<store>")
    except loader.LoadError as refused:  # written by an older version, say
        problems = tuple(str(p) for error in refused.errors for p in error.problems)
    origin = Origin(
        kind=schema.kind, name=meta.name, namespace=meta.namespace, annotations=meta.annotations
    )
    return Entry(schema.group, schema.kind, origin, dict(meta.labels), resource.spec, problems)


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {getattr(error, 'problem', None) or error}"
