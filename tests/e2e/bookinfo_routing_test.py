"""Bookinfo's traffic-management samples, applied with istioctl, checked through the gateway.

One real mesh for the module: config store, Pilot, six Bookinfo pods each with its
pilot-agent and Envoy, and the ingress gateway. Each test applies the samples it needs
and removes what it added, leaving destination-rule-all and the gateway in place.
"""

import json
import urllib.error
import urllib.request

import pytest
import yaml

from pilot.configstore.testing import Kubectl
from pkg.testing.wait import poll
from tests.e2e.meshtest import NETWORKING, MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(3)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET) as mesh:
        mesh.apply("destination-rule-all")
        yield mesh


@pytest.fixture(autouse=True)
def restore_default(mesh):
    yield
    # Every sample's VirtualServices are named after the service, so removing by name
    # returns to the default (no VirtualService) whatever the test applied.
    before = mesh.pushes()
    result = mesh.istioctl(
        "delete", "virtualservice", "productpage", "reviews", "ratings", "details", check=False
    )
    if "deleted" in result.stdout:
        mesh.wait_synced(after=before)


def test_gateway_serves_the_product_page_and_nothing_else(mesh):
    page = mesh.page()
    assert page.status == 200
    assert "The Comedy of Errors" in page.body
    assert "William Shakespeare" in page.body  # from details, through two sidecars
    assert mesh.page(path="/not-routed").status == 404


def test_without_rules_every_reviews_version_answers(mesh):
    assert set(mesh.versions(30)) == {"v1", "v2", "v3"}


def test_all_v1(mesh):
    mesh.apply("virtual-service-all-v1")
    assert mesh.versions(50) == {"v1": 50}


