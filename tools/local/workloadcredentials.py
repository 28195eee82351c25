"""Handing each workload its own SDS socket: the entries the node agent serves them from.

Whoever starts a workload on this machine (the kubelet for pods, the launcher for the
processes it runs itself) writes one entry into the node agent's workload-credentials folder
before the workload starts, and removes it when the workload stops:

    {"identity": "spiffe://<trust domain>/ns/<namespace>/sa/<service account>",
     "socket": "<sockets dir>/<key>/sds.sock", "workload": "<namespace>/<name>",
     "uid": 1337, "gid": 1337}

The identity is the one the workload's service account gives (as Istio's is the pod's
service-account token's), never what the workload says; the workload is told only its socket
(pilot-agent's --sds-socket). The format is the node agent's (security/nodeagent/workloads.py):
the two are separate programs, the file is their contract. Sockets sit in a short folder of
their own: a Unix socket path holds at most 107 bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib

DEFAULT_TRUST_DOMAIN = "cluster.local"


@dataclasses.dataclass(frozen=True)
class WorkloadCredentials:
    folder: pathlib.Path  # the node agent's --workloads-dir
    sockets: pathlib.Path  # where each workload's socket directory goes
    trust_domain: str = DEFAULT_TRUST_DOMAIN

    def socket_for(self, key: str) -> pathlib.Path:
        return self.sockets / key / "sds.sock"

    def write(
        self,
        entry: str,
        *,
        namespace: str,
        service_account: str,
        workload: str,
        key: str,
        owner: tuple[int, int] | None = None,
    ) -> pathlib.Path:
        """Bind the workload's socket to its service account's identity, made `owner`'s
        (uid, gid: who the proxy runs as) when given; returns the socket."""
        socket = self.socket_for(key)
        body: dict[str, object] = {
            "identity": f"spiffe://{self.trust_domain}/ns/{namespace}/sa/{service_account}",
            "socket": str(socket),
            "workload": workload,
        }
        if owner is not None:
            body["uid"], body["gid"] = owner
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Whole or not at all: the node agent ignores dot-files and never sees half an entry.
        temporary = self.folder / f".{entry}.json.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(body, out)
        temporary.replace(self.folder / f"{entry}.json")
        return socket

    def remove(self, entry: str) -> None:
        (self.folder / f"{entry}.json").unlink(missing_ok=True)

    def remove_all(self, prefix: str) -> list[str]:
        """Removes the entries a writer left (its prefix) when it starts again."""
        removed = []
        for path in sorted(self.folder.glob(f"{prefix}*.json")):
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed


def short_key(*parts: str) -> str:
    """A stable 8-character name for a workload's socket directory."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]


LAUNCHER_PREFIX = "launcher-"  # the launcher's entries in the workload-credentials folder


def write_launcher_entries(
    credentials: WorkloadCredentials, workloads: list[tuple[str, str, str]]
) -> list[pathlib.Path]:
    """The entries of the workloads the launcher runs itself (namespace, pod, service
    account), replacing those of its last run; their sockets, in the same order."""
    credentials.remove_all(LAUNCHER_PREFIX)
    return [
        credentials.write(
            f"{LAUNCHER_PREFIX}{namespace}_{pod}",
            namespace=namespace,
            service_account=account,
            workload=f"{namespace}/{pod}",
            key=short_key(namespace, pod),
        )
        for namespace, pod, account in workloads
    ]
