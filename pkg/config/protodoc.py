"""The comments of our .proto sources, by full name, for the schemas' descriptions.

Generated Python carries no comments, so the sources are compiled once more, by grpcio-tools'
protoc with source info kept, and each message's, field's and enum value's leading comment
(or its trailing one) is read from the result:

    docs = protodoc.comments(["api/networking/v1alpha3/virtual_service.proto"])
    docs["istio.networking.v1alpha3.VirtualService.hosts"]  # "Destination hosts (...)."

Sources are found relative to the workspace root (where kinds.yaml's `proto` paths point);
they ship beside the generated code (tools/bazel/proto.bzl puts them in the runfiles).
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import tempfile
import threading
from collections.abc import Iterable

import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

log = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).absolute().parents[2]
_WELL_KNOWN = pathlib.Path(grpc_tools.__file__).parent / "_proto"
# FileDescriptorProto / DescriptorProto / EnumDescriptorProto field numbers in source paths.
_MESSAGE, _ENUM, _FIELD, _NESTED, _NESTED_ENUM, _VALUE = 4, 5, 2, 3, 4, 2
_protoc_lock = threading.Lock()  # protoc's C++ entry point is not known to be reentrant


class ProtoSourceError(RuntimeError):
    """The sources could not be compiled; the message is protoc's."""


def comments(protos: Iterable[str]) -> dict[str, str]:
    """Comments of every message, field, enum and enum value declared in `protos` (paths
    relative to the workspace root) and the files they import."""
    return dict(_comments(tuple(sorted(set(protos)))))


@functools.cache
def _comments(protos: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    descriptors = _compile(protos)
    found: dict[str, str] = {}
    for file in descriptors.file:
        _collect(file, found)
    return tuple(found.items())


def _compile(protos: tuple[str, ...]) -> descriptor_pb2.FileDescriptorSet:
    missing = [p for p in protos if not (ROOT / p).is_file()]
    if missing:
        raise ProtoSourceError(f"proto sources not found under {ROOT}: {', '.join(missing)}")
    includes = [ROOT, _WELL_KNOWN, ROOT / "tools" / "protoc" / "include"]
    with tempfile.TemporaryDirectory(prefix="protodoc-") as scratch:
        out = os.path.join(scratch, "descriptors.pb")
        args = [
            "protoc",
            *(f"-I{path}" for path in includes if path.is_dir()),
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *(str(ROOT / p) for p in protos),
        ]
        with _protoc_lock:
            code = protoc.main(args)
        if code != 0:
            raise ProtoSourceError(f"protoc could not compile {', '.join(protos)} (exit {code})")
        return descriptor_pb2.FileDescriptorSet.FromString(pathlib.Path(out).read_bytes())


def _collect(file: descriptor_pb2.FileDescriptorProto, found: dict[str, str]) -> None:
    texts = {
        tuple(location.path): location.leading_comments or location.trailing_comments
        for location in file.source_code_info.location
    }
    prefix = f"{file.package}." if file.package else ""

    def add(name: str, path: tuple[int, ...]) -> None:
        text = _clean(texts.get(path, ""))
        if text:
            found[name] = text

    def message(m: descriptor_pb2.DescriptorProto, name: str, path: tuple[int, ...]) -> None:
        add(name, path)
        for i, field in enumerate(m.field):
            add(f"{name}.{field.name}", (*path, _FIELD, i))
        for i, nested in enumerate(m.nested_type):
            message(nested, f"{name}.{nested.name}", (*path, _NESTED, i))
        for i, nested_enum in enumerate(m.enum_type):
            enum(nested_enum, f"{name}.{nested_enum.name}", (*path, _NESTED_ENUM, i))

    def enum(e: descriptor_pb2.EnumDescriptorProto, name: str, path: tuple[int, ...]) -> None:
        add(name, path)
        for i, value in enumerate(e.value):
            add(f"{name}.{value.name}", (*path, _VALUE, i))

    for i, m in enumerate(file.message_type):
        message(m, prefix + m.name, (_MESSAGE, i))
    for i, e in enumerate(file.enum_type):
        enum(e, prefix + e.name, (_ENUM, i))


def _clean(text: str) -> str:
    """A comment as prose: the `//` margin's space gone, blank lines kept as paragraphs."""
    lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
    return "\n".join(line.rstrip() for line in lines).strip()


def comments_or_none(protos: Iterable[str]) -> dict[str, str]:
    """comments(), or none (logged once) when the sources are not here: schemas stay right,
    only their descriptions go."""
    try:
        return comments(protos)
    except ProtoSourceError as error:
        _warn_once(str(error))
        return {}


@functools.cache
def _warn_once(message: str) -> None:
    log.warning("schemas will have no descriptions: %s", message)
