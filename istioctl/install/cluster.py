"""The cluster istioctl installs into, through the official Kubernetes client.

The kubeconfig is the one the global flags name (--kubeconfig, --context, else
$KUBECONFIG or ~/.kube/config), or the in-cluster service account. Objects are applied
with server-side apply (field manager `istioctl`), as `kubectl apply --server-side` does.
"""

from __future__ import annotations

import argparse
from typing import Any

FIELD_MANAGER = "istioctl"


class ClusterError(Exception):
    """The cluster cannot be reached or refused a request: what, and the server's message."""


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
        from kubernetes.dynamic import DynamicClient

        try:
            try:
                api = config.new_client_from_config(
                    config_file=getattr(args, "kubeconfig", None),
                    context=getattr(args, "context", None),
                )
            except (ConfigException, FileNotFoundError):
                config.load_incluster_config()
                api = client.ApiClient()
            self.dynamic = DynamicClient(api)
        except ConfigException as error:
            raise ClusterError(f"no usable kubeconfig or in-cluster credentials: {error}") from None
        except Exception as error:  # urllib3 and the client raise many kinds when unreachable
            raise ClusterError(f"cannot reach the cluster: {error}") from None

    def _resource(self, obj: dict[str, Any]) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            raise ClusterError(
                f"the cluster does not serve {obj['kind']} of {obj['apiVersion']}"
            ) from None

    def apply(self, obj: dict[str, Any]) -> None:
        from kubernetes.dynamic.exceptions import DynamicApiError

        resource = self._resource(obj)
        meta = obj["metadata"]
        try:
            self.dynamic.server_side_apply(
                resource,
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace") if resource.namespaced else None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except DynamicApiError as error:
            raise ClusterError(f"{describe(obj)}: {_message(error)}") from None

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError

        resource = self._resource({"apiVersion": api_version, "kind": kind})
        try:
            found = resource.get(name=name, namespace=namespace if resource.namespaced else None)
        except NotFoundError:
            return None
        except DynamicApiError as error:
            raise ClusterError(f"{kind} {name}: {_message(error)}") from None
        return found.to_dict()


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def _message(error: Any) -> str:
    import json

    try:
        return str(json.loads(error.body).get("message") or error.reason)
    except (ValueError, TypeError, AttributeError):
        return str(getattr(error, "reason", error))
