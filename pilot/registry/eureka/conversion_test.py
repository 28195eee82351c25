from pilot.model.service import Protocol, Resolution
from pilot.registry.eureka import conversion


def _instance(**overrides):
    fields = dict(
        app="REVIEWS", instance_id="10.0.0.4:reviews:9080", hostname="reviews.bookinfo.eureka",
        ip_address="10.0.0.4", status="UP", ports=(9080,),
        metadata={"istio.protocol": "http", "version": "v1", "@class": "java.util.Map"},
    )  # fmt: skip
    fields.update(overrides)
    return conversion.EurekaInstance(**fields)


def test_the_service_is_the_instance_hostname_with_client_side_lb():
    view = conversion.convert_applications([_instance()])
    (service,) = view.services.values()
    assert service.hostname == "reviews.bookinfo.eureka"
    assert service.namespace == "default"
    assert service.address == "0.0.0.0"
    assert service.resolution is Resolution.CLIENT_SIDE_LB
    assert not service.mesh_external


def test_only_up_instances_count():
    view = conversion.convert_applications(
        [_instance(), _instance(instance_id="b", ip_address="10.0.0.5", status="DOWN"),
         _instance(instance_id="c", ip_address="10.0.0.6", status="OUT_OF_SERVICE")]
    )  # fmt: skip
    assert [e.address for e in view.endpoints[("reviews.bookinfo.eureka", 9080)]] == ["10.0.0.4"]


def test_a_host_whose_instances_are_all_down_stays_known_with_no_endpoints():
    view = conversion.convert_applications([_instance(status="DOWN")])
    assert list(view.services) == ["reviews.bookinfo.eureka"]
    assert view.endpoints[("reviews.bookinfo.eureka", 9080)] == ()


def test_enabled_ports_are_named_by_their_number_and_a_host_without_one_is_left_out():
    view = conversion.convert_applications([_instance(ports=(9080, 9443))])
    ports = view.services["reviews.bookinfo.eureka"].ports
    assert [(p.name, p.number) for p in ports] == [("9080", 9080), ("9443", 9443)]
    assert conversion.convert_applications([_instance(ports=())]).services == {}


def test_the_protocol_comes_from_istio_protocol_metadata_and_defaults_to_tcp():
    assert conversion.convert_protocol({"istio.protocol": "grpc"}) is Protocol.GRPC
    assert conversion.convert_protocol({}) is Protocol.TCP
    assert conversion.convert_protocol({"istio.protocol": "smoke-signals"}) is Protocol.TCP


def test_labels_are_the_metadata_without_istio_protocol_and_class():
    assert conversion.convert_labels(
        {"istio.protocol": "http", "@class": "x", "version": "v1"}
    ) == {"version": "v1"}


def test_instances_of_several_apps_sharing_a_hostname_make_one_service_first_protocol_wins():
    view = conversion.convert_applications(
        [_instance(), _instance(app="REVIEWS2", instance_id="z", ip_address="10.0.0.9",
                                metadata={"istio.protocol": "grpc"})]
    )  # fmt: skip
    (service,) = view.services.values()
    assert service.ports[0].protocol is Protocol.HTTP
    assert sorted(e.address for e in view.endpoints[(service.hostname, 9080)]) == [
        "10.0.0.4", "10.0.0.9"
    ]  # fmt: skip


def test_apps_hashcode_counts_statuses_sorted_by_name():
    assert conversion.apps_hashcode(["UP", "DOWN", "UP", "UP"]) == "DOWN_1_UP_3_"
    assert conversion.apps_hashcode([]) == ""
