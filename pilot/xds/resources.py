"""xDS resource vocabulary: type URLs, the (name, message) pair generators return, versions.

Versions are derived from content, never from a counter or a clock: a restarted Pilot then
presents the same version for the same config (Envoy sees nothing new), never an older config
under a newer-looking version, and a push whose content did not change is recognised as such.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from google.protobuf import message as pb_message

TYPE_PREFIX = "type.googleapis.com/"

LISTENER = TYPE_PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = TYPE_PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = TYPE_PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = TYPE_PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = TYPE_PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

# The short names Istio prints (proxy-status, syncz), in the order Istio pushes them: clusters
# before their endpoints, listeners before their routes, so what Envoy warms has its
# dependencies coming right after it.
SHORT_NAMES: dict[str, str] = {
    CLUSTER: "CDS",
    ENDPOINT: "EDS",
    LISTENER: "LDS",
    ROUTE: "RDS",
    SECRET: "SDS",
}
TYPE_URLS: dict[str, str] = {short: url for url, short in SHORT_NAMES.items()}

# State of the world: an empty resource list on these types means "everything" (wildcard).
# On every other type the client names what it wants, and an empty list unsubscribes.
WILDCARD_TYPES = frozenset({LISTENER, CLUSTER})

# The subscription a wildcard request stands for, as a name set (so one set type serves both).
WILDCARD = "*"


class Resource(NamedTuple):
    """One named xDS resource as a generator returns it."""

    name: str
    message: pb_message.Message


class ResourceError(ValueError):
    """A generator returned something that must not reach Envoy."""


def short_name(type_url: str) -> str:
    """`CDS` for the cluster type URL and so on; other type URLs stay whole."""
    return SHORT_NAMES.get(type_url, type_url)


def push_order(type_urls: Iterable[str]) -> list[str]:
    """The type URLs in the order a push sends them (known types first, Istio's order)."""
    known = [t for t in SHORT_NAMES if t in type_urls]
    return known + sorted(set(type_urls) - set(known))


def type_url_of(message: pb_message.Message) -> str:
    return TYPE_PREFIX + message.DESCRIPTOR.full_name


def check(type_url: str, resources: Sequence[Resource]) -> list[Resource]:
    """Resources sorted by name, after checking what Envoy would otherwise NACK for us.

    Every resource in a response must be of the response's type URL, and names must be unique
    (Envoy rejects duplicates); both are generator bugs, reported with the offending name.
    """
    seen: set[str] = set()
    checked: list[Resource] = []
    for item in resources:
        name, message = item
        if not isinstance(message, pb_message.Message):
            raise ResourceError(f"resource {name!r}: not a protobuf message: {type(message)!r}")
        actual = type_url_of(message)
        if actual != type_url:
            raise ResourceError(f"resource {name!r}: is a {actual}, the response is {type_url}")
        if name in seen:
            raise ResourceError(f"resource {name!r}: returned twice")
        seen.add(name)
        checked.append(Resource(name, message))
    checked.sort(key=lambda r: r.name)
    return checked


def version_of(resources: Sequence[Resource]) -> str:
    """A version string that depends only on the resources' names and content.

    `resources` must be sorted by name (as `check` returns them). Deterministic serialization
    keeps map fields in a fixed order; nested `Any` payloads are hashed as packed, so two
    packings of one message could differ, which at worst sends an unchanged config again.
    """
    digest = hashlib.sha256()
    for name, message in resources:
        body = message.SerializeToString(deterministic=True)
        for part in (name.encode(), body):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()[:16]
