from pkg.config.validation import names


def test_dns1123():
    assert names.is_dns1123_label("reviews-v1")
    assert not names.is_dns1123_label("Reviews")
    assert not names.is_dns1123_label("-x")
    assert not names.is_dns1123_label("a" * 64)
    assert names.is_dns1123_subdomain("reviews.default")
    assert not names.is_dns1123_subdomain("")


def test_hostnames():
    for good in ("reviews", "reviews.default.svc.cluster.local", "*.example.com", "*"):
        assert names.check_hostname(good) is None, good
    assert names.check_hostname("*", wildcard=False) is not None
    assert "not a valid host name" in names.check_hostname("bad host")
    assert names.check_hostname("a..b") is not None


def test_labels():
    assert names.check_label("version", "v1") is None
    assert names.check_label("app.kubernetes.io/name", "reviews") is None
    assert "label value" in names.check_label("version", "v 1")
    assert "prefix" in names.check_label("Bad_Prefix/name", "x")


def test_ip_and_headers():
    assert names.is_ip("127.0.1.3") and names.is_ip("::1")
    assert not names.is_ip("reviews")
    assert names.is_cidr("10.0.0.0/8")
    assert names.is_header_name("end-user")
    assert not names.is_header_name("End-User")
