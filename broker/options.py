"""The broker's command line."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import re

_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_UNIT = {"s": 1, "m": 60, "h": 3600}


@dataclasses.dataclass(frozen=True)
class BrokerOptions:
    credentials: pathlib.Path  # the platform's `username:password`, one per line
    ca_root: pathlib.Path
    ca_token_file: pathlib.Path
    address: str = "127.0.0.1"
    port: int = 9999  # 0: any free port (tests)
    config_store: str = "http://127.0.0.1:8001"
    ca_address: str = "127.0.0.1:8060"
    # Where the broker keeps its records, and the namespace of binding identities.
    namespace: str = "istio-broker"
    trust_domain: str = "cluster.local"
    root_namespace: str = "istio-system"  # Istio's: where mesh-wide policies live
    # How long deprovisioned instances and unbound bindings still answer 410 to pollers.
    tombstone_ttl: datetime.timedelta = datetime.timedelta(hours=1)
    sweep_interval: float = 60.0


def _duration(text: str) -> datetime.timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}; want e.g. 90s, 30m, 1h")
    return datetime.timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])


def parse_args(argv: list[str] | None = None) -> tuple[BrokerOptions, str]:
    """The options and the log level."""
    parser = argparse.ArgumentParser(
        prog="broker",
        description="The Open Service Broker of the mesh's services (OSB API 2.17).",
    )
    parser.add_argument("--address", default=BrokerOptions.address, help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=BrokerOptions.port, help="OSB HTTP port (0: any free)"
    )
    parser.add_argument(
        "--config-store", default=BrokerOptions.config_store, help="the config store's URL"
    )
    parser.add_argument("--ca-address", default=BrokerOptions.ca_address, help="the CA (TLS gRPC)")
    parser.add_argument(
        "--ca-root", type=pathlib.Path, required=True, help="the mesh's root certificate (PEM)"
    )
    parser.add_argument(
        "--ca-token-file",
        type=pathlib.Path,
        required=True,
        help="the broker's bearer token for the CA (granted spiffe://<td>/ns/<namespace>/sa/*)",
    )
    parser.add_argument(
        "--credentials",
        type=pathlib.Path,
        required=True,
        help="file of username:password lines the platform signs in with (basic auth)",
    )
    parser.add_argument(
        "--namespace",
        default=BrokerOptions.namespace,
        help="namespace of the broker's records and of binding identities",
    )
    parser.add_argument("--trust-domain", default=BrokerOptions.trust_domain)
    parser.add_argument(
        "--root-namespace",
        default=BrokerOptions.root_namespace,
        help="the mesh's root namespace, where the broker's mesh-wide fence goes",
    )
    parser.add_argument(
        "--tombstone-ttl",
        type=_duration,
        default="1h",
        help="how long deprovisioned instances and unbound bindings answer 410 Gone",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    options = BrokerOptions(
        credentials=args.credentials,
        ca_root=args.ca_root,
        ca_token_file=args.ca_token_file,
        address=args.address,
        port=args.port,
        config_store=args.config_store,
        ca_address=args.ca_address,
        namespace=args.namespace,
        trust_domain=args.trust_domain,
        root_namespace=args.root_namespace,
        tombstone_ttl=args.tombstone_ttl,
    )
    return options, args.log_level
