"""The local platform's command line: `up` (make bookinfo), `down` (make down), `status`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import pathlib
import sys

from tools.local import containerfiles, launcher, netnssandbox, observability
from tools.local.mesh import Mesh
from tools.local.podnetwork import DEFAULT_POD_CIDR, NodeNetwork, PodNetworkError
from tools.local.topology import PLATFORMS, REGISTRY_DOMAINS, ROOT, Topology

INTERCEPTION_CHOICES = ("auto", "on", "off")


def where(topology: Topology, started: bool = True) -> list[str]:
    """What `make bookinfo` says at the end: where the mesh, its graph, metrics and traces are."""
    lines = [
        ("Bookinfo is up" if started else "Bookinfo is already running")
        + f"; logs in {topology.log_dir}",
        f"config store: {topology.config_store_url}   Pilot: {topology.pilot_http_url}/debug/syncz",
        f"kubectl --kubeconfig {topology.kubeconfig} get "
        + ("pods" if topology.platform == "kube" else "virtualservices"),
    ]
    if topology.observability:
        lines += [
            f"Mesh graph: {observability.mesh_page_url(topology)}   (istioctl dashboard mesh)",
            f"Prometheus: {observability.prometheus_url(topology)}   (istioctl dashboard prometheus)",
            f"Traces:     {observability.zipkin_url(topology)}/api/v2/traces?serviceName=productpage",
        ]
    if topology.bookinfo:
        lines.append(f"Open {topology.productpage_url}")
    return lines


@dataclasses.dataclass(frozen=True)
class PodNetworkChoice:
    """What `make bookinfo` runs pods with, and the line it says when it falls back."""

    network: str  # "netns" or "loopback"
    control_address: str
    interception: bool  # Istio's iptables capture in every pod (istio-init, REDIRECT)
    notice: str = ""


def choose_pod_network(
    wanted: str,
    *,
    platform: str,
    control_address: str | None,
    pod_cidr: str,
    interception: str,
    unavailable: str,
) -> PodNetworkChoice:
    """Network namespaces and Istio's capture where the machine allows them (root, ip,
    iptables, setpriv) and nothing asks otherwise; loopback addresses and the sidecar as the
    apps' HTTP proxy where not, said in one line. `interception` is auto, on or off (auto: on
    with namespaces). Raises ValueError for what cannot work."""
    if interception not in INTERCEPTION_CHOICES:
        raise ValueError(
            f"--interception must be one of {INTERCEPTION_CHOICES}, not {interception!r}"
        )
    try:
        gateway = NodeNetwork(cidr=pod_cidr).gateway
    except PodNetworkError as error:
        raise ValueError(str(error)) from None
    why = unavailable if platform == "kube" else "not the kube platform"
    if wanted == "netns" and why:
        raise ValueError(f"--pod-network netns: {why}")
    if wanted == "auto" and control_address not in (None, gateway):
        why = why or f"--control-address {control_address} is not the bridge's {gateway}"
    notice = ""
    network = wanted
    if wanted == "auto":
        network = "loopback" if why else "netns"
        if why and platform == "kube":
            notice = (
                f"pods on loopback addresses, no network namespaces or traffic interception "
                f"(apps use their sidecar as HTTP proxy): {why}"
            )
    if interception == "on" and network != "netns":
        raise ValueError("--interception on needs pods in network namespaces (--pod-network netns)")
    captured = network == "netns" and interception != "off"
    control = control_address or (gateway if network == "netns" else "127.0.0.1")
    return PodNetworkChoice(network, control, captured, notice)


SIDECAR_UID = 1337  # Istio's istio-proxy: the injected sidecars' runAsUser and runAsGroup


def sidecar_reach_problem(topology: Topology, euid: int) -> str:
    """Why the kube platform's sidecars, which a root kubelet runs as uid 1337, cannot reach
    the run folder ("" when they can, or when they run as the kubelet's own user)."""
    if topology.platform != "kube" or euid != 0:
        return ""
    return containerfiles.unreachable(topology.run_dir, SIDECAR_UID, SIDECAR_UID)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesh", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--run-dir", type=pathlib.Path, default=ROOT / "run", help="logs and state")
    parser.add_argument("--subnet", default="127.0.1", help="pods get <subnet>.1, .2, ...")
    parser.add_argument(
        "--control-address",
        default=None,
        help="config store and Pilot (default 127.0.0.1; with network namespaces, the bridge's)",
    )
    parser.add_argument(
        "--pod-network",
        choices=("auto", "netns", "loopback"),
        default="auto",
        help="kube platform: each pod in its own network namespace (netns, needs root, ip and "
        "iptables) or on its own loopback address; auto: netns where the machine allows it",
    )
    parser.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR, help="the node's pod range")
    parser.add_argument(
        "--interception",
        choices=INTERCEPTION_CHOICES,
        default="auto",
        help="Istio's iptables capture in each pod (istio-init, INTERCEPTION_MODE REDIRECT): "
        "apps need no proxy settings; auto (default): on where pods run in network namespaces",
    )
    parser.add_argument(
        "--registry",
        choices=sorted(REGISTRY_DOMAINS),
        default="ServiceEntry",
        help="where Bookinfo's pods are registered: WorkloadEntries (default), Consul or Eureka",
    )
    parser.add_argument(
        "--registry-url",
        default="",
        help="the Consul agent (http://127.0.0.1:8500) or Eureka (http://127.0.0.1:8761/eureka/)",
    )
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=None,
        help="kube (default): Bookinfo from Istio's Kubernetes YAML, run by the local kubelet; "
        "local: each pod's agent registers a WorkloadEntry (the default with --registry)",
    )
    parser.add_argument(
        "--without-bookinfo",
        action="store_true",
        help="start the platform alone; apply Bookinfo yourself (kubectl apply -f ...)",
    )
    args = parser.parse_args(argv)
    if args.registry != "ServiceEntry" and not args.registry_url:
        parser.error(f"--registry {args.registry} needs --registry-url")
    if args.platform is None:
        args.platform = "kube" if args.registry == "ServiceEntry" else "local"
    if args.platform == "kube" and args.registry != "ServiceEntry":
        parser.error("--registry needs --platform local: on kube, Kubernetes is the registry")
    logging.basicConfig(level=logging.INFO, format="mesh: %(message)s")
    try:
        choice = choose_pod_network(
            args.pod_network,
            platform=args.platform,
            control_address=args.control_address,
            pod_cidr=args.pod_cidr,
            interception=args.interception,
            unavailable=netnssandbox.unavailable(),
        )
    except ValueError as error:
        parser.error(str(error))
    if choice.notice and args.command == "up":
        logging.info("%s", choice.notice)
    mesh = Mesh(
        Topology(
            run_dir=args.run_dir.resolve(),
            subnet=args.subnet,
            control_address=choice.control_address,
            pod_network=choice.network,
            pod_cidr=args.pod_cidr,
            interception=choice.interception,
            registry=args.registry,
            registry_url=args.registry_url,
            platform=args.platform,
            bookinfo=not args.without_bookinfo,
        )
    )
    topology = mesh.topology

    if args.command == "down":
        running = mesh.running()
        killed = mesh.down()
        print(
            f"stopped {len(running)} processes"
            + (f" (killed: {', '.join(killed)})" if killed else "")
        )
        return 0
    if args.command == "status":
        state = launcher.read_state(topology.run_dir)
        if not state:
            print("the mesh is not running")
            return 0
        # As `kubectl get pods` shows a pod's containers: is it running, how often restarted.
        print(f"{'NAME':28} {'STATUS':9} {'RESTARTS':9} PID")
        for proc in state:
            status = "Running" if proc.alive() else "Stopped"
            print(f"{proc.name:28} {status:9} {proc.restarts:<9} {proc.pid}")
        return 0
    why = sidecar_reach_problem(topology, os.geteuid())
    if why:
        # Said now, not as pods that never start (CreateContainerConfigError in the kubelet).
        print(
            f"mesh: the sidecars run as uid {SIDECAR_UID} (Istio's istio-proxy) and cannot "
            f"reach the run folder {topology.run_dir}: {why}. Give --run-dir a folder they "
            "can reach (every folder above it open to others, e.g. under /tmp or /srv).",
            file=sys.stderr,
        )
        return 1
    try:
        started = asyncio.run(mesh.up())
    except launcher.LaunchError as error:
        print(f"mesh: {error}", file=sys.stderr)
        return 1
    for line in where(topology, started):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
