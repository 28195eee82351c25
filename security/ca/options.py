"""istio-ca's command line: flags named after Citadel's, durations written as Go writes them."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import re

from pkg.cli import duration


@dataclasses.dataclass(frozen=True)
class CaOptions:
    ca_dir: pathlib.Path
    tokens: pathlib.Path
    # TLS gRPC; Citadel's port. Callers authenticate with a bearer token.
    address: str = "127.0.0.1:8060"
    # TLS gRPC that requires a client certificate chaining to the root: renewal with an
    # existing workload certificate. Empty disables it. (A separate listener because grpcio
    # cannot ask for a client certificate without requiring it; see server.py.)
    mtls_address: str = "127.0.0.1:8062"
    health_address: str = "127.0.0.1:8061"  # HTTP: /ready, /metrics
    trust_domain: str = "cluster.local"
    workload_cert_ttl: datetime.timedelta = datetime.timedelta(hours=24)
    max_workload_cert_ttl: datetime.timedelta = datetime.timedelta(days=90)
    self_signed_ca_cert_ttl: datetime.timedelta = datetime.timedelta(days=3650)
    key_type: str = "ec"  # of a generated self-signed root: "ec" (P-256) or "rsa" (2048)
    server_cert_ttl: datetime.timedelta = datetime.timedelta(days=365)
    # ("account.namespace", DNS name): hosts a service account's certificates may also name.
    custom_dns_names: tuple[tuple[str, str], ...] = ()


def parse_custom_dns_names(text: str) -> tuple[tuple[str, str], ...]:
    """Citadel's --custom-dns-names: `account.namespace:dns-name,...`."""
    pairs = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        account, sep, name = entry.partition(":")
        sa, dot, ns = account.partition(".")
        if not sep or not dot or not sa or not ns or "." in ns or not _DNS_NAME.fullmatch(name):
            raise ValueError(
                f"--custom-dns-names: {entry!r} is not account.namespace:dns-name "
                "(e.g. istiod.istio-system:istiod.istio-system.svc)"
            )
        pairs.append((account, name))
    return tuple(pairs)


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _duration(text: str) -> datetime.timedelta:
    try:
        value = duration.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if value <= datetime.timedelta():
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return value


def parse_args(argv: list[str] | None = None) -> tuple[CaOptions, str]:
    """The options and the log level."""
    parser = argparse.ArgumentParser(
        prog="istio_ca", description="The mesh's certificate authority (Citadel)."
    )
    parser.add_argument("--ca-dir", type=pathlib.Path, required=True, help=_CA_DIR_HELP)
    parser.add_argument(
        "--tokens",
        type=pathlib.Path,
        required=True,
        help="YAML list of {token, identities: [spiffe patterns]} the CA accepts as bearers",
    )
    parser.add_argument("--address", default=CaOptions.address, help="TLS gRPC address")
    parser.add_argument(
        "--mtls-address",
        default=CaOptions.mtls_address,
        help="TLS gRPC address requiring a client certificate (renewal); '' disables",
    )
    parser.add_argument(
        "--health-address", default=CaOptions.health_address, help="HTTP /ready and /metrics"
    )
    parser.add_argument("--trust-domain", default=CaOptions.trust_domain)
    parser.add_argument("--workload-cert-ttl", type=_duration, default="24h")
    parser.add_argument("--max-workload-cert-ttl", type=_duration, default="2160h")
    parser.add_argument("--self-signed-ca-cert-ttl", type=_duration, default="87600h")
    parser.add_argument("--key-type", choices=["ec", "rsa"], default=CaOptions.key_type)
    parser.add_argument(
        "--custom-dns-names",
        default="",
        help="account.namespace:dns-name,... : DNS names a service account's certificates "
        "may also carry (Citadel's flag; istiod's webhooks need istiod.istio-system.svc)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        custom_dns_names = parse_custom_dns_names(args.custom_dns_names)
    except ValueError as error:
        parser.error(str(error))
    options = CaOptions(
        ca_dir=args.ca_dir,
        tokens=args.tokens,
        address=args.address,
        mtls_address=args.mtls_address,
        health_address=args.health_address,
        trust_domain=args.trust_domain,
        workload_cert_ttl=args.workload_cert_ttl,
        max_workload_cert_ttl=args.max_workload_cert_ttl,
        self_signed_ca_cert_ttl=args.self_signed_ca_cert_ttl,
        key_type=args.key_type,
        custom_dns_names=custom_dns_names,
    )
    return options, args.log_level


_CA_DIR_HELP = (
    "CA directory: with ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem (Istio's "
    "cacerts) the CA signs as that intermediate; otherwise ca-cert.pem + ca-key.pem are "
    "loaded, or a self-signed root is generated there"
)
