"""The node agent's narrow slice of the Kubernetes API: the Pods of one node, listed and watched.

Over the official asyncio client (`kubernetes.aio`), as Pilot's registry reads the cluster:
a list of the pods whose `spec.nodeName` is this node (a field selector, so the API server
sends nothing of the other nodes), and a watch from the list's resourceVersion. Two errors:
`Expired` (410: the history is gone, list again) and `KubeUnavailable` (anything else).

Credentials: a kubeconfig (`--kubeconfig`), else the pod's in-cluster service-account token
and CA, which is how the DaemonSet runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import Any, Protocol

import aiohttp
from kubernetes.aio import client, config, watch
from kubernetes.aio.client.exceptions import ApiException

# How long a watch stays open before the agent asks again from where it was (Kubernetes' own
# clients pick 5 to 10 minutes).
WATCH_SECONDS = 300


class KubeUnavailable(RuntimeError):
    """The API server could not be reached, or refused what the agent asked."""


class Expired(RuntimeError):
    """410 Gone: the resourceVersion is older than the server keeps; list again."""


@dataclasses.dataclass(frozen=True)
class Listed:
    items: list[Any]  # V1Pod models
    resource_version: str


@dataclasses.dataclass(frozen=True)
class PodEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    pod: Any  # a V1Pod (BOOKMARK: None)
    resource_version: str


class PodClient(Protocol):
    async def list(self) -> Listed: ...

    def watch(self, resource_version: str) -> AsyncGenerator[PodEvent, None]:
        """Events after `resource_version` until the server ends the stream; raises Expired."""
        ...

    async def close(self) -> None: ...


class NodePods:
    """PodClient for the pods of `node`; build it with `connect` (credentials) or hand it an
    `ApiClient` (tests)."""

    def __init__(
        self, api: client.ApiClient, node: str, *, watch_seconds: int = WATCH_SECONDS
    ) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._selector = f"spec.nodeName={node}"
        self._watch_seconds = watch_seconds
        self.node = node

    @classmethod
    async def connect(cls, node: str, kubeconfig: str | None = None) -> NodePods:
        """The kubeconfig given, else in-cluster credentials (KubeUnavailable if neither)."""
        try:
            if kubeconfig:
                api = await config.new_client_from_config(
                    config_file=kubeconfig, persist_config=False
                )
            else:
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                api = client.ApiClient(configuration)
        except (config.ConfigException, OSError, TypeError, ValueError) as error:
            where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster credentials"
            raise KubeUnavailable(f"{where}: {error}") from None
        return cls(api, node)

    async def list(self) -> Listed:
        try:
            answer = await self._core.list_pod_for_all_namespaces(field_selector=self._selector)
        except ApiException as error:
            if error.status == 410:
                raise Expired(str(error.reason)) from None
            raise _unavailable(error) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _unavailable(error) from None
        return Listed(list(answer.items), answer.metadata.resource_version or "")

    async def watch(self, resource_version: str) -> AsyncGenerator[PodEvent, None]:
        # With timeout_seconds the client neither reconnects nor retries a 410 by itself: the
        # watcher decides (resume from the last version, or list again).
        stream = watch.Watch()
        events = stream.stream(
            self._core.list_pod_for_all_namespaces,
            field_selector=self._selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_seconds,
        )
        try:
            async for event in events:
                if not isinstance(event, dict):
                    continue  # a line that is no event
                kind = str(event.get("type", ""))
                raw = event.get("raw_object") or {}
                version = str((raw.get("metadata") or {}).get("resourceVersion") or "")
                pod = None if kind == "BOOKMARK" else event.get("object")
                yield PodEvent(kind, pod, version)
        except ApiException as error:
            if error.status == 410:
                raise Expired(str(error.reason)) from None
            raise _unavailable(error) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _unavailable(error) from None
        finally:
            stream.stop()
            await stream.close()

    async def close(self) -> None:
        await self._api.close()


def _unavailable(error: BaseException) -> KubeUnavailable:
    if isinstance(error, ApiException):
        return KubeUnavailable(f"pods: HTTP {error.status}: {error.reason}")
    return KubeUnavailable(f"pods: {type(error).__name__}: {error}")
