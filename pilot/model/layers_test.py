"""The model is the bottom of Pilot: it imports no registry, config store, generator or server."""

from __future__ import annotations

import ast
import pathlib

MODEL = pathlib.Path(__file__).resolve().parent
FORBIDDEN = (
    "pilot.registry",
    "pilot.configstore",
    "pilot.networking",
    "pilot.xds",
    "pilot.bootstrap",
)


def imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_model_imports_no_registry_and_nothing_above_it():
    offending = {
        f"{path.name}: {name}"
        for path in MODEL.glob("*.py")
        if not path.name.endswith("_test.py")
        for name in imports(path)
        if name.startswith(FORBIDDEN)
    }
    assert offending == set()
