import pytest

from security.ca.identity import IdentityError, IdentityPattern, SpiffeId


def test_parses_and_prints_a_workload_identity():
    uri = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
    identity = SpiffeId.parse(uri)
    assert identity == SpiffeId("cluster.local", "default", "bookinfo-productpage")
    assert str(identity) == uri


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("https://cluster.local/ns/default/sa/a", "not a SPIFFE URI"),
        ("spiffe://cluster.local/ns/default", "not of the form"),
        ("spiffe://cluster.local/namespace/default/sa/a", "not of the form"),
        ("spiffe://cluster.local/ns/default/sa/a/extra", "not of the form"),
        ("spiffe://Cluster.Local/ns/default/sa/a", "invalid trust domain"),
        ("spiffe://cluster.local/ns/De fault/sa/a", "invalid namespace"),
        ("spiffe://cluster.local/ns/default/sa/*", "invalid service account"),
    ],
)
def test_rejects_what_is_not_a_workload_identity(text, reason):
    with pytest.raises(IdentityError, match=reason):
        SpiffeId.parse(text)


def test_patterns_match_one_segment_per_star_and_never_another_trust_domain():
    a = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/a")
    other_ns = SpiffeId.parse("spiffe://cluster.local/ns/prod/sa/a")
    foreign = SpiffeId.parse("spiffe://other.domain/ns/default/sa/a")

    everything = IdentityPattern.parse("spiffe://cluster.local/ns/*/sa/*")
    assert everything.matches(a)
    assert everything.matches(other_ns)
    assert not everything.matches(foreign)

    namespace = IdentityPattern.parse("spiffe://cluster.local/ns/default/sa/*")
    assert namespace.matches(a)
    assert not namespace.matches(other_ns)

    exact = IdentityPattern.exact(a)
    assert exact.matches(a)
    assert not exact.matches(SpiffeId.parse("spiffe://cluster.local/ns/default/sa/b"))


def test_the_trust_domain_of_a_pattern_is_never_a_wildcard():
    with pytest.raises(IdentityError, match="invalid trust domain"):
        IdentityPattern.parse("spiffe://*/ns/*/sa/*")
