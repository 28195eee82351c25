"""xDS resource vocabulary: type URLs, named resources, and `Resources`, encoded once.

Versions are derived from content, never from a counter or a clock: a restarted server then
presents the same version for the same content (Envoy sees nothing new), never older content
under a newer-looking version, and a push whose content did not change is recognised as such.

`Resources` is what a response is made of: one type's resources, immutable, each serialized
once (as the bytes of one entry of DiscoveryResponse's `resources` field) and hashed once,
however many streams it is sent to. A whole set shared by many proxies (every outbound
cluster of a mesh) is one object; a proxy's own few resources join it with `union`, which
costs nothing per shared resource; `select` narrows a set to a subscription's names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, overload

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

# State of the world: an empty resource list means "everything" (wildcard) on every type
# but these, where the client names what it wants and an empty list unsubscribes (Envoy's
# spec for EDS, RDS and SDS; Istio's IsWildcardTypeURL gives its own types, such as NDS's
# NameTable, wildcard semantics too).
NAMED_TYPES = frozenset(
    {ENDPOINT, ROUTE, SECRET, TYPE_PREFIX + "envoy.config.core.v3.TypedExtensionConfig"}
)


def is_wildcard_type(type_url: str) -> bool:
    return type_url not in NAMED_TYPES


# The subscription a wildcard request stands for, as a name set (so one set type serves both).
WILDCARD = "*"

# How many changes a Resources remembers (see `changed_since`).
_LINEAGE = 8


class Resource(NamedTuple):
    """One named xDS resource as a generator returns it."""

    name: str
    message: pb_message.Message


class Encoded(NamedTuple):
    """A resource serialized once: its content digest and its bytes inside a response."""

    name: str
    message: pb_message.Message
    digest: bytes
    wire: bytes  # one entry of DiscoveryResponse.resources (field 2): tag, length, Any


class ResourceError(ValueError):
    """A generator returned something that must not reach Envoy."""


def short_name(type_url: str) -> str:
    """`CDS` for the cluster type URL and so on; other type URLs stay whole."""
    return SHORT_NAMES.get(type_url, type_url)


def push_order(type_urls: Iterable[str]) -> list[str]:
    """The type URLs in the order a push sends them (known types first, Istio's order)."""
    present = set(type_urls)
    known = [t for t in SHORT_NAMES if t in present]
    return known + sorted(present - set(known))


def type_url_of(message: pb_message.Message) -> str:
    return TYPE_PREFIX + message.DESCRIPTOR.full_name


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_bytes(tag: int, data: bytes) -> bytes:
    """A length-delimited protobuf field: `tag` is (number << 3) | 2, one byte here."""
    return bytes((tag,)) + varint(len(data)) + data


def encode(type_url: str, resource: Resource) -> Encoded:
    """Serialize a resource once, after checking it is a message of `type_url`."""
    name, message = resource
    if not isinstance(message, pb_message.Message):
        raise ResourceError(f"resource {name!r}: not a protobuf message: {type(message)!r}")
    actual = type_url_of(message)
    if actual != type_url:
        raise ResourceError(f"resource {name!r}: is a {actual}, the response is {type_url}")
    body = message.SerializeToString(deterministic=True)
    # google.protobuf.Any: type_url (1), value (2); deterministic serialization keeps map
    # fields in a fixed order, so equal content gives equal bytes and an equal digest.
    packed = field_bytes(0x0A, type_url.encode()) + field_bytes(0x12, body)
    return Encoded(name, message, hashlib.sha256(body).digest()[:16], field_bytes(0x12, packed))


def _version(items: Iterable[Encoded]) -> str:
    """Hash of names and digests, in name order (callers pass them sorted)."""
    parts: list[bytes] = []
    for item in items:
        name = item.name.encode()
        parts += (len(name).to_bytes(4, "big"), name, item.digest)
    return hashlib.sha256(b"".join(parts)).hexdigest()[:16]


def version_of(resources: Iterable[Resource]) -> str:
    """The version of a set of resources: depends on their names and content only."""
    return _version(
        sorted(
            (Encoded(r.name, r.message, _digest(r.message), b"") for r in resources),
            key=lambda e: e.name,
        )
    )


def _digest(message: pb_message.Message) -> bytes:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).digest()[:16]


