"""What the mesh page reads, over HTTP only: Prometheus' query API, the Zipkin API, the config
store's Kubernetes API. Each call is bounded in time; a source that fails says which and why
(`SourceError`), and the page shows that instead of failing."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp

from tools.meshpage.graph import Workload, queries


class SourceError(Exception):
    pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceOptions:
    prometheus: str = "http://127.0.0.1:9090"
    zipkin: str = "http://127.0.0.1:9411"
    config_store: str = "http://127.0.0.1:8001"
    window: str = "1m"  # the PromQL range rates are taken over
    timeout: float = 5.0


# The kinds whose routing a service's panel shows, at the version the store serves them.
ROUTING_KINDS = (
    ("networking.istio.io/v1", "virtualservices"),
    ("networking.istio.io/v1", "destinationrules"),
)


class Sources:
    def __init__(self, options: SourceOptions) -> None:
        self.options = options
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.options.timeout)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get_json(self, what: str, url: str, params: dict[str, str] | None = None) -> Any:
        assert self._session is not None, "Sources.start() first"
        try:
            async with self._session.get(url, params=params) as response:
                if response.status != 200:
                    text = (await response.text())[:200].strip()
                    raise SourceError(f"{what} ({url}): HTTP {response.status}: {text}")
                return await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            raise SourceError(f"{what} ({url}): {error!r}") from None

    async def query_graph(self) -> dict[str, list[dict[str, Any]]]:
        """Prometheus' results for each of the graph's queries."""
        url = f"{self.options.prometheus}/api/v1/query"
        named = queries(self.options.window)

        async def one(query: str) -> list[dict[str, Any]]:
            body = await self._get_json("Prometheus", url, {"query": query})
            if not isinstance(body, dict) or body.get("status") != "success":
                raise SourceError(f"Prometheus ({url}): {body!r:.200}")
            return list(body.get("data", {}).get("result", []))

        answers = await asyncio.gather(*(one(q) for q in named.values()))
        return dict(zip(named, answers, strict=True))

    async def workloads(self) -> list[Workload]:
        """Every workload the mesh knows (WorkloadEntries), so idle ones are drawn too."""
        body = await self._get_json(
            "the config store",
            f"{self.options.config_store}/apis/networking.istio.io/v1/workloadentries",
        )
        found = []
        for item in body.get("items", []) if isinstance(body, dict) else []:
            labels = (item.get("spec") or {}).get("labels") or {}
            if labels.get("app"):
                found.append(Workload(labels["app"], labels.get("version", "")))
        return found

    async def routing(self, app: str) -> list[dict[str, Any]]:
        """The VirtualServices and DestinationRules that name the app's service as a host."""
        found: list[dict[str, Any]] = []
        for api_version, plural in ROUTING_KINDS:
            body = await self._get_json(
                "the config store", f"{self.options.config_store}/apis/{api_version}/{plural}"
            )
            for item in body.get("items", []) if isinstance(body, dict) else []:
                spec = item.get("spec") or {}
                hosts = spec.get("hosts") or ([spec["host"]] if spec.get("host") else [])
                if any(_names(host, app) for host in hosts):
                    found.append(
                        {
                            "kind": item.get("kind", plural),
                            "namespace": item.get("metadata", {}).get("namespace", ""),
                            "name": item.get("metadata", {}).get("name", ""),
                            "spec": spec,
                        }
                    )
        return found

    async def traces(self, app: str, limit: int = 10) -> list[list[dict[str, Any]]]:
        """Recent traces that passed through the app's proxies, newest first."""
        body = await self._get_json(
            "Zipkin",
            f"{self.options.zipkin}/api/v2/traces",
            {"serviceName": app, "limit": str(limit)},
        )
        return body if isinstance(body, list) else []

    async def trace(self, trace_id: str) -> list[dict[str, Any]]:
        body = await self._get_json("Zipkin", f"{self.options.zipkin}/api/v2/trace/{trace_id}")
        return body if isinstance(body, list) else []


def _names(host: str, app: str) -> bool:
    """Whether a config host (`reviews`, `reviews.default.svc.cluster.local`) is the app's."""
    return host == app or host.startswith(f"{app}.")
