"""The injection templates' functions (funcs.py) and the Go views they get (godata.py), each
through a small template of our own over a pod's SidecarTemplateData: the functions the
install's template does not call are used by templates written for Istio."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
import yaml

from pkg import gotemplate
from pkg.config import mesh as meshconfig
from pkg.inject import funcs, inject
from pkg.inject.config import InjectionConfig, Settings
from pkg.inject.funcs import INJECTION_FUNCS

POD: dict[str, Any] = {
    "metadata": {
        "name": "web-1",
        "namespace": "shop",
        "labels": {"app": "web", "app.kubernetes.io/version": "1.4"},
        "annotations": {"example.test/note": "kept", "k8s.v1.cni.cncf.io/networks": ""},
    },
    "spec": {
        "serviceAccountName": "web",
        "containers": [
            {
                "name": "web",
                "image": "web:1",
                "ports": [
                    {"name": "http", "containerPort": 8080},
                    {"containerPort": 5353, "protocol": "UDP"},
                    {"containerPort": 9090, "protocol": "TCP", "hostPort": 19090},
                ],
            },
            {"name": "istio-proxy", "image": "auto", "ports": [{"containerPort": 15090}]},
        ],
    },
}
VALUES = {"global": {"hub": "hub.example.test", "tag": "2"}}


def render(template: str, pod: dict[str, Any] | None = None, mesh: str = "") -> str:
    pod = pod or POD
    settings = Settings(
        config=InjectionConfig(), values=VALUES, mesh=meshconfig.apply_mesh_config(mesh)
    )
    data = inject.template_data(
        pod, settings, inject.workload_of(pod), settings.mesh.default_config, settings.mesh
    )
    return gotemplate.parse("snippet", template, INJECTION_FUNCS).execute(data)


# --- ports ------------------------------------------------------------------------------


def test_inbound_ports_are_the_tcp_ports_of_every_container() -> None:
    assert render("{{ includeInboundPorts .Spec.Containers }}") == "8080,9090,15090"


def test_application_ports_leave_out_the_proxys() -> None:
    assert render("{{ applicationPorts .Spec.Containers }}") == "8080,9090"


@pytest.mark.parametrize(("port", "excluded", "want"), [
    ("15020", "", "15020"), ("15020", "80,443", "80,443,15020"), ("443", "80,443", "80,443"),
    ("0", "80", "80"), ("", "80", "80"), ("15020", " 80 ,", "80,15020"),
])  # fmt: skip
def test_exclude_inbound_port_adds_the_status_port_once(
    port: str, excluded: str, want: str
) -> None:
    assert render(f'{{{{ excludeInboundPort "{port}" "{excluded}" }}}}') == want


def test_a_port_prints_as_go_marshals_it() -> None:
    # encoding/json: corev1.ContainerPort's field order, zero fields left out but containerPort.
    rendered = render("{{ range (index .Spec.Containers 0).Ports }}{{ structToJSON . }};{{ end }}")
    assert rendered.split(";")[:-1] == [
        '{"name":"http","containerPort":8080}',
        '{"containerPort":5353,"protocol":"UDP"}',
        '{"hostPort":19090,"containerPort":9090,"protocol":"TCP"}',
    ]


# --- annotations, labels and maps -------------------------------------------------------


def test_annotation_gives_the_pods_value_or_the_default() -> None:
    template = '{{ annotation .ObjectMeta `example.test/note` "x" }} {{ annotation .ObjectMeta `absent` 7 }}'
    assert render(template) == "kept 7"
    assert render("{{ annotation .ObjectMeta `absent` nil }}") == "<nil>"


def test_isset_and_value_or_default() -> None:
    assert (
        render("{{ isset .ObjectMeta.Labels `app` }} {{ isset .ObjectMeta.Labels `tier` }}")
        == "true false"
    )
    assert render('{{ valueOrDefault .ObjectMeta.Labels.tier "none" }}') == "none"
    assert render('{{ valueOrDefault .ObjectMeta.Labels.app "none" }}') == "web"


def test_maps_to_json_and_back() -> None:
    assert json.loads(render("{{ toJSON .ObjectMeta.Labels }}")) == POD["metadata"]["labels"]
    assert render("{{ toJSON nil }}") == "{}"
    assert render('{{ (fromJSON `{"a": {"b": 1}}`).a.b }}') == "1"
    assert render("{{ fromJSON `not json` }}") == "{}"


def test_string_maps_are_built_merged_and_filtered() -> None:
    template = '{{ toJsonMap (omit .ObjectMeta.Labels "app") (strdict "tier" "db" "odd") }}'
    assert json.loads(render(template)) == {
        "app.kubernetes.io/version": "1.4",
        "tier": "db",
        "odd": "",
    }
    merged = '{{ range $k, $v := mergeMaps (strdict "a" "1" "b" "1") (strdict "b" "2") }}{{ $k }}={{ $v }},{{ end }}'
    assert render(merged) == "a=1,b=2,"


def test_omit_nil_drops_nils_at_every_depth() -> None:
    value = {"a": None, "b": {"c": None}, "d": [None, 1], "e": "x"}
    assert funcs.omit_nil(value) == {"d": [1], "e": "x"}
    assert funcs.omit_nil({"a": None}) is None


# --- strings, paths, environment ----------------------------------------------------------------


def test_istios_indent_leaves_the_first_line_and_contains_takes_the_needle_first() -> None:
    assert render('{{ indent 2 "a\\nb\\nc" }}') == "a\n  b\n  c"
    assert render('{{ contains "b" "abc" }} {{ contains "abc" "b" }}') == "true false"
    assert render("{{ toLower `Deployment` }}") == "deployment"


@pytest.mark.parametrize(("path", "want"), [
    ("/etc/certs/cert.pem", "/etc/certs/"), ("cert.pem", ""), ("/cert.pem", "/"),
])  # fmt: skip
def test_directory_of_a_path(path: str, want: str) -> None:
    assert render(f'{{{{ directory "{path}" }}}}') == want


def test_env_reads_istiods_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INJECT_TEST_FLAG", "on")
    monkeypatch.delenv("INJECT_TEST_UNSET", raising=False)
    assert (
        render('{{ env "INJECT_TEST_FLAG" "off" }} {{ env "INJECT_TEST_UNSET" "off" }}') == "on off"
    )


def test_interface_lists_pass_through() -> None:
    assert (
        render('{{ kubevirtInterfaces "net1,net2" }} {{ excludeInterfaces "eth9" }}')
        == "net1,net2 eth9"
    )


def test_to_yaml_gives_yaml_of_the_value() -> None:
    assert yaml.safe_load(render("{{ toYaml .ObjectMeta.Labels }}")) == POD["metadata"]["labels"]


# --- Multus networks ------------------------------------------------------------------------------


@pytest.mark.parametrize(("existing", "want"), [
    ("", "default/istio-cni"),
    ("alt_cni", "alt_cni, default/istio-cni"),
    ("alt_cni, default/istio-cni", "alt_cni, default/istio-cni"),
    ('[{"name": "alt_cni"}]', '[{"name": "alt_cni"}, {"name": "istio-cni", "namespace": "default"}]'),
    ('[{"name": "istio-cni", "namespace": "default"}]', '[{"name": "istio-cni", "namespace": "default"}]'),
    ("[not json]", "[not json]"),
])  # fmt: skip
def test_the_cni_network_is_appended_once(existing: str, want: str) -> None:
    assert funcs.append_multus_network(existing, "default/istio-cni") == want
    # And from a template, with the pod's annotation (empty here).
    assert (
        render(
            '{{ appendMultusNetwork (index .ObjectMeta.Annotations `k8s.v1.cni.cncf.io/networks`) "istio-cni" }}'
        )
        == "istio-cni"
    )


# --- ProxyConfig and MeshConfig as Go structs ---------------------------------------------------------


def test_proxy_config_fields_and_their_get_methods() -> None:
    mesh = "defaultConfig:\n  holdApplicationUntilProxyStarts: true\n  proxyMetadata: {A: '1'}\n  concurrency: 2\n"
    template = ("{{ .ProxyConfig.HoldApplicationUntilProxyStarts.GetValue }} {{ .ProxyConfig.ProxyMetadata.A }} "
                "{{ .ProxyConfig.Concurrency.GetValue }} {{ .ProxyConfig.InterceptionMode }}")  # fmt: skip
    assert render(template, mesh=mesh) == "true 1 2 REDIRECT"


def test_an_unset_message_is_a_nil_pointer_whose_getters_give_zeros() -> None:
    assert (
        render("{{ if .ProxyConfig.HoldApplicationUntilProxyStarts }}set{{ else }}nil{{ end }}")
        == "nil"
    )
    assert render("{{ .ProxyConfig.HoldApplicationUntilProxyStarts.GetValue }}") == "false"
    assert render("{{ .ProxyConfig.GetTracing.GetSampling }}") == "0"
    with pytest.raises(gotemplate.ExecError, match="nil pointer evaluating"):
        render("{{ .ProxyConfig.Tracing.Sampling }}")


def test_an_unknown_field_is_an_error_naming_the_type() -> None:
    with pytest.raises(gotemplate.ExecError, match="can't evaluate field Nope"):
        render("{{ .ProxyConfig.Nope }}")
    with pytest.raises(gotemplate.ExecError, match="SidecarTemplateData"):
        render("{{ .Nope }}")


def test_pod_fields_have_go_zero_values() -> None:
    bare = {"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c"}]}}
    template = ("[{{ .Spec.ServiceAccountName }}] {{ .Spec.HostNetwork }} {{ len .ObjectMeta.Labels }} "
                "{{ range (index .Spec.Containers 0).Ports }}port{{ else }}none{{ end }} [{{ .ObjectMeta.Namespace }}]")  # fmt: skip
    assert render(template, pod=bare) == "[] false 0 none []"
    assert (
        render("{{ .Spec.ServiceAccountName }} {{ .DeploymentMeta.Name }} {{ .TypeMeta.Kind }}")
        == "web web-1 Pod"
    )


def test_proto_to_json_leaves_out_istios_defaults() -> None:
    mesh = "defaultConfig:\n  drainDuration: 7s\n  statusPort: 15020\n"
    assert json.loads(render("{{ protoToJSON .ProxyConfig }}", mesh=mesh)) == {
        "drainDuration": "7s"
    }
    assert render("{{ protoToJSON .ProxyConfig.Tracing }}") == "{}"


@pytest.mark.parametrize(("delta", "want"), [
    (datetime.timedelta(0), "0s"), (datetime.timedelta(milliseconds=500), "500ms"),
    (datetime.timedelta(microseconds=1500), "1.5ms"), (datetime.timedelta(seconds=23), "23s"),
    (datetime.timedelta(seconds=90), "1m30s"), (datetime.timedelta(hours=2, seconds=3.5), "2h0m3.5s"),
    (-datetime.timedelta(seconds=2), "-2s"),
])  # fmt: skip
def test_durations_print_as_go_prints_them(delta: datetime.timedelta, want: str) -> None:
    assert funcs.go_duration(delta) == want


def test_format_duration_of_a_mesh_field() -> None:
    template = "{{ formatDuration .ProxyConfig.DrainDuration }}"
    assert render(template, mesh="defaultConfig: {drainDuration: 45s}") == "45s"
    # Unset: a nil *Duration, which Istio's formatDuration prints as zero.
    assert render("{{ formatDuration .ProxyConfig.DiscoveryRefreshDelay }}") == "0s"


OTEL_MESH = """extensionProviders:
- name: otel
  opentelemetry:
    service: otel.example.test
    port: 4317
    serviceAttributeEnrichment: OTEL_SEMANTIC_CONVENTIONS
"""
OTEL = "{{ otelResourceAttributes .MeshConfig .ObjectMeta.Annotations .ObjectMeta.Labels .ObjectMeta.Namespace .Spec.Containers }}"


def test_otel_resource_attributes_only_with_semantic_conventions() -> None:
    assert render(OTEL) == ""
    assert render(OTEL, mesh=OTEL_MESH) == (
        "service.namespace=shop,service.version=1.4,service.instance.id=shop.$(POD_NAME).web"
    )
    pod = {**POD, "metadata": {**POD["metadata"], "annotations": {
        "resource.opentelemetry.io/service.namespace": "store",
        "resource.opentelemetry.io/service.instance.id": "web-a"}}}  # fmt: skip
    assert render(OTEL, pod=pod, mesh=OTEL_MESH) == (
        "service.namespace=store,service.version=1.4,service.instance.id=web-a"
    )


def test_istios_functions_win_over_sprigs_of_the_same_name() -> None:
    # Sprig's contains is (haystack, needle) and its indent indents the first line too.
    assert INJECTION_FUNCS["contains"] is funcs.flipped_contains
    assert INJECTION_FUNCS["indent"] is funcs.indent
