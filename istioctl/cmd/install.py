"""Install commands: kube-inject, manifest generate, install, verify-install.
Handlers: istioctl/install/."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from istioctl.cmd.handler import Ref

_PKG = "istioctl.install"


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser],
) -> None:
    inject = subparsers.add_parser(
        "kube-inject",
        parents=parents,
        help="inject the Istio sidecar into Kubernetes pod resources",
        description="Adds istio-proxy and istio-init to every pod template of the files, from "
        "the istio-sidecar-injector ConfigMap (or the files given), as the webhook would.",
    )
    inject.add_argument(
        "-f", "--filename", required=True, metavar="FILE", help="input file, - for stdin"
    )
    inject.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    inject.add_argument("--meshConfigFile", dest="mesh_config_file", metavar="FILE",
                        help="mesh configuration (the istio ConfigMap's mesh key)")  # fmt: skip
    inject.add_argument("--injectConfigFile", dest="inject_config_file", metavar="FILE",
                        help="injection configuration (the injector ConfigMap's config key)")  # fmt: skip
    inject.add_argument("--valuesFile", dest="values_file", metavar="FILE",
                        help="injection values (the injector ConfigMap's values key)")  # fmt: skip
    inject.add_argument("--meshConfigMapName", dest="mesh_configmap", default="istio",
                        help="the mesh ConfigMap's name (default: istio)")  # fmt: skip
    inject.add_argument("--injectConfigMapName", dest="inject_configmap", default="istio-sidecar-injector",
                        help="the injector ConfigMap's name (default: istio-sidecar-injector)")  # fmt: skip
    inject.add_argument("--native-sidecar", action="store_true",
                        help="istio-proxy as a Kubernetes native sidecar (an init container)")  # fmt: skip
    inject.set_defaults(handler=Ref(f"{_PKG}.kubeinject", "kube_inject"))

    manifest = subparsers.add_parser(
        "manifest", parents=parents, help="commands related to Istio manifests"
    )
    verbs = manifest.add_subparsers(title="commands", metavar="COMMAND")
    generate = verbs.add_parser(
        "generate",
        parents=parents,
        help="generate an Istio install manifest",
        description="Prints every object of the install (CRDs, RBAC, ConfigMaps, Deployments, "
        "webhooks) as YAML, for kubectl apply -f.",
    )
    _add_values(generate)
    generate.set_defaults(handler=Ref(f"{_PKG}.manifest", "generate"))

    install = subparsers.add_parser(
        "install",
        parents=parents,
        help="apply an Istio install manifest to the cluster",
        description="Applies the manifest of `manifest generate` with the Kubernetes client "
        "(server-side apply), after creating the CA's root and tokens when they are missing.",
    )
    _add_values(install)
    install.add_argument("-y", "--skip-confirmation", action="store_true", help="do not ask")
    install.add_argument(
        "--dry-run", action="store_true", help="print what would be applied, change nothing"
    )
    install.set_defaults(handler=Ref(f"{_PKG}.apply", "install"))

    verify = subparsers.add_parser(
        "verify-install",
        parents=parents,
        help="verify the Istio installation status",
        description="Checks that every object of the manifest exists and that the control "
        "plane's Deployments and DaemonSets are ready.",
    )
    _add_values(verify)
    verify.set_defaults(handler=Ref(f"{_PKG}.verify", "verify_install"))


def _add_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--filename", action="append", default=[], metavar="FILE",
                        help="values (or an IstioOperator) to apply over the defaults, repeatable")  # fmt: skip
    parser.add_argument("-s", "--set", action="append", default=[], metavar="PATH=VALUE",
                        help="one value, e.g. values.global.hub=registry.example.com/istio-py")  # fmt: skip
