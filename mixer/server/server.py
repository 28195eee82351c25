"""mixs: Mixer's process. Check and Report over gRPC, config from the config store.

One `MixerServer` owns every long-lived task in one TaskGroup: the informer mirroring
the Mixer kinds, the config loop that compiles and swaps snapshots, the gRPC server
(istio.mixer.v1.Mixer, 9091), the adapters' metrics endpoint (/metrics, 42422) and the
monitoring endpoint (readiness, Mixer's own counters, 9093). A request keeps the snapshot
it started with; handlers a new snapshot dropped are closed only after every call that
could still be using them has timed out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pathlib
import time
from typing import Any

import grpc
import prometheus_client
from aiohttp import web
from google.protobuf import duration_pb2

from api.mixer.v1 import check_pb2, report_pb2, service_pb2, service_pb2_grpc
from mixer.adapter import api as adapter_api
from mixer.attribute.bag import TrackingBag
from mixer.attribute.compressed import decode_check, decode_report_deltas
from mixer.attribute.dictionary import AttributeDecodeError
from mixer.runtime.dispatcher import Dispatcher
from mixer.runtime.snapshot import DEFAULT_NAMESPACE, EMPTY, Snapshot, build_snapshot
from mixer.server.attribute_types import type_errors
from pkg.aio.idle_gc import IdleCollector
from pkg.config import loader
from pkg.config.kinds import MIXER
from pkg.grpcserver.requests import add_unary_service
from pkg.grpcserver.server import UNARY, new_server
from pkg.kube.client import ConfigClient
from pkg.kube.informer import Informer
from pkg.lang.types import ValueType

log = logging.getLogger("mixer")

MIXER_SERVICE = service_pb2.DESCRIPTOR.services_by_name["Mixer"]
VOCABULARY = (
    pathlib.Path(__file__).resolve().parent.parent.parent / "api/policy/v1beta1/attributes.yaml"
)


@dataclasses.dataclass(frozen=True)
class MixerOptions:
    config_store: str = "http://127.0.0.1:8001"
    grpc_address: str = "127.0.0.1:9091"
    metrics_address: str = "127.0.0.1:42422"
    monitoring_address: str = "127.0.0.1:9093"
    default_namespace: str = DEFAULT_NAMESPACE
    adapter_timeout: float = 1.0  # seconds an adapter call may take
    config_debounce: float = 0.05


def standard_types() -> dict[str, ValueType]:
    """Istio's attribute vocabulary, the manifest every Mixer starts from."""
    types: dict[str, ValueType] = {}
    for manifest in loader.load_file(VOCABULARY):
        for name, info in manifest.spec.attributes.items():
            types[name] = ValueType(info.value_type)
    return types


