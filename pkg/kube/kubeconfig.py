"""A kubeconfig for the config store, so kubectl and the official client reach it unchanged.

    kubectl --kubeconfig run/kubeconfig get virtualservices

The store serves plain HTTP on loopback with no authentication, so the file names a server
URL and an empty user; the context carries the default namespace.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import yaml

CONTEXT = "istio-py"


def kubeconfig(server: str, *, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | pathlib.Path, server: str, *, namespace: str = "default"
) -> pathlib.Path:
    """Writes the file atomically (a reader never sees half of it), readable by its owner only
    (kubectl warns about group- or world-readable kubeconfigs)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(yaml.safe_dump(kubeconfig(server, namespace=namespace), sort_keys=False))
    os.chmod(partial, 0o600)
    partial.replace(path)
    return path
