"""`istioctl install`: the manifest applied to the cluster through the Kubernetes client.

Before the manifest, what the CA needs and the cluster lacks is created (cacerts.py): the
CA's root, its tokens, and the root for the webhooks' caBundle. `--dry-run` prints what
would be applied and talks to no cluster; without `-y` the user is asked first.
"""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

from istioctl.install import cacerts
from istioctl.install.cluster import Cluster, ClusterError, describe
from istioctl.install.manifest import values as values_of
from manifests import generate as manifests
from pkg.version import buildinfo


def _ca_objects(
    cluster: Cluster | None, values: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """The CA's Secrets and root ConfigMaps still to create, and the root's PEM."""
    namespace = values["global"]["istioNamespace"]
    trust_domain = (values.get("meshConfig") or {}).get("trustDomain", "cluster.local")
    existing = cluster.get("v1", "Secret", "cacerts", namespace) if cluster else None
    material = cacerts.new_material(trust_domain)
    if existing is not None:
        root = base64.b64decode((existing.get("data") or {}).get("root-cert.pem", "")).decode()
        if not root:
            raise ClusterError(f"Secret {namespace}/cacerts has no root-cert.pem")
        material = cacerts.CaMaterial(root, "", material.pilot_token, material.nodeagent_token)
    wanted = cacerts.objects(material, namespace, trust_domain, ["default"])
    out = []
    for obj in wanted:
        name = obj["metadata"]["name"]
        if existing is not None and name == "cacerts":
            continue
        if (
            cluster is not None
            and obj["kind"] == "Secret"
            and name != "cacerts"
            and cluster.get("v1", "Secret", name, namespace) is not None
        ):
            continue  # tokens the CA already trusts stay as they are
        out.append(obj)
    return out, material.root_pem


def plan(cluster: Cluster | None, values: dict[str, Any]) -> list[dict[str, Any]]:
    extra, root = _ca_objects(cluster, values)
    values = manifests.merge_values(values, {"global": {"caBundle": cacerts.ca_bundle(root)}})
    objects = manifests.generate(values) + extra
    order = manifests.install_order
    return sorted(objects, key=order)


def install(args: argparse.Namespace) -> int:
    try:
        values = values_of(args)
        if args.dry_run:
            for obj in plan(None, values):
                print(f"{describe(obj)} would be applied (dry run)")
            print("✔ Dry run complete: nothing was changed")
            return 0
        if not args.skip_confirmation and not _confirm(values):
            print("Cancelled.", file=sys.stderr)
            return 1
        cluster = Cluster(args)
        objects = plan(cluster, values)
        for obj in objects:
            cluster.apply(obj)
            print(f"{describe(obj)} applied")
    except manifests.ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"✔ Installation complete: {len(objects)} objects applied")
    return 0


def _confirm(values: dict[str, Any]) -> bool:
    version = buildinfo.get().version
    print(f"This will install the Istio {version} control plane into the cluster "
          f"(namespace {values['global']['istioNamespace']}). Proceed? (y/N) ", end="", flush=True)  # fmt: skip
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
