"""Sidecar injection on the local platform, as istiod's mutating webhook does it.

The local API server (the config store) calls no admission webhooks, so the controller that
creates a Deployment's pods asks this injector first, as the API server would ask istiod:
the same decision (Istio's `injectRequired` policy, then the namespace rule the webhook's
selectors state: `istio-injection=enabled`, `sidecar.istio.io/inject`) and the same
injection (pkg/inject, Istio's injectPod) with the settings istiod reads, the
`istio-sidecar-injector` and `istio` ConfigMaps in `istio-system` that the install applied
(tools/local/install.py), taken from a watch of the ConfigMaps and rebuilt when they change.
Without those ConfigMaps a pod that should be injected is not created (an error the
controller retries), as a cluster refuses pods while istiod's webhook cannot answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pkg.config import mesh as meshconfig
from pkg.inject import config as injectconfig
from pkg.inject import policy
from pkg.inject.config import Settings
from pkg.inject.inject import InjectionError, Workload, inject_pod
from tools.local.kubeinformer import Informer

log = logging.getLogger("injector")

ISTIO_NAMESPACE = "istio-system"


class InjectionUnavailable(RuntimeError):
    """The injector cannot answer (no settings yet, or bad ones): why."""


class SidecarInjector:
    def __init__(self, configmaps: Informer, istio_namespace: str = ISTIO_NAMESPACE) -> None:
        self.configmaps = configmaps
        self.istio_namespace = istio_namespace
        self._built: tuple[tuple[str, str], Settings] | None = None

    def settings(self) -> Settings:
        """The settings from the two ConfigMaps now in the cache; rebuilt when they change."""
        injector = self.configmaps.get(self.istio_namespace, injectconfig.CONFIGMAP)
        mesh = self.configmaps.get(self.istio_namespace, injectconfig.MESH_CONFIGMAP)
        if injector is None:
            raise InjectionUnavailable(
                f"ConfigMap {self.istio_namespace}/{injectconfig.CONFIGMAP} not found "
                "(is the mesh installed?)"
            )
        versions = (_version(injector), _version(mesh))
        if self._built is not None and self._built[0] == versions:
            return self._built[1]
        try:
            settings = injectconfig.from_configmaps(injector, mesh)
        except (injectconfig.InjectionConfigError, meshconfig.MeshConfigError) as error:
            raise InjectionUnavailable(str(error)) from None
        self._built = (versions, settings)
        return settings

    def wanted(self, namespace_labels: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
        """Whether the webhook would inject this pod (policy, then the namespace selectors)."""
        settings = self.settings()
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return policy.inject_required(settings.config, pod) and policy.namespace_selects(
            namespace_labels, labels
        )

    def inject(self, pod: Mapping[str, Any], workload: Workload) -> dict[str, Any]:
        """The pod as the webhook's patch leaves it; raises InjectionUnavailable."""
        try:
            return inject_pod(pod, self.settings(), workload=workload)
        except InjectionError as error:
            raise InjectionUnavailable(f"Pod injection failed: {error}") from None


def _version(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")
