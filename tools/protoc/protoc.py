"""protoc from grpcio-tools, with the project's include paths.

Used two ways:
  by Bazel (tools/bazel/proto.bzl): `protoc.py --python_out=... file.proto ...`, run from the
    execution root, where proto paths are the workspace paths (`api/mixer/v1/check.proto`);
  by `make setup` for plain Python use: `protoc.py --generate-tree ROOT` compiles every
    `.proto` under ROOT/api next to its source (the generated files are git-ignored).
"""

from __future__ import annotations

import os
import pathlib
import sys

import grpc_tools
from grpc_tools import protoc

_HERE = pathlib.Path(__file__).resolve().parent
INCLUDES = [
    # google/protobuf/*.proto
    os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"),
    # protos whose Python comes from a package (google/rpc/status.proto from xds-protos)
    str(_HERE / "include"),
]


def run(args: list[str]) -> int:
    include_flags = ["-I."] + [f"-I{path}" for path in INCLUDES]
    return protoc.main(["protoc", *include_flags, *args])


def has_service(proto: pathlib.Path) -> bool:
    return any(line.lstrip().startswith("service ") for line in proto.read_text().splitlines())


def generate_tree(root: pathlib.Path) -> int:
    """Compile every proto under root/api in place; returns protoc's exit code."""
    os.chdir(root)
    protos = sorted(pathlib.Path("api").rglob("*.proto"))
    plain = [str(p) for p in protos]
    grpc = [str(p) for p in protos if has_service(p)]
    code = run(["--python_out=.", "--pyi_out=.", *plain])
    if code == 0 and grpc:
        code = run(["--grpc_python_out=.", *grpc])
    return code


def main(argv: list[str]) -> int:
    if argv[:1] == ["--generate-tree"]:
        return generate_tree(pathlib.Path(argv[1]))
    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
