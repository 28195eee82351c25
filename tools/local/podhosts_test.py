"""A pod's /etc/hosts and resolv.conf: the names cluster DNS would answer, for its namespace."""

from __future__ import annotations

from tools.local.podhosts import ServiceAddress, render_hosts, render_resolv, service_addresses


def _service(name: str, namespace: str, **spec: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_only_services_with_a_cluster_ip_have_names() -> None:
    services = [
        _service("reviews", "default", clusterIP="10.96.0.12"),
        _service("headless", "default", clusterIP="None"),
        _service("pending", "default"),
        _service("external", "default", type="ExternalName", externalName="example.com"),
        _service("istiod", "istio-system", clusterIP="10.96.0.5"),
    ]
    assert service_addresses(services) == [
        ServiceAddress("default", "reviews", "10.96.0.12"),
        ServiceAddress("istio-system", "istiod", "10.96.0.5"),
    ]


def test_hosts_has_the_pod_and_every_form_of_a_service_name() -> None:
    text = render_hosts(
        "10.244.0.7",
        "productpage-v1-abc-xyz",
        "default",
        [
            ServiceAddress("istio-system", "istiod", "10.96.0.5"),
            ServiceAddress("default", "reviews", "10.96.0.12"),
        ],
    )
    lines = text.splitlines()
    assert "127.0.0.1\tlocalhost" in lines
    assert "10.244.0.7\tproductpage-v1-abc-xyz" in lines
    assert "10.96.0.12\treviews.default.svc.cluster.local reviews.default reviews" in lines
    # The bare name is only for the pod's own namespace, as the search path gives it.
    assert "10.96.0.5\tistiod.istio-system.svc.cluster.local istiod.istio-system" in lines
    assert text.endswith("\n")


def test_resolv_conf_has_kubernetes_search_path() -> None:
    assert render_resolv("bookinfo").splitlines()[1:] == [
        "search bookinfo.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]
