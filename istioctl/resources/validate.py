"""`istioctl validate -f FILE`: each file checked by the loader the config store uses.

Output as Istio's: `"<file>" is valid` for each good file (`validation succeed` for stdin)
on stdout, exit 0; otherwise every problem of every document, each prefixed by its
`Kind/namespace/name:` (the namespace as the file gives it, possibly empty), under
`Error: N errors occurred:` on stderr, exit 1. Kinds outside Istio's groups (a Kubernetes
Service, a Deployment) are accepted without a check, as Istio's validate accepts them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from istioctl.resources import sources
from pkg.config import loader


def validate(args: argparse.Namespace) -> int:
    try:
        files = sources.read_sources(args.filename, sys.stdin)
    except sources.SourceError as error:
        print(str(error).replace("error: ", "Error: ", 1), file=sys.stderr)
        return 1
    problems: list[str] = []
    for source in files:
        problems.extend(check(source.text, source.name, args.namespace))
    if problems:
        noun = "error" if len(problems) == 1 else "errors"
        listed = "".join(f"\t* {problem}\n" for problem in problems)
        print(f"Error: {len(problems)} {noun} occurred:\n{listed}", file=sys.stderr)
        return 1
    for source in files:
        print("validation succeed" if source.name == "<stdin>" else f'"{source.name}" is valid')
    return 0


def check(text: str, source: str, namespace: str | None) -> list[str]:
    """Every problem of the text's documents, each as `Kind/namespace/name: field: why`."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        return [f"failed to decode file {source}: {error}"]
    found: list[str] = []
    for index, document in enumerate(documents, start=1):
        if document is None or not _is_istio(document):
            continue
        try:
            loader.load_object(document, namespace=namespace, source=source, index=index)
        except loader.LoadError as refused:
            prefix = _prefix(document)
            for refusal in refused.errors:
                found.extend(f"{prefix} {problem}" for problem in refusal.problems)
    return found


def _is_istio(document: Any) -> bool:
    if not isinstance(document, dict):
        return True  # not a resource at all: the loader says why
    group = str(document.get("apiVersion") or "").rpartition("/")[0]
    return not document.get("apiVersion") or group.endswith("istio.io")


def _prefix(document: Any) -> str:
    if not isinstance(document, dict):
        return "//:"
    meta: dict[str, Any] = (
        document["metadata"] if isinstance(document.get("metadata"), dict) else {}
    )
    return f"{document.get('kind') or ''}/{meta.get('namespace') or ''}/{meta.get('name') or ''}:"