def test_reviews_test_v2_sends_jason_to_v2(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-test-v2")
    assert mesh.versions(20, user="jason") == {"v2": 20}
    assert mesh.versions(20) == {"v1": 20}
    assert mesh.versions(10, user="someone") == {"v1": 10}


def test_reviews_80_20(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-80-20")
    seen = mesh.versions(200)
    assert set(seen) == {"v1", "v2"}
    assert 140 <= seen["v1"] <= 180, seen  # 70% to 90% of 200


def test_reviews_weights_are_relative_4_1_splits_80_20(mesh, tmp_path):
    # Today's Istio: weights need not total 100; Envoy splits by their proportions.
    split = tmp_path / "reviews-4-1.yaml"
    split.write_text(
        "apiVersion: networking.istio.io/v1alpha3\n"
        "kind: VirtualService\n"
        "metadata: {name: reviews}\n"
        "spec:\n"
        "  hosts: [reviews]\n"
        "  http:\n"
        "  - route:\n"
        "    - destination: {host: reviews, subset: v1}\n"
        "      weight: 4\n"
        "    - destination: {host: reviews, subset: v2}\n"
        "      weight: 1\n"
    )
    mesh.apply("virtual-service-all-v1", split)
    seen = mesh.versions(200)
    assert set(seen) == {"v1", "v2"}
    assert 140 <= seen["v1"] <= 180, seen  # 70% to 90% of 200, as for the 80/20 sample


def test_reviews_90_10(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-90-10")
    seen = mesh.versions(200)
    assert set(seen) <= {"v1", "v2"}
    assert 160 <= seen["v1"] <= 196, seen


def test_reviews_50_v3(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-50-v3")
    seen = mesh.versions(60)
    assert set(seen) == {"v1", "v3"}, seen


def test_reviews_v2_v3(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-v2-v3")
    assert set(mesh.versions(40)) == {"v2", "v3"}


def test_reviews_v3(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-v3")
    assert mesh.versions(30) == {"v3": 30}


def test_ratings_delay_for_jason(mesh):
    mesh.apply(
        "virtual-service-all-v1",
        "virtual-service-reviews-test-v2",
        "virtual-service-ratings-test-delay",
    )
    # Measured where the delay is injected: ratings, called from reviews v2's sidecar.
    status, _, seconds = mesh.through_sidecar(
        "reviews-v2", "http://ratings:9080/ratings/0", {"end-user": "jason"}
    )
    assert status == 200, seconds
    assert seconds >= 7.0, seconds
    status, _, seconds = mesh.through_sidecar("reviews-v2", "http://ratings:9080/ratings/0")
    assert status == 200, seconds
    assert seconds < 7.0, seconds
    # As Istio's docs say: productpage gives up on reviews (3 s, twice) before v2 gets its ratings.
    page = mesh.page(user="jason")
    assert "Sorry, product reviews are currently unavailable for this book." in page.body
    assert page.seconds >= 6.0
    assert mesh.page().reviews_version == "v1"


def test_ratings_abort_for_jason(mesh):
    mesh.apply(
        "virtual-service-all-v1",
        "virtual-service-reviews-test-v2",
        "virtual-service-ratings-test-abort",
    )
    jason = mesh.page(user="jason")
    assert jason.reviews_version == "v2"
    assert "Ratings service is currently unavailable" in jason.body
    status, _, _ = mesh.through_sidecar(
        "reviews-v2", "http://ratings:9080/ratings/0", {"end-user": "jason"}
    )
    assert status == 500
    assert "currently unavailable" not in mesh.page().body


# Istio's "Request Timeouts" task, as its page writes the two rules.
RATINGS_DELAY_2S = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - fault:
      delay: {percentage: {value: 100}, fixedDelay: 2s}
    route:
    - destination: {host: ratings, subset: v1}
"""
REVIEWS_V2_TIMEOUT = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
    timeout: 0.5s
"""


def test_request_timeouts_as_istios_task(mesh, tmp_path):
    mesh.apply("virtual-service-all-v1")
    delay = tmp_path / "ratings-delay.yaml"
    delay.write_text(RATINGS_DELAY_2S)
    mesh.apply(delay)
    reviews = tmp_path / "reviews-timeout.yaml"
    reviews.write_text(REVIEWS_V2_TIMEOUT.replace("timeout: 0.5s\n", ""))
    mesh.apply(reviews)
    # No timeout yet: v2 waits the 2 s for its ratings and shows its stars.
    page = mesh.page()
    assert page.reviews_version == "v2"
    assert page.seconds >= 2.0, page.seconds
    assert "Sorry, product reviews are currently unavailable" not in page.body
    reviews.write_text(REVIEWS_V2_TIMEOUT)
    mesh.apply(reviews)
    # With it, reviews' sidecar gives up after 0.5 s (504), productpage tries once more and
    # says reviews are unavailable: the page comes back in about 1 s, not 2.
    status, _, seconds = mesh.through_sidecar("productpage-v1", "http://reviews:9080/reviews/0")
    assert status == 504, status
    assert 0.5 <= seconds < 1.5, seconds
    page = mesh.page()
    assert "Sorry, product reviews are currently unavailable for this book." in page.body
    assert page.seconds < 2.0, page.seconds


def test_removing_a_rule_restores_the_default(mesh):
    mesh.apply("virtual-service-all-v1", "virtual-service-reviews-v3")
    assert mesh.versions(10) == {"v3": 10}
    mesh.delete("virtual-service-reviews-v3")
    assert set(mesh.versions(30)) == {"v1", "v2", "v3"}


def test_invalid_virtual_service_is_refused_and_changes_nothing(mesh, tmp_path):
    mesh.apply("virtual-service-all-v1")
    before = {
        p["pod"]: {t: s["version_acked"] for t, s in p["types"].items()}
        for p in mesh.syncz()["proxies"]
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1alpha3\n"
        "kind: VirtualService\n"
        "metadata: {name: reviews}\n"
        "spec:\n"
        "  hosts: [reviews]\n"
        "  http:\n"
        "  - route:\n"
        "    - destination: {host: reviews, subset: v2}\n"
        "      weight: 0\n"
        "    - destination: {host: reviews, subset: v3}\n"
        "      weight: 0\n"
    )
    result = mesh.istioctl("apply", "-f", str(bad), check=False)
    assert result.returncode == 1
    assert "spec.http[0].route: total destination weight = 0" in result.stderr, result.stderr
    # The store itself refuses it too (a client that skips istioctl's own check).
    code, status = _put_raw(mesh, yaml.safe_load(bad.read_text()))
    assert code == 422
    assert status["reason"] == "Invalid"
    assert "spec.http[0].route: total destination weight = 0" in status["message"], status
    # The store still has all-v1's rule, and no proxy was sent anything new.
    stored = mesh.istioctl("get", "virtualservice", "reviews", "-o", "yaml").stdout
    assert "subset: v1" in stored
    after = {
        p["pod"]: {t: s["version_acked"] for t, s in p["types"].items()}
        for p in mesh.syncz()["proxies"]
    }
    assert after == before
    assert mesh.versions(10) == {"v1": 10}


def _put_raw(mesh, document):
    """PUT a document to the store as any HTTP client could, unchecked; (code, Status)."""
    url = f"{mesh.topology.config_store_url}/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices/reviews"
    with urllib.request.urlopen(url, timeout=5) as response:
        document["metadata"]["resourceVersion"] = json.load(response)["metadata"]["resourceVersion"]
    request = urllib.request.Request(
        url,
        data=json.dumps(document).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_kubectl_with_the_kubeconfig_the_launcher_wrote(mesh, tmp_path):
    kubectl = Kubectl("", tmp_path / "home", kubeconfig=mesh.topology.kubeconfig)
    samples = NETWORKING
    for sample in ("virtual-service-all-v1.yaml", "virtual-service-reviews-v3.yaml"):
        before = mesh.pushes()
        kubectl.run("apply", "-f", str(samples / sample))
        mesh.wait_synced(after=before)
    # kubectl creates all-v1's four VirtualServices one by one, so Pilot may push them in two
    # debounced pushes, the second counted as reviews-v3's: wait for reviews-v3 itself.
    poll(lambda: mesh.versions(10) == {"v3": 10}, "reviews-v3 in force", timeout=15)
    assert mesh.versions(20) == {"v3": 20}
    table = kubectl.run("get", "vs", "bookinfo", "reviews").stdout.splitlines()
    assert table[0].split() == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert table[1].split()[:3] == ["bookinfo", '["bookinfo-gateway"]', '["*"]']
    assert table[2].split()[:2] == ["reviews", '["reviews"]']  # no gateways: an empty cell
