"""Test support: Istio's httpbin and fortio on a fresh local Kubernetes platform.

The mesh is the platform alone (`platform="kube"`, no Bookinfo); the test applies Istio's
samples with kubectl, as the traffic tasks have a user do: httpbin (v1), the mirroring task's
httpbin-v2, and fortio, each pod with its real sidecar. Load comes from inside the mesh:
fortio's REST API makes the fortio pod send it through its own sidecar. Each httpbin pod is
read and steered at its own address (its counts and faults under `/_local/`), and each
sidecar's Envoy through its admin port, as `pilot-agent request GET stats` reads it.
"""

from __future__ import annotations

import collections
import functools
import json
import pathlib
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pilot.configstore.testing import Kubectl
from pkg.testing.wait import poll
from tests.e2e.meshtest import MeshUnderTest
from tools.local.topology import ROOT

HTTPBIN = ROOT / "samples/httpbin"
TASKS = HTTPBIN / "tasks"
POD_START = 90.0  # a pod starts real processes (app, pilot-agent, Envoy)
ADMIN_PORT = 15000
HTTPBIN_CLUSTER = "outbound|8000||httpbin.default.svc.cluster.local"
HTTPBIN_V1_CLUSTER = "outbound|8000|v1|httpbin.default.svc.cluster.local"
HTTPBIN_URL = "http://httpbin:8000"
APP_USER = "1000"  # a captured app's user: anything but the proxy's 1337 goes to the sidecar
# One GET as an app makes it, no proxy: [status, body, headers] (urllib raises for >= 400).
_CAPTURED_GET = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))
try:
    with urllib.request.urlopen(request, timeout=30) as answer:
        print(json.dumps([answer.status, answer.read().decode(), dict(answer.headers)]))
except urllib.error.HTTPError as error:
    body = error.read().decode(errors="replace")
    print(json.dumps([error.code, body, dict(error.headers)]))
