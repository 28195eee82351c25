"""Which mesh istioctl talks to: the config store's address and credentials, and Pilot's.

The config store, in order:
1. `--config-store URL`;
2. a kubeconfig named on the command line (`--kubeconfig`/`-c`, or `--context`): its
   context's cluster server, token and certificates, as kubectl reads them;
3. `$ISTIO_CONFIG_STORE`;
4. a kubeconfig named by `$KUBECONFIG` (the launcher writes one to `run/kubeconfig`);
5. the local mesh's store, http://127.0.0.1:8001.
A kubeconfig context's namespace is the default for `-n`, as in kubectl.

Pilot (its debug HTTP port, 15014): `--pilot URL`, else `$ISTIO_PILOT`, else
http://127.0.0.1:15014.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkg.kube.kubeconfig import ClusterAccess
    from pkg.kube.syncclient import SyncConfigClient

DEFAULT_CONFIG_STORE = "http://127.0.0.1:8001"
DEFAULT_PILOT = "http://127.0.0.1:15014"


def resolve(args: argparse.Namespace) -> None:
    """Fills in args.config_store, args.cluster (a kubeconfig's, or None) and args.namespace;
    raises pkg.kube.kubeconfig.KubeconfigError for a kubeconfig that cannot be used."""
    access = None
    store = getattr(args, "config_store", None)
    if not store:
        named = getattr(args, "kubeconfig", None) or getattr(args, "context", None)
        env_store = os.environ.get("ISTIO_CONFIG_STORE")
        if named or (not env_store and os.environ.get("KUBECONFIG")):
            from pkg.kube import kubeconfig

            files = kubeconfig.paths(getattr(args, "kubeconfig", None))
            access = kubeconfig.load(files, getattr(args, "context", None))
            store = access.server
        else:
            store = env_store or DEFAULT_CONFIG_STORE
    args.config_store = store.rstrip("/")
    args.cluster = access
    if not getattr(args, "namespace", None):
        args.namespace = (access.namespace if access else None) or None
    args.pilot = (
        getattr(args, "pilot", None) or os.environ.get("ISTIO_PILOT") or DEFAULT_PILOT
    ).rstrip("/")


def namespace(args: argparse.Namespace) -> str:
    return args.namespace or "default"


def store_client(
    args: argparse.Namespace,
    *,
    timeout: float = 10.0,
    validate: bool = False,
    store_warnings: bool = True,
) -> SyncConfigClient:
    """A client of the config store `args` name; the store's Warning headers go to stderr
    (unless the caller has printed the same warnings from its files, `store_warnings=False`).

    What it reads is not validated again by default: istioctl shows what the store holds,
    as kubectl does, even an object an older version wrote that would no longer pass."""
    from pkg.kube.syncclient import SyncConfigClient

    access: ClusterAccess | None = getattr(args, "cluster", None)
    return SyncConfigClient(
        args.config_store,
        timeout=timeout,
        token=access.token if access else None,
        ssl_context=access.ssl_context() if access else None,
        on_warning=print_warning if store_warnings else None,
        validate=validate,
    )


def print_warning(text: str) -> None:
    print(f"Warning: {text}", file=sys.stderr)
