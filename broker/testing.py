"""Test support: a real broker with a real config store and a real CA, and an OSB client.

- `running_broker(tmp_path, ...)`: the store (in this loop, or one given by URL), a CA
  (security.ca.testing.running_ca) granting the broker its namespace, and a BrokerServer on
  127.0.0.1 ephemeral ports, torn down when the block exits; every wait bounded.
- `BrokerProcess`: `python -m broker.main` as a child process (restart tests).
- `OsbClient`: the platform's side of the API, over aiohttp, with basic auth and the
  version header unless told otherwise.
- `apply(...)`: YAML into the store, through the shared loader.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import pathlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from broker.options import BrokerOptions
from broker.server import BrokerServer
from pilot.configstore.server import Options as StoreOptions
from pilot.configstore.server import serving
from pkg.config import loader
from pkg.kube.client import ConfigClient
from pkg.testing import programs
from security.ca.testing import running_ca

ROOT = pathlib.Path(__file__).absolute().parents[1]
USER, PASSWORD = "platform", "s3cret-broker-password"
CA_TOKEN = "broker-ca-token"
_READY = re.compile(r"broker ready: serving (http://\S+)")

# Bookinfo's productpage in the registry, one workload, and Istio 0.8's demo catalog.
PRODUCTPAGE = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: productpage}}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: productpage-v1, namespace: default}
spec:
  address: 127.0.1.2
  labels: {app: productpage, version: v1}
  serviceAccount: bookinfo-productpage
"""
DEMO_CATALOG = ROOT / "broker/example/demo_catalog.yaml"
SERVICE_ID = "4395a443-f49a-41b0-8d14-d17294cf612f"
MONTHLY = "58646b26-867a-4954-a1b9-233dac07815b"
YEARLY = "cdd76b03-a28b-4638-b4e2-19ee44b36db7"


@dataclasses.dataclass
class Running:
    url: str
    store_url: str
    server: BrokerServer
    ca_root: pathlib.Path
    namespace: str

    def client(self, **options: Any) -> OsbClient:
        return OsbClient(self.url, **options)


def write_files(directory: pathlib.Path, ca_root: pathlib.Path) -> dict[str, pathlib.Path]:
    """The broker's credentials file and CA token, beside the CA's root: its file options."""
    directory.mkdir(parents=True, exist_ok=True)
    credentials = directory / "credentials"
    credentials.write_text(f"{USER}:{PASSWORD}\n")
    token = directory / "ca-token"
    token.write_text(CA_TOKEN + "\n")
    return {"credentials": credentials, "ca_token_file": token, "ca_root": ca_root}


