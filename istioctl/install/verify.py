"""`istioctl verify-install`: every object of the manifest is in the cluster, the CRDs are
established and the control plane's Deployments and DaemonSets are ready."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from istioctl.install.cluster import Cluster, ClusterError
from istioctl.install.manifest import values as values_of
from manifests import generate as manifests


def _problem(obj: dict[str, Any], found: dict[str, Any]) -> str | None:
    kind, status = obj["kind"], found.get("status") or {}
    if kind == "CustomResourceDefinition":
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if conditions.get("Established") != "True":
            return "not established"
    elif kind == "Deployment":
        want = (found.get("spec") or {}).get("replicas", 1)
        ready = status.get("readyReplicas") or 0
        if ready < want:
            return f"{ready} of {want} replicas ready"
    elif kind == "DaemonSet":
        want, ready = status.get("desiredNumberScheduled") or 0, status.get("numberReady") or 0
        if ready < want or not want:
            return f"{ready} of {want} pods ready"
    return None


def verify_install(args: argparse.Namespace) -> int:
    try:
        objects = manifests.generate(values_of(args))
        cluster = Cluster(args)
        failures = 0
        for obj in objects:
            meta = obj["metadata"]
            name = f"{meta['name']}.{meta['namespace']}" if meta.get("namespace") else meta["name"]
            found = cluster.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
            problem = "not found" if found is None else _problem(obj, found)
            if problem:
                failures += 1
                print(f"✘ {obj['kind']}: {name}: {problem}")
            else:
                print(f"✔ {obj['kind']}: {name} checked successfully")
    except (manifests.ManifestError, ClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    crds = sum(o["kind"] == "CustomResourceDefinition" for o in objects)
    workloads = sum(o["kind"] in ("Deployment", "DaemonSet") for o in objects)
    print(f"Checked {crds} custom resource definitions")
    print(f"Checked {workloads} Istio Deployments and DaemonSets")
    if failures:
        print(f"✘ Istio is not installed correctly: {failures} problems", file=sys.stderr)
        return 1
    print("✔ Istio is installed and verified successfully")
    return 0
