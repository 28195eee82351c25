"""What the quota adapters (memquota, redisquota) share: which configured quota an instance
is, which override applies to it, and the canonical key of its dimensions.

Quota instances reach handlers named `name.namespace`, but users name them in a handler's
`quotas[].name` the way Istio's samples do: `requestcount.quota.istio-system` (0.8),
`requestcount.instance.istio-system` (1.x), `requestcount.istio-system` or plain
`requestcount`. The kind in the middle is informative only.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

# Words that may stand between name and namespace (`name.kind.namespace`) or after a name
# (`name.kind`) in Istio's references, so that `requestcount.quota` is not read as the
# namespace `quota`.
_KIND_WORDS = frozenset(
    {
        "handler",
        "instance",
        "rule",
        "quota",
        "checknothing",
        "listentry",
        "metric",
        "logentry",
        "memquota",
        "redisquota",
        "denier",
        "listchecker",
    }
)


def identity(name: str) -> tuple[str, str | None]:
    """(name, namespace or None when the reference does not say) of a quota reference."""
    parts = name.split(".")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return (parts[0], None) if parts[1] in _KIND_WORDS else (parts[0], parts[1])
    return parts[0], parts[-1]


def resolve(configured: Sequence[str], instance_name: str) -> str | None:
    """The configured quota name that speaks for `instance_name`, or None.

    An exact match wins; otherwise the first configured name with the same short name whose
    namespace, if it gives one, is the instance's.
    """
    if instance_name in configured:
        return instance_name
    short, namespace = identity(instance_name)
    for candidate in configured:
        c_short, c_namespace = identity(candidate)
        if c_short == short and (
            c_namespace is None or namespace is None or c_namespace == namespace
        ):
            return candidate
    return None


def dimension_text(value: Any) -> str:
    """How a dimension value compares with the strings in an override, and enters a key."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes) and len(value) in (4, 16):
        # IP_ADDRESS attributes travel as 4 or 16 raw bytes; users write them as text.
        return str(ipaddress.ip_address(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def dimensions_key(dimensions: Mapping[str, Any]) -> str:
    """A canonical, unambiguous key for a set of dimension values (sorted by name)."""
    pairs = sorted((str(k), dimension_text(v)) for k, v in dimensions.items())
    return json.dumps(pairs, separators=(",", ":"), ensure_ascii=False)


def matches(wanted: Mapping[str, str], dimensions: Mapping[str, Any]) -> bool:
    """True when every dimension an override names has that value in the instance."""
    return all(k in dimensions and dimension_text(dimensions[k]) == v for k, v in wanted.items())


class HasDimensions(Protocol):
    @property
    def dimensions(self) -> Mapping[str, str]: ...


OverrideT = TypeVar("OverrideT", bound=HasDimensions)


def first_override(
    overrides: Iterable[OverrideT], dimensions: Mapping[str, Any]
) -> OverrideT | None:
    """The first override whose dimensions all match the instance's (Istio's rule)."""
    for override in overrides:
        if matches(override.dimensions, dimensions):
            return override
    return None


def unresolved(configured: Sequence[str], instance_names: Iterable[str]) -> list[str]:
    """The instance names no configured quota speaks for (for the builders' validate())."""
    return [name for name in instance_names if resolve(configured, name) is None]
