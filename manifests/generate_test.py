"""The install's manifest: every object valid against the Kubernetes schemas, a CRD for
every Istio kind as kinds.yaml declares it, ConfigMaps the mesh reads back, and the
components' arguments accepted by the programs they start."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from manifests import crds, generate
from pkg.config import kinds, openapi, structural
from pkg.config import mesh as meshconfig
from pkg.inject import config as injectconfig
from pkg.inject import kubeinject, policy

KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
OBJECTS = generate.generate()


def _id(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("obj", OBJECTS, ids=_id)
def test_every_object_is_valid_kubernetes(obj: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize(
    "crd", [o for o in OBJECTS if o["kind"] == "CustomResourceDefinition"], ids=_id
)
def test_every_crd_is_one_the_api_server_takes(crd: dict[str, Any]) -> None:
    # Beyond the schemas: structural openAPIV3Schemas, names, one storage version, columns.
    assert structural.crd_problems(crd) == []


def test_objects_are_unique_and_in_install_order() -> None:
    ids = [_id(o) for o in OBJECTS]
    assert len(ids) == len(set(ids))
    kinds_in_order = [o["kind"] for o in OBJECTS]
    assert kinds_in_order[0] == "Namespace"
    assert kinds_in_order.index("CustomResourceDefinition") < kinds_in_order.index("Deployment")
    assert kinds_in_order[-2:] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    workloads = {
        (o["kind"], o["metadata"]["name"])
        for o in OBJECTS
        if o["kind"] in ("Deployment", "DaemonSet")
    }
    assert workloads == {("Deployment", "istiod"), ("Deployment", "istio-mixer"), ("Deployment", "istio-ca"),
                         ("DaemonSet", "istio-nodeagent")}  # fmt: skip


def test_a_crd_for_every_istio_kind_as_the_registry_declares_it() -> None:
    found = {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == "CustomResourceDefinition"}
    istio = [k for k in kinds.ALL if k.group.endswith(".istio.io")]
    assert sorted(found) == sorted(f"{k.plural}.{k.group}" for k in istio)
    assert len([k for k in kinds.ALL if not k.group.endswith(".istio.io")]) == len(kinds.ALL) - len(
        istio
    )
    for kind in istio:
        spec = found[f"{kind.plural}.{kind.group}"]["spec"]
        assert spec["names"]["kind"] == kind.kind
        assert spec["scope"] == kind.scope
        assert spec["names"].get("shortNames", []) == list(kind.short_names)
        assert [v["name"] for v in spec["versions"]] == list(kind.served_versions)
        assert [v["name"] for v in spec["versions"] if v["storage"]] == [kind.version]
        schema = openapi.object_schema(kind)
        for version in spec["versions"]:
            assert version["served"]
            assert version["schema"]["openAPIV3Schema"] == schema
            columns = version.get("additionalPrinterColumns", [])
            assert [(c["name"], c["jsonPath"]) for c in columns] == [
                (c.name, c.json_path) for c in kind.columns
            ]


def test_virtual_service_columns_are_istios() -> None:
    schema = kinds.ALL.by_kind("networking.istio.io/v1", "VirtualService")
    assert schema is not None
    crd = crds.crd(schema)
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == ["Gateways", "Hosts", "Age"]


def _configmap(name: str) -> dict[str, Any]:
    return next(o for o in OBJECTS if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name)


def test_the_mesh_configmap_is_a_meshconfig() -> None:
    mesh = meshconfig.apply_mesh_config(_configmap("istio")["data"]["mesh"])
    assert mesh.trust_domain == "cluster.local"
    assert mesh.root_namespace == "istio-system"
    assert mesh.default_config.discovery_address == "istiod.istio-system.svc:15012"
    assert mesh.enable_prometheus_merge.value is True


def test_a_mesh_field_meshconfig_lacks_is_refused() -> None:
    with pytest.raises(generate.ManifestError, match='no field named "notAField"'):
        generate.generate(generate.apply_set(generate.default_values(), "meshConfig.notAField=1"))


def _settings() -> injectconfig.Settings:
    return injectconfig.from_configmaps(_configmap("istio-sidecar-injector"), _configmap("istio"))


REVIEWS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v2, labels: {app: reviews, version: v2}}
spec:
  selector: {matchLabels: {app: reviews, version: v2}}
  template:
    metadata: {labels: {app: reviews, version: v2}}
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v2:1.20.3
        ports: [{containerPort: 9080, name: http}]
        readinessProbe: {httpGet: {path: /health, port: 9080}}
"""


