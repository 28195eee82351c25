"""The workload-credentials folder: which identity each workload socket serves.

Whoever starts a workload (the local kubelet for pods, the launcher for its own processes)
writes one small JSON file per workload into the folder, before the workload runs:

    {"identity": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
     "socket": "/.../run/sds/1a2b3c4d/sds.sock",
     "workload": "default/reviews-v1-7d9f-abcde", "uid": 1337, "gid": 1337}

and removes it when the workload stops. `uid` and `gid` (optional) say who the workload's
proxy runs as (Istio's istio-proxy is 1337): the socket and its directory are made that
user's, still 0600 and 0700, so the proxy reaches its socket without root and nobody else
does; without them they stay the node agent's own. The node agent serves that workload, and only that
identity, on that socket (sockets.py); the workload is told the socket path, never the folder.
Files are written whole and renamed into place; names starting with "." are ignored (a writer's
temporary file), as are names not ending in ".json".

`WorkloadFolder.scan()` reads the folder and says what changed. A bad file (unreadable, not JSON,
a missing or wrong field, a socket another file already holds, a reserved identity) is logged,
once, with its name, field and reason, and changes nothing: a new bad file binds nothing, a
bound file that turns bad keeps its last good binding. Only the file's removal unbinds it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import pathlib
from collections.abc import Awaitable, Callable

from security.nodeagent.identity import Identity, InvalidIdentityError, identity_from_spiffe_id

log = logging.getLogger("security.nodeagent")

MAX_ENTRY_BYTES = 16 * 1024  # an entry is three short strings; more is not an entry
MAX_SOCKET_PATH = 107  # Linux's sun_path, less the terminating NUL
WATCH_PERIOD = 0.25  # seconds between scans: a new pod's socket appears within this
FIELDS = frozenset({"identity", "socket", "workload", "uid", "gid"})
MAX_ID = 2**32 - 2  # a uid or gid (2^32 - 1 is "no change" to chown)


class WorkloadEntryError(ValueError):
    """A workload-credentials file the node agent cannot use: says which file and why."""


@dataclasses.dataclass(frozen=True)
class WorkloadBinding:
    """One workload's socket and the one identity served on it."""

    source: str  # the entry's file name
    identity: Identity
    socket: pathlib.Path
    workload: str  # who it is, for logs
    owner: tuple[int, int] | None = None  # (uid, gid) the socket is made for; None: ours

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "source": self.source,
            "identity": self.identity.spiffe_id,
            "socket": str(self.socket),
            "workload": self.workload,
        }
        if self.owner is not None:
            out["uid"], out["gid"] = self.owner
        return out


@dataclasses.dataclass(frozen=True)
class Changes:
    bound: tuple[WorkloadBinding, ...] = ()  # new, or changed (replacing the old binding)
    unbound: tuple[WorkloadBinding, ...] = ()  # their files are gone

    def __bool__(self) -> bool:
        return bool(self.bound or self.unbound)


def parse_entry(
    text: str, *, source: str, trust_domain: str, reserved: frozenset[str] = frozenset()
) -> WorkloadBinding:
    """The binding an entry's text describes; WorkloadEntryError says what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise WorkloadEntryError(f"{source}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise WorkloadEntryError(f"{source}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise WorkloadEntryError(f"{source}: unknown fields {unknown}; known: {sorted(FIELDS)}")
    for field in ("identity", "socket"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise WorkloadEntryError(f"{source}: field {field!r} must be a non-empty string")
    if not isinstance(data.get("workload", ""), str):
        raise WorkloadEntryError(f"{source}: field 'workload' must be a string")
    owner = None
    if "uid" in data or "gid" in data:
        for field in ("uid", "gid"):
            value = data.get(field)
            # bool is an int to Python; true is no uid.
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
                raise WorkloadEntryError(
                    f"{source}: field {field!r} must be a number 0-{MAX_ID} (both uid and gid, "
                    "or neither)"
                )
        owner = (data["uid"], data["gid"])
    try:
        identity = identity_from_spiffe_id(data["identity"])
    except InvalidIdentityError as error:
        raise WorkloadEntryError(f"{source}: field 'identity': {error}") from None
    return checked_binding(
        source,
        identity,
        pathlib.Path(data["socket"]),
        data.get("workload") or source,
        trust_domain=trust_domain,
        reserved=reserved,
        owner=owner,
    )


def checked_binding(
    source: str,
    identity: Identity,
    socket: pathlib.Path,
    workload: str,
    *,
    trust_domain: str,
    reserved: frozenset[str] = frozenset(),
    owner: tuple[int, int] | None = None,
) -> WorkloadBinding:
    """A binding, if its identity and socket may be served: the node's trust domain, not a
    reserved identity, an absolute socket path that fits a Unix socket. The folder's entries
    and the node's pods (pods.py) pass the same checks."""
    if identity.trust_domain != trust_domain:
        raise WorkloadEntryError(
            f"{source}: field 'identity': trust domain {identity.trust_domain!r} is not this "
            f"node's ({trust_domain!r})"
        )
    if identity.spiffe_id in reserved:
        raise WorkloadEntryError(
            f"{source}: field 'identity': {identity} is reserved and never served to a workload"
        )
    if not socket.is_absolute():
        raise WorkloadEntryError(f"{source}: field 'socket': {socket} is not an absolute path")
    if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise WorkloadEntryError(
            f"{source}: field 'socket': {socket} is longer than a Unix socket path may be "
            f"({MAX_SOCKET_PATH} bytes)"
        )
    return WorkloadBinding(source, identity, socket, workload, owner)


