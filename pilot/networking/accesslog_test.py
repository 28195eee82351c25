"""The access log from MeshConfig into every HCM and TCP proxy, as Istio's Pilot writes it."""

import dataclasses

from google.protobuf import json_format

from pilot.model.push_context import PushContext
from pilot.networking import accesslog, generator
from pilot.networking.cache import GenerationCache
from pilot.networking.testing import FakeProxy, bookinfo_configs, bookinfo_push, push_of, sidecar
from pkg.config.mesh import parse_mesh_config

LOGGED = ("envoy.filters.network.http_connection_manager", "envoy.filters.network.tcp_proxy")
CAPTURED = dataclasses.replace(
    sidecar("productpage-v1"), metadata={"INTERCEPTION_MODE": "REDIRECT"}
)
GATEWAY = FakeProxy("router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"})


def with_mesh(push: PushContext, text: str) -> PushContext:
    mesh = dataclasses.replace(push.mesh, mesh_config=parse_mesh_config(text))
    return dataclasses.replace(push, mesh=mesh, memo={})


def logged_filters(proxy, push) -> list[tuple[str, str, dict]]:
    """(listener, filter name, typed config) of every HCM and TCP proxy, as Envoy reads them."""
    found = []
    for name, message in generator.build_listeners(proxy, push, []):
        listener = json_format.MessageToDict(message, preserving_proto_field_name=True)
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["name"] in LOGGED:
                    found.append((name, network_filter["name"], network_filter["typed_config"]))
    return found


def test_no_access_log_file_configures_no_logger_anywhere():
    # Istio's default profile: nothing is spent on logging per request.
    for proxy in (sidecar("productpage-v1"), CAPTURED, GATEWAY):
        filters = logged_filters(proxy, bookinfo_push("bookinfo-gateway"))
        assert filters
        assert all("access_log" not in config for _, _, config in filters)


def test_an_access_log_file_logs_every_request_and_connection_in_istios_text_format():
    push = with_mesh(bookinfo_push("bookinfo-gateway"), "accessLogFile: /dev/stdout\n")
    filters = [f for proxy in (CAPTURED, GATEWAY) for f in logged_filters(proxy, push)]
    kinds = {name for _, name, _ in filters}
    assert kinds == set(LOGGED)  # the passthrough's TCP proxy logs too
    for _, _, config in filters:
        (logger,) = config["access_log"]
        assert logger["name"] == "envoy.access_loggers.file"
        assert logger["typed_config"]["path"] == "/dev/stdout"
        text = logger["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        assert text == accesslog.TEXT_FORMAT
        assert text.startswith('[%START_TIME%] "%REQ(:METHOD)% ')
        assert text.endswith("%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n")


def test_a_custom_text_format_gets_the_newline_that_ends_each_entry():
    mesh = parse_mesh_config(
        "accessLogFile: /var/log/proxy.log\naccessLogFormat: '%RESPONSE_CODE% %DURATION%'\n"
    )
    (logger,) = accesslog.file_access_log(mesh)
    assert logger["typed_config"]["path"] == "/var/log/proxy.log"
    log_format = logger["typed_config"]["log_format"]
    assert log_format == {"text_format_source": {"inline_string": "%RESPONSE_CODE% %DURATION%\n"}}


def test_json_encoding_uses_istios_fields_or_the_formats_own():
    (default,) = accesslog.file_access_log(
        parse_mesh_config("accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n")
    )
    fields = default["typed_config"]["log_format"]["json_format"]
    assert fields["response_code"] == "%RESPONSE_CODE%"
    assert fields["upstream_cluster"] == "%UPSTREAM_CLUSTER_RAW%"
    assert len(fields) == len(accesslog.JSON_FORMAT)
    (custom,) = accesslog.file_access_log(
        parse_mesh_config(
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n"
            'accessLogFormat: \'{"code": "%RESPONSE_CODE%"}\'\n'
        )
    )
    assert custom["typed_config"]["log_format"] == {"json_format": {"code": "%RESPONSE_CODE%"}}


def test_a_json_format_that_does_not_parse_falls_back_to_istios_fields(caplog):
    (logger,) = accesslog.file_access_log(
        parse_mesh_config(
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: 'code: %RESPONSE_CODE%'\n"
        )
    )
    assert logger["typed_config"]["log_format"]["json_format"] == accesslog.JSON_FORMAT
    assert "accessLogFormat is not a JSON object" in caplog.text


def test_turning_the_access_log_on_reaches_proxies_whose_listeners_were_cached():
    # MeshConfig is not part of the cache inputs' equality: the logger must be in the keys.
    cache = GenerationCache()
    configs = bookinfo_configs()
    for proxy in (sidecar("productpage-v1"), CAPTURED):
        quiet = push_of(configs, cache=cache)
        assert all("access_log" not in c for _, _, c in logged_filters(proxy, quiet))
        logged = with_mesh(push_of(configs, cache=cache), "accessLogFile: /dev/stdout\n")
        assert all("access_log" in c for _, _, c in logged_filters(proxy, logged))
