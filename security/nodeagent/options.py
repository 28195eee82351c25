"""The node agent's command line, parsed into one options dataclass.

    python -m security.nodeagent.main --ca-address 127.0.0.1:8060 --ca-root root-cert.pem \
        --token-file token [--workloads-dir DIR] [--trust-domain cluster.local] [--ttl 24h] \
        [--grace-ratio 0.5] [--key-type ec|rsa] [--status-address 127.0.0.1:15030] \
        [--reserved-identity SPIFFE-ID ...] \
        [--node-name NODE --pod-sockets-dir DIR [--kubeconfig FILE]]

Workloads are served on the sockets their entries in the workload-credentials folder name
(workloads.py); there is no shared socket. On a cluster (`--node-name`, from the downward
API's spec.nodeName) the agent also serves every injected pod of its node on
`<pod-sockets-dir>/<pod uid>/sds.sock` (pods.py), reading the pods with the kubeconfig given
or the pod's in-cluster credentials.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib

from pkg.cli import duration
from security.nodeagent import keys
from security.nodeagent.cache import DEFAULT_TTL
from security.nodeagent.identity import DEFAULT_TRUST_DOMAIN

DEFAULT_RUN_DIR = pathlib.Path("run/nodeagent")
DEFAULT_STATUS_ADDRESS = "127.0.0.1:15030"
DEFAULT_CA_ADDRESS = "127.0.0.1:8060"  # Citadel's gRPC port


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeAgentOptions:
    ca_address: str = DEFAULT_CA_ADDRESS
    ca_root: pathlib.Path  # the CA's root certificate: verifies the CA, first ROOTCA
    token_file: pathlib.Path | None = None  # bearer token sent to the CA
    ca_server_name: str | None = None  # TLS name of the CA if not its address's host
    run_dir: pathlib.Path = DEFAULT_RUN_DIR
    workloads_dir: pathlib.Path | None = None  # default <run_dir>/workloads
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    # Identities no workload entry may bind (istiod's: Pilot gets its own from the CA).
    reserved_identities: frozenset[str] | None = None  # default: istiod's in the trust domain
    ttl: float = DEFAULT_TTL
    grace_ratio: float = 0.5
    key_type: keys.KeyType = keys.KeyType.EC
    status_address: str = DEFAULT_STATUS_ADDRESS  # port 0 picks a free one (tests)
    node_name: str | None = None  # set: serve this node's pods (pods.py)
    pod_sockets_dir: pathlib.Path | None = None  # where the pods' sockets go
    kubeconfig: str | None = None  # else in-cluster credentials

    @property
    def workloads_path(self) -> pathlib.Path:
        return self.workloads_dir or self.run_dir / "workloads"

    @property
    def reserved(self) -> frozenset[str]:
        if self.reserved_identities is not None:
            return self.reserved_identities
        return frozenset({f"spiffe://{self.trust_domain}/ns/istio-system/sa/istiod"})

    @property
    def status_host_port(self) -> tuple[str, int]:
        return split_host_port(self.status_address)


def split_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port, not {address!r}")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="node_agent",
        description="Gets workload certificates from the CA and serves them to Envoy over SDS.",
    )
    parser.add_argument("--ca-address", default=DEFAULT_CA_ADDRESS, help="the CA's host:port")
    parser.add_argument("--ca-root", type=pathlib.Path, required=True, help="root-cert.pem")
    parser.add_argument("--token-file", type=pathlib.Path, help="bearer token for the CA")
    parser.add_argument("--ca-server-name", help="TLS name to expect from the CA")
    parser.add_argument("--run-dir", type=pathlib.Path, default=DEFAULT_RUN_DIR)
    parser.add_argument(
        "--workloads-dir",
        type=pathlib.Path,
        help="the workload-credentials folder (one entry per workload: its identity and "
        "socket); default <run-dir>/workloads",
    )
    parser.add_argument(
        "--reserved-identity",
        action="append",
        help="a SPIFFE identity never served to a workload (repeatable); default istiod's",
    )
    parser.add_argument("--trust-domain", default=DEFAULT_TRUST_DOMAIN)
    parser.add_argument("--ttl", default="24h", help="requested certificate lifetime")
    parser.add_argument(
        "--grace-ratio",
        type=float,
        default=0.5,
        help="renew when this fraction of the lifetime is left (Istio's grace period ratio)",
    )
    parser.add_argument("--key-type", choices=[k.value for k in keys.KeyType], default="ec")
    parser.add_argument("--status-address", default=DEFAULT_STATUS_ADDRESS)
    parser.add_argument(
        "--node-name",
        help="serve the injected pods of this Kubernetes node (the downward API's "
        "spec.nodeName), each on its own socket",
    )
    parser.add_argument(
        "--pod-sockets-dir",
        type=pathlib.Path,
        help="with --node-name: each pod's socket is <dir>/<pod uid>/sds.sock",
    )
    parser.add_argument(
        "--kubeconfig", help="with --node-name: the cluster to read; default in-cluster"
    )
    return parser


def parse_args(argv: list[str] | None = None) -> NodeAgentOptions:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        split_host_port(args.ca_address)
        options = NodeAgentOptions(
            ca_address=args.ca_address,
            ca_root=args.ca_root,
            token_file=args.token_file,
            ca_server_name=args.ca_server_name,
            run_dir=args.run_dir,
            workloads_dir=args.workloads_dir,
            reserved_identities=None
            if args.reserved_identity is None
            else frozenset(args.reserved_identity),
            trust_domain=args.trust_domain,
            ttl=duration.seconds(args.ttl),
            grace_ratio=args.grace_ratio,
            key_type=keys.KeyType(args.key_type),
            status_address=args.status_address,
            node_name=args.node_name or None,
            pod_sockets_dir=args.pod_sockets_dir,
            kubeconfig=args.kubeconfig or None,
        )
        if (options.node_name is None) != (options.pod_sockets_dir is None):
            raise ValueError("--node-name and --pod-sockets-dir go together")
        if options.kubeconfig and options.node_name is None:
            raise ValueError("--kubeconfig is for reading the pods of --node-name")
        if options.pod_sockets_dir is not None and not options.pod_sockets_dir.is_absolute():
            raise ValueError(f"--pod-sockets-dir must be absolute, not {options.pod_sockets_dir}")
        options.status_host_port  # noqa: B018 - validates the address
        if not 0 < options.grace_ratio < 1:
            raise ValueError(f"--grace-ratio must be between 0 and 1, not {options.grace_ratio}")
        if options.ttl < 1:
            raise ValueError(f"--ttl must be at least 1s, not {args.ttl}")
    except ValueError as error:
        parser.error(str(error))
    return options
