"""`istioctl kube-inject`: the sidecar added to the files' pod templates.

The settings come from files when given (Istio's --injectConfigFile, --valuesFile,
--meshConfigFile: the ConfigMaps' keys, or the whole ConfigMaps), else from the
`istio-sidecar-injector` and `istio` ConfigMaps of the config store (-i istio-system); a
ConfigMap the store does not have is replaced by what `istioctl install` would apply, with
a warning.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import yaml

from istioctl import target
from pkg.config import mesh as meshconfig
from pkg.inject import config as injectconfig
from pkg.inject import kubeinject
from pkg.kube import errors


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return pathlib.Path(path).read_text()


def _key_of(text: str, key: str) -> str:
    """A file holding one ConfigMap key, or the whole ConfigMap (then its `key`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(data, dict) and data.get("kind") == "ConfigMap":
        return str((data.get("data") or {}).get(key, ""))
    return text


def _configmap(args: argparse.Namespace, name: str) -> dict[str, Any] | None:
    with target.store_client(args) as client:
        try:
            found = client.get_raw(f"/api/v1/namespaces/{args.istio_namespace}/configmaps/{name}")
        except errors.NotFound:
            return None
    return found if isinstance(found, dict) else None


def _defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    from manifests import generate

    values = generate.default_values()
    namespace = values["global"]["istioNamespace"]
    return generate.injector_configmap(values, namespace), generate.mesh_configmap(
        values, namespace
    )


def settings(args: argparse.Namespace) -> injectconfig.Settings:
    files = (args.inject_config_file, args.values_file, args.mesh_config_file)
    injector: dict[str, Any] | None = None
    mesh: dict[str, Any] | None = None
    if not all(files):
        injector = (
            None
            if args.inject_config_file and args.values_file
            else _configmap(args, args.inject_configmap)
        )
        mesh = None if args.mesh_config_file else _configmap(args, args.mesh_configmap)
        default_injector, default_mesh = (None, None)
        if (injector is None and not (args.inject_config_file and args.values_file)) or (
            mesh is None and not args.mesh_config_file
        ):
            default_injector, default_mesh = _defaults()
        if injector is None and not (args.inject_config_file and args.values_file):
            target.print_warning(
                f"ConfigMap {args.istio_namespace}/{args.inject_configmap} not found; "
                "using the one `istioctl install` applies"
            )
            injector = default_injector
        if mesh is None and not args.mesh_config_file:
            target.print_warning(
                f"ConfigMap {args.istio_namespace}/{args.mesh_configmap} not found; "
                "using the one `istioctl install` applies"
            )
            mesh = default_mesh
    injector_data = dict((injector or {}).get("data") or {})
    if args.inject_config_file:
        injector_data["config"] = _key_of(_read(args.inject_config_file), "config")
    if args.values_file:
        injector_data["values"] = _key_of(_read(args.values_file), "values")
    mesh_text = ((mesh or {}).get("data") or {}).get("mesh", "")
    if args.mesh_config_file:
        mesh_text = _key_of(_read(args.mesh_config_file), "mesh")
    return injectconfig.from_configmaps(
        {"data": injector_data}, {"data": {"mesh": mesh_text}}, native_sidecar=args.native_sidecar
    )


def kube_inject(args: argparse.Namespace) -> int:
    try:
        text = _read(args.filename)
    except OSError as error:
        print(f"error: {args.filename}: {error.strerror}", file=sys.stderr)
        return 1
    try:
        options = settings(args)
        out = kubeinject.into_resource_text(text, options, lambda w: print(w, file=sys.stderr))
    except (
        injectconfig.InjectionConfigError,
        meshconfig.MeshConfigError,
        kubeinject.KubeInjectError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.output:
        pathlib.Path(args.output).write_text(out)
    else:
        sys.stdout.write(out)
    return 0
