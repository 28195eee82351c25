"""DestinationRule: traffic policies, connection pools, load balancing, outlier detection, TLS.

After Istio's ValidateDestinationRule and agent.ValidateTLS. A setting that is present must say
something: an empty trafficPolicy or connectionPool is refused, as Istio refuses it.
"""

from __future__ import annotations

import math

from pkg.config.validation.common import (
    check_duration,
    check_export_to,
    check_host,
    check_labels,
    check_percent,
    check_selector_labels,
)
from pkg.config.validation.httproute import check_subset_name
from pkg.config.validation.names import check_fqdn, is_ip
from pkg.config.validation.result import FieldPath, ValidationResult

_POLICY_FIELDS = (
    "outlier_detection",
    "connection_pool",
    "load_balancer",
    "tls",
    "tunnel",
    "proxy_protocol",
    "retry_budget",
)
_PORT_POLICY_FIELDS = ("outlier_detection", "connection_pool", "load_balancer", "tls")
_MAGLEV_MAX = 5_000_011


def validate_destination_rule(spec, path: FieldPath, out: ValidationResult) -> None:
    check_host(spec.host, path / "host", out)
    if spec.HasField("traffic_policy"):
        _check_traffic_policy(spec.traffic_policy, path / "trafficPolicy", out)
    names: set[str] = set()
    for index, subset in enumerate(spec.subsets):
        subset_path = path / "subsets" / index
        if subset.name in names:
            out.error(subset_path / "name", f"duplicate subset names: {subset.name}")
        names.add(subset.name)
        check_subset_name(subset.name, subset_path / "name", out)
        check_labels(subset.labels, subset_path / "labels", out)
        if subset.HasField("traffic_policy"):
            _check_traffic_policy(subset.traffic_policy, subset_path / "trafficPolicy", out)
    check_export_to(spec.export_to, path / "exportTo", out)
    if spec.HasField("workload_selector"):
        selector_path = path / "workloadSelector" / "matchLabels"
        check_selector_labels(spec.workload_selector.match_labels, selector_path, out)
        if [e for e in spec.export_to if e != "."]:
            out.error(
                path / "exportTo",
                "destination rule with workload selector cannot have exportTo beyond current "
                "namespace",
            )


def _check_traffic_policy(policy, path: FieldPath, out: ValidationResult) -> None:
    if not any(policy.HasField(f) for f in _POLICY_FIELDS) and not policy.port_level_settings:
        out.error(path, "traffic policy must have at least one field")
        return
    if policy.HasField("tunnel") and policy.HasField("proxy_protocol"):
        out.error(path, "tunnel and proxyProtocol must not be set together")
        return
    _check_policy_settings(policy, path, out)
    for index, setting in enumerate(policy.port_level_settings):
        setting_path = path / "portLevelSettings" / index
        if not setting.HasField("port"):
            out.error(setting_path / "port", "portTrafficPolicy must have valid port")
        if not any(setting.HasField(f) for f in _PORT_POLICY_FIELDS):
            out.error(setting_path, "port traffic policy must have at least one field")
        else:
            _check_policy_settings(setting, setting_path, out)
    if policy.HasField("tunnel"):
        _check_tunnel(policy.tunnel, path / "tunnel", out)


def _check_policy_settings(policy, path: FieldPath, out: ValidationResult) -> None:
    outlier = policy.outlier_detection if policy.HasField("outlier_detection") else None
    if outlier is not None:
        _check_outlier_detection(outlier, path / "outlierDetection", out)
    if policy.HasField("connection_pool"):
        check_connection_pool(policy.connection_pool, path / "connectionPool", out)
    if policy.HasField("load_balancer"):
        _check_load_balancer(policy.load_balancer, outlier, path / "loadBalancer", out)
    if policy.HasField("tls"):
        check_client_tls(policy.tls, path / "tls", out)


