"""Where the injector's settings come from, kept current while Pilot runs.

As istiod: the `istio-sidecar-injector` ConfigMap mounted as files (`config` and `values`
in one folder) and the mesh config file (the `istio` ConfigMap's `mesh` key), re-read when
a file changes; or, with no files, the two ConfigMaps read from the config store, re-read
at most once a second. The last good settings stay in force when a change is bad (logged).
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from typing import Any, Protocol

from pkg.config import mesh as meshconfig
from pkg.inject import config as injectconfig
from pkg.inject.config import Settings
from pkg.kube import errors
from pkg.kube.client import ConfigClient

log = logging.getLogger("pilot.webhooks")


class SettingsUnavailable(Exception):
    """No usable settings yet: why."""


class SettingsSource(Protocol):
    async def current(self) -> Settings: ...


@dataclasses.dataclass(frozen=True)
class Options:
    revision: str = ""
    native_sidecar: bool = False


class FileSettings:
    def __init__(
        self, folder: pathlib.Path, mesh_file: pathlib.Path | None, options: Options = Options()
    ) -> None:
        self.folder = folder
        self.mesh_file = mesh_file
        self.options = options
        self._stamp: tuple[float, ...] | None = None
        self._settings: Settings | None = None
        self._error = ""

    def _files(self) -> list[pathlib.Path]:
        files = [self.folder / "config", self.folder / "values"]
        return [*files, self.mesh_file] if self.mesh_file else files

    async def current(self) -> Settings:
        try:
            stamp = tuple(f.stat().st_mtime_ns for f in self._files() if f.exists())
        except OSError as error:
            stamp = ()
            self._error = str(error)
        if stamp != self._stamp:
            self._stamp = stamp
            self._load()
        if self._settings is None:
            raise SettingsUnavailable(self._error)
        return self._settings

    def _load(self) -> None:
        try:
            config = (self.folder / "config").read_text()
            values_file = self.folder / "values"
            values = values_file.read_text() if values_file.exists() else "{}"
            mesh_text = self.mesh_file.read_text() if self.mesh_file else ""
            self._settings = Settings(
                config=injectconfig.parse_config(config, source=str(self.folder / "config")),
                values=injectconfig.parse_values(values, source=str(values_file)),
                mesh=meshconfig.apply_mesh_config(mesh_text),
                revision=self.options.revision,
                native_sidecar=self.options.native_sidecar,
            )
            log.info("injection settings loaded from %s", self.folder)
        except (OSError, injectconfig.InjectionConfigError, meshconfig.MeshConfigError) as error:
            self._error = f"injection settings from {self.folder}: {error}"
            log.error("%s%s", self._error, "; keeping the previous ones" if self._settings else "")


class StoreSettings:
    """The two ConfigMaps, from the config store (a cluster's API server or the embedded one)."""

    def __init__(self, client: ConfigClient, namespace: str = "istio-system", options: Options = Options(),
                 refresh: float = 1.0) -> None:  # fmt: skip
        self.client = client
        self.namespace = namespace
        self.options = options
        self.refresh = refresh
        self._read_at = 0.0
        self._versions: tuple[str, str] | None = None
        self._settings: Settings | None = None
        self._error = ""

    async def current(self) -> Settings:
        if time.monotonic() - self._read_at >= self.refresh:
            self._read_at = time.monotonic()
            await self._load()
        if self._settings is None:
            raise SettingsUnavailable(self._error)
        return self._settings

    async def _configmap(self, name: str) -> dict[str, Any] | None:
        path = f"/api/v1/namespaces/{self.namespace}/configmaps/{name}"
        try:
            found = await self.client.get_raw(path)
        except errors.NotFound:
            return None
        return found if isinstance(found, dict) else None

    async def _load(self) -> None:
        try:
            injector = await self._configmap(injectconfig.CONFIGMAP)
            mesh = await self._configmap(injectconfig.MESH_CONFIGMAP)
        except errors.ApiError as error:
            self._error = f"reading the injection ConfigMaps: {error}"
            log.warning("%s", self._error)
            return
        if injector is None:
            self._error = f"ConfigMap {self.namespace}/{injectconfig.CONFIGMAP} not found"
            return
        versions = (_version(injector), _version(mesh))
        if versions == self._versions and self._settings is not None:
            return
        try:
            self._settings = injectconfig.from_configmaps(
                injector,
                mesh,
                revision=self.options.revision,
                native_sidecar=self.options.native_sidecar,
            )
            self._versions = versions
            log.info(
                "injection settings loaded from ConfigMap %s/%s",
                self.namespace,
                injectconfig.CONFIGMAP,
            )
        except (injectconfig.InjectionConfigError, meshconfig.MeshConfigError) as error:
            self._error = str(error)
            log.error("%s%s", error, "; keeping the previous settings" if self._settings else "")


def _version(configmap: dict[str, Any] | None) -> str:
    return str(((configmap or {}).get("metadata") or {}).get("resourceVersion", ""))
