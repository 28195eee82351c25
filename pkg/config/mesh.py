"""MeshConfig from a file: Istio's mesh config YAML (the `mesh` key of the istio ConfigMap).

    mixerCheckServer: 127.0.0.1:9091
    mixerReportServer: 127.0.0.1:9091
    policyCheckFailOpen: false

Field names are protobuf JSON (lowerCamelCase, or the proto's own names); an unknown field or
a wrong type is an error naming the file and the field, as Istio refuses a bad mesh config.
"""

from __future__ import annotations

import pathlib

import yaml
from google.protobuf import json_format

from api.mesh.v1alpha1 import config_pb2


class MeshConfigError(ValueError):
    pass


def parse_mesh_config(text: str, source: str = "<mesh config>") -> config_pb2.MeshConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MeshConfigError(f"{source}: not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MeshConfigError(f"{source}: a mesh config is a mapping, got {type(data).__name__}")
    mesh = config_pb2.MeshConfig()
    try:
        json_format.ParseDict(data, mesh)
    except json_format.ParseError as error:
        raise MeshConfigError(f"{source}: {error}") from None
    for field in ("mixer_check_server", "mixer_report_server"):
        address = getattr(mesh, field)
        host, _, port = address.rpartition(":")
        if address and (not host or not port.isdigit() or not 0 < int(port) < 65536):
            raise MeshConfigError(
                f"{source}: {json_format_name(field)}: {address!r} is not host:port"
            )
    return mesh


def load_mesh_config(path: str | pathlib.Path) -> config_pb2.MeshConfig:
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise MeshConfigError(f"{path}: {error.strerror}") from None
    return parse_mesh_config(text, str(path))


def json_format_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)