class MixerServer:
    def __init__(self, options: MixerOptions) -> None:
        self.options = options
        self.snapshot: Snapshot = EMPTY
        self.dispatcher = Dispatcher(adapter_timeout=options.adapter_timeout)
        self.registry = prometheus_client.CollectorRegistry()
        self._env = adapter_api.Env(
            logger=logging.getLogger("mixer.adapter"), metrics=self.registry
        )
        self._base_types = standard_types()
        self._client = ConfigClient(options.config_store)
        self._informer = Informer(self._client, MIXER, on_change=self._config_changed)
        self._config_dirty = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()
        self.grpc_address = options.grpc_address
        self.metrics_address = options.metrics_address
        self.monitoring_address = options.monitoring_address
        self.invalid_requests = 0
        # A full collection of mixs' heap took 70-260 ms under Bookinfo's load, every few
        # seconds; a Check waiting behind it held every request whose cached answer had
        # expired. Collected at quiet moments instead, and what survives frozen (pkg/aio).
        self.idle_gc = IdleCollector()

    async def run(self) -> None:
        grpc_server = new_server(UNARY)
        add_unary_service(
            grpc_server, MIXER_SERVICE, _Servicer(self), on_undecodable=self._undecodable
        )
        host = self.options.grpc_address.rpartition(":")[0]
        self.grpc_address = f"{host}:{grpc_server.add_insecure_port(self.options.grpc_address)}"
        metrics = web.AppRunner(self._metrics_app(), access_log=None)
        monitoring = web.AppRunner(self._monitoring_app(), access_log=None)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._informer.run(), name="config-informer")
                await self._informer.synced.wait()
                await self._rebuild()
                tasks.create_task(self._config_loop(), name="config-loop")
                tasks.create_task(self.idle_gc.run(), name="idle-gc")
                await grpc_server.start()
                self.metrics_address = await _serve(metrics, self.options.metrics_address)
                self.monitoring_address = await _serve(monitoring, self.options.monitoring_address)
                self.ready.set()
                log.info(
                    "mixs ready: Mixer API on %s, adapter metrics on http://%s/metrics, monitoring on http://%s",
                    self.grpc_address,
                    self.metrics_address,
                    self.monitoring_address,
                )
        finally:
            await grpc_server.stop(1.0)
            for task in list(self._closing):
                task.cancel()
            await asyncio.gather(*self._closing, return_exceptions=True)
            await metrics.cleanup()
            await monitoring.cleanup()
            for entry in self.snapshot.handlers.values():
                await _close(entry)
            await self._client.close()

    def _undecodable(self, method: str) -> None:
        self.invalid_requests += 1

    # Config.

    async def _config_changed(self) -> None:
        self._config_dirty.set()

    async def _config_loop(self) -> None:
        while True:
            await self._config_dirty.wait()
            await asyncio.sleep(self.options.config_debounce)  # let a burst of writes settle
            self._config_dirty.clear()
            await self._rebuild()

    async def _rebuild(self) -> None:
        started = time.perf_counter()
        configs = {
            schema.kind: resources for schema, resources in self._informer.snapshot().items()
        }
        old = self.snapshot
        new = await build_snapshot(
            old.id + 1,
            configs,
            base_types=self._base_types,
            env=self._env,
            previous=old,
            default_namespace=self.options.default_namespace,
        )
        self.snapshot = new  # one assignment: a request sees the old snapshot or the new one
        kept = {id(e.handler) for e in new.handlers.values()}
        retired = [e for e in old.handlers.values() if id(e.handler) not in kept]
        if retired:
            task = asyncio.create_task(self._retire(retired), name=f"retire-snapshot-{old.id}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        log.info(
            "config snapshot %d: %d rules, %d handlers, %d errors (%.1f ms)",
            new.id,
            len(new.rules),
            len(new.handlers),
            len(new.errors),
            (time.perf_counter() - started) * 1e3,
        )

    async def _retire(self, entries: list[Any]) -> None:
        # Calls into these handlers started before the swap end within the adapter timeout;
        # at shutdown (cancelled) they are closed at once.
        try:
            await asyncio.sleep(self.options.adapter_timeout + 0.5)
        finally:
            for entry in entries:
                await _close(entry)

    # Requests.

    def decode_checked(self, request: check_pb2.CheckRequest) -> Any:
        bag = decode_check(request)
        problems = type_errors(bag.items(), self.snapshot.types or self._base_types)
        if problems:
            raise AttributeDecodeError("; ".join(problems))
        return bag

    async def check(self, request: check_pb2.CheckRequest) -> check_pb2.CheckResponse:
        snapshot = self.snapshot
        bag = self.decode_checked(request)
        tracking = TrackingBag(bag)
        words = request.global_word_count or None  # references use only words the client knows
        result = await self.dispatcher.check(snapshot, tracking)
        response = check_pb2.CheckResponse()
        precondition = response.precondition
        precondition.status.code = result.status_code
        precondition.status.message = result.message
        precondition.valid_duration.CopyFrom(_duration(result.valid_duration))
        precondition.valid_use_count = result.valid_use_count
        precondition.referenced_attributes.CopyFrom(
            tracking.referenced_attributes(global_word_count=words)
        )
        if result.ok:
            for name, params in request.quotas.items():
                quota_bag = TrackingBag(bag)
                args = adapter_api.QuotaArgs(
                    request.deduplication_id + name, params.amount, params.best_effort
                )
                granted = await self.dispatcher.quota(snapshot, quota_bag, name, args)
                quota = response.quotas[name]
                quota.granted_amount = granted.granted_amount
                quota.valid_duration.CopyFrom(_duration(granted.valid_duration))
                quota.status.code = granted.status_code
                quota.status.message = granted.message
                quota.referenced_attributes.CopyFrom(
                    quota_bag.referenced_attributes(global_word_count=words)
                )
        return response

    async def report(self, request: report_pb2.ReportRequest) -> report_pb2.ReportResponse:
        snapshot = self.snapshot
        bags, deltas = decode_report_deltas(request)
        types = snapshot.types or self._base_types
        for i, (bag, delta) in enumerate(zip(bags, deltas, strict=True)):
            # What an entry did not set anew is the previous entry's value, checked there.
            problems = type_errors(bag.items() if delta is None else delta.items(), types)
            if problems:
                raise AttributeDecodeError(f"attributes[{i}]: " + "; ".join(problems))
        await self.dispatcher.report(snapshot, bags, deltas)
        return report_pb2.ReportResponse()

    # HTTP.

    def _metrics_app(self) -> web.Application:
        async def metrics(_: web.Request) -> web.Response:
            body = prometheus_client.generate_latest(self.registry)
            return web.Response(
                body=body, headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app

    def _monitoring_app(self) -> web.Application:
        async def ready(_: web.Request) -> web.Response:
            return (
                web.Response(text="ready\n")
                if self.ready.is_set()
                else web.Response(status=503, text="starting\n")
            )

        async def status(_: web.Request) -> web.Response:
            snapshot = self.snapshot
            return web.json_response(
                {
                    "snapshot": snapshot.id,
                    "rules": [f"{r.namespace}/{r.name}" for r in snapshot.rules],
                    "handlers": sorted(snapshot.handlers),
                    "config_errors": list(snapshot.errors),
                    "counters": {
                        **dataclasses.asdict(self.dispatcher.counters),
                        "invalid_requests": self.invalid_requests,
                    },
                }
            )

        app = web.Application()
        app.router.add_get("/ready", ready)
        app.router.add_get("/debug/status", status)
        return app


class _Servicer(service_pb2_grpc.MixerServicer):
    def __init__(self, server: MixerServer) -> None:
        self._server = server

    async def Check(
        self, request: check_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> check_pb2.CheckResponse:
        self._server.idle_gc.busy()
        try:
            return await self._server.check(request)
        except AttributeDecodeError as error:
            self._server.invalid_requests += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid attributes: {error}")
            raise  # abort raises; this keeps type checkers content

    async def Report(
        self, request: report_pb2.ReportRequest, context: grpc.aio.ServicerContext
    ) -> report_pb2.ReportResponse:
        self._server.idle_gc.busy()
        try:
            return await self._server.report(request)
        except AttributeDecodeError as error:
            self._server.invalid_requests += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid attributes: {error}")
            raise


async def _serve(runner: web.AppRunner, address: str) -> str:
    host, _, port = address.rpartition(":")
    await runner.setup()
    await web.TCPSite(runner, host, int(port)).start()
    return "{}:{}".format(*runner.addresses[0][:2])


async def _close(entry: Any) -> None:
    try:
        await entry.handler.close()
    except Exception:
        log.exception("closing handler %s failed", entry.qualified)


def _duration(delta: Any) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(delta)
    return out
