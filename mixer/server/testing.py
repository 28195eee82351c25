"""Test support: a Mixer served in-process against a real config store, and a client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from api.mixer.v1 import check_pb2, report_pb2, service_pb2_grpc
from mixer.attribute.compressed import encode, encode_report
from mixer.server.server import MixerOptions, MixerServer
from pkg.config import loader
from pkg.kube.client import ConfigClient
from pkg.testing.wait import eventually

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
POLICY = ROOT / "samples/bookinfo/policy"
TELEMETRY = ROOT / "mixer/config/telemetry.yaml"


@contextlib.asynccontextmanager
async def running_mixer(store_url: str, **options: Any) -> AsyncIterator[MixerServer]:
    server = MixerServer(
        MixerOptions(
            config_store=store_url,
            grpc_address="127.0.0.1:0",
            metrics_address="127.0.0.1:0",
            monitoring_address="127.0.0.1:0",
            **options,
        )
    )
    task = asyncio.create_task(server.run(), name="mixs")
    try:
        async with asyncio.timeout(20):
            await server.ready.wait()
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def apply(store_url: str, *paths: pathlib.Path) -> None:
    async with ConfigClient(store_url) as client:
        for path in paths:
            for resource in loader.load_file(path):
                await client.apply(resource)


async def delete(store_url: str, *paths: pathlib.Path) -> None:
    async with ConfigClient(store_url) as client:
        for path in paths:
            for resource in loader.load_file(path):
                await client.delete(
                    resource.schema, resource.metadata.name, resource.metadata.namespace
                )


async def wait_for_snapshot(server: MixerServer, after: int, timeout: float = 10.0) -> None:
    await eventually(
        lambda: server.snapshot.id > after,
        timeout=timeout,
        interval=0.01,
        what=f"a config snapshot after {after}",
    )


@dataclasses.dataclass
class MixerClient:
    """Check and Report with attributes given as a plain dict, compressed as a proxy would."""

    stub: service_pb2_grpc.MixerStub

    async def check(
        self,
        attributes: Mapping[str, Any],
        quotas: Mapping[str, int] | None = None,
        dedup: str | None = None,
    ) -> check_pb2.CheckResponse:
        request = check_pb2.CheckRequest(
            attributes=encode(dict(attributes)), deduplication_id=dedup or uuid.uuid4().hex
        )
        for name, amount in (quotas or {}).items():
            request.quotas[name].amount = amount
        return await self.stub.Check(request, timeout=10)

    async def report(self, *bags: Mapping[str, Any]) -> report_pb2.ReportResponse:
        return await self.stub.Report(encode_report([dict(b) for b in bags]), timeout=10)


@contextlib.asynccontextmanager
async def mixer_client(address: str) -> AsyncIterator[MixerClient]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield MixerClient(service_pb2_grpc.MixerStub(channel))
