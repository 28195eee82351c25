from pkg.config.validation import names


def test_dns1123():
    assert names.is_dns1123_label("reviews-v1")
    assert not names.is_dns1123_label("Reviews")
    assert not names.is_dns1123_label("-x")
    assert not names.is_dns1123_label("a" * 64)
    assert names.is_dns1123_subdomain("reviews.default")
    assert not names.is_dns1123_subdomain("")
    # Istio's own labels (subsets, ports, gateways) may have capitals.
    assert names.is_istio_label("V1")
    assert not names.is_istio_label("v.1")


def test_wildcard_domains_as_istio_checks_them():
    for good in (
        "reviews",
        "reviews.default.svc.cluster.local",
        "*.example.com",
        "*",
        "*-x.y",
        "a.b.",
    ):
        assert names.check_wildcard_domain(good) is None, good
    assert names.check_wildcard_domain("") == "empty domain name not allowed"
    assert "invalid (label 'bad host' invalid)" in names.check_wildcard_domain("bad host")
    assert names.check_wildcard_domain("a..b") is not None
    assert "top level domain '4' cannot be all-numeric" in names.check_wildcard_domain("1.2.3.4")
    assert names.check_fqdn("*.example.com") is not None
    assert names.check_partial_wildcard("*foo.com") == "partial wildcard '*foo.com' not allowed"


def test_host_matching():
    assert names.host_matches("*.foo.bar", "*.bar")
    assert names.host_matches("a.foo", "*.foo")
    assert not names.host_matches("a.foo", "b.foo")
    assert names.host_subset_of("a.foo", "*.foo")
    assert not names.host_subset_of("*.foo", "a.foo")
    assert names.host_subset_of("*.a.foo", "*.foo")


def test_labels():
    assert names.check_label("version", "v1") is None
    assert names.check_label("app.kubernetes.io/name", "reviews") is None
    assert "label value" in names.check_label("version", "v 1")
    assert "prefix" in names.check_label("Bad_Prefix/name", "x")


def test_ip_and_subnets():
    assert names.is_ip("127.0.1.3")
    assert names.is_ip("::1")
    assert not names.is_ip("reviews")
    assert names.is_cidr("10.0.0.0/8")
    assert names.check_ip_subnet("10.0.0.0/8") is None
    assert names.check_ip_subnet("10.0.0.0/33") == "10.0.0.0/33 is not a valid CIDR block"
    assert names.check_ip_subnet("x") == "x is not a valid IP"
