import pytest

from pilot.model import hostname


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("reviews", "reviews.default.svc.cluster.local"),
        ("reviews.default", "reviews.default"),
        ("reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local"),
        ("*", "*"),
        ("*.example.com", "*.example.com"),
    ],
)
def test_short_names_expand_in_the_config_namespace(host, expected):
    assert hostname.resolve_short_name(host, "default") == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("foo.com", "foo.com", True),
        ("foo.com", "bar.com", False),
        ("*.foo.com", "a.foo.com", True),
        ("*.foo.com", "foo.com", False),
        ("*", "anything.local", True),
        ("*.com", "*.foo.com", True),
    ],
)
def test_wildcard_matching(a, b, expected):
    assert hostname.matches(a, b) is expected
    assert hostname.matches(b, a) is expected


def test_sort_puts_exact_and_longer_names_first():
    assert hostname.sorted_hosts(["*", "*.foo.com", "a.foo.com", "b.com"]) == [
        "a.foo.com",
        "b.com",
        "*.foo.com",
        "*",
    ]


def test_aliases_of_a_kubernetes_style_name_in_the_proxys_namespace():
    aliases = hostname.aliases(
        "reviews.default.svc.cluster.local", 9080, include_bare=False,
        proxy_domain="default.svc.cluster.local",
    )  # fmt: skip
    assert aliases == [
        "reviews.default.svc.cluster.local:9080",
        "reviews.default.svc.cluster:9080",
        "reviews.default.svc:9080",
        "reviews.default:9080",
        "reviews:9080",
    ]


def test_aliases_from_another_namespace_never_include_the_bare_name():
    aliases = hostname.aliases(
        "reviews.default.svc.cluster.local", 9080, include_bare=True,
        proxy_domain="bookinfo.svc.cluster.local",
    )  # fmt: skip
    assert "reviews" not in aliases
    assert "reviews:9080" not in aliases
    assert {"reviews.default", "reviews.default:9080", "reviews.default.svc"} <= set(aliases)


def test_aliases_of_a_consul_service_from_a_proxy_in_the_consul_domain():
    aliases = hostname.aliases(
        "reviews.service.consul", 9080, include_bare=True, proxy_domain="service.consul"
    )
    assert aliases == [
        "reviews.service.consul", "reviews.service", "reviews",
        "reviews.service.consul:9080", "reviews.service:9080", "reviews:9080",
    ]  # fmt: skip


def test_a_hostname_sharing_nothing_with_the_proxys_domain_has_only_itself():
    assert hostname.aliases(
        "api.example.com", 443, include_bare=True, proxy_domain="default.svc.cluster.local"
    ) == ["api.example.com", "api.example.com:443"]
