"""pilot-discovery: Pilot's process. Serves Envoy config over ADS from the config store."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import pathlib
import sys

from api.mesh.v1alpha1.config_pb2 import MeshConfig
from pilot.bootstrap.meshconfig import check_mixer, mesh_options
from pilot.bootstrap.registries import PlatformOptions, RegistryUnavailableError, build
from pilot.bootstrap.rootcert import RootCertOptions
from pilot.bootstrap.server import DiscoveryOptions, DiscoveryServer
from pilot.bootstrap.servingcert import SecureXdsOptions
from pilot.registry.provider import Provider
from pilot.webhooks.server import WebhookOptions
from pilot.webhooks.tlscert import CertOptions
from pkg.aio import program
from pkg.cli import duration
from pkg.config.mesh import MeshConfigError, load_mesh_config


def _seconds(text: str, flag: str) -> float:
    try:
        return duration.seconds(text)
    except ValueError as error:
        raise ValueError(f"{flag}: {error}") from None


def parse_args(argv: list[str] | None = None) -> tuple[DiscoveryOptions, str]:
    """The options and the log level."""
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
        "--registries",
        default=Provider.SERVICE_ENTRY.value,
        help="comma-separated platform service registries to read, first wins a hostname "
        f"(Istio's values: {', '.join(p.value for p in Provider)})",
    )
    parser.add_argument(
        "--kubeconfig",
        default="",
        help="the Kubernetes API server's kubeconfig, for Kubernetes (default: in-cluster "
        "credentials, else $KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument("--consulserverURL", default="", help="Consul's URL, for Consul")
    parser.add_argument(
        "--consulserverInterval", default="2s", help="Consul watch rate (a Go duration)"
    )
    parser.add_argument(
        "--eurekaserverURL", default="", help="Eureka's URL with its prefix, for Eureka"
    )
    parser.add_argument(
        "--eurekaserverInterval", default="2s", help="Eureka poll interval (a Go duration)"
    )
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
    parser.add_argument(
        "--publish-root-cert",
        action="store_true",
        help="keep the istio-ca-root-cert ConfigMap (--ca-root) in every namespace of the "
        "config store, as istiod does on a cluster",
    )
    parser.add_argument(
        "--mesh-config",
        type=pathlib.Path,
        help="MeshConfig YAML, used while the config store has no ConfigMap istio-system/istio "
        "(whose key mesh Pilot watches, as istiod): mixerCheckServer, outboundTrafficPolicy, "
        "and the defaults injection reads",
    )
    parser.add_argument(
        "--mixer-filter-wasm",
        default="",
        help="path of the Mixer filter module (mixer_filter.wasm) on every proxy's machine",
    )
    parser.add_argument(
        "--disable-mixer-check-cache",
        action="store_true",
        help="proxies ask Mixer on every request (to measure what the check cache saves)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        mesh_config = load_mesh_config(args.mesh_config) if args.mesh_config else MeshConfig()
        check_mixer(mesh_config, args.mixer_filter_wasm, "the mesh config")
    except MeshConfigError as error:
        parser.error(str(error))
    if (args.secure_grpc_address or args.webhook_address) and not (
        args.ca_root and args.token_file
    ):
        parser.error("--secure-grpc-address and --webhook-address need --ca-root and --token-file")
    if args.publish_root_cert and not args.ca_root:
        parser.error("--publish-root-cert needs --ca-root (the root it publishes)")
    try:
        platforms = PlatformOptions(
            consul_url=args.consulserverURL,
            consul_interval=_seconds(args.consulserverInterval, "--consulserverInterval"),
            eureka_url=args.eurekaserverURL,
            eureka_interval=_seconds(args.eurekaserverInterval, "--eurekaserverInterval"),
            kubeconfig=args.kubeconfig,
            domain=args.domain,
        )
        providers = tuple(Provider.parse_list(args.registries))
        build(providers, platforms)  # refuse, before anything starts, what cannot run
    except (ValueError, RegistryUnavailableError) as error:
        parser.error(f"--registries: {error}")
    token = None
    if args.config_store_token_file:
        try:
            token = args.config_store_token_file.read_text().strip()
        except OSError as error:
            parser.error(f"--config-store-token-file: {error}")
    options = DiscoveryOptions(
        config_store=args.config_store,
        config_store_token=token,
        config_store_ca=args.config_store_ca_file,
        root_cert=RootCertOptions(root_file=args.ca_root) if args.publish_root_cert else None,
        grpc_address=args.grpc_address,
        http_address=args.http_address,
        debounce_after=args.debounce_after,
        debounce_max=args.debounce_max,
        mesh=dataclasses.replace(
            mesh_options(args.domain, mesh_config, args.mixer_filter_wasm),
            mixer_check_cache=not args.disable_mixer_check_cache,
        ),
        registries=providers,
        platforms=platforms,
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
    return options, args.log_level


async def serve(options: DiscoveryOptions, stop: asyncio.Event) -> None:
    await program.until(stop, DiscoveryServer(options).run())
    logging.getLogger("pilot.discovery").info("pilot-discovery stopped")


def main(argv: list[str] | None = None) -> int:
    options, log_level = parse_args(argv)
    return program.run(lambda stop: serve(options, stop), name="pilot-discovery", level=log_level)


if __name__ == "__main__":
    sys.exit(main())
