"""The Open Service Broker on a whole mesh: a platform catalogs, provisions and binds
Bookinfo's productpage over OSB, an app outside the mesh calls productpage through a real
Envoy speaking mutual TLS with the binding's certificate (admitted), the platform unbinds
(refused), deprovisions (still refused: the broker's fence outlives the instance)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from pkg.testing.envoy import EnvoyProcess
from tests.e2e.meshtest import ROOT, MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(7)
CATALOG = ROOT / "broker/example/demo_catalog.yaml"
SERVICE_ID = "4395a443-f49a-41b0-8d14-d17294cf612f"
PLAN_ID = "58646b26-867a-4954-a1b9-233dac07815b"
APP_ADDRESS = f"{SUBNET}.90"  # the consuming app's machine, outside the mesh


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET) as mesh:
        yield mesh


class Platform:
    """What Cloud Foundry or Kubernetes' service catalog does, over HTTP."""

    def __init__(self, mesh: MeshUnderTest) -> None:
        self.url = mesh.topology.broker_url
        credentials = mesh.topology.broker_credentials.read_text().strip()
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
            "X-Broker-API-Version": "2.17",
            "X-Broker-API-Originating-Identity": "kubernetes "
            + base64.b64encode(json.dumps({"username": "developer"}).encode()).decode(),
        }

    def call(
        self, method: str, path: str, body: Any = None, **query: str
    ) -> tuple[int, dict[str, Any]]:
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {**self._headers, **({"Content-Type": "application/json"} if data else {})}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)


def _until(check, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.2)


