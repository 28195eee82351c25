"""The kind registry: lookups, and every kind wired to a message and a validator."""

import pytest

from pkg.config import kinds
from pkg.config.validation import specs


@pytest.mark.parametrize("schema", list(kinds.ALL), ids=str)
def test_every_kind_has_a_message_and_a_validator(schema: kinds.KindSchema):
    spec = schema.new_spec()
    assert spec.DESCRIPTOR.full_name == schema.message
    assert schema.message in specs.VALIDATORS


def test_lookups_by_what_users_type():
    vs = kinds.ALL.by_kind("networking.istio.io/v1alpha3", "VirtualService")
    assert vs is not None
    assert kinds.ALL.by_name("vs") is vs
    assert kinds.ALL.by_name("VirtualServices") is vs
    assert kinds.ALL.by_plural("networking.istio.io", "v1alpha3", "virtualservices") is vs
    assert vs.collection_path("default") == (
        "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices"
    )
    with pytest.raises(KeyError, match="'routerule' is not a known resource type"):
        kinds.ALL.by_name("routerule")


def test_named_sets():
    assert {s.kind for s in kinds.MIXER} == {"rule", "handler", "instance", "attributemanifest"}
    assert "VirtualService" in {s.kind for s in kinds.PILOT}
    assert {s.kind for s in kinds.BROKER} == {
        "ServiceClass",
        "ServicePlan",
        "ServiceInstance",
        "ServiceBinding",
    }
    assert len(kinds.PILOT) + len(kinds.MIXER) + len(kinds.BROKER) == len(kinds.ALL)


def test_a_kind_declared_twice_is_refused():
    schema = next(iter(kinds.ALL))
    with pytest.raises(ValueError, match="declared twice"):
        kinds.KindSet([schema, schema])
