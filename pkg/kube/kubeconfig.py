"""Where an API server is and how to talk to it, from a kubeconfig, as kubectl reads one.

A kubeconfig names clusters (a server URL and its CA), users (a token or a client
certificate) and contexts (a cluster, a user, a namespace). `load()` picks the context given
(`--context`) or the current one and returns what a client needs. Several files (a
`KUBECONFIG` list) merge as kubectl merges them: for each name, and for current-context, the
first file that sets it wins. Relative paths in a file are relative to that file.

`write_kubeconfig()` writes the one the local launcher gives for the config store
(`kubectl --kubeconfig run/kubeconfig get virtualservices`): plain HTTP on loopback with no
authentication, so a server URL, an empty user, and the default namespace in its context.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import ssl

DEFAULT_PATH = pathlib.Path("~/.kube/config")


class KubeconfigError(Exception):
    """The kubeconfig cannot be read or does not name a usable cluster (kubectl's wording)."""


@dataclasses.dataclass(frozen=True)
class ClusterAccess:
    context: str
    server: str
    namespace: str | None = None  # the context's namespace, the default for -n
    token: str | None = None
    ca_data: bytes | None = None  # PEM
    client_cert_data: bytes | None = None  # PEM
    client_key_data: bytes | None = None  # PEM
    insecure: bool = False  # insecure-skip-tls-verify

    def ssl_context(self) -> ssl.SSLContext | None:
        """For an https server: trusting the cluster's CA, presenting the user's certificate."""
        if not self.server.startswith("https:"):
            return None
        import ssl
        import tempfile

        context = ssl.create_default_context(cadata=self.ca_data.decode() if self.ca_data else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_data and self.client_key_data:
            # ssl loads a chain only from files; these live just long enough to be read.
            with tempfile.TemporaryDirectory() as folder:
                cert, key = pathlib.Path(folder, "cert.pem"), pathlib.Path(folder, "key.pem")
                cert.write_bytes(self.client_cert_data)
                key.touch(0o600)
                key.write_bytes(self.client_key_data)
                context.load_cert_chain(cert, key)
        return context


def paths(explicit: str | None, env: Mapping[str, str] = os.environ) -> list[pathlib.Path]:
    """The files to read: --kubeconfig, else $KUBECONFIG's list, else ~/.kube/config."""
    if explicit:
        return [pathlib.Path(explicit).expanduser()]
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return [pathlib.Path(p).expanduser() for p in listed]
    return [DEFAULT_PATH.expanduser()]


def load(files: Sequence[pathlib.Path], context: str | None = None) -> ClusterAccess:
    merged = _merge([_read(path, required=len(files) == 1) for path in files])
    name = context or merged["current-context"]
    if not name:
        raise KubeconfigError("error: current-context is not set (give --context)")
    found = merged["contexts"].get(name)
    if found is None:
        raise KubeconfigError(f'error: context "{name}" does not exist')
    entry, _ = found
    cluster_name = entry.get("cluster") or ""
    cluster = merged["clusters"].get(cluster_name)
    if cluster is None:
        raise KubeconfigError(
            f'error: context "{name}" names cluster "{cluster_name}", which does not exist'
        )
    cluster_entry, cluster_dir = cluster
    server = str(cluster_entry.get("server") or "")
    if not server:
        raise KubeconfigError(f'error: cluster "{cluster_name}" has no server')
    user_entry, user_dir = merged["users"].get(entry.get("user") or "", ({}, cluster_dir))
    token = user_entry.get("token")
    if not token and user_entry.get("tokenFile"):
        token = _file(user_entry["tokenFile"], user_dir).decode().strip()
    return ClusterAccess(
        context=name,
        server=server.rstrip("/"),
        namespace=entry.get("namespace") or None,
        token=token or None,
        ca_data=_data(cluster_entry, "certificate-authority", cluster_dir),
        client_cert_data=_data(user_entry, "client-certificate", user_dir),
        client_key_data=_data(user_entry, "client-key", user_dir),
        insecure=bool(cluster_entry.get("insecure-skip-tls-verify")),
    )


def _read(path: pathlib.Path, *, required: bool) -> tuple[dict[str, Any], pathlib.Path]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if required:
            raise KubeconfigError(f'error: the kubeconfig "{path}" does not exist') from None
        return {}, path.parent  # kubectl skips the missing entries of a KUBECONFIG list
    except OSError as error:
        raise KubeconfigError(
            f'error: cannot read the kubeconfig "{path}": {error.strerror}'
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise KubeconfigError(
            f'error: the kubeconfig "{path}" is not valid YAML: {error}'
        ) from None
    if not isinstance(data, dict):
        raise KubeconfigError(f'error: the kubeconfig "{path}" is not a kubeconfig')
    return data, path.parent


def _merge(files: Sequence[tuple[dict[str, Any], pathlib.Path]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"current-context": "", "clusters": {}, "contexts": {}, "users": {}}
    for data, folder in files:
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = str(data["current-context"])
        for section, key in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
            for item in data.get(section) or []:
                if isinstance(item, dict) and item.get("name") and isinstance(item.get(key), dict):
                    merged[section].setdefault(str(item["name"]), (item[key], folder))
    return merged


def _data(entry: Mapping[str, Any], field: str, folder: pathlib.Path) -> bytes | None:
    """`<field>-data` (base64) or the file `<field>` names."""
    if entry.get(f"{field}-data"):
        try:
            return base64.b64decode(entry[f"{field}-data"], validate=True)
        except ValueError:
            raise KubeconfigError(f"error: {field}-data is not base64") from None
    if entry.get(field):
        return _file(entry[field], folder)
    return None


def _file(name: str, folder: pathlib.Path) -> bytes:
    path = folder / pathlib.Path(name).expanduser()
    try:
        return path.read_bytes()
    except OSError as error:
        raise KubeconfigError(f'error: cannot read "{path}": {error.strerror}') from None


# Writing one.

CONTEXT = "istio-py"


def kubeconfig(server: str, *, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | pathlib.Path, server: str, *, namespace: str = "default"
) -> pathlib.Path:
    """Writes the file atomically (a reader never sees half of it), readable by its owner only
    (kubectl warns about group- or world-readable kubeconfigs)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(yaml.safe_dump(kubeconfig(server, namespace=namespace), sort_keys=False))
    os.chmod(partial, 0o600)
    partial.replace(path)
    return path
