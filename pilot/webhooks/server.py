"""Pilot's admission webhooks over TLS (Istio's port 15017): `/inject` and `/validate`.

The Kubernetes API server (or anything speaking its webhook protocol) POSTs an
AdmissionReview; every body gets an AdmissionReview back, never a 500: one that cannot be
read is answered 400 with a denial (as the API server's own webhook client expects a
review), a wrong Content-Type 415. `/ready` says whether the injection settings are loaded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pathlib
import time
from collections.abc import Mapping

from aiohttp import web

from pilot.webhooks import admission, injection, validation
from pilot.webhooks.settings import (
    FileSettings,
    Options,
    SettingsSource,
    SettingsUnavailable,
    StoreSettings,
)
from pilot.webhooks.tlscert import CertOptions, WebhookCertificate
from pkg.kube import errors
from pkg.kube.client import ConfigClient

log = logging.getLogger("pilot.webhooks")
MAX_BODY = 8 * 1024 * 1024  # a Pod with many containers fits; larger is refused, not buffered


@dataclasses.dataclass(frozen=True)
class WebhookOptions:
    address: str  # e.g. 127.0.0.1:15017
    cert: CertOptions
    config_store: str = "http://127.0.0.1:8001"  # namespaces (and the ConfigMaps, without files)
    inject_config_dir: pathlib.Path | None = None  # the injector ConfigMap mounted: config, values
    mesh_config_file: pathlib.Path | None = None
    system_namespace: str = "istio-system"
    revision: str = ""
    native_sidecar: bool = False
    # How long a namespace's labels are reused: a burst of pods (a Deployment scaled up)
    # asks the API server once, not once a pod; a relabelling applies within this time.
    namespace_labels_ttl: float = 1.0


class WebhookServer:
    def __init__(self, options: WebhookOptions, *, store: ConfigClient | None = None) -> None:
        """`store`: Pilot's own client of the config store, shared (else one of our own)."""
        self.options = options
        self.certificate = WebhookCertificate(options.cert)
        self._own_client = store is None
        self._client = store or ConfigClient(options.config_store, timeout=5.0)
        source_options = Options(revision=options.revision, native_sidecar=options.native_sidecar)
        self.settings: SettingsSource = (
            FileSettings(options.inject_config_dir, options.mesh_config_file, source_options)
            if options.inject_config_dir
            else StoreSettings(self._client, options.system_namespace, source_options)
        )
        self.ready = asyncio.Event()
        self.address = options.address  # the bound address, once serving
        self._namespaces: dict[str, tuple[float, Mapping[str, str] | None]] = {}

    async def run(self) -> None:
        await self.certificate.obtain()
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        host, _, port = self.options.address.rpartition(":")
        try:
            site = web.TCPSite(runner, host, int(port), ssl_context=self.certificate.context)
            await site.start()
            self.address = "{}:{}".format(*runner.addresses[0][:2])
            log.info("admission webhooks on https://%s (/inject, /validate)", self.address)
            self.ready.set()
            await self.certificate.run()
        finally:
            await runner.cleanup()
            if self._own_client:
                await self._client.close()
            self.certificate.close()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/validate", self._validate)
        app.router.add_post("/inject", self._inject)
        app.router.add_post("/inject/{rest:.*}", self._inject)
        app.router.add_get("/ready", self._ready)
        return app

    async def _read(self, request: web.Request) -> admission.AdmissionRequest | web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text="invalid Content-Type, want `application/json`\n")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                admission.denied(None, f"request body larger than {MAX_BODY} bytes"), status=413
            )
        if not body:
            return web.json_response(admission.denied(None, "no body found"), status=400)
        try:
            return admission.parse_review(body)
        except admission.ReviewError as error:
            return web.json_response(admission.denied(None, str(error)), status=400)

    async def _validate(self, request: web.Request) -> web.Response:
        review = await self._read(request)
        if isinstance(review, web.Response):
            return review
        return web.json_response(validation.review(review))

    async def _inject(self, request: web.Request) -> web.Response:
        review = await self._read(request)
        if isinstance(review, web.Response):
            return review
        try:
            settings = await self.settings.current()
        except SettingsUnavailable as error:
            return web.json_response(
                admission.denied(review, f"injection settings unavailable: {error}", code=500)
            )
        return web.json_response(
            await injection.review(review, settings, self._namespace_labels, request.path)
        )

    async def _ready(self, _: web.Request) -> web.Response:
        try:
            await self.settings.current()
        except SettingsUnavailable as error:
            return web.Response(status=503, text=f"injection settings unavailable: {error}\n")
        return web.Response(text="ready\n")

    async def _namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The namespace's labels; {} when it has none or does not exist; None when unknown
        (the store cannot be asked), so the webhook configuration's selectors are trusted."""
        now = time.monotonic()
        cached = self._namespaces.get(namespace)
        if cached is not None and now - cached[0] < self.options.namespace_labels_ttl:
            return cached[1]
        labels = await self._read_namespace_labels(namespace)
        if len(self._namespaces) > 10_000:  # namespaces come and go: drop the stale ones
            ttl = self.options.namespace_labels_ttl
            self._namespaces = {k: v for k, v in self._namespaces.items() if now - v[0] < ttl}
        self._namespaces[namespace] = (now, labels)
        return labels

    async def _read_namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        try:
            found = await self._client.get_raw(f"/api/v1/namespaces/{namespace}")
        except errors.NotFound:
            return {}
        except errors.ApiError as error:
            log.warning(
                "namespace %s: labels unknown (%s); trusting the webhook selectors",
                namespace,
                error,
            )
            return None
        labels = (found.get("metadata") or {}).get("labels") if isinstance(found, dict) else None
        return dict(labels or {})
