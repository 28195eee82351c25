"""The node's pods on a real cluster: each injected pod gets its own SDS socket, bound to the
identity its service account gives.

On a cluster nobody writes workload-credentials entries (workloads.py): the kubelet starts
pods and knows nothing of the mesh. So the node agent asks the API server itself, as Istio's
per-pod node agent did: it lists the pods whose `spec.nodeName` is its node and watches them
(kubepods.py). Every pod that is injected (it has the `istio-proxy` container, as a container
or as a native sidecar) and not finished is served on

    <pod-sockets-dir>/<pod uid>/sds.sock

bound to `spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccountName>`, through the same
WorkloadSockets as the folder's entries, so the same refusal of any other claim. The
injection template mounts that one directory into the pod's istio-proxy (a hostPath with
`subPathExpr: $(POD_UID)`), so a sidecar sees its own socket and no other pod's; the socket
and its directory are the user's istio-proxy runs as (its securityContext: 1337), 0600/0700. What the
pod's spec says is the API server's, not the workload's: the pod cannot choose its uid, and
its service account is the one Kubernetes admitted it with.

A deleted or finished pod loses its socket and its directory. A pod whose identity may not be
served (istiod's reserved one, another trust domain, a malformed name) is refused and logged
once, as a bad entry is. The loop is an informer's: list, watch from the list's
resourceVersion keeping the newest seen, watch again when the server ends a watch, list again
on 410 Gone, back off (bounded) while the API server cannot be reached, keeping every socket
served meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import re
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pkg.aio.backoff import Backoff
from security.nodeagent.identity import (
    DEFAULT_SERVICE_ACCOUNT,
    Identity,
    InvalidIdentityError,
)
from security.nodeagent.kubepods import Expired, KubeUnavailable, PodClient
from security.nodeagent.workloads import (
    Changes,
    WorkloadBinding,
    WorkloadEntryError,
    checked_binding,
)

log = logging.getLogger("security.nodeagent")

PROXY_CONTAINER = "istio-proxy"  # the injected sidecar's name (Istio's)
SOCKET_NAME = "sds.sock"
FINISHED = frozenset({"Succeeded", "Failed"})
# A pod uid names a directory: Kubernetes' are UUIDs; anything else could be a path.
_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pod_source(uid: str) -> str:
    """The key a pod's binding goes by in WorkloadSockets (entries go by their file names)."""
    return f"pod:{uid}"


def _containers(pod: Any) -> Iterable[Any]:
    spec = pod.spec
    return [*(spec.containers or []), *(spec.init_containers or [])]


def is_injected(pod: Any) -> bool:
    return pod.spec is not None and any(c.name == PROXY_CONTAINER for c in _containers(pod))


def proxy_owner(pod: Any) -> tuple[int, int] | None:
    """(uid, gid) the pod's istio-proxy runs as, from its securityContext over the pod's
    (injection says 1337/1337, Istio's); None when neither names a user."""
    proxy = next((c for c in _containers(pod) if c.name == PROXY_CONTAINER), None)
    contexts = [
        getattr(proxy, "security_context", None),
        getattr(pod.spec, "security_context", None),
    ]
    user = next(
        (c.run_as_user for c in contexts if c is not None and c.run_as_user is not None), None
    )
    if user is None:
        return None
    group = next(
        (c.run_as_group for c in contexts if c is not None and c.run_as_group is not None), user
    )
    return int(user), int(group)


def is_finished(pod: Any) -> bool:
    return pod.status is not None and pod.status.phase in FINISHED


def binding_for(
    pod: Any,
    *,
    node: str,
    sockets_dir: pathlib.Path,
    trust_domain: str,
    reserved: frozenset[str] = frozenset(),
) -> WorkloadBinding | None:
    """The binding a pod gets: None if it is not this node's, not injected or finished;
    WorkloadEntryError if it should be served but its identity may not be."""
    meta = pod.metadata
    if pod.spec is None or pod.spec.node_name != node or not is_injected(pod) or is_finished(pod):
        return None
    name = f"{meta.namespace}/{meta.name}"
    uid = meta.uid or ""
    if not _UID.fullmatch(uid):
        raise WorkloadEntryError(f"pod {name}: uid {uid!r} is not a Kubernetes uid")
    account = pod.spec.service_account_name or DEFAULT_SERVICE_ACCOUNT
    try:
        identity = Identity(trust_domain, meta.namespace or "", account)
    except InvalidIdentityError as error:
        raise WorkloadEntryError(f"pod {name}: {error}") from None
    return checked_binding(
        pod_source(uid),
        identity,
        sockets_dir / uid / SOCKET_NAME,
        name,
        trust_domain=trust_domain,
        reserved=reserved,
        owner=proxy_owner(pod),
    )


@dataclasses.dataclass(frozen=True)
class PodsOptions:
    node: str
    sockets_dir: pathlib.Path
    trust_domain: str
    reserved: frozenset[str] = frozenset()
    backoff_min: float = 0.2
    backoff_max: float = 30.0


