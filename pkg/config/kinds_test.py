"""The kind registry: lookups, and every kind wired to a message and a validator."""

import pytest

from pkg.config import kinds
from pkg.config.validation import specs


@pytest.mark.parametrize("schema", list(kinds.ISTIO), ids=str)
def test_every_istio_kind_has_a_message_and_a_validator(schema: kinds.KindSchema):
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
        "/apis/networking.istio.io/v1/namespaces/default/virtualservices"
    )
    assert (
        vs.collection_path(None, "v1beta1") == "/apis/networking.istio.io/v1beta1/virtualservices"
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
    assert len(kinds.PILOT) + len(kinds.MIXER) + len(kinds.BROKER) == len(kinds.ISTIO)
    assert len(kinds.ISTIO) + len(kinds.KUBERNETES) == len(kinds.ALL)


@pytest.mark.parametrize("schema", list(kinds.KUBERNETES), ids=str)
def test_every_kubernetes_kind_is_kubernetes_own_model(schema: kinds.KindSchema):
    from pkg.config import kubeschema

    assert kubeschema.model_of(schema.api_version, schema.kind) == schema.openapi
    assert not schema.message
    assert not schema.sets
    with pytest.raises(TypeError, match="no proto"):
        schema.new_spec()


def test_kubernetes_kinds_at_their_real_paths():
    ns, svc = kinds.ALL.by_name("ns"), kinds.ALL.by_name("svc")
    assert (ns.scope, ns.collection_path("default")) == ("Cluster", "/api/v1/namespaces")
    assert svc.collection_path("default") == "/api/v1/namespaces/default/services"
    deploy = kinds.ALL.by_name("deploy")
    assert deploy.collection_path(None) == "/apis/apps/v1/deployments"
    assert deploy.subresources == ("status", "scale")
    assert kinds.ALL.by_name("endpointslices").api_version == "discovery.k8s.io/v1"
    assert kinds.ALL.by_name("pods").categories == ("all",)
    assert [c.name for c in kinds.ALL.by_name("po").columns][:3] == ["Ready", "Status", "Restarts"]


def test_every_served_version_names_the_same_kind_stored_at_istios_version():
    # Istio's CRDs: networking at v1alpha3, v1beta1, v1; security at v1beta1, v1; v1 stored.
    for name, versions in (
        ("virtualservice", ("v1", "v1beta1", "v1alpha3")),
        ("serviceentry", ("v1", "v1beta1", "v1alpha3")),
        ("authorizationpolicy", ("v1", "v1beta1")),
        ("peerauthentication", ("v1", "v1beta1")),
    ):
        schema = kinds.ALL.by_name(name)
        assert schema.served_versions == versions
        assert schema.version == "v1"
        for version in versions:
            assert kinds.ALL.by_kind(schema.api_version_at(version), schema.kind) is schema
            assert kinds.ALL.by_plural(schema.group, version, schema.plural) is schema
    assert kinds.ALL.by_kind("security.istio.io/v1alpha3", "PeerAuthentication") is None
    assert kinds.ALL.groups()["networking.istio.io"] == ("v1", "v1beta1", "v1alpha3")
    assert "VirtualService" in kinds.ALL.kinds_of_version("networking.istio.io/v1beta1")


def test_printer_columns_are_istios():
    vs = kinds.ALL.by_name("vs")
    assert [(c.name, c.type, c.json_path) for c in vs.columns] == [
        ("Gateways", "string", ".spec.gateways"),
        ("Hosts", "string", ".spec.hosts"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]
    assert [c.name for c in kinds.ALL.by_name("se").columns] == [
        "Hosts",
        "Location",
        "Resolution",
        "Age",
    ]
    assert [c.name for c in kinds.ALL.by_name("dr").columns] == ["Host", "Age"]
    assert [c.name for c in kinds.ALL.by_name("gateway").columns] == ["Age"]


def test_a_kind_declared_twice_is_refused():
    schema = next(iter(kinds.ALL))
    with pytest.raises(ValueError, match="declared twice"):
        kinds.KindSet([schema, schema])
