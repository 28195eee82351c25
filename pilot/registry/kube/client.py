"""The narrow slice of the Kubernetes API the registry reads, over the official asyncio client.

Services, EndpointSlices (or Endpoints, where a cluster does not serve discovery.k8s.io/v1)
and Pods, in every namespace, and Nodes (for their topology labels) where the server serves
them. For each, a list (the objects, typed by the client's
models, and the list's resourceVersion) and a watch from a resourceVersion. Failures are two
errors: `Expired` (410: the history is gone, list again) and `KubeUnavailable` (anything else).

The same code reads the local platform's config store, a cluster from a kubeconfig, or the
cluster Pilot runs in (`in_cluster()`: the pod's service-account token and CA).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

import aiohttp
from kubernetes.aio import client, config, watch
from kubernetes.aio.client.exceptions import ApiException

# How long a watch stays open before the registry asks again from where it was (the server
# closes it then; Kubernetes' own clients pick 5 to 10 minutes).
WATCH_SECONDS = 300


class Kind(enum.StrEnum):
    SERVICES = "services"
    ENDPOINT_SLICES = "endpointslices"
    ENDPOINTS = "endpoints"
    PODS = "pods"
    NODES = "nodes"  # cluster-scoped: their topology labels are their pods' locality


class KubeUnavailable(RuntimeError):
    """The API server could not be reached, or refused what the registry asked."""


class Expired(RuntimeError):
    """410 Gone: the resourceVersion is older than the server keeps; list again."""


@dataclasses.dataclass(frozen=True)
class Listed:
    items: list[Any]  # the client's models: V1Service, V1EndpointSlice, V1Endpoints, V1Pod
    resource_version: str


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: Any  # a model (BOOKMARK: None)
    resource_version: str


class KubeClient(Protocol):
    async def serves(self, kind: Kind) -> bool:
        """Whether the API server serves the kind (EndpointSlices may be missing)."""
        ...

    async def list(self, kind: Kind) -> Listed: ...

    def watch(self, kind: Kind, resource_version: str) -> AsyncGenerator[Event, None]:
        """Events after `resource_version` until the server ends the stream; raises Expired."""
        ...

    async def close(self) -> None: ...


class OfficialClient:
    """KubeClient on `kubernetes.aio` (the official client); build it with `from_kubeconfig`,
    `in_cluster` or `from_api_client`."""

    def __init__(self, api: client.ApiClient, *, watch_seconds: int = WATCH_SECONDS) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._discovery = client.DiscoveryV1Api(api)
        self._watch_seconds = watch_seconds

    @classmethod
    async def from_kubeconfig(cls, path: str = "", context: str | None = None) -> OfficialClient:
        """Istio's --kubeconfig: this file, else $KUBECONFIG, else ~/.kube/config."""
        try:
            api = await config.new_client_from_config(
                config_file=path or None, context=context, persist_config=False
            )
        except (config.ConfigException, OSError, TypeError, ValueError) as error:
            where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise KubeUnavailable(f"kubeconfig {where}: {error}") from None
        return cls(api)

    @classmethod
    def in_cluster(cls) -> OfficialClient:
        """The credentials Kubernetes mounts into Pilot's pod."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as error:
            raise KubeUnavailable(f"in-cluster configuration: {error}") from None
        return cls(client.ApiClient(configuration))

    @classmethod
    def from_api_client(cls, api: client.ApiClient, **kwargs: Any) -> OfficialClient:
        return cls(api, **kwargs)

    def _lister(self, kind: Kind) -> Callable[..., Any]:
        return {
            Kind.SERVICES: self._core.list_service_for_all_namespaces,
            Kind.ENDPOINTS: self._core.list_endpoints_for_all_namespaces,
            Kind.PODS: self._core.list_pod_for_all_namespaces,
            Kind.NODES: self._core.list_node,
            Kind.ENDPOINT_SLICES: self._discovery.list_endpoint_slice_for_all_namespaces,
        }[kind]

    async def serves(self, kind: Kind) -> bool:
        try:
            await self._lister(kind)(limit=1)
        except ApiException as error:
            if error.status == 404:
                return False
            raise _unavailable(kind, error) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _unavailable(kind, error) from None
        return True

    async def list(self, kind: Kind) -> Listed:
        try:
            answer = await self._lister(kind)()
        except ApiException as error:
            if error.status == 410:
                raise Expired(str(error.reason)) from None
            raise _unavailable(kind, error) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _unavailable(kind, error) from None
        return Listed(list(answer.items), answer.metadata.resource_version or "")

    async def watch(self, kind: Kind, resource_version: str) -> AsyncGenerator[Event, None]:
        # With timeout_seconds the client neither reconnects nor retries a 410 by itself: the
        # registry decides (resume from the last version, or list again).
        stream = watch.Watch()
        events = stream.stream(
            self._lister(kind),
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_seconds,
        )
        try:
            async for event in events:
                if not isinstance(event, dict):
                    continue  # a line that is no event (the client hands those over as they are)
                kind_of = str(event.get("type", ""))
                raw = event.get("raw_object") or {}
                version = str((raw.get("metadata") or {}).get("resourceVersion") or "")
                model = None if kind_of == "BOOKMARK" else event.get("object")
                yield Event(kind_of, model, version)
        except ApiException as error:
            if error.status == 410:
                raise Expired(str(error.reason)) from None
            raise _unavailable(kind, error) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _unavailable(kind, error) from None
        finally:
            stream.stop()
            await stream.close()

    async def close(self) -> None:
        await self._api.close()


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to prove who Pilot is: a kubeconfig file (Istio's
    --kubeconfig; "" for $KUBECONFIG or ~/.kube/config), or the pod's in-cluster credentials."""

    kubeconfig: str = ""
    context: str | None = None
    in_cluster: bool = False

    @classmethod
    def find(cls, kubeconfig: str = "") -> Credentials:
        """Istio's order: the flag, then in-cluster credentials inside a pod, then the
        default kubeconfig; ValueError when there is none of them."""
        if kubeconfig:
            if not os.path.isfile(kubeconfig):
                raise ValueError(f"--kubeconfig {kubeconfig}: no such file")
            return cls(kubeconfig)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return cls(in_cluster=True)
        default = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        if os.path.isfile(default.split(os.pathsep)[0]):
            return cls()
        raise ValueError(
            "registry Kubernetes needs --kubeconfig, $KUBECONFIG, ~/.kube/config or "
            "in-cluster credentials"
        )


class Connecting:
    """A KubeClient that connects (reads its credentials) on first use, in the loop that runs
    it: what Pilot's bootstrap hands the registry."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials
        self._client: OfficialClient | None = None

    async def _connected(self) -> OfficialClient:
        if self._client is None:
            if self._credentials.in_cluster:
                self._client = OfficialClient.in_cluster()
            else:
                self._client = await OfficialClient.from_kubeconfig(
                    self._credentials.kubeconfig, self._credentials.context
                )
        return self._client

    async def serves(self, kind: Kind) -> bool:
        return await (await self._connected()).serves(kind)

    async def list(self, kind: Kind) -> Listed:
        return await (await self._connected()).list(kind)

    async def watch(self, kind: Kind, resource_version: str) -> AsyncGenerator[Event, None]:
        async for event in (await self._connected()).watch(kind, resource_version):
            yield event

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _unavailable(kind: Kind, error: BaseException) -> KubeUnavailable:
    if isinstance(error, ApiException):
        return KubeUnavailable(f"{kind}: HTTP {error.status}: {error.reason}")
    return KubeUnavailable(f"{kind}: {type(error).__name__}: {error}")
