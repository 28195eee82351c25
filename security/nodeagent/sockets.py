"""One SDS socket per workload: the socket is the workload's proof of who it is.

Each binding of the workload-credentials folder (workloads.py) gets its own gRPC server on its
own Unix socket (its directory 0700, the socket 0600, both the binding's owner's when it
names one: the proxy's uid and gid). Every stream or FetchSecrets arriving on
it carries a `Peer` whose `identities` are the binding's one identity, as a mutual-TLS port's
peer carries its certificate's; `SdsServer`'s check then refuses a node that claims any other.
All servers share one `SdsServer`: one engine, one set of counters, one secret cache.

A gRPC server cannot add a port once started, hence a server per socket (cheap: grpc.aio
servers of one process share its completion-queue poller).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os

import grpc

from pkg.grpcserver.server import STREAMS, new_server
from pkg.xds.grpcservice import peer_of
from pkg.xds.peer import Peer
from security.nodeagent.server import SdsServer, prepare_socket_path, socket_target
from security.nodeagent.workloads import Changes, WorkloadBinding

log = logging.getLogger("security.nodeagent")


@dataclasses.dataclass
class _Served:
    binding: WorkloadBinding
    server: grpc.aio.Server


class WorkloadSockets:
    def __init__(self, sds: SdsServer, *, grace: float = 2.0) -> None:
        self._sds = sds
        self._grace = grace
        self._served: dict[str, _Served] = {}  # by entry file name

    def served(self) -> list[WorkloadBinding]:
        return [s.binding for s in self._served.values()]

    async def apply(self, changes: Changes) -> None:
        for binding in changes.unbound:
            await self.unbind(binding.source)
        for binding in changes.bound:
            await self.unbind(binding.source)  # a changed entry: its old socket goes first
            await self.bind(binding)

    async def bind(self, binding: WorkloadBinding) -> None:
        """Serve `binding`'s identity on its socket; a socket that cannot be made is logged
        and skipped (the rest of the node keeps being served)."""
        try:
            prepare_socket_path(binding.socket)
        except (OSError, ValueError) as error:
            log.error(
                "workload %s (%s): cannot serve SDS on %s: %s",
                binding.workload,
                binding.source,
                binding.socket,
                error,
            )
            return
        server = new_server(STREAMS)
        address = f"unix:{binding.socket}"
        vouched = (binding.identity.spiffe_id,)

        def peer(context: grpc.aio.ServicerContext) -> Peer:
            seen = peer_of(context)
            return dataclasses.replace(seen, address=address, identities=vouched)

        self._sds.add_to(server, peer=peer)
        try:
            server.add_insecure_port(socket_target(binding.socket))
            await server.start()
        except RuntimeError as error:  # grpc's "failed to bind"
            log.error("workload %s: cannot listen on %s: %s", binding.workload, address, error)
            await server.stop(None)
            return
        binding.socket.chmod(0o600)  # gRPC makes it with the umask's mode
        if binding.owner is not None:
            try:
                # The proxy's user (1337) must reach its socket without root: make the
                # directory (0700) and socket (0600) its own, so still nobody else's.
                for path in (binding.socket.parent, binding.socket):
                    os.chown(path, *binding.owner)
            except OSError as error:
                log.error("workload %s: cannot give %s to uid/gid %s: %s",
                          binding.workload, binding.socket, binding.owner, error)  # fmt: skip
                await server.stop(None)
                return
        self._served[binding.source] = _Served(binding, server)
        log.info(
            "serving %s to workload %s on %s", binding.identity, binding.workload, binding.socket
        )

    async def unbind(self, source: str) -> None:
        served = self._served.pop(source, None)
        if served is None:
            return
        await served.server.stop(self._grace)
        socket = served.binding.socket
        with contextlib.suppress(FileNotFoundError):
            socket.unlink()
        with contextlib.suppress(OSError):
            socket.parent.rmdir()  # the workload's own directory, if nothing else is in it
        log.info("stopped serving workload %s on %s", served.binding.workload, socket)

    async def close(self) -> None:
        for source in list(self._served):
            await self.unbind(source)