class Resources(Sequence[Resource]):
    """One type's resources, immutable, encoded once; a sequence of `Resource` by name.

    Built with `of` (check and encode), `union` (disjoint parts, no work per resource),
    `replace` (a few changed, remembered for `changed_since`) and `select`.
    """

    __slots__ = (
        "_base",
        "_differing",
        "_items",
        "_lineage",
        "_names",
        "_parts",
        "_selections",
        "_sorted",
        "_wire",
        "pending",
        "type_url",
        "version",
    )

    def __init__(
        self,
        type_url: str,
        items: Mapping[str, Encoded] | None = None,
        *,
        parts: Sequence[Resources] = (),
        version: str | None = None,
        pending: frozenset[str] = frozenset(),
        lineage: tuple[tuple[str, frozenset[str]], ...] = (),
        base: str | None = None,
    ) -> None:
        """Use the class methods; `items` must be keyed by name (a leaf), or `parts` given."""
        self.type_url = type_url
        self._items = items
        self._parts = tuple(parts)
        self.pending = pending  # names that will exist but not yet: the client waits for them
        self._names: frozenset[str] | None = None
        self._sorted: list[Encoded] | None = None
        self._wire: bytes | None = None
        # Selections made of this set, by the names asked for: the thousand proxies asking
        # for the same names share one.
        self._selections: dict[frozenset[str], Resources] = {}
        # The last `differing` answer, by the earlier set's version: the thousand proxies
        # that share this set compare it with the one they share before once.
        self._differing: tuple[str, frozenset[str]] | None = None
        if version is None:
            if items is not None:
                version = _version(self.encoded())
            elif len(self._parts) == 1:
                version = self._parts[0].version
            else:
                digest = hashlib.sha256(b"union")
                for part in self._parts:
                    digest.update(part.version.encode())
                version = digest.hexdigest()[:16]
        self.version: str = version
        self._lineage = lineage  # (version before, names changed) steps up to `_base`
        self._base = base or version

    # Building.

    @classmethod
    def of(
        cls,
        type_url: str,
        resources: Iterable[Resource | Encoded],
        *,
        pending: Iterable[str] = (),
    ) -> Resources:
        """Check and encode `resources`: each of `type_url`, names unique."""
        items: dict[str, Encoded] = {}
        for resource in resources:
            encoded = resource if isinstance(resource, Encoded) else encode(type_url, resource)
            if encoded.name in items:
                raise ResourceError(f"resource {encoded.name!r}: returned twice")
            items[encoded.name] = encoded
        return cls(type_url, dict(sorted(items.items())), pending=frozenset(pending))

    @classmethod
    def union(cls, type_url: str, parts: Sequence[Resources]) -> Resources:
        """Disjoint sets as one; each part's encoding is shared, not copied."""
        parts = [p for p in parts if len(p)]
        for part in parts:
            if part.type_url != type_url:
                raise ResourceError(f"a set of {part.type_url} in a response of {type_url}")
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 0:
            return cls(type_url, {})
        # Disjoint, checked from the smaller side (a proxy's few against a shared thousand).
        for index, part in enumerate(parts):
            for other in parts[index + 1 :]:
                smaller, larger = sorted((part, other), key=len)
                clash = next((n for n in smaller.names if n in larger.names), None)
                if clash is not None:
                    raise ResourceError(f"resource {clash!r}: returned twice")
        return cls(type_url, parts=parts)

    def replace(
        self, changed: Iterable[Resource | Encoded], removed: Iterable[str] = ()
    ) -> Resources:
        """A copy with `changed` put in (added or replaced) and `removed` taken out."""
        items = dict(self.leaf_items())
        names: set[str] = set()
        added = False
        for resource in changed:
            encoded = resource if isinstance(resource, Encoded) else encode(self.type_url, resource)
            added = added or encoded.name not in items
            items[encoded.name] = encoded
            names.add(encoded.name)
        for name in removed:
            if items.pop(name, None) is not None:
                names.add(name)
        if added or self._items is None:
            items = dict(sorted(items.items()))  # replacing in place keeps the order
        lineage = ((*self._lineage, (self.version, frozenset(names))))[-_LINEAGE:]
        return Resources(self.type_url, items, pending=self.pending, lineage=lineage)

    def select(self, names: frozenset[str] | None) -> Resources:
        """Only the resources among `names` (None: all); `self` when it has no others.

        Leaving out a few of many (a proxy's EDS subscription one cluster behind the mesh's
        table) makes a view of this set, not a copy: a proxy's share costs no per-resource
        memory and no hashing.
        """
        if names is None:
            return self
        selected = self._selections.get(names)
        if selected is None:
            selected = self._selections[names] = self._select(names)
        return selected

    def _select(self, names: frozenset[str]) -> Resources:
        if names >= self.names:
            return self
        if len(self) > 16:
            excluded = self.names - names
            if 4 * len(excluded) < len(self):
                return _Excluding(self, excluded)
        items = {n: e for n in sorted(names) if (e := self.get(n)) is not None}
        return Resources(
            self.type_url,
            items,
            pending=self.pending & names,
            lineage=self._lineage,
            base=self._base,
        )

    # Reading.

    @property
    def names(self) -> frozenset[str]:
        if self._names is None:
            if self._items is not None:
                self._names = frozenset(self._items)
            else:
                self._names = frozenset().union(*(p.names for p in self._parts))
        return self._names

    def get(self, name: str) -> Encoded | None:
        if self._items is not None:
            return self._items.get(name)
        for part in self._parts:
            found = part.get(name)
            if found is not None:
                return found
        return None

    def leaf_items(self) -> Iterator[tuple[str, Encoded]]:
        if self._items is not None:
            yield from self._items.items()
        else:
            for part in self._parts:
                yield from part.leaf_items()

    def encoded(self) -> list[Encoded]:
        """Every resource, sorted by name."""
        if self._sorted is None:
            if self._items is not None:
                self._sorted = list(self._items.values())
            else:
                self._sorted = sorted((e for _, e in self.leaf_items()), key=lambda e: e.name)
        return self._sorted

    @property
    def wire(self) -> bytes:
        """Every resource as the `resources` field of a DiscoveryResponse."""
        if self._items is None:
            # Not kept: a union is one proxy's, and its bytes are its shared parts' again.
            return b"".join(self.wire_parts())
        if self._wire is None:
            self._wire = b"".join(e.wire for e in self._items.values())
        return self._wire

    def wire_parts(self) -> list[bytes]:
        """`wire` in pieces, each kept by the set it belongs to (for a join without copies)."""
        if self._items is not None:
            return [self.wire]
        return [w for p in self._parts for w in p.wire_parts()]

    def wire_of(self, names: Iterable[str]) -> bytes:
        return b"".join(e.wire for n in sorted(names) if (e := self.get(n)) is not None)

    def changed_since(self, earlier: Resources) -> frozenset[str] | None:
        """The names whose content may differ from `earlier`'s, when this set was made from
        it by `replace` steps it remembers; None when it cannot tell."""
        if earlier.version == self.version:
            return frozenset()
        if _is_union(self) and _is_union(earlier):
            return self._union_changed_since(earlier)
        if earlier._base == self._base:
            if isinstance(self, _Excluding) and isinstance(earlier, _Excluding):
                return frozenset()  # one set, other names left out: nothing of ours changed
            return None  # one base, other names: not a question of changes
        changed: set[str] = set()
        for version, names in reversed(self._lineage):
            changed |= names
            if version == earlier._base:
                return self._among(frozenset(changed))
        return None

    def _among(self, names: frozenset[str]) -> frozenset[str]:
        return names & self.names

    def _union_changed_since(self, earlier: Resources) -> frozenset[str] | None:
        """Part by part, where each part holds the same names as the earlier union's part in
        its place (a proxy's share of the mesh's table beside its own few, both as before):
        otherwise a name may have moved between parts, which no part's history shows."""
        if len(self._parts) != len(earlier._parts):
            return None
        changed: set[str] = set()
        for part, before in zip(self._parts, earlier._parts, strict=True):
            if part.names != before.names:
                return None
            found = part.changed_since(before)
            if found is None:
                return None
            changed |= found
        return frozenset(changed)

    def differing(self, earlier: Resources) -> frozenset[str]:
        """The names in both sets whose content differs.

        From the lineage when `changed_since` can tell, else by comparing digests; a union
        is compared part by part with the earlier union's part in the same place, so the
        shared parts of many proxies' sets are compared once."""
        if earlier.version == self.version:
            return frozenset()
        told = self.changed_since(earlier)
        if told is not None:
            return told & earlier.names
        if self._differing is not None and self._differing[0] == earlier.version:
            return self._differing[1]
        found: set[str] = set()
        if _is_union(self) and _is_union(earlier):
            for index, part in enumerate(self._parts):
                old = earlier._parts[index] if index < len(earlier._parts) else None
                rest = part.names
                if old is not None:
                    found |= part.differing(old)
                    rest = rest - old.names
                found.update(n for n in rest if _digest_moved(part.get(n), earlier.get(n)))
        elif self._items is not None and earlier._items is not None:
            old_items = earlier._items
            found.update(n for n, e in self._items.items() if _digest_moved(e, old_items.get(n)))
        else:
            found.update(n for n, e in self.leaf_items() if _digest_moved(e, earlier.get(n)))
        result = frozenset(found)
        self._differing = (earlier.version, result)
        return result

    # Sequence[Resource], sorted by name (for tests, debug pages; not the serving path).

    def __len__(self) -> int:
        if self._items is not None:
            return len(self._items)
        return sum(len(p) for p in self._parts)

    @overload
    def __getitem__(self, index: int) -> Resource: ...

    @overload
    def __getitem__(self, index: slice) -> list[Resource]: ...

    def __getitem__(self, index: int | slice) -> Resource | list[Resource]:
        if isinstance(index, slice):
            return [Resource(e.name, e.message) for e in self.encoded()[index]]
        item = self.encoded()[index]
        return Resource(item.name, item.message)

    def __iter__(self) -> Iterator[Resource]:
        return (Resource(e.name, e.message) for e in self.encoded())

    def __repr__(self) -> str:
        return f"<Resources {short_name(self.type_url)} {self.version} ({len(self)})>"

    def __eq__(self, other: object) -> bool:
        """Equal content: the version is a hash of it (of parts' versions, for a union)."""
        if not isinstance(other, Resources):
            return NotImplemented
        return (self.type_url, self.version, self.pending) == (
            other.type_url,
            other.version,
            other.pending,
        )

    __hash__ = None  # type: ignore[assignment]


