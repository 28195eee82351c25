"""pilot-discovery wired to a real config store, driven by a scripted ADS client."""

import asyncio
import base64
import contextlib
import json
import re
import urllib.request

from aiohttp import web
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import json_format

from pilot.bootstrap.server import DiscoveryOptions, DiscoveryServer
from pilot.configstore.testing import StoreThread
from pilot.networking import generator
from pilot.networking.jwt import UNFETCHED_JWKS
from pilot.networking.testing import BOOKINFO, workload_entries
from pilot.xds.testing import node, run_async
from pkg.config import loader
from pkg.config.kinds import ALL
from pkg.kube.client import ConfigClient
from pkg.version import buildinfo
from pkg.xds.testing import XdsDriver, unpack

NODE = "sidecar~127.0.1.2~productpage-v1.default~default.svc.cluster.local"
META = {"NAMESPACE": "default", "LABELS": {"app": "productpage", "version": "v1"}}

# A real RSA modulus (Pilot refuses key sets Envoy could not load).
MODULUS = json.loads(UNFETCHED_JWKS)["keys"][0]["n"]


@contextlib.asynccontextmanager
async def discovery(store_url: str):
    server = DiscoveryServer(
        DiscoveryOptions(
            config_store=store_url, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0"
        )
    )
    task = asyncio.create_task(server.run())
    try:
        async with asyncio.timeout(10):
            await server.ready.wait()
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _apply(url: str, *resources) -> None:
    async with ConfigClient(url) as client:
        for resource in resources:
            await client.create(resource)


