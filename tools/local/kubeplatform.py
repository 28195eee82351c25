"""The local platform as Kubernetes: what it runs besides the control plane, and its config.

With `Topology(platform="kube")` Bookinfo is Istio's own Kubernetes YAML, applied to the
config store (the local API server) as `kubectl apply` would apply it to a cluster, in the
`default` namespace labelled `istio-injection=enabled` as Istio's guide has you label it. Two
processes do what a cluster's nodes and controllers do:

- `kube-controllers` (tools/local/controllers.py): Deployments become pods (sidecar injected),
  Services get EndpointSlices and Endpoints, pods are scheduled to the node;
- `kubelet` (tools/local/node.py): the node runs its pods (app + pilot-agent + Envoy) at
  addresses of the pod range, writes their status back, serves their logs: each pod on its
  own loopback address, or (`Topology.pod_network="netns"`, root) in its own network
  namespace on the node's bridge, whose address the control plane then listens on.

The install's `istio` and `istio-sidecar-injector` ConfigMaps (tools/local/install.py) are
applied before Bookinfo, and the controllers inject pods from them as istiod would.

Pilot reads the Kubernetes registry (the store, through the official client and
run/kubeconfig) and the ServiceEntry registry together.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.local.topology import ProcessSpec, Topology

KUBELET_PORT = 10250
CONTROLLERS_PORT = 10257
NODE_NAME = "local"
POD_RANGE = (
    10,
    99,
)  # pods get <subnet>.10 ... <subnet>.99 (.1 is the gateway, .100 tests' control plane)
INJECTION_NAMESPACE = pathlib.Path(__file__).with_name("namespace-default.yaml")


def bookinfo_config(topology: Topology) -> tuple[pathlib.Path, ...]:
    from tools.local.topology import ROOT

    return (
        INJECTION_NAMESPACE,
        ROOT / "samples/bookinfo/platform/kube/bookinfo.yaml",
        ROOT / "samples/bookinfo/networking/bookinfo-gateway.yaml",
    )


def pilot_flags(topology: Topology) -> tuple[str, ...]:
    return ("--registries", "Kubernetes,ServiceEntry", "--kubeconfig", str(topology.kubeconfig))


def pod_ips(topology: Topology) -> str:
    if topology.pod_network == "netns":
        return "-".join(topology.node_network.pod_range())
    return f"{topology.subnet}.{POD_RANGE[0]}-{topology.subnet}.{POD_RANGE[1]}"


def runtime_flags(topology: Topology) -> tuple[str, ...]:
    if topology.pod_network != "netns":
        return ("--runtime", "process")
    network = topology.node_network
    return ("--runtime", "netns", "--pod-cidr", network.cidr, "--netns-prefix", network.prefix)


def processes(topology: Topology) -> list[ProcessSpec]:
    from tools.local.topology import PYTHON, SECURE_XDS_PORT, ProcessSpec

    control = topology.control_address
    return [
        ProcessSpec(
            "kube-controllers",
            (
                PYTHON, "-m", "tools.local.controllers",
                "--kubeconfig", str(topology.kubeconfig),
                "--node-name", NODE_NAME,
                "--address", control, "--port", str(CONTROLLERS_PORT),
            ),
            f"http://{control}:{CONTROLLERS_PORT}/healthz",
            stage=1,
        ),
        ProcessSpec(
            "kubelet",
            (
                PYTHON, "-m", "tools.local.node",
                "--kubeconfig", str(topology.kubeconfig),
                "--node-name", NODE_NAME,
                "--address", control, "--port", str(KUBELET_PORT),
                "--pod-ips", pod_ips(topology),
                "--pods-dir", str(topology.run_dir / "pods"),
                "--setting", f"discovery_address={control}:{SECURE_XDS_PORT}",
                # Each pod's sidecar gets its own SDS socket, bound to its service account.
                "--workloads-dir", str(topology.workload_credentials),
                "--sds-sockets-dir", str(topology.sds_sockets),
                "--setting", f"config_store={topology.config_store_url}",
                *runtime_flags(topology),
            ),
            f"http://{control}:{KUBELET_PORT}/healthz",
            stage=1,
        ),
    ]  # fmt: skip
