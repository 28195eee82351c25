"""Which store istioctl talks to: flags, then a named kubeconfig, then the environment."""

from __future__ import annotations

import argparse

import pytest

from istioctl import target
from pkg.kube.kubeconfig import KubeconfigError

KUBECONFIG = """
current-context: mesh
clusters:
- name: mesh
  cluster: {server: "http://127.0.0.1:18001"}
- name: other
  cluster: {server: "http://127.0.0.2:18001"}
contexts:
- name: mesh
  context: {cluster: mesh}
- name: other
  context: {cluster: other, namespace: bookinfo}
"""


def resolved(**flags: object) -> argparse.Namespace:
    args = argparse.Namespace(
        config_store=None, kubeconfig=None, context=None, namespace=None, pilot=None
    )
    vars(args).update(flags)
    target.resolve(args)
    return args


@pytest.fixture
def clean(monkeypatch):
    for name in ("ISTIO_CONFIG_STORE", "KUBECONFIG", "ISTIO_PILOT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_precedence(clean, tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    assert resolved().config_store == target.DEFAULT_CONFIG_STORE
    clean.setenv("KUBECONFIG", str(config))
    assert resolved().config_store == "http://127.0.0.1:18001"
    clean.setenv("ISTIO_CONFIG_STORE", "http://127.0.0.3:8001/")
    assert resolved().config_store == "http://127.0.0.3:8001"  # env store over env kubeconfig
    args = resolved(kubeconfig=str(config), context="other")  # flags over the environment
    assert (args.config_store, args.namespace) == ("http://127.0.0.2:18001", "bookinfo")
    assert resolved(kubeconfig=str(config), namespace="x").namespace == "x"  # -n wins
    assert resolved(config_store="http://s:1", kubeconfig=str(config)).config_store == "http://s:1"
    assert resolved().pilot == target.DEFAULT_PILOT
    clean.setenv("ISTIO_PILOT", "http://p:15014/")
    assert resolved().pilot == "http://p:15014"


def test_a_bad_kubeconfig_is_an_error(clean, tmp_path):
    with pytest.raises(KubeconfigError, match="does not exist"):
        resolved(kubeconfig=str(tmp_path / "missing"))
    (tmp_path / "k").write_text(KUBECONFIG)
    with pytest.raises(KubeconfigError, match='context "nope" does not exist'):
        resolved(kubeconfig=str(tmp_path / "k"), context="nope")
