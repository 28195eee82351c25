"""The agent's merged Prometheus endpoint, `GET :15020/stats/prometheus`, as Istio's agent merges.

Istio's injector points Prometheus at the agent (`prometheus.io/port: 15020`,
`prometheus.io/path: /stats/prometheus`) and hands the app's own scrape annotations to the
agent in `ISTIO_PROMETHEUS_ANNOTATIONS` (`{"scrape": "true", "port": "9080", "path":
"/metrics"}`). One scrape of the agent then returns, one after the other: Envoy's stats (its
15090 listener), the app's metrics (when annotated) and the agent's own (`istio_agent_*`).
Envoy failing to answer is an error (503: the pod's proxy metrics are the point); the app
failing is counted and logged, and the rest is still served.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Mapping

import aiohttp
from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest

log = logging.getLogger("pilot-agent")

ANNOTATIONS_ENV = "ISTIO_PROMETHEUS_ANNOTATIONS"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AnnotationsError(ValueError):
    pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatsOptions:
    envoy_url: str  # http://<ip>:15090/stats/prometheus
    app_url: str | None = None  # from ISTIO_PROMETHEUS_ANNOTATIONS
    timeout: float = 5.0  # per scrape; Prometheus' own scrape timeout is 10 s


def app_url_from(environ: Mapping[str, str], ip: str) -> str | None:
    """The app's scrape URL from ISTIO_PROMETHEUS_ANNOTATIONS, None when it asks for none."""
    raw = environ.get(ANNOTATIONS_ENV, "").strip()
    if not raw:
        return None
    try:
        annotations = json.loads(raw)
    except json.JSONDecodeError as error:
        raise AnnotationsError(f"{ANNOTATIONS_ENV}: not JSON: {error}") from None
    if not isinstance(annotations, dict):
        raise AnnotationsError(f"{ANNOTATIONS_ENV}: must be a JSON object, got {raw!r}")
    if str(annotations.get("scrape", "")).lower() != "true":
        return None
    port = str(annotations.get("port", ""))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AnnotationsError(f"{ANNOTATIONS_ENV}: port must be a port number, got {port!r}")
    path = str(annotations.get("path") or "/metrics")
    if not path.startswith("/"):
        raise AnnotationsError(f"{ANNOTATIONS_ENV}: path must start with '/', got {path!r}")
    return f"http://{ip}:{port}{path}"


class ScrapeFailed(Exception):
    pass


class StatsMerger:
    def __init__(self, options: StatsOptions) -> None:
        self._options = options
        self.registry = CollectorRegistry()
        self._scrapes = Counter(
            "istio_agent_scrapes", "The total number of scrapes.", ["type"], registry=self.registry
        )
        self._failures = Counter(
            "istio_agent_scrape_failures",
            "The total number of failed scrapes.",
            ["type"],
            registry=self.registry,
        )
        ProcessCollector(namespace="istio_agent", registry=self.registry)

    async def scrape(self) -> bytes:
        """Envoy's, the app's and the agent's metrics; raises ScrapeFailed if Envoy's fail."""
        timeout = aiohttp.ClientTimeout(total=self._options.timeout)
        app_url = self._options.app_url
        async with aiohttp.ClientSession(timeout=timeout) as session:
            envoy, app = await asyncio.gather(
                self._get(session, "envoy", self._options.envoy_url),
                self._get(session, "application", app_url) if app_url else _nothing(),
                return_exceptions=True,
            )
        if isinstance(envoy, BaseException):
            raise envoy
        if isinstance(app, BaseException):
            if not isinstance(app, ScrapeFailed):
                raise app
            log.warning("merging metrics without the app's: %s", app)
            app = b""
        self._scrapes.labels(type="agent").inc()
        return b"".join(_terminated(part) for part in (envoy, app, generate_latest(self.registry)))

    async def _get(self, session: aiohttp.ClientSession, kind: str, url: str) -> bytes:
        self._scrapes.labels(type=kind).inc()
        try:
            async with session.get(url) as response:
                body = await response.read()
                if response.status != 200:
                    raise ScrapeFailed(f"{kind} metrics at {url}: HTTP {response.status}")
                return body
        except (TimeoutError, aiohttp.ClientError) as error:
            self._failures.labels(type=kind).inc()
            raise ScrapeFailed(f"{kind} metrics at {url}: {error!r}") from None
        except ScrapeFailed:
            self._failures.labels(type=kind).inc()
            raise


async def _nothing() -> bytes:
    return b""


def _terminated(text: bytes) -> bytes:
    # Parts are concatenated; a part without a final newline would glue two lines together.
    return text if not text or text.endswith(b"\n") else text + b"\n"
