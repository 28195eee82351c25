"""How a Bookinfo service names and calls the services behind it.

The mesh's contract: every call goes to `http://<hostname><domain>:<port>/...`, by name, through
whatever HTTP proxy the environment names. In the mesh that proxy is the app's own sidecar
Envoy, which routes by the Host header; so the client must trust the environment
(`http_proxy`, `no_proxy`) and must never resolve the name itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

_log = logging.getLogger(__name__)

DEFAULT_PORT = 9080


@dataclass(frozen=True)
class Upstream:
    """One service this one calls: its name in the topology and the base URL it answers on."""

    service: str
    base_url: URL

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str]) -> Upstream:
        """Istio's variables: `<SVC>_HOSTNAME`, `<SVC>_SERVICE_PORT`, `SERVICES_DOMAIN`.

        `SERVICES_DOMAIN` is a domain appended after a dot (`reviews.default.svc.cluster.local`);
        a leading dot in the value is tolerated.
        """
        prefix = service.upper()
        hostname = env.get(f"{prefix}_HOSTNAME") or service
        port = int(env.get(f"{prefix}_SERVICE_PORT") or DEFAULT_PORT)
        domain = (env.get("SERVICES_DOMAIN") or "").strip(".")
        host = f"{hostname}.{domain}" if domain else hostname
        return cls(service=service, base_url=URL.build(scheme="http", host=host, port=port))

    def url(self, *segments: str) -> URL:
        """The base URL joined with path segments, each percent-encoded on its own (`/` too)."""
        path = "".join("/" + quote(segment, safe="") for segment in segments)
        return self.base_url.with_path(path, encoded=True)


@dataclass(frozen=True)
class Reply:
    """What an upstream call gave back: `status` is None when no response arrived at all."""

    status: int | None
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None


def new_client_session() -> aiohttp.ClientSession:
    """A session that honours `http_proxy`/`HTTP_PROXY` and `no_proxy`: the sidecar contract."""
    return aiohttp.ClientSession(trust_env=True)


async def fetch_json(
    session: aiohttp.ClientSession,
    url: URL,
    *,
    headers: Mapping[str, str],
    timeout: float,
) -> Reply:
    """GET `url` and decode a JSON body, never raising for network, timeout or decoding trouble.

    Each service turns a failed call into its own user-facing error text, so the failure's
    cause only needs to reach the log.
    """
    try:
        async with session.get(
            url, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            text = await response.text()
            if response.status != 200:
                _log.warning("GET %s answered %d", url, response.status)
                return Reply(status=response.status)
            try:
                return Reply(status=200, body=json.loads(text))
            except ValueError:
                _log.warning("GET %s answered a body that is not JSON", url)
                return Reply(status=200)
    except (aiohttp.ClientError, TimeoutError) as error:
        _log.warning("GET %s failed: %r", url, error)
        return Reply(status=None)
