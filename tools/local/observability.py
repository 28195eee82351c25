"""The mesh's observability add-ons on the local platform: Prometheus, Zipkin, the mesh page.

Istio ships these as add-ons beside the control plane (samples/addons: Prometheus, Zipkin or
Jaeger, Kiali). Here they are processes like the others: Debian's Prometheus with a config
generated from the topology (every Envoy's 15090, every agent's merged 15020, mixs' 42422,
Pilot's, the CA's and the node agent's own metrics), our Zipkin collector on Zipkin's port
9411, and the mesh page on Kiali's 20001.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from tools.local.topology import ProcessSpec, Topology

PROMETHEUS_PORT = 9090
ZIPKIN_PORT = 9411
MESH_PAGE_PORT = 20001  # Kiali's
ENVOY_PROMETHEUS_PORT = 15090
AGENT_STATUS_PORT = 15020


def prometheus_url(topology: Topology) -> str:
    return f"http://{topology.control_address}:{PROMETHEUS_PORT}"


def zipkin_address(topology: Topology) -> str:
    return f"{topology.control_address}:{ZIPKIN_PORT}"


def zipkin_url(topology: Topology) -> str:
    return f"http://{zipkin_address(topology)}"


def mesh_page_url(topology: Topology) -> str:
    return f"http://{topology.control_address}:{MESH_PAGE_PORT}"


def prometheus_dir(topology: Topology) -> pathlib.Path:
    return topology.run_dir / "prometheus"


def mesh_config(topology: Topology) -> str:
    """MeshConfig lines for tracing: every proxy reports spans to the local collector."""
    return (
        "enableTracing: true\n"
        "defaultConfig:\n"
        "  tracing:\n"
        f"    sampling: {topology.trace_sampling}\n"
        f"    zipkin: {{address: '{zipkin_address(topology)}'}}\n"
    )


def _targets(addresses: list[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
    return [{"targets": [address], "labels": labels} for address, labels in addresses]


def prometheus_config(topology: Topology) -> str:
    """prometheus.yml, with Istio's job names (samples/addons/prometheus.yaml and 1.0-1.4's)."""
    from tools.local import kubeplatform
    from tools.local import topology as topo

    control = topology.control_address
    pods = [
        (topology.pod_address(p), {"namespace": "default", "pod": p.name, "app": p.app})
        for p in topology.pods
        if topology.platform != "kube"  # there the kubelet's discovery names them
    ]
    pods.append(
        (
            topology.gateway_address,
            {
                "namespace": "istio-system",
                "pod": "istio-ingressgateway",
                "app": "istio-ingressgateway",
            },
        )
    )

    def job(name: str, path: str, targets: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
        found: dict[str, Any] = {
            "job_name": name,
            "metrics_path": path,
            "static_configs": _targets(targets),
        }
        if topology.platform == "kube" and name in ("envoy-stats", "kubernetes-pods"):
            # The kubelet runs the pods and knows their addresses and annotations: it serves
            # them as Prometheus' HTTP discovery (the gateway stays a static target).
            kubelet = f"http://{control}:{kubeplatform.KUBELET_PORT}/prometheus/targets"
            found["http_sd_configs"] = [{"url": f"{kubelet}?job={name}", "refresh_interval": "5s"}]
        return found

    jobs = [
        job("pilot", "/metrics", [(f"{control}:{topo.PILOT_HTTP_PORT}", {"app": "istiod"})]),
        job("citadel", "/metrics", [(f"{control}:{topo.CA_HEALTH_PORT}", {"app": "istio-ca"})]),
        job(
            "nodeagent",
            "/metrics",
            [(f"{control}:{topo.NODE_AGENT_STATUS_PORT}", {"app": "node-agent"})],
        ),
        # Istio 1.0-1.4's job for the metrics Mixer's prometheus adapter makes.
        job("istio-mesh", "/metrics", [(f"{control}:{topo.MIXER_METRICS_PORT}", {"app": "mixs"})]),
        job(
            "envoy-stats",
            "/stats/prometheus",
            [(f"{ip}:{ENVOY_PROMETHEUS_PORT}", labels) for ip, labels in pods],
        ),
        # The agents' merged endpoints, as the prometheus.io annotations Istio injects name them.
        job(
            "kubernetes-pods",
            "/stats/prometheus",
            [(f"{ip}:{AGENT_STATUS_PORT}", labels) for ip, labels in pods],
        ),
    ]
    config = {
        "global": {
            "scrape_interval": topology.scrape_interval,
            "scrape_timeout": topology.scrape_interval,
            "evaluation_interval": topology.scrape_interval,
        },
        "scrape_configs": jobs,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_configs(topology: Topology) -> None:
    directory = prometheus_dir(topology)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    (directory / "prometheus.yml").write_text(prometheus_config(topology))


def prometheus_binary() -> str:
    return shutil.which("prometheus") or "/usr/bin/prometheus"


def processes(topology: Topology) -> list[ProcessSpec]:
    from tools.local.topology import PYTHON, ProcessSpec

    control = topology.control_address
    directory = prometheus_dir(topology)
    return [
        ProcessSpec(
            "zipkin",
            (
                PYTHON, "-m", "tools.zipkin.main",
                "--address", control, "--port", str(ZIPKIN_PORT),
            ),
            f"{zipkin_url(topology)}/health",
            stage=0,
        ),
        ProcessSpec(
            "prometheus",
            (
                prometheus_binary(),
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                "--storage.tsdb.retention.time=1d",
                f"--web.listen-address={control}:{PROMETHEUS_PORT}",
            ),
            f"{prometheus_url(topology)}/-/ready",
            stage=0,
        ),
        ProcessSpec(
            "mesh-page",
            (
                PYTHON, "-m", "tools.meshpage.main",
                "--address", control, "--port", str(MESH_PAGE_PORT),
                "--prometheus", prometheus_url(topology),
                "--zipkin", zipkin_url(topology),
                "--config-store", topology.config_store_url,
                "--refresh", topology.scrape_interval,
                "--window", topology.graph_window,
            ),
            f"{mesh_page_url(topology)}/healthz",
            stage=1,
        ),
    ]  # fmt: skip


def app_metrics_env(path: str, port: int) -> tuple[tuple[str, str], ...]:
    """What Istio's injector hands the agent when the pod's app has its own metrics."""
    annotations = {"scrape": "true", "port": str(port), "path": path}
    return (("ISTIO_PROMETHEUS_ANNOTATIONS", json.dumps(annotations)),)