def _check_tunnel(tunnel, path: FieldPath, out: ValidationResult) -> None:
    if tunnel.protocol not in ("", "CONNECT", "POST"):
        out.error(path / "protocol", 'tunnel protocol must be "CONNECT" or "POST"')
    fqdn_problem = check_fqdn(tunnel.target_host)
    if fqdn_problem and not is_ip(tunnel.target_host):
        out.error(
            path / "targetHost",
            f"tunnel target host must be valid FQDN or IP address: {fqdn_problem}",
        )
    if not 1 <= tunnel.target_port <= 65535:
        out.error(
            path / "targetPort",
            f"tunnel target port is invalid: port number {tunnel.target_port} must be in the "
            "range 1..65535",
        )


def _check_outlier_detection(outlier, path: FieldPath, out: ValidationResult) -> None:
    if outlier.HasField("base_ejection_time"):
        check_duration(outlier.base_ejection_time, path / "baseEjectionTime", out)
    if outlier.consecutive_errors:
        out.warn(
            path / "consecutiveErrors",
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors "
            "or consecutive5xxErrors instead",
        )
    if not outlier.split_external_local_origin_errors and (
        outlier.consecutive_local_origin_failures.value > 0
    ):
        out.error(
            path / "consecutiveLocalOriginFailures",
            "outlier detection consecutive local origin failures is specified, but split "
            "external local origin errors is set to false",
        )
    if outlier.HasField("interval"):
        check_duration(outlier.interval, path / "interval", out)
    check_percent(outlier.max_ejection_percent, path / "maxEjectionPercent", out)
    check_percent(outlier.min_health_percent, path / "minHealthPercent", out)


