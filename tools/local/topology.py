"""What the local platform runs for Bookinfo: every process, its command line and readiness.

A pod is an address on the loopback network (`<subnet>.N`) holding an app, its
`pilot-agent` and the agent's Envoy, just as a Kubernetes pod holds containers; the
control plane (config store, Pilot) listens on its own address. Tests pick another
subnet and control address so they never collide with a user's running mesh.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import sys

from proxy.extensions.mixer import module as mixer_module
from tools.local import kubeplatform, observability
from tools.local.podnetwork import DEFAULT_POD_CIDR, DEFAULT_PREFIX, NodeNetwork
from tools.local.workloadcredentials import WorkloadCredentials, short_key

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
STORE_PORT = 8001
XDS_PORT = 15010
SECURE_XDS_PORT = 15012
PILOT_HTTP_PORT = 15014
AGENT_STATUS_PORT = 15020
CA_PORT = 8060  # Citadel's
CA_HEALTH_PORT = 8061
CA_MTLS_PORT = 8062
NODE_AGENT_STATUS_PORT = 15030
MIXER_PORT = 9091  # mixs: istio.mixer.v1.Mixer (Check, Report)
MIXER_METRICS_PORT = 42422  # its adapters' Prometheus /metrics
MIXER_MONITORING_PORT = 9093  # its /ready and /debug/status
BROKER_PORT = 9999  # the Open Service Broker API
APP_PORT = 9080
GATEWAY_PORT = 8080  # Gateway port 80, as Istio's ingress gateway pods listen on 8080


@dataclasses.dataclass(frozen=True)
class Pod:
    name: str
    app: str
    version: str
    host: int  # the last octet of the pod's address
    env: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()  # e.g. (("policy.istio.io/check", "disable"),)
    metrics_path: str = ""  # the app serves Prometheus metrics there (merged by its agent)

    @property
    def service_account(self) -> str:
        return f"bookinfo-{self.app}"


# The six Bookinfo workloads, as Istio's bookinfo.yaml deploys them.
BOOKINFO_PODS = (
    Pod("productpage-v1", "productpage", "v1", 2, metrics_path="/metrics"),
    Pod("details-v1", "details", "v1", 3),
    Pod("reviews-v1", "reviews", "v1", 4, (("ENABLE_RATINGS", "false"),)),
    Pod("reviews-v2", "reviews", "v2", 5, (("ENABLE_RATINGS", "true"), ("STAR_COLOR", "black"))),
    Pod("reviews-v3", "reviews", "v3", 6, (("ENABLE_RATINGS", "true"), ("STAR_COLOR", "red"))),
    Pod("ratings-v1", "ratings", "v1", 7),
)
GATEWAY_HOST = 1
# (namespace, pod, service account) of the ingress gateway, which the launcher runs itself.
GATEWAY_WORKLOAD = ("istio-system", "istio-ingressgateway", "istio-ingressgateway-service-account")


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    ready_url: str
    stage: int  # started (and stopped, in reverse) stage by stage
    env: tuple[tuple[str, str], ...] = ()


# Where Bookinfo's services are registered, and what that platform's pods are told.
# ServiceEntry: each agent writes its pod's WorkloadEntry (the local platform's own way);
# Consul / Eureka: each agent registers its pod there and Pilot reads that registry.
REGISTRY_DOMAINS = {"ServiceEntry": "", "Consul": "service.consul", "Eureka": "eureka"}
REGISTRY_FLAGS = {"Consul": "--consulserverURL", "Eureka": "--eurekaserverURL"}
PLATFORMS = ("local", "kube")
POD_NETWORKS = ("loopback", "netns")


@dataclasses.dataclass(frozen=True)
class Topology:
    run_dir: pathlib.Path
    subnet: str = "127.0.1"
    control_address: str = "127.0.0.1"
    pods: tuple[Pod, ...] = BOOKINFO_PODS
    cert_ttl: str = "24h"  # workload certificates' lifetime; the node agent renews at half
    registry: str = "ServiceEntry"
    registry_url: str = ""  # the Consul agent / Eureka server, for those registries
    # "local": the pods above, each agent registering its WorkloadEntry; "kube": Bookinfo from
    # Istio's Kubernetes YAML, run by the local kubelet and controllers (kubeplatform.py).
    platform: str = "local"
    # False: the platform alone (control plane, gateway, on kube the kubelet and controllers),
    # for the user to apply Bookinfo to, as to a fresh cluster.
    bookinfo: bool = True
    # Mixer in the request path: every sidecar and the gateway Check and Report through mixs.
    mixer: bool = True  # False: mixs runs, but the mesh config names no Mixer (no filters)
    mixer_check_cache: bool = True  # False: the filters ask mixs on every request (benchmarks)
    policy_check_fail_open: bool = False  # MeshConfig policyCheckFailOpen
    mixer_filter_wasm: str = ""  # the filter module; "" is the one Bazel built
    mixer_report_address: str = ""  # MeshConfig mixerReportServer; "" is mixs (benchmarks)
    mesh_config_extra: str = ""  # more MeshConfig YAML (e.g. "reportBatchMaxEntries: 1\n")
    # Prometheus, Zipkin and the mesh page (observability.py).
    observability: bool = True
    scrape_interval: str = "5s"
    graph_window: str = "30s"  # the mesh page's rates are over this range
    trace_sampling: float = 100.0  # percent of requests traced (Istio's demo profile: 100)
    # MeshConfig accessLogFile: every proxy logs each request (Istio's demo profile; "" is
    # its default profile's, no access log).
    access_log_file: str = "/dev/stdout"
    # The watchdog starts again whatever dies (watchdog.py); False for tests that take a
    # component down on purpose and bring it back themselves.
    heal: bool = True
    # How the kube platform's kubelet runs pods: "loopback", each on its own 127.x address
    # (any user); "netns", each in its own network namespace on the node's bridge (root). With
    # netns the control plane listens on the bridge's address (control_address), where the
    # pods reach it, and the host reaches it as any of its own addresses.
    pod_network: str = "loopback"
    pod_cidr: str = DEFAULT_POD_CIDR
    netns_prefix: str = DEFAULT_PREFIX
    # Istio's traffic capture (istio-init's iptables, the sidecar told REDIRECT): the install's
    # meshConfig.defaultConfig.interceptionMode. Needs netns, and Pilot's capture listeners.
    interception: bool = False

    def __post_init__(self) -> None:
        if self.registry not in REGISTRY_DOMAINS:
            raise ValueError(f"registry must be one of {sorted(REGISTRY_DOMAINS)}")
        if self.registry != "ServiceEntry" and not self.registry_url:
            raise ValueError(f"the {self.registry} registry needs its URL")
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}")
        if self.platform == "kube" and self.registry != "ServiceEntry":
            raise ValueError("the kube platform's registry is Kubernetes: no --registry with it")
        if self.pod_network not in POD_NETWORKS:
            raise ValueError(f"pod_network must be one of {POD_NETWORKS}")
        if self.pod_network == "netns":
            if self.platform != "kube":
                raise ValueError("pods in network namespaces are the kube platform's kubelet's")
            if self.control_address != self.node_network.gateway:
                raise ValueError(
                    f"with pods in network namespaces the control plane listens on the bridge's "
                    f"address {self.node_network.gateway}, not {self.control_address}"
                )
        if self.interception and self.pod_network != "netns":
            raise ValueError("interception needs pods in network namespaces (pod_network netns)")

    @property
    def node_network(self) -> NodeNetwork:
        return NodeNetwork(prefix=self.netns_prefix, cidr=self.pod_cidr)

    @property
    def interception_mode(self) -> str:
        """MeshConfig defaultConfig.interceptionMode, what injection renders the pods with."""
        return "REDIRECT" if self.interception else "NONE"

    @property
    def bookinfo_config(self) -> tuple[pathlib.Path, ...]:
        """What makes Bookinfo known and reachable: its services (unless a registry holds
        them) and the ingress gateway's routes, in the platform's hostnames."""
        if not self.bookinfo:
            return ()
        if self.platform == "kube":
            return kubeplatform.bookinfo_config(self)
        # Every platform runs Bookinfo's pods with a sidecar: the namespace says so, as
        # Istio's guide labels it (else `istioctl analyze` rightly reports IST0102).
        namespace = kubeplatform.INJECTION_NAMESPACE
        if self.registry == "ServiceEntry":
            return (
                namespace,
                ROOT / "samples/bookinfo/platform/local/bookinfo.yaml",
                ROOT / "samples/bookinfo/networking/bookinfo-gateway.yaml",
            )
        registry = self.registry.lower()
        return (namespace, ROOT / f"samples/bookinfo/platform/{registry}/bookinfo-gateway.yaml")

    @property
    def mixer_address(self) -> str:
        return f"{self.control_address}:{MIXER_PORT}"

    @property
    def mixer_metrics_url(self) -> str:
        return f"http://{self.control_address}:{MIXER_METRICS_PORT}/metrics"

    @property
    def mixer_monitoring_url(self) -> str:
        return f"http://{self.control_address}:{MIXER_MONITORING_PORT}"

    @property
    def mesh_config_path(self) -> pathlib.Path:
        return self.run_dir / "mesh.yaml"

    def mesh_config(self) -> str:
        """Istio's mesh config (MeshConfig YAML) Pilot starts with: policy checks on, one mixs
        for checks and reports."""
        reports = self.mixer_report_address or self.mixer_address
        servers = (
            f"mixerCheckServer: {self.mixer_address}\nmixerReportServer: {reports}\n"
            if self.mixer
            else ""
        )
        tracing = observability.mesh_config(self) if self.observability else ""
        access_log = f"accessLogFile: {self.access_log_file}\n" if self.access_log_file else ""
        return (
            f"{servers}policyCheckFailOpen: {str(self.policy_check_fail_open).lower()}\n"
            f"{access_log}{tracing}{self.mesh_config_extra}"
        )

    @property
    def config_store_url(self) -> str:
        return f"http://{self.control_address}:{STORE_PORT}"

    @property
    def kubeconfig(self) -> pathlib.Path:
        """What kubectl and the kubernetes client need to reach the store (`--kubeconfig`)."""
        return self.run_dir / "kubeconfig"

    @property
    def pilot_http_url(self) -> str:
        return f"http://{self.control_address}:{PILOT_HTTP_PORT}"

    @property
    def gateway_address(self) -> str:
        return f"{self.subnet}.{GATEWAY_HOST}"

    @property
    def productpage_url(self) -> str:
        return f"http://{self.gateway_address}:{GATEWAY_PORT}/productpage"

    def pod_address(self, pod: Pod) -> str:
        return f"{self.subnet}.{pod.host}"

    def pod(self, name: str) -> Pod:
        return next(p for p in self.pods if p.name == name)

    @property
    def log_dir(self) -> pathlib.Path:
        return self.run_dir / "logs"

    @property
    def ca_dir(self) -> pathlib.Path:
        return self.run_dir / "ca"

    @property
    def workload_credentials(self) -> pathlib.Path:
        """The node agent's workload-credentials folder: one entry per workload, binding
        its own SDS socket to its identity (tools/local/workloadcredentials.py)."""
        return self.run_dir / "nodeagent" / "workloads"

    @property
    def mixer_filter_path(self) -> pathlib.Path:
        """The Mixer filter module every Envoy loads: the given one, else a copy of Bazel's
        build in the run folder (stage_mixer_filter), since Bazel's output lives under root's
        0700 cache and the sidecars' Envoys run as uid 1337."""
        return (
            pathlib.Path(self.mixer_filter_wasm)
            if self.mixer_filter_wasm
            else self.run_dir / "mixer_filter.wasm"
        )

    def stage_mixer_filter(self) -> None:
        """Copy the built module to `mixer_filter_path` (readable by all); raises
        FileNotFoundError when it is not built."""
        if self.mixer_filter_wasm:
            return
        target = self.mixer_filter_path
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        shutil.copyfile(mixer_module.module_path(), temporary)
        temporary.chmod(0o644)
        temporary.replace(target)  # whole: an Envoy loading it never reads half a module

    @property
    def sds_sockets(self) -> pathlib.Path:
        return self.run_dir / "sds"

    def credentials(self) -> WorkloadCredentials:
        return WorkloadCredentials(folder=self.workload_credentials, sockets=self.sds_sockets)

    def sds_socket(self, namespace: str, pod: str) -> pathlib.Path:
        """The SDS socket of a workload the launcher runs (launcher_credentials writes it)."""
        return self.credentials().socket_for(short_key(namespace, pod))

    def launcher_workloads(self) -> list[tuple[str, str, str]]:
        """(namespace, pod, service account) of each workload whose agent the launcher runs."""
        pods = [("default", p.name, p.service_account) for p in self.pods]
        return [*(pods if self.platform == "local" else []), GATEWAY_WORKLOAD]

    @property
    def node_agent_token(self) -> pathlib.Path:
        return self.run_dir / "nodeagent" / "token"

    @property
    def pilot_token(self) -> pathlib.Path:
        return self.run_dir / "pilot" / "token"

    @property
    def ca_tokens(self) -> pathlib.Path:
        return self.run_dir / "ca-tokens.yaml"

    @property
    def broker_url(self) -> str:
        return f"http://{self.control_address}:{BROKER_PORT}"

    @property
    def broker_credentials(self) -> pathlib.Path:
        """`username:password` a platform signs in to the broker with (curl -u takes it)."""
        return self.run_dir / "broker" / "credentials"

    @property
    def broker_token(self) -> pathlib.Path:
        return self.run_dir / "broker" / "ca-token"

    def control_plane(self) -> list[ProcessSpec]:
        return [
            ProcessSpec(
                "config-store",
                (
                    PYTHON, "-m", "pilot.configstore.main",
                    "--address", self.control_address, "--port", str(STORE_PORT),
                    "--db", str(self.run_dir / "config-store.db"),
                ),
                f"{self.config_store_url}/healthz",
                stage=0,
            ),
            ProcessSpec(
                "pilot-discovery",
                (
                    PYTHON, "-m", "pilot.cmd.discovery",
                    "--config-store", self.config_store_url,
                    "--grpc-address", f"{self.control_address}:{XDS_PORT}",
                    "--http-address", f"{self.control_address}:{PILOT_HTTP_PORT}",
                    # Sidecars reach Pilot over mutual TLS; 15010 stays for tools.
                    "--secure-grpc-address", f"{self.control_address}:{SECURE_XDS_PORT}",
                    "--ca-address", f"{self.control_address}:{CA_PORT}",
                    "--ca-root", str(self.ca_dir / "root-cert.pem"),
                    "--token-file", str(self.pilot_token),
                    "--mesh-config", str(self.mesh_config_path),
                    "--mixer-filter-wasm", str(self.mixer_filter_path),
                    *(() if self.mixer_check_cache else ("--disable-mixer-check-cache",)),
                    *self._registry_flags(),
                ),
                f"{self.pilot_http_url}/ready",
                stage=1,
            ),
            ProcessSpec(
                "mixs",
                (
                    PYTHON, "-m", "mixer.cmd.mixs",
                    "--config-store", self.config_store_url,
                    "--address", self.mixer_address,
                    "--metrics-address", f"{self.control_address}:{MIXER_METRICS_PORT}",
                    "--monitoring-address", f"{self.control_address}:{MIXER_MONITORING_PORT}",
                ),
                f"{self.mixer_monitoring_url}/ready",
                stage=1,
            ),
            ProcessSpec(
                "istio-ca",
                (
                    PYTHON, "-m", "security.ca.main",
                    "--ca-dir", str(self.ca_dir), "--tokens", str(self.ca_tokens),
                    "--address", f"{self.control_address}:{CA_PORT}",
                    "--mtls-address", f"{self.control_address}:{CA_MTLS_PORT}",
                    "--health-address", f"{self.control_address}:{CA_HEALTH_PORT}",
                ),
                f"http://{self.control_address}:{CA_HEALTH_PORT}/ready",
                stage=0,
            ),
            ProcessSpec(
                "node-agent",
                (
                    PYTHON, "-m", "security.nodeagent.main",
                    "--ca-address", f"{self.control_address}:{CA_PORT}",
                    "--ca-root", str(self.ca_dir / "root-cert.pem"),
                    "--token-file", str(self.node_agent_token),
                    "--run-dir", str(self.run_dir / "nodeagent"),
                    "--workloads-dir", str(self.workload_credentials),
                    "--status-address", f"{self.control_address}:{NODE_AGENT_STATUS_PORT}",
                    "--ttl", self.cert_ttl,
                ),
                f"http://{self.control_address}:{NODE_AGENT_STATUS_PORT}/ready",
                stage=1,
            ),
            ProcessSpec(
                "broker",
                (
                    PYTHON, "-m", "broker.main",
                    "--address", self.control_address, "--port", str(BROKER_PORT),
                    "--config-store", self.config_store_url,
                    "--ca-address", f"{self.control_address}:{CA_PORT}",
                    "--ca-root", str(self.ca_dir / "root-cert.pem"),
                    "--ca-token-file", str(self.broker_token),
                    "--credentials", str(self.broker_credentials),
                ),
                f"{self.broker_url}/ready",
                stage=1,
            ),
        ] + (kubeplatform.processes(self) if self.platform == "kube" else [])  # fmt: skip

    def _registry_flags(self) -> tuple[str, ...]:
        if self.platform == "kube":
            return kubeplatform.pilot_flags(self)
        if self.registry == "ServiceEntry":
            return ()
        return ("--registries", f"ServiceEntry,{self.registry}",
                REGISTRY_FLAGS[self.registry], self.registry_url)  # fmt: skip

    def workloads(self) -> list[ProcessSpec]:
        """Apps (stage 2), their agents and the ingress gateway (stage 3); on the kube
        platform the kubelet runs the pods, and only the gateway is the launcher's."""
        specs = []
        for pod in self.pods if self.platform == "local" else ():
            ip = self.pod_address(pod)
            env = (
                *pod.env,
                ("SERVICE_VERSION", pod.version),
                ("POD_NAME", pod.name),
                # The sidecar's outbound listener is the app's HTTP proxy.
                ("http_proxy", f"http://{ip}:15001"),
            )
            specs.append(
                ProcessSpec(
                    pod.name,
                    (
                        PYTHON, str(ROOT / "samples/bookinfo/src" / pod.app / f"{pod.app}.py"),
                        "--address", ip, "--port", str(APP_PORT),
                    ),
                    f"http://{ip}:{APP_PORT}/health",
                    stage=2,
                    env=env,
                )
            )  # fmt: skip
            agent = self._agent(
                f"{pod.name}-proxy", "sidecar", ip, pod.name, "default",
                f"app={pod.app},version={pod.version}", pod.service_account, f"http={APP_PORT}",
                ",".join(f"{k}={v}" for k, v in pod.annotations),
            )  # fmt: skip
            if pod.metrics_path:
                env = observability.app_metrics_env(pod.metrics_path, APP_PORT)
                agent = dataclasses.replace(agent, env=env)
            specs.append(agent)
        namespace, gateway_pod, account = GATEWAY_WORKLOAD
        specs.append(
            self._agent(
                "istio-ingressgateway", "router", self.gateway_address, gateway_pod, namespace,
                "app=istio-ingressgateway,istio=ingressgateway", account, "",
            )
        )  # fmt: skip
        return specs

    def _agent(
        self,
        name: str,
        kind: str,
        ip: str,
        pod: str,
        namespace: str,
        labels: str,
        sa: str,
        ports: str,
        annotations: str = "",
    ) -> ProcessSpec:
        argv = [
            PYTHON, "-m", "proxy.agent.main", "proxy", kind,
            "--ip", ip, "--pod", pod, "--namespace", namespace, "--labels", labels,
            "--service-account", sa,
            "--discovery-address", f"{self.control_address}:{SECURE_XDS_PORT}", "--xds-tls",
            "--config-store", self.config_store_url,
            "--run-dir", str(self.run_dir / "pods" / pod),
            "--drain-duration", "2s",
            # Certificates from the node agent: every pod speaks Istio mTLS (auto mTLS,
            # PERMISSIVE unless a PeerAuthentication says otherwise), as Istio 1.5+ does.
            # Its own socket: the node agent serves it only its service account's identity.
            "--sds-socket", str(self.sds_socket(namespace, pod)),
        ]  # fmt: skip
        if ports:
            argv += ["--ports", ports]
        if annotations:
            argv += ["--annotations", annotations]
        if self.registry != "ServiceEntry" and kind == "sidecar":
            argv += ["--registry", self.registry, "--registry-url", self.registry_url,
                     "--domain", REGISTRY_DOMAINS[self.registry]]  # fmt: skip
        if kind == "router":
            argv.append("--register")
        # A gateway is ready once a Gateway gives it a listener: without Bookinfo's, started is
        # all it can be (its agent is live).
        check = "ready" if self.bookinfo or kind == "sidecar" else "live"
        return ProcessSpec(
            name, tuple(argv), f"http://{ip}:{AGENT_STATUS_PORT}/healthz/{check}", stage=3
        )

    def processes(self) -> list[ProcessSpec]:
        extra = observability.processes(self) if self.observability else []
        return self.control_plane() + extra + self.workloads()


def base_env() -> dict[str, str]:
    """The environment every process starts from: the repo importable, no stray proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")
    }
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env