"""


class HttpbinMesh:
    def __init__(self, mesh: MeshUnderTest, home: pathlib.Path) -> None:
        self.mesh = mesh
        self.kubectl = Kubectl(
            mesh.topology.config_store_url, home, kubeconfig=mesh.topology.kubeconfig
        )

    def run(self, *args: str) -> str:
        return self.kubectl.run(*args).stdout

    def deploy(self) -> None:
        """Istio's samples, applied as its tasks apply them; until every pod is ready and
        Pilot has pushed httpbin's two endpoints to fortio's sidecar."""
        self.run("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        for sample in ("httpbin.yaml", "httpbin-v2.yaml", "sample-client/fortio-deploy.yaml"):
            self.run("apply", "-f", str(HTTPBIN / sample))
        for selector in ("app=httpbin,version=v1", "app=httpbin,version=v2", "app=fortio"):
            poll(functools.partial(self.ready, selector), f"{selector} ready", POD_START)
        poll(lambda: len(self.endpoints()) == 2, "fortio's sidecar sees both httpbins", POD_START)

    def ready(self, selector: str) -> list[dict[str, Any]]:
        pods = json.loads(self.run("get", "pods", "-o", "json", "-l", selector))["items"]
        return [
            pod
            for pod in pods
            if not pod["metadata"].get("deletionTimestamp")
            and pod.get("status", {}).get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod["status"].get("conditions") or []
            )
        ]

    def ip(self, selector: str) -> str:
        (pod,) = self.ready(selector)
        return str(pod["status"]["podIP"])

    @functools.cached_property
    def fortio_ip(self) -> str:
        return self.ip("app=fortio")

    @functools.cached_property
    def httpbin_ips(self) -> dict[str, str]:
        """version -> the address of that httpbin pod."""
        return {v: self.ip(f"app=httpbin,version={v}") for v in ("v1", "v2")}

    # Config, as a user applies it: then every proxy has it.

    def apply(self, *tasks: str) -> None:
        self.mesh.apply(*(TASKS / f"{task}.yaml" for task in tasks))

    def delete(self, *tasks: str) -> None:
        self.mesh.delete(*(TASKS / f"{task}.yaml" for task in tasks))

    # Load from inside the mesh.

    def load(
        self,
        path: str = "/get",
        *,
        connections: int = 1,
        requests: int = 20,
        qps: float = 0,
        headers: dict[str, str] | None = None,
    ) -> collections.Counter[int]:
        """fortio's run through its sidecar to httpbin: the count of each response code."""
        params = [
            ("url", HTTPBIN_URL + path),
            ("c", str(connections)),
            ("n", str(requests)),
            ("qps", str(qps)),
            *(("H", f"{k}: {v}") for k, v in (headers or {}).items()),
        ]
        query = urllib.parse.urlencode(params)
        url = f"http://{self.fortio_ip}:8080/fortio/rest/run?{query}"
        with urllib.request.urlopen(url, timeout=60) as response:
            result = json.load(response)
        return collections.Counter({int(k): v for k, v in result["RetCodes"].items()})

    def call(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
        """One request as fortio's app would make it: with the pod captured, a plain request
        from inside its namespace (its user, no proxy variables); else to its sidecar, as its
        HTTP proxy."""
        if self.mesh.topology.interception:
            return self._call_captured(path, headers or {})
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://{self.fortio_ip}:15001"})
        )
        request = urllib.request.Request(HTTPBIN_URL + path, headers=headers or {})
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace"), dict(error.headers)

    def _call_captured(self, path: str, headers: dict[str, str]) -> tuple[int, str, dict]:
        (pod,) = self.ready("app=fortio")
        ns = self.mesh.topology.node_network.netns(pod["metadata"]["uid"])
        command = ["ip", "netns", "exec", ns, "env", "-i", "setpriv", f"--reuid={APP_USER}",
                   "--clear-groups", "--", sys.executable, "-c", _CAPTURED_GET,
                   HTTPBIN_URL + path, json.dumps(headers)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        status, body, answer_headers = json.loads(done.stdout)
        return int(status), str(body), dict(answer_headers)

    # One httpbin pod, at its own address.

    def served(self, version: str) -> dict[str, Any]:
        url = f"http://{self.httpbin_ips[version]}:8080/_local/requests"
        with urllib.request.urlopen(url, timeout=10) as response:
            return dict(json.load(response))

    def totals(self) -> dict[str, int]:
        return {v: int(self.served(v)["total"]) for v in ("v1", "v2")}

    def fault(self, version: str, **fault: Any) -> None:
        """`fault(v, status=500)`; `fault(v)` clears it."""
        url = f"http://{self.httpbin_ips[version]}:8080/_local/faults"
        body = json.dumps(fault).encode()
        method = "PUT" if fault else "DELETE"
        request = urllib.request.Request(url, data=body if fault else None, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def clear_faults(self) -> None:
        for version in ("v1", "v2"):
            self.fault(version)

    # fortio's sidecar, read through its Envoy's admin port.

    def stats(self, pattern: str = "httpbin") -> dict[str, int]:
        query = urllib.parse.urlencode({"filter": pattern})
        url = f"http://{self.fortio_ip}:{ADMIN_PORT}/stats?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            lines = response.read().decode().splitlines()
        out = {}
        for line in lines:
            name, _, value = line.rpartition(": ")
            if value.isdigit():
                out[name] = int(value)
        return out

    def stat(self, name: str, cluster: str = HTTPBIN_CLUSTER) -> int:
        """One counter of one of fortio's clusters (httpbin's, or a subset's)."""
        return self.stats(f"^cluster\\.{_escape(cluster)}\\.{name}$").get(
            f"cluster.{cluster}.{name}", 0
        )

    def endpoints(self) -> dict[str, str]:
        """address -> health flags, of httpbin's cluster in fortio's Envoy (admin /clusters)."""
        url = f"http://{self.fortio_ip}:{ADMIN_PORT}/clusters?format=json"
        with urllib.request.urlopen(url, timeout=10) as response:
            clusters = json.load(response)["cluster_statuses"]
        out = {}
        for cluster in clusters:
            if cluster["name"] != HTTPBIN_CLUSTER:
                continue
            for host in cluster.get("host_statuses", []):
                address = host["address"]["socket_address"]["address"]
                flags = {k for k, v in host.get("health_status", {}).items() if v is True}
                out[address] = ",".join(sorted(flags)) or "healthy"
        return out

    def proxy_log(self) -> str:
        """What fortio's Envoy wrote (its access log among it): the sidecar's own log file,
        which `kubectl logs -c istio-proxy` shows on a cluster."""
        (pod,) = self.ready("app=fortio")
        pods = self.mesh.topology.run_dir / "pods"
        (log,) = pods.glob(f"default_{pod['metadata']['name']}_*/istio-proxy/envoy.log")
        return log.read_text(errors="replace")


def _escape(text: str) -> str:
    return "".join("\\" + c if c in ".|" else c for c in text)
