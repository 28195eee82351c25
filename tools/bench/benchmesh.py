"""A local Bookinfo mesh for one benchmark run: up on its own subnet, always down afterwards.

Benchmarks use subnets 127.0.9 and 127.0.10 (control plane on .100), so they never meet
the end-to-end tests (127.0.3, 127.0.4) or a user's `make bookinfo` (127.0.1). The mesh is
the one `make bookinfo` runs (`tools/local`), started in a fresh run folder, and stopped on
the way out whatever happens: an error, Ctrl-C, or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from tools.local import launcher
from tools.local.mesh import Mesh
from tools.local.topology import ROOT, Pod, Topology


@dataclasses.dataclass(frozen=True)
class BenchMesh:
    mesh: Mesh

    @property
    def topology(self) -> Topology:
        return self.mesh.topology

    @property
    def sidecar_pods(self) -> tuple[Pod, ...]:
        return self.topology.pods

    def ip(self, pod: str) -> str:
        return self.topology.pod_address(self.topology.pod(pod))

    def outbound_proxy(self, pod: str) -> str:
        """The pod's sidecar as its app uses it: the HTTP proxy on the outbound listener."""
        return f"http://{self.ip(pod)}:15001"

    def process(self, name: str) -> launcher.Started:
        """A process the launcher started (`details-v1`, `details-v1-proxy`, `pilot-discovery`)."""
        for started in launcher.read_state(self.topology.run_dir):
            if started.name == name:
                return started
        raise KeyError(f"no process {name!r} in {self.topology.run_dir}/state.json")

    def bootstrap_path(self, pod: str) -> pathlib.Path:
        """Where the pod's agent writes Envoy's bootstrap (`envoy -c <this>`)."""
        return self.topology.run_dir / "pods" / pod / "envoy-rev.json"

    def istioctl_argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "istioctl.main",
            "--config-store",
            self.topology.config_store_url,
            *args,
        ]

    def istioctl_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")
        }
        env["PYTHONPATH"] = str(ROOT)
        env["ISTIO_PILOT"] = self.topology.pilot_http_url
        return env


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does, so every `finally` still runs."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def running_mesh(name: str, subnet: str = "127.0.9", **options: Any) -> Iterator[BenchMesh]:
    """Bring the mesh up in a fresh run folder; take it down on exit (logs kept on failure).
    `options` are Topology's (e.g. mixer=False). No watchdog unless asked for: benchmarks
    that kill a component time its return themselves."""
    options.setdefault("heal", False)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    topology = Topology(run_dir=run_dir, subnet=subnet, control_address=f"{subnet}.100", **options)
    mesh = Mesh(topology, ready_timeout=90)
    failed = True
    try:
        with sigterm_as_interrupt():
            started = time.monotonic()
            print(f"bringing the mesh up on {subnet}.x (run folder {run_dir}) ...", flush=True)
            asyncio.run(mesh.up())
            print(f"mesh up in {time.monotonic() - started:.1f} s", flush=True)
            yield BenchMesh(mesh)
            failed = False
    except KeyboardInterrupt:
        failed = False  # stopped on purpose: no logs to look at
        raise
    finally:
        _down(mesh, run_dir, keep=failed)


def _down(mesh: Mesh, run_dir: pathlib.Path, *, keep: bool) -> None:
    # A second Ctrl-C must not cut the teardown short and leave processes behind.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if keep:
            dump_logs(mesh.topology.log_dir)
        killed = mesh.down()
        if killed:
            print(f"had to kill: {', '.join(killed)}", file=sys.stderr)
        if keep:
            print(f"logs kept in {run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interruptible(main: Callable[[], int]) -> int:
    """Run a benchmark's main; Ctrl-C or SIGTERM ends it quietly (exit 130), mesh stopped."""
    try:
        with sigterm_as_interrupt():
            return main()
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped", file=sys.stderr)
        return 130


def dump_logs(log_dir: pathlib.Path, lines: int = 15) -> None:
    for log in sorted(log_dir.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.name} ---", *tail, sep="\n", file=sys.stderr)
