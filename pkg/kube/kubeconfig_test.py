"""Reading kubeconfigs as kubectl does: contexts, merging, relative files, clear refusals."""

from __future__ import annotations

import base64
import pathlib

import pytest

from pkg.kube import kubeconfig
from pkg.kube.kubeconfig import KubeconfigError


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.write_text(text)
    return path


MESH = """
apiVersion: v1
kind: Config
current-context: local
clusters:
- name: local
  cluster: {server: "http://127.0.0.1:8001/"}
- name: remote
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: ca.pem
contexts:
- name: local
  context: {cluster: local, user: nobody}
- name: remote
  context: {cluster: remote, user: admin, namespace: bookinfo}
users:
- name: nobody
  user: {}
- name: admin
  user: {tokenFile: token}
"""


def test_current_or_named_context(tmp_path):
    config = write(tmp_path / "config", MESH)
    (tmp_path / "ca.pem").write_text("PEM")
    (tmp_path / "token").write_text("s3cret\n")
    local = kubeconfig.load([config])
    assert (local.context, local.server, local.namespace, local.token) == (
        "local", "http://127.0.0.1:8001", None, None,
    )  # fmt: skip
    assert local.ssl_context() is None
    remote = kubeconfig.load([config], "remote")
    assert (remote.server, remote.namespace, remote.token, remote.ca_data) == (
        "https://10.0.0.1:6443", "bookinfo", "s3cret", b"PEM",
    )  # fmt: skip


def test_a_list_merges_first_wins(tmp_path):
    first = write(tmp_path / "a", "clusters:\n- name: c\n  cluster: {server: 'http://first'}\n")
    second = write(
        tmp_path / "b",
        "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'http://second'}\n"
        "contexts:\n- name: x\n  context: {cluster: c}\n",
    )
    assert kubeconfig.load([first, tmp_path / "missing", second]).server == "http://first"


def test_paths_follow_flag_then_environment_then_home(tmp_path):
    assert kubeconfig.paths("/x/config", {"KUBECONFIG": "/a:/b"}) == [pathlib.Path("/x/config")]
    assert kubeconfig.paths(None, {"KUBECONFIG": "/a::/b"}) == [pathlib.Path("/a"), pathlib.Path("/b")]  # fmt: skip
    assert kubeconfig.paths(None, {}) == [pathlib.Path("~/.kube/config").expanduser()]


def test_inline_data(tmp_path):
    ca = base64.b64encode(b"CA PEM").decode()
    config = write(
        tmp_path / "config",
        f"current-context: c\nclusters:\n- name: k\n  cluster: {{server: 'https://h', certificate-authority-data: '{ca}', insecure-skip-tls-verify: true}}\n"
        "contexts:\n- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user: {token: abc}\n",
    )  # fmt: skip
    access = kubeconfig.load([config])
    assert (access.ca_data, access.insecure, access.token) == (b"CA PEM", True, "abc")


@pytest.mark.parametrize(
    ("text", "context", "message"),
    [
        (MESH, "nope", 'error: context "nope" does not exist'),
        ("clusters: []\n", None, "error: current-context is not set (give --context)"),
        ("current-context: c\ncontexts:\n- name: c\n  context: {cluster: gone}\n", None,
         'error: context "c" names cluster "gone", which does not exist'),
        ("[1, 2]", None, "is not a kubeconfig"),
        ("a: [", None, "is not valid YAML"),
    ],
)  # fmt: skip
def test_refusals_say_what_is_wrong(tmp_path, text, context, message):
    config = write(tmp_path / "config", text)
    with pytest.raises(KubeconfigError) as refused:
        kubeconfig.load([config], context)
    assert message in str(refused.value)


def test_a_missing_named_file_is_an_error(tmp_path):
    with pytest.raises(KubeconfigError, match="does not exist"):
        kubeconfig.load([tmp_path / "nope"])