@contextlib.asynccontextmanager
async def running_broker(
    tmp_path: pathlib.Path,
    *,
    store_url: str | None = None,
    namespace: str = "istio-broker",
    **overrides: Any,
) -> AsyncIterator[Running]:
    await asyncio.to_thread(tmp_path.mkdir, parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        if store_url is None:
            store = await stack.enter_async_context(
                serving(StoreOptions(port=0, db=tmp_path / "store.db"))
            )
            store_url = store.url
        ca = await stack.enter_async_context(
            running_ca(
                tmp_path / "ca-run",
                grants={CA_TOKEN: [f"spiffe://cluster.local/ns/{namespace}/sa/*"]},
            )
        )
        ca_root = tmp_path / "ca-run" / "ca" / "root-cert.pem"
        files = write_files(tmp_path / "broker", ca_root)
        settings: dict[str, Any] = {
            "address": "127.0.0.1",
            "port": 0,
            "config_store": store_url,
            "ca_address": ca.address,
            "namespace": namespace,
            **overrides,
        }
        options = BrokerOptions(
            credentials=files["credentials"],
            ca_root=files["ca_root"],
            ca_token_file=files["ca_token_file"],
            **settings,
        )
        server = BrokerServer(options)
        task = asyncio.create_task(server.run(), name="broker")
        try:
            await _until_ready(server, task)
            yield Running(server.url, store_url, server, ca_root, namespace)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _until_ready(server: BrokerServer, task: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(server.ready.wait(), name="broker-ready")
    try:
        async with asyncio.timeout(30):
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ready
    if task.done():
        task.result()  # raises why it stopped


async def apply(store_url: str, *texts_or_paths: str | pathlib.Path) -> None:
    async with ConfigClient(store_url) as client:
        for item in texts_or_paths:
            if isinstance(item, pathlib.Path):
                resources = loader.load_file(item)
            else:
                resources = loader.load_text(item)
            for resource in resources:
                await client.apply(resource)


@dataclasses.dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class OsbClient:
    """`async with OsbClient(url) as osb: await osb.get("/v2/catalog")`."""

    def __init__(
        self,
        url: str,
        *,
        username: str = USER,
        password: str = PASSWORD,
        version: str | None = "2.17",
        identity: str | None = None,
    ) -> None:
        self.url = url
        self._headers = {}
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        if version is not None:
            self._headers["X-Broker-API-Version"] = version
        if identity is not None:
            self._headers["X-Broker-API-Originating-Identity"] = identity
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OsbClient:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> Answer:
        assert self._session is not None
        sent = {**self._headers, **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        async with self._session.request(
            method, self.url + path, data=data, params=params, headers=sent
        ) as response:
            text = await response.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Answer(response.status, parsed, dict(response.headers))

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)

    async def provision(
        self, instance_id: str, service_id: str = SERVICE_ID, plan_id: str = MONTHLY, **kw: Any
    ) -> Answer:
        params = kw.pop("params", None)
        body = {
            "service_id": service_id,
            "plan_id": plan_id,
            "organization_guid": "org-1",
            "space_guid": "space-1",
            **kw,
        }
        return await self.call("PUT", f"/v2/service_instances/{instance_id}", body, params=params)

    async def deprovision(
        self, instance_id: str, service_id: str = SERVICE_ID, plan_id: str = MONTHLY, **params: str
    ) -> Answer:
        query = {"service_id": service_id, "plan_id": plan_id, **params}
        return await self.call("DELETE", f"/v2/service_instances/{instance_id}", params=query)

    async def bind(
        self,
        instance_id: str,
        binding_id: str,
        service_id: str = SERVICE_ID,
        plan_id: str = MONTHLY,
        **kw: Any,
    ) -> Answer:
        params = kw.pop("params", None)
        body = {"service_id": service_id, "plan_id": plan_id, **kw}
        path = f"/v2/service_instances/{instance_id}/service_bindings/{binding_id}"
        return await self.call("PUT", path, body, params=params)

    async def unbind(
        self,
        instance_id: str,
        binding_id: str,
        service_id: str = SERVICE_ID,
        plan_id: str = MONTHLY,
        **params: str,
    ) -> Answer:
        query = {"service_id": service_id, "plan_id": plan_id, **params}
        path = f"/v2/service_instances/{instance_id}/service_bindings/{binding_id}"
        return await self.call("DELETE", path, params=query)

    async def poll(self, path: str, timeout: float = 20.0, **params: str) -> Answer:
        """last_operation until it is no longer in progress."""
        deadline = time.monotonic() + timeout
        while True:
            answer = await self.get(path, params=params or None)
            if answer.status != 200 or answer.body.get("state") != "in progress":
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} still in progress after {timeout}s")
            await asyncio.sleep(0.05)


async def wait_catalog(osb: OsbClient, predicate, timeout: float = 10.0) -> dict[str, Any]:
    """The catalog, once `predicate(catalog)` holds (the broker follows the store)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await osb.get("/v2/catalog")
        if answer.status == 200 and predicate(answer.body):
            return answer.body
        if time.monotonic() > deadline:
            raise AssertionError(f"catalog never matched: {answer.status} {answer.body}")
        await asyncio.sleep(0.05)


class BrokerProcess(programs.ProgramProcess):
    """`python -m broker.main` as a child process, its stderr collected."""

    def __init__(self, args: list[str]) -> None:
        super().__init__("the broker", "broker.main", *args, ready=_READY)

    @property
    def url(self) -> str:
        return self.ready.group(1) if self.ready else ""

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        return super().start(timeout)
