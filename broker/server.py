"""The broker as a process: the OSB HTTP server, the informer on the mesh's config, the
background operations, the tombstone sweeper, all owned by one TaskGroup.

Ready (GET /ready answers 200, and one `broker ready: ...` log line) once the informer has
listed every kind and the operations a previous run left in progress have been resumed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from broker import resources
from broker.converge import Converger
from broker.identity import Issuer, IssuerOptions
from broker.meshbroker import MeshBroker
from broker.options import BrokerOptions
from broker.osb import api, errors
from broker.records import Records
from broker.state import Context
from broker.view import MeshView
from pkg.kube.client import ConfigClient

log = logging.getLogger("broker")


class BrokerServer:
    def __init__(self, options: BrokerOptions) -> None:
        self.options = options
        self.ready = asyncio.Event()
        self.url = ""
        self.broker: MeshBroker | None = None

    async def run(self) -> None:
        """Serves until cancelled. Raises OSError if the port is taken, ValueError if the
        credentials file is unusable."""
        options = self.options
        auth = api.accounts_from_text(options.credentials.read_text(), str(options.credentials))
        async with ConfigClient(options.config_store) as client:
            owner: list[asyncio.TaskGroup] = []

            def spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
                return owner[0].create_task(work, name=name)

            view = MeshView(client)
            records = Records(client, options.namespace)
            settings = resources.Settings(
                options.trust_domain, options.namespace, options.root_namespace
            )
            context = Context(
                records=records,
                view=view,
                issuer=Issuer(
                    IssuerOptions(
                        ca_address=options.ca_address,
                        ca_root=options.ca_root,
                        token_file=options.ca_token_file,
                    )
                ),
                converger=Converger(client, records, settings),
                spawn=spawn,
            )
            self.broker = MeshBroker(context)
            # OSB requests get 503 until ready, so nothing is spawned before the TaskGroup.
            app = api.make_app(self.broker, auth, ready=self.ready.is_set)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
            await runner.setup()
            try:
                site = web.TCPSite(runner, options.address, options.port)
                await site.start()  # a taken port raises OSError here, before any task
                host, port = runner.addresses[0][:2]
                self.url = f"http://{host}:{port}"
                async with asyncio.TaskGroup() as tasks:
                    owner.append(tasks)
                    tasks.create_task(view.run(), name="broker-informer")
                    await view.synced.wait()
                    await self._resume()
                    tasks.create_task(self._sweep(), name="broker-sweeper")
                    self.ready.set()
                    log.info(
                        "broker ready: serving %s (config store %s, CA %s, records in %s)",
                        self.url,
                        options.config_store,
                        options.ca_address,
                        options.namespace,
                    )
                    await asyncio.Future()  # until cancelled
            finally:
                self.ready.clear()
                await runner.cleanup()

    async def _resume(self) -> None:
        """Operations a previous run left in progress, and the broker's mesh-wide fence."""
        assert self.broker is not None
        delay = 0.2
        while True:
            try:
                await self.broker.resume()
                await self.broker.fence()
                return
            except errors.OsbError as error:
                log.warning("cannot resume operations yet: %s; retrying", error.description)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def _sweep(self) -> None:
        assert self.broker is not None
        while True:
            try:
                removed = await self.broker.sweep(self.options.tombstone_ttl)
                if removed:
                    log.info("forgot %d tombstone(s)", removed)
            except errors.OsbError as error:
                log.warning("sweeping tombstones: %s", error.description)
            await asyncio.sleep(self.options.sweep_interval)
