from pilot.model.service import Protocol, Resolution
from pilot.registry.consul import conversion


def _catalog_entry(**overrides):
    entry = {
        "Node": "node-1",
        "Address": "10.0.0.1",
        "Datacenter": "dc1",
        "ServiceID": "reviews-v1",
        "ServiceName": "reviews",
        "ServiceTags": ["version|v1"],
        "ServiceAddress": "10.0.0.4",
        "ServiceMeta": {"protocol": "http"},
        "ServicePort": 9080,
    }
    entry.update(overrides)
    return entry


def test_the_hostname_is_name_dot_service_dot_consul():
    assert conversion.service_hostname("reviews") == "reviews.service.consul"


def test_only_key_pipe_value_tags_become_labels():
    labels = conversion.convert_labels(["version|v1", "env=prod", "primary", "a|b|c"])
    assert labels == {"version": "v1", "a": "b"}  # `key=value` and bare tags are ignored


def test_the_service_address_is_used_and_the_node_address_when_it_is_empty():
    assert conversion.from_catalog(_catalog_entry()).address == "10.0.0.4"
    assert conversion.from_catalog(_catalog_entry(ServiceAddress="")).address == "10.0.0.1"


def test_the_port_is_named_by_the_protocol_meta_and_defaults_to_http():
    assert conversion.convert_port(9080, "grpc") == conversion.Port("grpc", 9080, Protocol.GRPC)
    assert conversion.convert_port(9080, "") == conversion.Port("http", 9080, Protocol.HTTP)


def test_an_unknown_protocol_is_tcp():
    assert conversion.convert_port(27017, "carrier-pigeon").protocol is Protocol.TCP


def test_the_health_shape_reads_the_same_as_the_catalog_shape():
    health = {
        "Node": {"Node": "node-1", "Address": "10.0.0.1", "Datacenter": "dc1"},
        "Service": {
            "ID": "reviews-v1",
            "Service": "reviews",
            "Tags": ["version|v1"],
            "Address": "10.0.0.4",
            "Meta": {"protocol": "http"},
            "Port": 9080,
        },
        "Checks": [],
    }
    assert conversion.from_health(health) == conversion.from_catalog(_catalog_entry())


def test_a_health_entry_passes_only_when_every_check_passes():
    passing = {"Status": "passing"}
    assert conversion.is_passing({"Checks": [passing, passing]})
    assert not conversion.is_passing({"Checks": [passing, {"Status": "warning"}]})
    assert not conversion.is_passing({"Checks": [{"Status": "critical"}]})


def test_a_service_merges_its_instances_ports_and_keeps_the_first_protocol_on_a_conflict():
    instances = [
        conversion.from_catalog(_catalog_entry()),
        conversion.from_catalog(_catalog_entry(ServiceID="reviews-v2", ServicePort=9080,
                                               ServiceMeta={"protocol": "grpc"})),
        conversion.from_catalog(_catalog_entry(ServiceID="reviews-admin", ServicePort=9090,
                                               ServiceMeta={"protocol": "tcp"})),
    ]  # fmt: skip
    service = conversion.convert_service("reviews", instances)
    assert service.hostname == "reviews.service.consul"
    assert service.namespace == "default"
    assert service.address == "0.0.0.0"
    assert [(p.number, p.protocol) for p in service.ports] == [
        (9080, Protocol.HTTP),
        (9090, Protocol.TCP),
    ]
    assert service.resolution is Resolution.CLIENT_SIDE_LB
    assert not service.mesh_external


def test_external_meta_makes_the_service_mesh_external_and_passthrough():
    external = conversion.from_catalog(_catalog_entry(ServiceMeta={"external": "api.example.com"}))
    service = conversion.convert_service("reviews", [external])
    assert service.mesh_external
    assert service.resolution is Resolution.PASSTHROUGH


def test_an_endpoint_carries_address_port_labels_and_the_datacenter_as_locality():
    instance = conversion.from_catalog(_catalog_entry())
    service = conversion.convert_service("reviews", [instance])
    endpoint = conversion.convert_endpoint(service, instance)
    assert (endpoint.address, endpoint.port) == ("10.0.0.4", 9080)
    assert endpoint.labels == {"version": "v1"}
    assert endpoint.locality == "dc1"
    assert endpoint.workload_name == "reviews-v1"
    assert endpoint.service_port == service.ports[0]


def test_the_catalog_view_leaves_out_services_without_instances():
    view = conversion.convert_catalog(
        {"reviews": [conversion.from_catalog(_catalog_entry())], "gone": []}
    )
    assert list(view.services) == ["reviews.service.consul"]
    assert [e.address for e in view.endpoints[("reviews.service.consul", 9080)]] == ["10.0.0.4"]


def test_an_instance_whose_checks_fail_is_no_endpoint_but_its_service_stays():
    failing = conversion.from_health(
        {
            "Node": {"Node": "node-1", "Address": "10.0.0.1", "Datacenter": "dc1"},
            "Service": {"ID": "r1", "Service": "reviews", "Tags": [], "Address": "10.0.0.4",
                        "Meta": {}, "Port": 9080},
            "Checks": [{"Status": "passing"}, {"Status": "critical"}],
        }
    )  # fmt: skip
    view = conversion.convert_catalog({"reviews": [failing]})
    assert list(view.services) == ["reviews.service.consul"]
    assert view.endpoints[("reviews.service.consul", 9080)] == ()