def _client_bootstrap(credentials: dict[str, Any], upstream: str) -> dict[str, Any]:
    """An app's own Envoy, outside the mesh, with the binding's certificate: plain HTTP in,
    Istio mutual TLS out to productpage's sidecar, checking the server's SPIFFE id."""
    http = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    tls = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    host = f"{credentials['host']}:{credentials['port']}"
    return {
        "admin": {"address": {"socket_address": {"address": APP_ADDRESS, "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "app",
                    "address": {"socket_address": {"address": APP_ADDRESS, "port_value": 0}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": http + "HttpConnectionManager",
                                        "stat_prefix": "app",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "productpage",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "route": {
                                                                "cluster": "productpage",
                                                                "host_rewrite_literal": host,
                                                            },
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "productpage",
                    "type": "STATIC",
                    "connect_timeout": "5s",
                    "load_assignment": {
                        "cluster_name": "productpage",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {
                                                    "address": upstream,
                                                    "port_value": 15006,
                                                }
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                    "transport_socket": {
                        "name": "envoy.transport_sockets.tls",
                        "typed_config": {
                            "@type": tls,
                            "common_tls_context": {
                                "tls_certificates": [
                                    {
                                        "certificate_chain": {
                                            "inline_string": credentials["certificate"]
                                        },
                                        "private_key": {
                                            "inline_string": credentials["private_key"]
                                        },
                                    }
                                ],
                                "validation_context": {
                                    "trusted_ca": {"inline_string": credentials["ca_certificate"]},
                                    "match_typed_subject_alt_names": [
                                        {"san_type": "URI", "matcher": {"exact": identity}}
                                        for identity in credentials["server_identities"]
                                    ],
                                },
                                "alpn_protocols": ["istio"],
                            },
                        },
                    },
                }
            ],
        },
    }


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_a_platform_binds_productpage_and_the_binding_works_in_the_mesh_until_unbound(
    mesh, tmp_path
):
    mesh.istioctl("apply", "-f", str(CATALOG))
    platform = Platform(mesh)
    catalog = _until(
        lambda: (c := platform.call("GET", "/v2/catalog"))[0] == 200 and c[1]["services"] and c,
        what="the catalog lists productpage",
    )
    assert catalog[1]["services"][0]["name"] == "istio-bookinfo-productpage"

    instance = "/v2/service_instances/bookinfo-productpage"
    ids = {"service_id": SERVICE_ID, "plan_id": PLAN_ID}
    status, _ = platform.call("PUT", instance, {**ids, "organization_guid": "o", "space_guid": "s"})
    assert status == 201
    status, bound = platform.call("PUT", f"{instance}/service_bindings/app-1", ids)
    assert status == 201
    credentials = bound["credentials"]
    assert credentials["uri"] == "http://productpage.default.svc.cluster.local:9080"
    assert credentials["server_identities"] == [
        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    ]

    pod = mesh.topology.pod_address(mesh.topology.pod("productpage-v1"))
    app = EnvoyProcess(_client_bootstrap(credentials, pod), tmp_path / "app-envoy")
    app.start()
    try:
        host, port = asyncio.run(app.wait_listener("app"))
        page = f"http://{host}:{port}/productpage"
        # Admitted: the fences let the bound identity through, over mutual TLS.
        status, body = _until(
            lambda: (r := _get(page))[0] == 200 and r, what="the bound app is admitted"
        )
        assert "William Shakespeare" in body
        # The app logs a request once it has answered it: the line may trail the response.
        peer = f"peer={credentials['spiffe_id']}"
        _until(lambda: peer in mesh.log("productpage-v1"), what="productpage logs the binding")

        status, _ = platform.call("DELETE", f"{instance}/service_bindings/app-1", **ids)
        assert status == 200
        # Refused: the certificate is still valid, the policy no longer admits it.
        status, body = _until(
            lambda: (r := _get(page))[0] == 403 and r, what="the unbound app is refused"
        )
        assert "RBAC" in body

        status, _ = platform.call("DELETE", instance, **ids)
        assert status == 200
        policies = mesh.istioctl("get", "authorizationpolicies", "-A").stdout
        assert "osb-" not in policies  # the instance's own are gone
        assert "istio-broker-fence" in policies  # the broker's stays, so the app stays out
        # Once productpage's sidecar has dropped the instance's policy, the broker's own
        # (mesh-wide) fence still refuses the revoked certificate.
        dump = f"http://{pod}:15000/config_dump"
        _until(
            lambda: "istio-broker-fence" in (text := _get(dump)[1]) and "policy[osb-" not in text,
            what="productpage's sidecar has only the broker's fence",
        )
        assert _get(page)[0] == 403
        # Everyone else was never affected.
        assert mesh.page().status == 200
    finally:
        app.stop()


LOCKED_DOWN = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: productpage-allow-nothing, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: locked-down-service-plan, namespace: default}
spec:
  plan: {name: istio-locked-down, id: 3f0d7f5e-2b7e-4f43-9a0c-5c1bd8c9e7a1, description: ALLOW}
  services: [service-class/default/productpage-service-class]
  provisioning: {allowPolicy: true}
"""


def test_on_a_locked_down_service_the_plan_allow_policy_admits_the_binding_only(mesh, tmp_path):
    mesh.istioctl("apply", "-f", str(CATALOG))
    locked = tmp_path / "locked-down.yaml"
    locked.write_text(LOCKED_DOWN)
    mesh.apply(locked)
    platform = Platform(mesh)
    ids = {"service_id": SERVICE_ID, "plan_id": "3f0d7f5e-2b7e-4f43-9a0c-5c1bd8c9e7a1"}
    _until(
        lambda: any(
            p["id"] == ids["plan_id"]
            for s in platform.call("GET", "/v2/catalog")[1]["services"]
            for p in s["plans"]
        ),
        what="the catalog lists the locked-down plan",
    )
    instance = "/v2/service_instances/locked-productpage"
    assert (
        platform.call("PUT", instance, {**ids, "organization_guid": "o", "space_guid": "s"})[0]
        == 201
    )
    status, bound = platform.call("PUT", f"{instance}/service_bindings/app-2", ids)
    assert status == 201
    pod = mesh.topology.pod_address(mesh.topology.pod("productpage-v1"))
    app = EnvoyProcess(_client_bootstrap(bound["credentials"], pod), tmp_path / "app-envoy")
    app.start()
    try:
        host, port = asyncio.run(app.wait_listener("app"))
        page = f"http://{host}:{port}/productpage"
        _until(lambda: _get(page)[0] == 200, what="the instance's ALLOW policy admits the app")
        # Nobody else: productpage allows nothing else (once the gateway's connections made
        # before the change are drained, which Envoy does over the drain duration).
        _until(lambda: mesh.page().status == 403, what="the gateway is refused")
        assert platform.call("DELETE", f"{instance}/service_bindings/app-2", **ids)[0] == 200
        _until(lambda: _get(page)[0] == 403, what="the unbound app is refused")
        assert platform.call("DELETE", instance, **ids)[0] == 200
    finally:
        app.stop()
        mesh.delete(locked)
    _until(lambda: mesh.page().status == 200, what="Bookinfo is open again")
