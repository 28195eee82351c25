"""pilot-discovery: Pilot's process. Serves Envoy config over ADS from the config store."""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys

from pilot.bootstrap.server import DiscoveryOptions, DiscoveryServer
from pilot.bootstrap.servingcert import SecureXdsOptions
from pilot.model.push_context import MeshOptions
from pilot.webhooks.server import WebhookOptions
from pilot.webhooks.tlscert import CertOptions
from pkg.aio.signals import serve_until_signalled


def parse_args(argv: list[str] | None = None) -> DiscoveryOptions:
    parser = argparse.ArgumentParser(prog="pilot-discovery", description=__doc__)
    parser.add_argument("command", nargs="?", default="discovery", choices=["discovery"])
    parser.add_argument("--config-store", default="http://127.0.0.1:8001", help="config store URL")
    parser.add_argument(
        "--grpc-address", default="127.0.0.1:15010", help="plaintext xDS (ADS) address"
    )
    parser.add_argument(
        "--http-address", default="127.0.0.1:15014", help="readiness and debug address"
    )
    parser.add_argument("--domain", default="cluster.local", help="DNS domain suffix of services")
    parser.add_argument(
        "--debounce-after", type=float, default=0.02, help="quiet period before a push, seconds"
    )
    parser.add_argument(
        "--debounce-max", type=float, default=1.0, help="longest delay of a push, seconds"
    )
    parser.add_argument(
        "--secure-grpc-address",
        default="",
        help="mutual-TLS xDS address (Istio's 15012); needs the CA flags",
    )
    parser.add_argument(
        "--ca-address", default="127.0.0.1:8060", help="the CA, for Pilot's own certificate"
    )
    parser.add_argument("--ca-root", type=pathlib.Path, help="the CA's root-cert.pem")
    parser.add_argument("--token-file", type=pathlib.Path, help="Pilot's token for the CA")
    parser.add_argument(
        "--webhook-address",
        default="",
        help="the admission webhooks over TLS, /inject and /validate (Istio's 15017); "
        "needs the CA flags",
    )
    parser.add_argument(
        "--inject-config-dir",
        type=pathlib.Path,
        help="the istio-sidecar-injector ConfigMap as files (config, values); default: "
        "read the ConfigMap from the config store",
    )
    parser.add_argument(
        "--mesh-config", type=pathlib.Path, help="the mesh config file (the istio ConfigMap's mesh)"
    )
    parser.add_argument(
        "--webhook-dns-name",
        action="append",
        default=[],
        help="a DNS name for the webhook certificate (e.g. istiod.istio-system.svc), repeatable",
    )
    parser.add_argument(
        "--native-sidecars",
        action="store_true",
        help="inject istio-proxy as a native sidecar (an init container; Kubernetes 1.29+)",
    )
    parser.add_argument(
        "--config-store-token-file",
        type=pathlib.Path,
        help="a bearer token for the config store (a cluster's service account token)",
    )
    parser.add_argument(
        "--config-store-ca-file", help="the CA bundle that signs the config store's certificate"
    )
    parser.add_argument(
        "--ca-server-name", help="the name in the CA's certificate, when not the address's host"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if (args.secure_grpc_address or args.webhook_address) and not (
        args.ca_root and args.token_file
    ):
        parser.error("--secure-grpc-address and --webhook-address need --ca-root and --token-file")
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    token = None
    if args.config_store_token_file:
        try:
            token = args.config_store_token_file.read_text().strip()
        except OSError as error:
            parser.error(f"--config-store-token-file: {error}")
    return DiscoveryOptions(
        config_store=args.config_store,
        config_store_token=token,
        config_store_ca=args.config_store_ca_file,
        grpc_address=args.grpc_address,
        http_address=args.http_address,
        debounce_after=args.debounce_after,
        debounce_max=args.debounce_max,
        mesh=MeshOptions(domain_suffix=args.domain),
        secure=SecureXdsOptions(
            address=args.secure_grpc_address,
            ca_address=args.ca_address,
            ca_root=args.ca_root,
            token_file=args.token_file,
            ca_server_name=args.ca_server_name,
        )
        if args.secure_grpc_address
        else None,
        webhooks=WebhookOptions(
            address=args.webhook_address,
            cert=CertOptions(
                ca_address=args.ca_address,
                ca_root=args.ca_root,
                token_file=args.token_file,
                dns_names=tuple(args.webhook_dns_name),
                ca_server_name=args.ca_server_name,
            ),
            config_store=args.config_store,
            inject_config_dir=args.inject_config_dir,
            mesh_config_file=args.mesh_config,
            native_sidecar=args.native_sidecars,
        )
        if args.webhook_address
        else None,
    )


async def serve(options: DiscoveryOptions) -> None:
    await serve_until_signalled(DiscoveryServer(options).run())
    logging.getLogger("pilot.discovery").info("pilot-discovery stopped")


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