def _is_union(resources: Resources) -> bool:
    return type(resources) is Resources and resources._items is None


def _digest_moved(now: Encoded | None, before: Encoded | None) -> bool:
    return now is not None and before is not None and now.digest != before.digest


class _Excluding(Resources):
    """`base` without a few of its names: a view, with a version derived from the base's."""

    __slots__ = ("_excluded", "_of")

    def __init__(self, base: Resources, excluded: frozenset[str]) -> None:
        self._of = base
        self._excluded = excluded
        digest = hashlib.sha256(b"excluding" + base.version.encode())
        for name in sorted(excluded):
            digest.update(len(name).to_bytes(4, "big"))
            digest.update(name.encode())
        super().__init__(
            base.type_url,
            parts=(base,),
            version=digest.hexdigest()[:16],
            pending=base.pending - excluded,
            lineage=base._lineage,
            base=base._base,
        )

    @property
    def names(self) -> frozenset[str]:
        if self._names is None:
            self._names = self._of.names - self._excluded
        return self._names

    def _among(self, names: frozenset[str]) -> frozenset[str]:
        return names - self._excluded

    def get(self, name: str) -> Encoded | None:
        return None if name in self._excluded else self._of.get(name)

    def leaf_items(self) -> Iterator[tuple[str, Encoded]]:
        excluded = self._excluded
        return ((n, e) for n, e in self._of.leaf_items() if n not in excluded)

    def encoded(self) -> list[Encoded]:
        if self._sorted is None:
            self._sorted = [e for e in self._of.encoded() if e.name not in self._excluded]
        return self._sorted

    @property
    def wire(self) -> bytes:
        return b"".join(e.wire for _, e in self.leaf_items())

    def wire_parts(self) -> list[bytes]:
        return [self.wire]

    def select(self, names: frozenset[str] | None) -> Resources:
        if names is None:
            return self
        return self._of.select(names - self._excluded)

    def __len__(self) -> int:
        return len(self._of) - len(self._excluded)


def check(type_url: str, resources: Sequence[Resource]) -> list[Resource]:
    """Resources sorted by name, after checking what Envoy would otherwise NACK for us.

    Every resource in a response must be of the response's type URL, and names must be unique
    (Envoy rejects duplicates); both are generator bugs, reported with the offending name.
    """
    return list(Resources.of(type_url, resources))