@pytest.mark.parametrize("native", [False, True])
def test_the_injector_configmap_injects_a_valid_pod_that_our_agent_accepts(
    native: bool, tmp_path: pathlib.Path
) -> None:
    from proxy.agent import options as agent_options
    from proxy.iptables import cmd as istio_iptables
    from proxy.iptables import rules as capture

    settings = injectconfig.Settings(**{**_settings().__dict__, "native_sidecar": native})
    injected = next(yaml.safe_load_all(kubeinject.into_resource_text(REVIEWS, settings)))
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(injected, version, strict=True)
    spec = injected["spec"]["template"]["spec"]
    proxies = spec["initContainers"] if native else spec["containers"]
    proxy = next(c for c in proxies if c["name"] == "istio-proxy")
    init = spec["initContainers"][0]
    assert init["name"] == "istio-init"
    assert init["args"][0] == "istio-iptables"
    # The same image's `pilot-agent istio-iptables` takes the init container's arguments.
    config, dry_run = istio_iptables.parse_args(init["args"][1:])
    assert not dry_run
    assert config.proxy_uids == (1337,)
    assert config.inbound_mode == "REDIRECT"
    assert config.inbound_ports_exclude == ("15090", "15021", "15020")  # metrics, health, status
    assert "-A ISTIO_OUTPUT -j ISTIO_REDIRECT" in capture.nat_rules(config)
    assert spec["containers"][0]["readinessProbe"]["httpGet"] == {
        "path": "/app-health/reviews/readyz",
        "port": 15020,
    }
    # Kubernetes expands $(VAR) from the container's env; then pilot-agent must accept them.
    env = {e["name"] for e in proxy["env"]}
    expanded = {"INSTANCE_IP": "10.1.2.3", "POD_NAME": "reviews-v2-abc", "POD_NAMESPACE": "default",
                "SERVICE_ACCOUNT": "bookinfo-reviews"}  # fmt: skip
    args = []
    for arg in proxy["args"]:
        for name in re.findall(r"\$\((\w+)\)", arg):
            assert name in env, f"{arg} names {name}, which the container does not define"
        args.append(re.sub(r"\$\((\w+)\)", lambda m: expanded[m.group(1)], arg))
    parsed = agent_options.parse_args([a.replace("/etc/istio/proxy", str(tmp_path)) for a in args])
    assert (parsed.proxy_type, parsed.ip, parsed.pod, parsed.namespace) == (
        "sidecar",
        "10.1.2.3",
        "reviews-v2-abc",
        "default",
    )
    # The pod's labels as injected, the template's own included.
    assert parsed.labels == {
        "app": "reviews",
        "version": "v2",
        "security.istio.io/tlsMode": "istio",
        "service.istio.io/canonical-name": "reviews",
        "service.istio.io/canonical-revision": "v2",
    }
    assert parsed.ports == {"http": 9080}
    assert parsed.service_account == "bookinfo-reviews"
    assert parsed.xds_tls
    assert not parsed.register
    assert parsed.discovery_address == "istiod.istio-system.svc:15012"


def _host_path(spec: dict[str, Any], mount: dict[str, Any], path: str, uid: str) -> str:
    """Where `path` inside a container (as seen through `mount`) is on the node."""
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert "hostPath" in volume, f"{mount['name']} is not a hostPath volume"
    relative = pathlib.PurePosixPath(path).relative_to(mount["mountPath"])
    base = pathlib.PurePosixPath(volume["hostPath"]["path"])
    if "subPathExpr" in mount:
        base /= mount["subPathExpr"].replace("$(POD_UID)", uid)
    return str(base / relative)


