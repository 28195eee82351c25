import pytest

from security.nodeagent.identity import Identity, InvalidIdentityError, identity_from_node
from security.nodeagent.testing import node


def test_identity_from_node_metadata() -> None:
    identity = identity_from_node(node("bookinfo", "bookinfo-reviews"), "cluster.local")
    assert identity == Identity("cluster.local", "bookinfo", "bookinfo-reviews")
    assert identity.spiffe_id == "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews"
    assert str(identity) == identity.spiffe_id


def test_trust_domain_is_the_agents() -> None:
    identity = identity_from_node(node("default", "sleep"), "example.org")
    assert identity.spiffe_id == "spiffe://example.org/ns/default/sa/sleep"


def test_missing_service_account_is_kubernetes_default() -> None:
    identity = identity_from_node(node("prod", None))
    assert identity.spiffe_id == "spiffe://cluster.local/ns/prod/sa/default"


def test_missing_namespace_is_refused() -> None:
    with pytest.raises(InvalidIdentityError, match="no NAMESPACE"):
        identity_from_node(node(None, "reviews"))


@pytest.mark.parametrize(
    ("namespace", "account"),
    [("a/sa/b", "x"), ("default", "x/../y"), ("Default", "x"), ("default", "-x"), ("", "x")],
)
def test_names_that_could_forge_another_identity_are_refused(namespace: str, account: str) -> None:
    with pytest.raises(InvalidIdentityError):
        Identity("cluster.local", namespace, account)


def test_dotted_service_accounts_are_allowed() -> None:
    assert Identity("cluster.local", "ns", "build.bot").service_account == "build.bot"
