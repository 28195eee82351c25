"""Test support for the Kubernetes registry: the official client against a real config store,
a conformance driver that changes the platform as users and controllers do, and a client
whose connection can be cut (as a network partition cuts it).

Nothing here fakes the API: Services, EndpointSlices and Pods are written to the embedded
store through the official `kubernetes.aio` client, and the registry watches the store's
real streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.aio import client

from pilot.registry.conformance import Instance
from pilot.registry.kube.conversion import SERVICE_NAME_LABEL, hostname


def api_client(url: str) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=url))


def service_body(name: str, ports: Sequence[Mapping[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"ports": list(ports), "selector": {"app": name}, **spec},
    }


def pod_body(name: str, labels: Mapping[str, str], account: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "example/app:1"}]}
    if account:
        spec["serviceAccountName"] = account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }


def slice_body(
    name: str,
    service: str,
    port_name: str,
    port: int,
    endpoints: Sequence[tuple[str, str, bool]],  # (address, pod, ready)
    namespace: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {SERVICE_NAME_LABEL: service}},
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace},
            }
            for address, pod, ready in endpoints
        ],
    }


class KubeDriver:
    """The conformance suite's RegistryDriver, writing through the official client."""

    target_ports = True

    def __init__(self, api: client.ApiClient, domain: str = "cluster.local") -> None:
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self._domain = domain
        self._names: dict[str, tuple[str, str]] = {}  # hostname -> (namespace, name)
        self._slices: dict[str, list[str]] = {}
        self._pods: set[tuple[str, str]] = set()

    async def add_service(self, name: str, namespace: str, port: int) -> str:
        await self.core.create_namespaced_service(
            namespace, service_body(name, [{"name": "http", "port": port}])
        )
        host = hostname(name, namespace, self._domain)
        self._names[host] = (namespace, name)
        return host

    async def set_instances(self, host: str, port: int, instances: Sequence[Instance]) -> None:
        namespace, name = self._names[host]
        for old in self._slices.pop(host, []):
            await self.discovery.delete_namespaced_endpoint_slice(old, namespace)
        by_port: dict[int, list[tuple[str, str, bool]]] = {}
        for instance in instances:
            pod = f"{name}-{instance.address.replace('.', '-')}"
            if (namespace, pod) not in self._pods:
                await self.core.create_namespaced_pod(namespace, pod_body(pod, instance.labels))
                self._pods.add((namespace, pod))
            by_port.setdefault(instance.port, []).append((instance.address, pod, True))
        for index, (number, endpoints) in enumerate(sorted(by_port.items())):
            slice_name = f"{name}-{index}"
            body = slice_body(slice_name, name, "http", number, endpoints, namespace)
            await self.discovery.create_namespaced_endpoint_slice(namespace, body)
            self._slices.setdefault(host, []).append(slice_name)

    async def remove_service(self, host: str) -> None:
        namespace, name = self._names.pop(host)
        await self.core.delete_namespaced_service(name, namespace)
        for old in self._slices.pop(host, []):
            await self.discovery.delete_namespaced_endpoint_slice(old, namespace)


class CuttableProxy:
    """A TCP proxy in front of the API server whose connections the test can cut, as a
    network partition cuts them: `cut()` resets every open connection and refuses new ones
    until `restore()`. `async with CuttableProxy(host, port) as proxy:` then `proxy.url`."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = True
        self.url = ""

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def cut(self) -> None:
        self.connected = False
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def restore(self) -> None:
        self.connected = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.connected:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open.update({writer, up_writer})
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink, {writer, up_writer}))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        pair: set[asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for end in pair:
                end.transport.abort()
                self._open.discard(end)