def check_connection_pool(settings, path: FieldPath, out: ValidationResult) -> None:
    """Also a Sidecar's inbound pools. Counts may not be negative, durations under 1ms."""
    if not settings.HasField("http") and not settings.HasField("tcp"):
        out.error(path, "connection pool must have at least one field")
        return
    if settings.HasField("http"):
        http, http_path = settings.http, path / "http"
        for field, json_name, what in (
            ("http1_max_pending_requests", "http1MaxPendingRequests", "http1 max pending requests"),
            ("http2_max_requests", "http2MaxRequests", "http2 max requests"),
            (
                "max_requests_per_connection",
                "maxRequestsPerConnection",
                "max requests per connection",
            ),
            ("max_retries", "maxRetries", "max retries"),
            ("max_concurrent_streams", "maxConcurrentStreams", "max concurrent streams"),
        ):
            if getattr(http, field) < 0:
                out.error(http_path / json_name, f"{what} must be non-negative")
        if http.HasField("idle_timeout"):
            check_duration(http.idle_timeout, http_path / "idleTimeout", out)
        upgrade = http.DESCRIPTOR.fields_by_name["h2_upgrade_policy"].enum_type
        if http.h2_upgrade_policy == upgrade.values_by_name["UPGRADE"].number and (
            http.use_client_protocol
        ):
            out.error(
                http_path / "useClientProtocol",
                "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            )
    if settings.HasField("tcp"):
        tcp, tcp_path = settings.tcp, path / "tcp"
        if tcp.max_connections < 0:
            out.error(tcp_path / "maxConnections", "max connections must be non-negative")
        for field, json_name in (
            ("connect_timeout", "connectTimeout"),
            ("max_connection_duration", "maxConnectionDuration"),
        ):
            if tcp.HasField(field):
                check_duration(getattr(tcp, field), tcp_path / json_name, out)
        # An idle timeout of 0s switches the timeout off; anything else is a duration.
        if tcp.HasField("idle_timeout") and (
            tcp.idle_timeout.seconds or tcp.idle_timeout.nanos >= 1_000_000
        ):
            check_duration(tcp.idle_timeout, tcp_path / "idleTimeout", out)
        if tcp.HasField("tcp_keepalive"):
            for field in ("time", "interval"):
                if tcp.tcp_keepalive.HasField(field):
                    check_duration(
                        getattr(tcp.tcp_keepalive, field), tcp_path / "tcpKeepalive" / field, out
                    )


def _check_load_balancer(settings, outlier, path: FieldPath, out: ValidationResult) -> None:
    if settings.HasField("consistent_hash"):
        hashing, hash_path = settings.consistent_hash, path / "consistentHash"
        if hashing.HasField("http_cookie"):
            cookie = hashing.http_cookie
            if not cookie.name:
                out.error(hash_path / "httpCookie" / "name", "name required for HttpCookie")
            names: set[str] = set()
            for index, attribute in enumerate(cookie.attributes):
                attribute_path = hash_path / "httpCookie" / "attributes" / index
                if not attribute.name:
                    out.error(attribute_path, "cookie attribute name cannot be empty")
                elif attribute.name in names:
                    out.error(attribute_path, f"duplicate cookie attribute name: {attribute.name}")
                names.add(attribute.name)
        if hashing.minimum_ring_size:
            out.warn(
                hash_path / "minimumRingSize",
                "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
                "configuration instead",
            )
            if hashing.WhichOneof("hash_algorithm"):
                out.error(
                    hash_path, "only one of MinimumRingSize or Maglev/Ringhash can be specified"
                )
        if hashing.HasField("maglev"):
            size = hashing.maglev.table_size
            maglev_path = hash_path / "maglev" / "tableSize"
            if size == 0:
                out.error(maglev_path, "tableSize must be set for maglev")
            if size >= _MAGLEV_MAX:
                out.error(maglev_path, f"tableSize must be less than {_MAGLEV_MAX} for maglev")
            if not _is_prime(size):
                out.error(maglev_path, "tableSize must be a prime number for maglev")
    if settings.HasField("locality_lb_setting"):
        _check_locality(settings.locality_lb_setting, outlier, path / "localityLbSetting", out)
    if settings.HasField("warmup"):
        warmup, warmup_path = settings.warmup, path / "warmup"
        if not warmup.HasField("duration"):
            out.error(warmup_path / "duration", "duration is required")
        else:
            check_duration(warmup.duration, warmup_path / "duration", out)
        if warmup.minimum_percent.value > 100:
            out.error(
                warmup_path / "minimumPercent",
                "minimumPercent value should be less than or equal to 100",
            )
        if warmup.HasField("aggression") and warmup.aggression.value < 1:
            out.error(warmup_path / "aggression", "aggression should be greater than or equal to 1")


def _is_prime(number: int) -> bool:
    """Envoy's test for a maglev table size (source/common/common/utility.cc)."""
    if 0 < number < 4:
        return True
    if number % 2 == 0:
        return False
    return all(number % factor for factor in range(3, math.isqrt(number) + 1, 2))


# The topology labels `failover` already orders by: naming one in `failoverPriority` as well
# would order twice.
_TOPOLOGY_LABELS = ("topology.kubernetes.io/region", "topology.kubernetes.io/zone",
                    "topology.istio.io/subzone")  # fmt: skip


def _check_locality(setting, outlier, path: FieldPath, out: ValidationResult) -> None:
    check_locality_lb_setting(setting, outlier is not None, path, out)


def check_locality_lb_setting(
    setting, has_outlier: bool, path: FieldPath, out: ValidationResult
) -> None:
    """Istio's ValidateLocalityLbSetting (a DestinationRule's, or MeshConfig's)."""
    if setting.distribute and setting.failover:
        out.error(path, "can not simultaneously specify 'distribute' and 'failover'")
        return
    if setting.failover and setting.failover_priority:
        for label in setting.failover_priority:
            if label in _TOPOLOGY_LABELS:
                out.error(
                    path / "failoverPriority",
                    f"can not simultaneously set 'failover' and topology label '{label}' in "
                    "'failover_priority'",
                )
                return
    for index, distribute in enumerate(setting.distribute):
        weights = list(distribute.to.values())
        if any(not 0 < w <= 100 for w in weights):
            out.error(path / "distribute" / index, "locality weight must be in range [1, 100]")
            return
        if sum(weights) != 100:
            out.error(path / "distribute" / index, f"total locality weight {sum(weights)} != 100")
            return
        # Sorted: a map has no order, and a wider locality (`a/*`, `a`) sorts before the
        # ones it covers, so an overlap is found whichever way the map iterates.
        problem = _check_localities(sorted(distribute.to))
        if problem:
            out.error(path / "distribute" / index / "to", problem)
    problem = _check_localities([getattr(d, "from") for d in setting.distribute])
    if problem:
        out.error(path / "distribute", problem)
    if (setting.failover or setting.failover_priority) and not has_outlier:
        out.warn(path, "outlier detection policy must be provided for failover")
    for index, failover in enumerate(setting.failover):
        failover_path = path / "failover" / index
        if getattr(failover, "from") == failover.to:
            out.error(failover_path, "locality lb failover settings must specify different regions")
        if "/" in getattr(failover, "from") or "/" in failover.to:
            out.error(failover_path, "locality lb failover only specify region")
        if "*" in getattr(failover, "from") or "*" in failover.to:
            out.error(failover_path, "locality lb failover region should not contain '*' wildcard")


def _check_localities(localities: list[str]) -> str | None:
    """Istio's validateLocalities: one trailing `*` at most, no empty level, and no locality
    covered by one named before it (or covering it)."""
    seen: dict[str, dict[str, set[str]]] = {}  # region -> zone -> subzones; "*" for all
    for locality in localities:
        stars = locality.count("*")
        if stars > 1 or (stars == 1 and not locality.endswith("*")):
            return (
                f"locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
            )
        if "*" in seen:
            return f"locality {locality} overlap with previous specified ones"
        parts = locality.split("/", 2)
        if any(part == "" for part in parts):
            return f"locality {locality} must not contain empty region/zone/subzone info"
        region = parts[0]
        if len(parts) == 1:
            if region in seen:
                return f"locality {locality} overlap with previous specified ones"
            seen[region] = {"*": {"*"}}
            continue
        zones = seen.setdefault(region, {})
        zone = parts[1]
        if "*" in zones:
            return f"locality {locality} overlap with previous specified ones"
        if len(parts) == 2:
            if zone in zones:
                return f"locality {locality} overlap with previous specified ones"
            zones[zone] = {"*"}
            continue
        subzones = zones.setdefault(zone, set())
        if "*" in subzones or parts[2] in subzones:
            return f"locality {locality} overlap with previous specified ones"
        subzones.add(parts[2])
    return None


def check_client_tls(tls, path: FieldPath, out: ValidationResult) -> None:
    """agent.ValidateTLS: what a client side of TLS may say, by mode."""
    mode = tls.DESCRIPTOR.fields_by_name["mode"].enum_type.values_by_number[tls.mode].name
    if tls.insecure_skip_verify.value:
        if mode == "SIMPLE" and (
            tls.ca_certificates or tls.credential_name or tls.subject_alt_names
        ):
            out.error(
                path / "insecureSkipVerify",
                "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
                "InsecureSkipVerify is set true",
            )
        if mode == "MUTUAL" and (tls.ca_certificates or tls.subject_alt_names):
            out.error(
                path / "insecureSkipVerify",
                "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set "
                "true",
            )
    if mode in ("SIMPLE", "MUTUAL") and tls.credential_name:
        if tls.client_certificate or tls.ca_certificates or tls.private_key or tls.ca_crl:
            out.error(
                path,
                "cannot specify client certificates or CA certificate or CA CRL If credentialName "
                "is set",
            )
        return
    if mode == "MUTUAL":
        if not tls.client_certificate:
            out.error(path / "clientCertificate", "client certificate required for mutual tls")
        if not tls.private_key:
            out.error(path / "privateKey", "private key required for mutual tls")
