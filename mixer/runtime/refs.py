"""References between Mixer config objects: `handler: prometheus`, `requestcount.instance.istio-system`.

Istio accepts a name alone (in the rule's namespace), `name.namespace`, and the older
`name.kind.namespace` / `name.kind` forms from the one-kind-per-adapter days; the kind part
is informative only.
"""

from __future__ import annotations

_KINDS = {"handler", "instance", "rule", "attributemanifest"}


def resolve(reference: str, namespace: str) -> tuple[str, str]:
    """(name, namespace) a reference made from `namespace` points at."""
    parts = reference.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2:
        # `name.kind` (old style, same namespace) or `name.namespace`.
        name, second = parts
        return (
            (name, namespace)
            if second in _KINDS or _looks_like_adapter_kind(second)
            else (name, second)
        )
    return parts[0], parts[-1]


def _looks_like_adapter_kind(word: str) -> bool:
    # 0.x kinds named the adapter or template: `handler.denier`, `requestcount.quota`.
    return word in {
        "denier",
        "listchecker",
        "memquota",
        "redisquota",
        "prometheus",
        "stdio",
        "checknothing",
        "listentry",
        "quota",
        "metric",
        "logentry",
    }


def key(name: str, namespace: str) -> str:
    return f"{name}.{namespace}"
