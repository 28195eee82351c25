"""The local platform's controller manager: the controllers a cluster runs beside its API server.

    python -m tools.local.controllers --kubeconfig run/kubeconfig --node-name local

One process, as kube-controller-manager (with kube-scheduler's one job here): the Deployment
controller (deployments.py), the EndpointSlice and Endpoints controllers (endpoints.py) and
the scheduler of the one node (scheduler.py), sharing one informer of pods; the Deployment
controller has each new pod injected as istiod's webhook would (sidecarinjector.py). They talk to the
API server (the config store, or a cluster) only through the official client.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web
from kubernetes.aio import client, config

from pkg.aio import program
from tools.local.deployments import DeploymentController
from tools.local.endpoints import EndpointsController
from tools.local.kubeinformer import Informer, Object
from tools.local.scheduler import Scheduler
from tools.local.sidecarinjector import SidecarInjector

log = logging.getLogger("controllers")
HEALTH_PORT = 10257  # kube-controller-manager's secure port; plain HTTP here


class ControllerManager:
    def __init__(self, api: client.ApiClient, node: str) -> None:
        core = client.CoreV1Api(api)
        self.pods = Informer("pods", core.list_pod_for_all_namespaces, self._pod_changed)
        self.namespaces = Informer("namespaces", core.list_namespace, self._namespace_changed)
        # The injector's settings, as istiod watches them (the install's ConfigMaps).
        self.configmaps = Informer(
            "configmaps", core.list_config_map_for_all_namespaces, self._namespace_changed
        )
        self.injector = SidecarInjector(self.configmaps)
        self.deployments = DeploymentController(api, self.pods, self.namespaces, self.injector)
        self.endpoints = EndpointsController(api, self.pods)
        self.scheduler = Scheduler(api, node)
        self.ready = asyncio.Event()

    async def _pod_changed(self, before: Object | None, after: Object | None) -> None:
        await self.deployments.pod_changed(before, after)
        await self.endpoints.pod_changed(before, after)

    async def _namespace_changed(self, before: Object | None, after: Object | None) -> None:
        return None  # read when pods are created (injection), nothing to do on change

    async def run(self) -> None:
        informers = (
            self.pods,
            self.namespaces,
            self.configmaps,
            self.deployments.deployments,
            self.endpoints.services,
            self.endpoints.slices,
            self.endpoints.endpoints,
            self.scheduler.pending,
        )
        async with asyncio.TaskGroup() as tasks:
            for informer in informers:
                tasks.create_task(informer.run(), name=f"informer-{informer.name}")
            await asyncio.gather(*(i.synced.wait() for i in informers))
            # Work starts once every cache is full: no controller acts on half a picture.
            for queue in (self.deployments.queue, self.endpoints.queue, self.scheduler.queue):
                tasks.create_task(queue.run(), name=f"work-{queue.name}")
            self.ready.set()
            log.info("controllers synced and running")


async def serve(kubeconfig: str, node: str, address: str, port: int) -> None:
    api = await config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    manager = ControllerManager(api, node)

    async def healthz(_: web.Request) -> web.Response:
        if manager.ready.is_set():
            return web.Response(text="ok")
        return web.Response(status=503, text="informers not synced\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, address, port).start()
        await manager.run()
    finally:
        await runner.cleanup()
        await api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="controllers", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="the API server's kubeconfig")
    parser.add_argument("--node-name", default="local", help="the node pods are scheduled to")
    parser.add_argument("--address", default="127.0.0.1", help="where /healthz is served")
    parser.add_argument(
        "--port", type=int, default=HEALTH_PORT, help="kube-controller-manager's port, /healthz"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    async def run(stop: asyncio.Event) -> None:
        await program.until(stop, serve(args.kubeconfig, args.node_name, args.address, args.port))

    return program.run(run, name="controllers", level=args.log_level)


if __name__ == "__main__":
    sys.exit(main())
