"""Test support: a whole local mesh for a test module, and the checks users make on it.

Each test module brings up its own mesh (config store, Pilot, Bookinfo pods with real
agents and Envoys, ingress gateway) on its own loopback subnet, exactly as `make bookinfo`
does, and takes it down afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tools.local import netnssandbox
from tools.local.mesh import Mesh
from tools.local.podnetwork import NodeNetwork
from tools.local.topology import ROOT, Topology

NETWORKING = ROOT / "samples/bookinfo/networking"
_SERVED_BY = re.compile(r"Reviews served by: (reviews-v\d)")


def loopback_subnet(third: int) -> str:
    """The /24 a test module's mesh lives on: 127.<MESH_TEST_NET>.<third>.

    MESH_TEST_NET (default 0) moves a whole suite to other loopback addresses, so two
    checkouts can run their end-to-end tests side by side without meeting.
    """
    return f"127.{int(os.environ.get('MESH_TEST_NET', '0'))}.{third}"


@dataclasses.dataclass
class Page:
    status: int
    body: str
    seconds: float

    @property
    def reviews_version(self) -> str | None:
        """`v1`, `v2` or `v3`, from the page, cross-checked against the stars it shows."""
        found = _SERVED_BY.search(self.body)
        if found is None:
            return None
        version = found.group(1).removeprefix("reviews-")
        stars = {"v1": None, "v2": "black", "v3": "red"}[version]
        if "Ratings service is currently unavailable" in self.body:
            stars = None
        colors = set(re.findall(r'<font color="(\w+)">', self.body))
        assert colors == ({stars} if stars else set()), f"{version} page shows star colors {colors}"
        return version


@contextlib.contextmanager
def reachable_run_dir(prefix: str) -> Iterator[pathlib.Path]:
    """A run folder the sidecars (uid 1337, as Istio's istio-proxy) can reach: pytest's own
    live under root's 0700 /tmp/pytest-of-root. Removed afterwards, also on failure."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp"))  # not $TMPDIR:
    folder.chmod(0o755)  # under Bazel that is in root's home
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def captured_pods(network: NodeNetwork) -> dict[str, Any]:
    """Topology options for pods in network namespaces on `network`'s bridge, captured by
    Istio's iptables (root only), with the control plane on the bridge's address."""
    return {
        "pod_network": "netns",
        "pod_cidr": network.cidr,
        "netns_prefix": network.prefix,
        "control_address": network.gateway,
        "interception": True,
    }


# A module whose pods run in network namespaces: skipped, saying what is missing, where the
# machine cannot (CI runs as root, so there it runs).
NEEDS_NETNS = pytest.mark.skipif(
    bool(netnssandbox.unavailable()),
    reason=f"pods in network namespaces need root, ip, iptables and setpriv: "
    f"{netnssandbox.unavailable()}",
)


def _reachable_by_anyone(path: pathlib.Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


class MeshUnderTest:
    def __init__(self, run_dir: pathlib.Path, subnet: str, **options: Any) -> None:
        # Prometheus, Zipkin and the mesh page only for the tests that look at them.
        options.setdefault("observability", False)
        options.setdefault("control_address", f"{subnet}.100")
        self._stand_in: pathlib.Path | None = None
        if options.get("platform") == "kube" and not _reachable_by_anyone(run_dir):
            # The kubelet's sidecars run as uid 1337, which cannot get through pytest's 0700
            # folders: the mesh runs in a reachable folder (with what the test put in its
            # own), and `run_dir` becomes a link to it.
            self._stand_in = pathlib.Path(
                tempfile.mkdtemp(prefix=f"mesh-{run_dir.name}-", dir="/tmp")
            )
            self._stand_in.chmod(0o755)
            if run_dir.is_dir() and not run_dir.is_symlink():
                for child in run_dir.iterdir():
                    shutil.move(child, self._stand_in / child.name)
                run_dir.rmdir()
            if not run_dir.exists():
                run_dir.symlink_to(self._stand_in)
            run_dir = self._stand_in
        self.topology = Topology(run_dir=run_dir, subnet=subnet, **options)
        self.mesh = Mesh(self.topology, ready_timeout=90)

    def __enter__(self) -> MeshUnderTest:
        try:
            asyncio.run(self.mesh.up())
        except BaseException:
            self.dump_logs()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.dump_logs()
        self.mesh.down()
        left = self.leftovers()
        if self._stand_in is not None:
            shutil.rmtree(self._stand_in, ignore_errors=True)
        if left:
            raise AssertionError(f"processes left after down: {left}")

    def leftovers(self) -> list[str]:
        """Live processes of this mesh (by its run folder or pod addresses in their command line)."""
        marks = (str(self.topology.run_dir), f"{self.topology.subnet}.")
        found = []
        for proc in pathlib.Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and any(mark in cmdline for mark in marks):
                found.append(f"{proc.name}: {cmdline.strip()}")
        return found

    def dump_logs(self, lines: int = 30) -> None:
        for log in sorted(self.topology.log_dir.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {log.name} ---", *tail, sep="\n", file=sys.stderr)

    # istioctl, as a user runs it.

    def istioctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ, PYTHONPATH=str(ROOT), ISTIO_CONFIG_STORE=self.topology.config_store_url
        )
        env["ISTIO_PILOT"] = self.topology.pilot_http_url
        result = subprocess.run(
            [sys.executable, "-m", "istioctl.main", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"istioctl {' '.join(args)} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def apply(self, *samples: str | pathlib.Path) -> None:
        """Apply samples (networking sample names, or paths), then wait until every proxy
        has acknowledged the push."""
        before = self.pushes()
        args = [a for sample in samples for a in ("-f", str(_sample_path(sample)))]
        self.istioctl("apply", *args)
        self.wait_synced(after=before)

    def delete(self, *samples: str | pathlib.Path) -> None:
        before = self.pushes()
        args = [a for sample in samples for a in ("-f", str(_sample_path(sample)))]
        self.istioctl("delete", *args)
        self.wait_synced(after=before)

    # Pilot's view.

    def syncz(self) -> dict:
        with urllib.request.urlopen(
            f"{self.topology.pilot_http_url}/debug/syncz", timeout=5
        ) as response:
            return json.load(response)

    def pushes(self) -> int:
        return self.syncz()["counters"]["pushes"]

    def wait_synced(self, after: int, timeout: float = 15.0) -> None:
        """Until Pilot has pushed since `after` and every proxy acknowledged every type."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.syncz()
            states = {t["state"] for p in status["proxies"] for t in p["types"].values()}
            if status["counters"]["pushes"] > after and states <= {"SYNCED", "NOT SENT"}:
                return
            time.sleep(0.05)
        raise AssertionError(f"proxies not synced within {timeout}s: {self.syncz()}")

    # Requests, as a browser makes them.

    def page(self, user: str | None = None, path: str = "/productpage") -> Page:
        request = urllib.request.Request(f"http://{self.topology.gateway_address}:8080{path}")
        if user:
            request.add_header("Cookie", f"user={user}")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body, status = response.read().decode(), response.status
        except urllib.error.HTTPError as error:
            body, status = error.read().decode(errors="replace"), error.code
        return Page(status, body, time.monotonic() - started)

    def versions(self, count: int, user: str | None = None) -> collections.Counter[str | None]:
        return collections.Counter(self.page(user).reviews_version for _ in range(count))

    def log(self, name: str) -> str:
        return (self.topology.log_dir / f"{name}.log").read_text(errors="replace")

    def through_sidecar(
        self, pod: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, str, float]:
        """A request an app in `pod` would make: to its own sidecar, as its HTTP proxy."""
        address = self.topology.pod_address(self.topology.pod(pod))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://{address}:15001"})
        )
        request = urllib.request.Request(url, headers=headers or {})
        started = time.monotonic()
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), time.monotonic() - started
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace"), time.monotonic() - started


def _sample_path(sample: str | pathlib.Path) -> pathlib.Path:
    return sample if isinstance(sample, pathlib.Path) else NETWORKING / f"{sample}.yaml"
