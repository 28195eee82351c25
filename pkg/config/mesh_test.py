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
    "text, message",
    [
        ("mixerCheckServr: a:1", 'no field named "mixerCheckServr"'),
        ("policyCheckFailOpen: maybe", "policyCheckFailOpen"),
        ("mixerCheckServer: localhost", "mixerCheckServer: 'localhost' is not host:port"),
        ("- a", "a mesh config is a mapping, got list"),
        ("a: [", "not valid YAML"),
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