def read_entry(
    path: pathlib.Path, *, trust_domain: str, reserved: frozenset[str] = frozenset()
) -> WorkloadBinding:
    try:
        if not path.is_file():
            raise WorkloadEntryError(f"{path.name}: not a regular file")
        if path.stat().st_size > MAX_ENTRY_BYTES:
            raise WorkloadEntryError(f"{path.name}: larger than {MAX_ENTRY_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WorkloadEntryError(f"{path.name}: cannot read: {error}") from None
    return parse_entry(text, source=path.name, trust_domain=trust_domain, reserved=reserved)


def _signature(path: pathlib.Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


class WorkloadFolder:
    """The folder's current bindings, updated by `scan()`."""

    def __init__(
        self, folder: pathlib.Path, *, trust_domain: str, reserved: frozenset[str] = frozenset()
    ) -> None:
        self.folder = folder
        self._trust_domain = trust_domain
        self._reserved = reserved
        self.bindings: dict[str, WorkloadBinding] = {}  # by file name
        self.errors: dict[str, str] = {}  # file name -> why it is not (or no longer) used
        self._seen: dict[str, tuple[int, int, int] | None] = {}
        self._folder_error: str | None = None

    def prepare(self) -> None:
        """Make the folder (0700: only the node's own agents write entries)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def scan(self) -> Changes:
        try:
            names = sorted(
                p.name
                for p in self.folder.iterdir()
                if p.name.endswith(".json") and not p.name.startswith(".")
            )
        except OSError as error:
            message = f"workload-credentials folder {self.folder}: {error}"
            if message != self._folder_error:
                log.error("%s; keeping the %d bindings held", message, len(self.bindings))
                self._folder_error = message
            return Changes()
        self._folder_error = None
        bound, unbound = [], []
        for name in sorted(set(self.bindings) - set(names)):
            unbound.append(self.bindings.pop(name))
            self.errors.pop(name, None)
        for name in set(self._seen) - set(names):
            del self._seen[name]
            self.errors.pop(name, None)
        for name in names:
            signature = _signature(self.folder / name)
            if name in self._seen and self._seen[name] == signature:
                continue
            self._seen[name] = signature
            try:
                binding = read_entry(
                    self.folder / name, trust_domain=self._trust_domain, reserved=self._reserved
                )
                self._check_socket_free(binding)
            except WorkloadEntryError as error:
                self._refuse(name, str(error))
                continue
            self.errors.pop(name, None)
            if self.bindings.get(name) != binding:
                self.bindings[name] = binding
                bound.append(binding)
        return Changes(tuple(bound), tuple(unbound))

    def _check_socket_free(self, binding: WorkloadBinding) -> None:
        for name, other in self.bindings.items():
            if name != binding.source and other.socket == binding.socket:
                raise WorkloadEntryError(
                    f"{binding.source}: field 'socket': {binding.socket} is already {name}'s"
                )

    def _refuse(self, name: str, why: str) -> None:
        held = self.bindings.get(name)
        keeping = f"; keeping its last good binding ({held.identity})" if held else ""
        log.error("workload-credentials entry refused: %s%s", why, keeping)
        self.errors[name] = why

    async def watch(
        self,
        on_change: Callable[[Changes], Awaitable[None]],
        *,
        started: asyncio.Event | None = None,
        period: float = WATCH_PERIOD,
    ) -> None:
        """Scan every `period` seconds and hand each change to `on_change`, forever."""
        while True:
            changes = self.scan()
            if changes:
                await on_change(changes)
            if started is not None and not started.is_set():
                started.set()
            await asyncio.sleep(period)
