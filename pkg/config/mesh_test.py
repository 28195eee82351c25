"""MeshConfig files as Istio writes them."""

import pytest

from pkg.config.mesh import MeshConfigError, load_mesh_config, parse_mesh_config


def test_reads_istio_mesh_config_yaml(tmp_path):
    path = tmp_path / "mesh"
    path.write_text(
        "mixerCheckServer: istio-policy.istio-system.svc.cluster.local:15004\n"
        "mixerReportServer: istio-telemetry.istio-system.svc.cluster.local:15004\n"
        "policyCheckFailOpen: true\n"
        "disable_policy_checks: false\n"  # the proto's own names work too
        "reportBatchMaxTime: 0.5s\n"
        "connectTimeout: 10s\n"
    )
    mesh = load_mesh_config(path)
    assert mesh.mixer_check_server == "istio-policy.istio-system.svc.cluster.local:15004"
    assert mesh.policy_check_fail_open
    assert mesh.report_batch_max_time.ToMilliseconds() == 500
    assert mesh.connect_timeout.seconds == 10


def test_an_empty_file_is_the_default_config(tmp_path):
    path = tmp_path / "mesh"
    path.write_text("")
    assert not load_mesh_config(path).mixer_check_server


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mixerCheckServr: a:1", 'no field named "mixerCheckServr"'),
        ("policyCheckFailOpen: maybe", "policyCheckFailOpen"),
        ("mixerCheckServer: localhost", "mixerCheckServer: 'localhost' is not host:port"),
        ("- a", "a mesh config is a mapping, got list"),
        ("a: [", "not valid YAML"),
        (
            "defaultConfig: {tracing: {sampling: 150}}",
            "defaultConfig.tracing.sampling: 150.0 is not a percentage between 0.0 and 100.0",
        ),
        (
            "defaultConfig: {tracing: {zipkin: {address: zipkin}}}",
            "defaultConfig.tracing.zipkin.address: 'zipkin' is not host:port",
        ),
        (
            "localityLbSetting: {distribute: [{from: 'r1/*', to: {'r1/*': 60}}]}",
            "localityLbSetting.distribute[0]: total locality weight 60 != 100",
        ),
        (
            "localityLbSetting: {failover: [{from: r1, to: r1}]}",
            "locality lb failover settings must specify different regions",
        ),
    ],
)
def test_mistakes_name_the_file_and_the_field(text, message):
    with pytest.raises(MeshConfigError) as caught:
        parse_mesh_config(text, "mesh.yaml")
    assert str(caught.value).startswith("mesh.yaml: ")
    assert message in str(caught.value)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(MeshConfigError, match="No such file"):
        load_mesh_config(tmp_path / "nope")


def test_injection_reads_the_mesh_over_istios_defaults():
    from pkg.config.mesh import apply_mesh_config, apply_proxy_config

    mesh = apply_mesh_config(
        "trustDomain: example.org\ndefaultConfig:\n  drainDuration: 5s\n  proxyMetadata: {A: '1'}\n"
    )
    assert mesh.trust_domain == "example.org"
    assert mesh.proxy_listen_port == 15001
    assert mesh.default_config.drain_duration.seconds == 5
    assert mesh.default_config.discovery_address == "istiod.istio-system.svc:15012"
    # A pod's proxy.istio.io/config: over defaultConfig, proxyMetadata merged key by key.
    pod = apply_proxy_config("proxyMetadata: {B: '2'}\nconcurrency: 2\n", mesh)
    assert dict(pod.default_config.proxy_metadata) == {"A": "1", "B": "2"}
    assert pod.default_config.concurrency.value == 2
    assert not mesh.default_config.concurrency.value
    # What a file says only, for Pilot's generators: no defaults filled in.
    assert parse_mesh_config("trustDomain: example.org").proxy_listen_port == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mixerCheckServer: nowhere", "mesh config: mixerCheckServer: 'nowhere' is not host:port"),
        ("defaultConfig: [1]", "defaultConfig must be a mapping"),
        ("defaultConfig: {drainDuration: soon}", "defaultConfig: "),
    ],
)
def test_injections_reading_refuses_what_pilots_refuses(text, message):
    from pkg.config.mesh import apply_mesh_config

    with pytest.raises(MeshConfigError) as caught:
        apply_mesh_config(text)
    assert message in str(caught.value)