def test_serves_bookinfo_and_pushes_a_route_change(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario():
            await _apply(
                store.url,
                *loader.load_file(BOOKINFO / "platform/local/bookinfo.yaml"),
                *loader.load_file(BOOKINFO / "networking/destination-rule-all.yaml"),
                *workload_entries(),
            )
            async with (
                discovery(store.url) as server,
                XdsDriver.ads(server.grpc_address, node(NODE, metadata=META)) as ads,
            ):
                ready = await asyncio.to_thread(
                    urllib.request.urlopen, f"http://{server.http_address}/ready"
                )
                assert ready.status == 200
                version = await asyncio.to_thread(
                    urllib.request.urlopen, f"http://{server.http_address}/version"
                )
                assert json.load(version) == buildinfo.get().to_json()  # what istioctl shows
                clusters = await ads.request_response_ack(generator.CLUSTER)
                names = {c.name for c in unpack(clusters, cluster_pb2.Cluster)}
                assert "outbound|9080|v3|reviews.default.svc.cluster.local" in names
                first = await ads.request_response_ack(generator.ROUTE, ["http_proxy"])

                # A VirtualService written to the store reaches the proxy as a new route table.
                await _apply(
                    store.url,
                    *loader.load_file(BOOKINFO / "networking/virtual-service-reviews-v3.yaml"),
                )
                pushed = await ads.expect_response(generator.ROUTE)
                assert pushed.version_info != first.version_info
                (table,) = unpack(pushed, route_pb2.RouteConfiguration)
                reviews = next(v for v in table.virtual_hosts if v.name.startswith("reviews."))
                assert (
                    reviews.routes[0].route.cluster
                    == "outbound|9080|v3|reviews.default.svc.cluster.local"
                )
                await ads.ack(pushed)
                scraped = await asyncio.to_thread(
                    urllib.request.urlopen, f"http://{server.http_address}/metrics"
                )
                metrics = scraped.read().decode()
                # istiod's names: one proxy connected, pushes by type, the model's sizes.
                assert "pilot_xds 1.0\n" in metrics
                assert 'pilot_xds_pushes{type="rds"} 2.0\n' in metrics
                assert "pilot_services 4.0\n" in metrics
                assert "pilot_virt_services 1.0\n" in metrics
                converged = re.search(r"^pilot_proxy_convergence_time_count (\S+)$", metrics, re.M)
                assert converged is not None
                assert float(converged.group(1)) >= 1

        scenario()


WORKLOAD_ENTRY = ALL.by_name("workloadentry")
RATINGS = "sidecar~127.0.1.7~ratings-v1.default~default.svc.cluster.local"
RATINGS_META = {"NAMESPACE": "default", "LABELS": {"app": "ratings", "version": "v1"}}


async def _sync(ads: XdsDriver, eds_names: list[str] | None = None) -> dict[str, object]:
    """Fetch and ACK every type as Envoy does; EDS for `eds_names` (default: all of CDS's)."""
    clusters = await ads.request_response_ack(generator.CLUSTER)
    if eds_names is None:
        eds_names = [
            c.name
            for c in unpack(clusters, cluster_pb2.Cluster)
            if c.type == cluster_pb2.Cluster.EDS
        ]
    return {
        "CDS": clusters,
        "EDS": await ads.request_response_ack(generator.ENDPOINT, eds_names),
        "LDS": await ads.request_response_ack(generator.LISTENER),
        "RDS": await ads.request_response_ack(generator.ROUTE, ["http_proxy"]),
    }


def test_an_endpoint_change_is_pushed_as_endpoints_to_the_proxies_using_them(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario():
            await _apply(
                store.url,
                *loader.load_file(BOOKINFO / "platform/local/bookinfo.yaml"),
                *loader.load_file(BOOKINFO / "networking/destination-rule-all.yaml"),
                *workload_entries(),
            )
            async with (
                discovery(store.url) as server,
                XdsDriver.ads(server.grpc_address, node(NODE, metadata=META)) as productpage,
                XdsDriver.ads(server.grpc_address, node(RATINGS, metadata=RATINGS_META)) as ratings,
            ):
                await _sync(productpage)
                # As a proxy a Sidecar limits to details would: it uses no reviews cluster.
                await _sync(ratings, ["outbound|9080||details.default.svc.cluster.local"])
                async with ConfigClient(store.url) as client:
                    await client.patch(
                        WORKLOAD_ENTRY, "reviews-v2", {"spec": {"weight": 7}}, namespace="default"
                    )
                pushed = await productpage.expect_response(generator.ENDPOINT)
                # Only what changed: the reviews clusters holding reviews-v2.
                changed = unpack(pushed, endpoint_pb2.ClusterLoadAssignment)
                assert {a.cluster_name for a in changed} == {
                    "outbound|9080||reviews.default.svc.cluster.local",
                    "outbound|9080|v2|reviews.default.svc.cluster.local",
                }
                await productpage.ack(pushed)
                await productpage.expect_no_response(0.5)  # no CDS, LDS or RDS with it
                await ratings.expect_no_response(0.1)

        scenario()


def test_a_virtual_service_change_is_pushed_as_routes_only(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario():
            await _apply(
                store.url,
                *loader.load_file(BOOKINFO / "platform/local/bookinfo.yaml"),
                *loader.load_file(BOOKINFO / "networking/destination-rule-all.yaml"),
                *workload_entries(),
            )
            async with (
                discovery(store.url) as server,
                XdsDriver.ads(server.grpc_address, node(NODE, metadata=META)) as ads,
            ):
                first = await _sync(ads)
                await _apply(
                    store.url,
                    *loader.load_file(BOOKINFO / "networking/virtual-service-reviews-v3.yaml"),
                )
                pushed = await ads.expect_response(generator.ROUTE)
                assert pushed.version_info != first["RDS"].version_info  # type: ignore[attr-defined]
                await ads.ack(pushed)
                await ads.expect_no_response(0.5)
                assert server.xds.status()["counters"]["pushes"] >= 1

        scenario()


def test_a_request_authentication_is_pushed_with_the_keys_of_its_jwks_uri(tmp_path):
    keys = {"keys": [{"kty": "RSA", "kid": "k", "e": "AQAB", "n": MODULUS}]}

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(keys)

    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario():
            app = web.Application()
            app.router.add_get("/jwks.json", jwks)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            uri = "http://{}:{}/jwks.json".format(*runner.addresses[0][:2])
            await _apply(
                store.url,
                *loader.load_file(BOOKINFO / "platform/local/bookinfo.yaml"),
                *workload_entries(),
            )
            try:
                async with (
                    discovery(store.url) as server,
                    XdsDriver.ads(server.grpc_address, node(NODE, metadata=META)) as ads,
                ):
                    await _sync(ads)
                    policy = (
                        "apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\n"
                        "metadata: {name: jwt, namespace: default}\n"
                        f"spec: {{jwtRules: [{{issuer: me, jwksUri: '{uri}'}}]}}\n"
                    )
                    await _apply(store.url, *loader.load_text(policy, source="test"))
                    # The first push after the policy already carries the fetched keys.
                    pushed = await ads.expect_response(generator.LISTENER)
                    inbound = next(
                        listener
                        for listener in unpack(pushed, listener_pb2.Listener)
                        if listener.name == "virtualInbound"
                    )
                    text = json_format.MessageToJson(inbound)
                    assert "envoy.filters.http.jwt_authn" in text
                    assert json.dumps(json.dumps(keys))[1:-1] in text
            finally:
                await runner.cleanup()

        scenario()


GATEWAY_NODE = "router~127.0.1.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
GATEWAY_META = {"NAMESPACE": "istio-system", "LABELS": {"istio": "ingressgateway"}}
CREDENTIAL_GATEWAY = """
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {name: secure, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop-credential}
"""


def _tls_secret(name: str, cert: bytes):
    return loader.load_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "istio-system"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": "a2V5"},
        },
        source="test",
    )


def test_a_gateway_credential_is_served_over_sds_and_pushed_again_when_it_changes(tmp_path):
    with StoreThread(tmp_path / "store.db") as store:

        @run_async
        async def scenario():
            await _apply(
                store.url,
                *loader.load_file(BOOKINFO / "platform/local/bookinfo.yaml"),
                *workload_entries(),
                *loader.load_text(CREDENTIAL_GATEWAY, source="test"),
                _tls_secret("shop-credential", b"first"),
            )
            async with (
                discovery(store.url) as server,
                XdsDriver.ads(
                    server.grpc_address, node(GATEWAY_NODE, metadata=GATEWAY_META)
                ) as ads,
            ):
                name = "kubernetes://shop-credential"
                served = await ads.request_response_ack(generator.SECRET, [name])
                (secret,) = unpack(served, secret_pb2.Secret)
                assert secret.name == name
                assert secret.tls_certificate.certificate_chain.inline_bytes == b"first"
                # A Secret no Gateway names changes nothing a gateway has: no push.
                await _apply(store.url, _tls_secret("unrelated", b"x"))
                await ads.expect_no_response(0.5)
                async with ConfigClient(store.url) as client:
                    assert await client.apply(_tls_secret("shop-credential", b"second")) == (
                        "configured"
                    )
                pushed = await ads.expect_response(generator.SECRET)
                (secret,) = unpack(pushed, secret_pb2.Secret)
                assert secret.tls_certificate.certificate_chain.inline_bytes == b"second"
                await ads.ack(pushed)
                # /debug/configz shows the config, never a Secret's keys.
                url = f"http://{server.http_address}/debug/configz"
                configz = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(url, timeout=5).read()
                )
                assert b"Secret" not in configz
                assert b"Gateway" in configz

        scenario()
