"""The `istio-ca-root-cert` ConfigMap in every namespace, as istiod's namespace controller
keeps it: the mesh's root, which every injected pod mounts to trust Pilot and the CA.

Each round lists the namespaces and the ConfigMaps of that name across them, and applies
(server-side, field manager `istiod`) the ConfigMap wherever it is missing or holds another
root; the root file is re-read each round, so a rotated root reaches every namespace.
Kubernetes' own namespaces are left out, and one namespace that refuses does not stop the
others (it is retried next round).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pathlib
from typing import Any

from pkg.kube import errors
from pkg.kube.client import ConfigClient

log = logging.getLogger("pilot.rootcert")

CONFIGMAP = "istio-ca-root-cert"
KEY = "root-cert.pem"
SKIPPED = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclasses.dataclass(frozen=True)
class RootCertOptions:
    root_file: pathlib.Path  # the CA's root-cert.pem, as Pilot has it
    interval: float = 5.0  # seconds between rounds: how soon a new namespace gets it


class RootCertPublisher:
    def __init__(self, client: ConfigClient, options: RootCertOptions) -> None:
        self._client = client
        self.options = options
        self.rounds = 0
        self.written = 0

    async def run(self) -> None:
        while True:
            try:
                await self.publish()
            except (errors.ApiError, OSError) as error:
                log.warning("publishing %s: %s; retrying", CONFIGMAP, error)
            await asyncio.sleep(self.options.interval)

    async def publish(self) -> list[str]:
        """One round; the namespaces written to."""
        root = self.options.root_file.read_text()
        namespaces = await self._client.get_raw("/api/v1/namespaces")
        present = await self._client.get_raw(
            f"/api/v1/configmaps?fieldSelector=metadata.name%3D{CONFIGMAP}"
        )
        held = {
            (item.get("metadata") or {}).get("namespace"): (item.get("data") or {}).get(KEY)
            for item in _items(present)
            if (item.get("metadata") or {}).get("name") == CONFIGMAP
        }
        written = []
        for item in _items(namespaces):
            meta = item.get("metadata") or {}
            name = meta.get("name", "")
            terminating = (item.get("status") or {}).get("phase") == "Terminating"
            if not name or name in SKIPPED or terminating or held.get(name) == root:
                continue
            try:
                await self._client.apply_raw(
                    f"/api/v1/namespaces/{name}/configmaps/{CONFIGMAP}",
                    _configmap(name, root),
                    field_manager="istiod",
                )
            except errors.ApiError as error:
                log.warning("namespace %s: cannot write %s: %s", name, CONFIGMAP, error)
                continue
            written.append(name)
        self.rounds += 1
        self.written += len(written)
        if written:
            log.info("%s written to %s", CONFIGMAP, ", ".join(written))
        return written


def _items(listing: Any) -> list[dict[str, Any]]:
    items = listing.get("items") if isinstance(listing, dict) else None
    return [i for i in items or [] if isinstance(i, dict)]


def _configmap(namespace: str, root: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP,
            "namespace": namespace,
            "labels": {"istio.io/config": "true"},
        },
        "data": {KEY: root},
    }