class NodePodWatcher:
    """Follows the node's pods and hands what changed (Changes of pod bindings) to
    `on_change` (WorkloadSockets.apply)."""

    def __init__(
        self,
        *,
        client: PodClient,
        options: PodsOptions,
        served: Callable[[], Iterable[WorkloadBinding]] | None = None,
    ) -> None:
        """`served`: the bindings really being served (WorkloadSockets.served); one that
        could not be (its socket could not be made) is tried again at the pod's next
        change and at every list."""
        self._client = client
        self.options = options
        self._served = served
        self.bindings: dict[str, WorkloadBinding] = {}  # by pod uid
        self.errors: dict[str, str] = {}  # pod uid -> why it is not served
        self.relists = 0  # lists after the first (410s, reconnects)
        self.last_error = ""
        self._listed = False
        self.synced = asyncio.Event()

    def has_synced(self) -> bool:
        return self.synced.is_set()

    def prepare(self) -> None:
        """The sockets' folder must exist (on a cluster the DaemonSet's init container made
        it, owned by the proxy's uid); pods' directories go inside it."""
        self.options.sockets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def run(
        self,
        on_change: Callable[[Changes], Awaitable[None]],
        *,
        started: asyncio.Event | None = None,
    ) -> None:
        """Until cancelled; `started` is set once the first list's pods are served."""
        backoff = Backoff(minimum=self.options.backoff_min, maximum=self.options.backoff_max)
        version = ""
        try:
            while True:
                try:
                    if not version:
                        version = await self._relist(on_change)
                        if started is not None:
                            started.set()
                    opened, seen = time.monotonic(), 0
                    async with contextlib.aclosing(self._client.watch(version)) as events:
                        async for event in events:
                            seen += 1
                            if event.resource_version:
                                version = event.resource_version
                            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                                await self._apply(event.type, event.pod, on_change)
                    self.last_error = ""
                    if not seen and time.monotonic() - opened < 1.0:
                        # A server that ends watches at once: not in a tight loop.
                        await asyncio.sleep(backoff.next_delay())
                    else:
                        backoff.reset()
                except Expired as error:
                    log.info("pods of node %s: %s; listing again", self.options.node, error)
                    version = ""
                except KubeUnavailable as error:
                    # Resume from the last version once it answers; a 410 then lists again.
                    if str(error) != self.last_error:
                        log.warning(
                            "pods of node %s: %s; keeping %d pods served, retrying",
                            self.options.node,
                            error,
                            len(self.bindings),
                        )
                    self.last_error = str(error)
                    await asyncio.sleep(backoff.next_delay())
        finally:
            await self._client.close()

    async def _relist(self, on_change: Callable[[Changes], Awaitable[None]]) -> str:
        listed = await self._client.list()
        if self._listed:
            self.relists += 1
        self._listed = True
        fresh: dict[str, WorkloadBinding] = {}
        errors: dict[str, str] = {}
        for pod in listed.items:
            uid, binding, error = self._convert(pod)
            if binding is not None:
                fresh[uid] = binding
            elif error:
                errors[uid] = error
        for uid, why in errors.items():
            if self.errors.get(uid) != why:
                log.error("pod refused: %s", why)
        self.errors = errors
        gone = [b for uid, b in self.bindings.items() if uid not in fresh]
        served = self._served_now()
        new = [
            b
            for uid, b in fresh.items()
            if self.bindings.get(uid) != b or (served is not None and b not in served)
        ]
        self.bindings = fresh
        changes = Changes(tuple(new), tuple(gone))
        if changes:
            await on_change(changes)
        self._sweep()
        self.last_error = ""
        if not self.synced.is_set():
            log.info("pods of node %s listed: %d served", self.options.node, len(fresh))
            self.synced.set()
        return listed.resource_version

    async def _apply(
        self, kind: str, pod: Any, on_change: Callable[[Changes], Awaitable[None]]
    ) -> None:
        uid = pod.metadata.uid or ""
        before = self.bindings.get(uid)
        binding, error = None, ""
        if kind != "DELETED":
            _, binding, error = self._convert(pod)
        if error and self.errors.get(uid) != error:
            log.error("pod refused: %s", error)
        if error:
            self.errors[uid] = error
        else:
            self.errors.pop(uid, None)
        served = self._served_now()
        if binding == before and (binding is None or served is None or binding in served):
            return
        if binding is None:
            if before is not None:
                del self.bindings[uid]
                await on_change(Changes(unbound=(before,)))
        else:
            self.bindings[uid] = binding
            await on_change(Changes(bound=(binding,)))

    def _served_now(self) -> set[WorkloadBinding] | None:
        return None if self._served is None else set(self._served())

    def _convert(self, pod: Any) -> tuple[str, WorkloadBinding | None, str]:
        uid = pod.metadata.uid or ""
        try:
            binding = binding_for(
                pod,
                node=self.options.node,
                sockets_dir=self.options.sockets_dir,
                trust_domain=self.options.trust_domain,
                reserved=self.options.reserved,
            )
        except WorkloadEntryError as error:
            return uid, None, str(error)
        return uid, binding, ""

    def _sweep(self) -> None:
        """Directories of pods that went while the agent was not watching: their socket and
        the directory go (only uid-named ones holding nothing but a socket)."""
        try:
            entries = list(self.options.sockets_dir.iterdir())
        except OSError:
            return
        for folder in entries:
            if not _UID.fullmatch(folder.name) or folder.name in self.bindings:
                continue
            socket = folder / SOCKET_NAME
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(socket.lstat().st_mode):
                    socket.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()
                log.info("removed the socket directory of gone pod %s", folder.name)

    def status(self) -> dict[str, object]:
        return {
            "node": self.options.node,
            "socketsDir": str(self.options.sockets_dir),
            "synced": self.has_synced(),
            "relists": self.relists,
            "lastError": self.last_error,
            "refused": dict(sorted(self.errors.items())),
        }
