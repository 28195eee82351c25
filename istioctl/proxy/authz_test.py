"""`x authz check` reads the RBAC filters Pilot really generates, in Envoy's dump format."""

from __future__ import annotations

import json
import pathlib

from google.protobuf import json_format

from istioctl import main as istioctl
from istioctl.proxy import authn, authz
from pilot.networking import generator
from pilot.networking.testing import bookinfo_push, sidecar
from pkg.config import loader

ROOT = pathlib.Path(__file__).absolute().parents[2]
VIEWER = ROOT / "samples" / "bookinfo" / "security" / "productpage-only-viewer.yaml"
DENY_DELETE = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: no-delete, namespace: default}
spec:
  action: DENY
  rules:
  - to: [{operation: {methods: [DELETE]}}]
  - to: [{operation: {paths: [/admin]}}]
"""


def dump(pod: str, *policies: str) -> dict:
    """The pod's listeners as Envoy's /config_dump shows them."""
    extra = [r for text in policies for r in loader.load_text(text)]
    push = bookinfo_push(extra=extra)
    listeners = generator.build_listeners(sidecar(pod), push, [])
    return {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "dynamic_listeners": [
                    {
                        "name": name,
                        "active_state": {
                            "listener": json_format.MessageToDict(
                                message, preserving_proto_field_name=True
                            )
                        },
                    }
                    for name, message in listeners
                ],
            }
        ]
    }


def test_the_policies_a_sidecar_enforces():
    config = dump("productpage-v1", VIEWER.read_text(), DENY_DELETE)
    policies = authz.enforced(list(authz.inbound_listeners(config)))
    assert policies == [
        authz.Policy("DENY", "no-delete.default", 2),
        authz.Policy("ALLOW", "productpage-viewer.default", 1),
    ]
    # reviews is not selected by the viewer policy; the namespace-wide DENY applies to it.
    reviews = dump("reviews-v1", VIEWER.read_text(), DENY_DELETE)
    assert authz.enforced(list(authz.inbound_listeners(reviews))) == [
        authz.Policy("DENY", "no-delete.default", 2)
    ]
    assert authz.enforced(list(authz.inbound_listeners(dump("reviews-v1")))) == []
    assert authn.server_mode_of(list(authz.listeners_of(config))) in ("PERMISSIVE", "DISABLE")


def test_the_command_prints_istios_table(capsys, tmp_path):
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump("productpage-v1", VIEWER.read_text())))
    code = istioctl.main(["x", "authz", "check", "productpage-v1", "-f", str(path)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        "ACTION   AuthorizationPolicy          RULES",
        "ALLOW    productpage-viewer.default   1",
    ]
    code = istioctl.main(["x", "authz", "check", "p", "-f", str(path), "-o", "json"])
    assert json.loads(capsys.readouterr()[0]) == [
        {"action": "ALLOW", "name": "productpage-viewer.default", "rules": 1}
    ]
    path.write_text('{"configs": []}')
    assert istioctl.main(["x", "authz", "check", "p", "-f", str(path)]) == 1
    assert "no inbound listener" in capsys.readouterr()[1]