@pytest.mark.parametrize("native", [False, True])
def test_each_sidecar_mounts_only_its_own_pods_socket_of_the_node_agent(native: bool) -> None:
    from kubernetes import client as kube

    from security.nodeagent import options as nodeagent_options
    from security.nodeagent import pods

    settings = injectconfig.Settings(**{**_settings().__dict__, "native_sidecar": native})
    injected = next(yaml.safe_load_all(kubeinject.into_resource_text(REVIEWS, settings)))
    spec = injected["spec"]["template"]["spec"]
    proxy = next(
        c for c in [*spec["containers"], *spec["initContainers"]] if c["name"] == "istio-proxy"
    )
    socket = next(a for a in proxy["args"] if a.startswith("--sds-socket=")).partition("=")[2]
    [mount] = [m for m in proxy["volumeMounts"] if socket.startswith(m["mountPath"] + "/")]
    # The pod's own uid (the downward API's), and only its directory of the node's folder.
    [uid_env] = [e for e in proxy["env"] if e["name"] == "POD_UID"]
    assert uid_env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert mount["subPathExpr"] == "$(POD_UID)"
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["hostPath"]["type"] == "Directory"  # the node agent's; no pod makes it

    agent = next(o for o in OBJECTS if o["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    [container] = agent["containers"]
    options = nodeagent_options.parse_args(container["args"])
    assert options.node_name == "$(NODE_NAME)"  # Kubernetes expands it from the env:
    [node_env] = [e for e in container["env"] if e["name"] == "NODE_NAME"]
    assert node_env["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert options.pod_sockets_dir is not None
    folder = str(options.pod_sockets_dir)
    [agent_mount] = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    # No other container of the pod reaches the node agent's folder at all.
    host_folder = _host_path(agent, agent_mount, folder, "")
    for other in [*spec["containers"], *spec.get("initContainers", [])]:
        for m in other.get("volumeMounts", []):
            v = next(v for v in spec["volumes"] if v["name"] == m["name"])
            if v.get("hostPath", {}).get("path") == host_folder:
                assert (other["name"], m.get("subPathExpr")) == ("istio-proxy", "$(POD_UID)")

    # The socket the agent serves this pod on is, on the node, the one its pilot-agent is given.
    for uid in ("0b5e2c1e-4c1f-4f59-9d1e-0123456789ab", "7f3c9a10-2b4d-4e6f-8a1b-c2d3e4f5a6b7"):
        pod = kube.V1Pod(
            metadata=kube.V1ObjectMeta(name="reviews-v2-x", namespace="default", uid=uid),
            spec=kube.V1PodSpec(
                node_name="node-1",
                service_account_name="bookinfo-reviews",
                containers=[kube.V1Container(name=c["name"]) for c in spec["containers"]],
                init_containers=[
                    kube.V1Container(name=c["name"]) for c in spec.get("initContainers", [])
                ],
            ),
        )
        binding = pods.binding_for(
            pod, node="node-1", sockets_dir=options.pod_sockets_dir, trust_domain="cluster.local"
        )
        assert binding is not None
        assert binding.identity.spiffe_id == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
        served = _host_path(agent, agent_mount, str(binding.socket), uid)
        assert served == _host_path(spec, mount, socket, uid) == f"{host_folder}/{uid}/sds.sock"

    # The folder is made the proxy's (uid 1337) before the agent starts, and the agent may
    # read the node's pods.
    [init] = agent["initContainers"]
    assert "chown 1337:1337 /var/run/sds/pods" in init["command"][-1]
    assert [m["mountPath"] for m in init["volumeMounts"]] == [folder]
    assert container["securityContext"]["runAsUser"] == 1337
    role = next(
        o
        for o in OBJECTS
        if o["kind"] == "ClusterRole" and o["metadata"]["name"].startswith("istio-nodeagent")
    )
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]


def _container_args(name: str) -> list[str]:
    workload = next(
        o
        for o in OBJECTS
        if o["kind"] in ("Deployment", "DaemonSet") and o["metadata"]["name"] == name
    )
    return workload["spec"]["template"]["spec"]["containers"][0]["args"]


def _local(args: list[str], tmp_path: pathlib.Path) -> list[str]:
    """The arguments with the mounted files' paths pointing at files that exist here (the
    mesh config is the `istio` ConfigMap's, which Pilot parses as it starts)."""
    out = []
    for arg in args:
        flag, sep, value = arg.partition("=")
        if sep and value.startswith("/"):
            path = tmp_path / value.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            if flag == "--mesh-config":
                path.write_text(_configmap("istio")["data"]["mesh"])
            elif flag.endswith(("-file", "-root", "tokens")):
                path.write_text("x\n")
            value = str(path)
        out.append(f"{flag}{sep}{value}")
    return out


def test_the_components_accept_their_arguments(tmp_path: pathlib.Path) -> None:
    from mixer.cmd import mixs
    from pilot.cmd import discovery
    from security.ca import options as ca_options
    from security.nodeagent import options as nodeagent_options

    pilot, _ = discovery.parse_args(_local(_container_args("istiod"), tmp_path))
    assert pilot.webhooks is not None
    assert pilot.webhooks.address == "0.0.0.0:15017"
    assert pilot.webhooks.cert.dns_names == ("istiod.istio-system.svc",)
    assert pilot.secure is not None
    assert pilot.config_store == "https://kubernetes.default.svc"
    # istiod keeps istio-ca-root-cert in every namespace: its ClusterRole lets it write them.
    assert pilot.root_cert is not None
    assert pilot.root_cert.root_file == pilot.secure.ca_root
    role = next(
        o
        for o in OBJECTS
        if o["kind"] == "ClusterRole" and o["metadata"]["name"].startswith("istiod")
    )
    assert any("configmaps" in r["resources"] and "patch" in r["verbs"] for r in role["rules"])
    mixer, _ = mixs.parse_args(_container_args("istio-mixer"))
    assert mixer.grpc_address == "0.0.0.0:9091"
    ca, _ = ca_options.parse_args(_local(_container_args("istio-ca"), tmp_path))
    assert ca.address == "0.0.0.0:8060"
    # The name Pilot asks for and the webhook configurations' service are one the CA grants.
    assert ca.custom_dns_names == (("istiod.istio-system", pilot.webhooks.cert.dns_names[0]),)
    webhook = next(o for o in OBJECTS if o["kind"] == "MutatingWebhookConfiguration")
    service = webhook["webhooks"][0]["clientConfig"]["service"]
    assert f"{service['name']}.{service['namespace']}.svc" == pilot.webhooks.cert.dns_names[0]
    agent = nodeagent_options.parse_args(_local(_container_args("istio-nodeagent"), tmp_path))
    assert agent.ca_server_name == "istio-ca"


def test_webhook_selectors_state_the_injection_rule() -> None:
    webhook = next(o for o in OBJECTS if o["kind"] == "MutatingWebhookConfiguration")
    selectors = {w["name"]: w for w in webhook["webhooks"]}
    assert sorted(selectors) == [
        "namespace.sidecar-injector.istio.io",
        "object.sidecar-injector.istio.io",
    ]

    def selected(ns: dict[str, str], pod: dict[str, str]) -> bool:
        return any(
            policy.selector_matches(w["namespaceSelector"], ns)
            and policy.selector_matches(w["objectSelector"], pod)
            for w in selectors.values()
        )

    cases = [({"istio-injection": "enabled"}, {}), ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}),
             ({}, {}), ({}, {"sidecar.istio.io/inject": "true"}), ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"})]  # fmt: skip
    for ns, pod in cases:
        assert selected(ns, pod) == policy.namespace_selects(ns, pod), (ns, pod)


def test_values_from_set_flags_and_files(tmp_path: pathlib.Path) -> None:
    operator = tmp_path / "operator.yaml"
    operator.write_text(
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    pilot: {replicaCount: 3}\n"
    )
    values = generate.values_from(
        [operator], ["values.global.hub=registry.example.com/mesh", "values.mixer.enabled=false"]
    )
    objects = generate.generate(values)
    istiod = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "istiod"
    )
    assert istiod["spec"]["replicas"] == 3
    assert (
        istiod["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example.com/mesh/pilot:0.1.0"
    )
    assert not any(o["metadata"]["name"] == "istio-mixer" for o in objects)
    with pytest.raises(generate.ManifestError, match="want path=value"):
        generate.apply_set(values, "values.global.hub")
    with pytest.raises(generate.ManifestError, match=r"start with values\. or meshConfig\."):
        generate.apply_set(values, "global.hub=x")
