"""ServiceEntry and WorkloadEntry; parameter ids are Istio's case names
(TestValidateServiceEntries, TestValidateWorkloadEntry)."""

from __future__ import annotations

import pytest

from pkg.config.validation.testing import check, validate

HTTP = [{"number": 80, "protocol": "http", "name": "http-valid1"}]


def se(**fields) -> dict:
    return {"hosts": ["google.com"], "ports": HTTP, **fields}


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param(
            se(
                endpoints=[{"address": "lon.google.com", "ports": {"http-valid1": 8080}}],
                resolution="DNS",
            ),
            None,
            id="discovery type DNS",
        ),
        pytest.param(
            se(endpoints=[{"address": "lon.google.com"}], resolution="DNS_ROUND_ROBIN"),
            None,
            id="discovery type DNS Round Robin",
        ),
        pytest.param(
            se(hosts=[], resolution="DNS"),
            "service entry must have at least one host",
            id="empty hosts",
        ),
        pytest.param(
            se(hosts=["google.com", "?"], resolution="DNS"), "domain name", id="bad hosts"
        ),
        pytest.param(se(hosts=["*"], resolution="DNS"), "invalid host *", id="full wildcard host"),
        pytest.param(
            se(
                endpoints=[{"address": "in.google.com", "ports": {"http-dne": 8080}}],
                resolution="DNS",
            ),
            "endpoint port 8080 is not defined by the service entry",
            id="undefined endpoint port",
        ),
        pytest.param(
            se(endpoints=[{"address": "*.lon.google.com"}], resolution="DNS"),
            'endpoint address "*.lon.google.com" is not a valid FQDN or an IP address',
            id="discovery type DNS, non-FQDN endpoint",
        ),
        pytest.param(
            se(hosts=["*.google.com"], resolution="DNS"),
            "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode DNS",
            id="discovery type DNS, non-FQDN host",
        ),
        pytest.param(se(resolution="DNS"), None, id="discovery type DNS, no endpoints"),
        pytest.param(
            se(addresses=["172.1.2.16/16"], resolution="NONE"), None, id="discovery type none"
        ),
        pytest.param(
            se(endpoints=[{"address": "lon.google.com"}], resolution="NONE"),
            "no endpoints should be provided for resolution type none",
            id="discovery type none, endpoints provided",
        ),
        pytest.param(
            se(addresses=["172.1.2.16/16"], resolution="NONE"),
            None,
            id="discovery type none, cidr addresses",
        ),
        pytest.param(
            se(
                addresses=["172.1.2.16/16"], endpoints=[{"address": "1.1.1.1"}], resolution="STATIC"
            ),
            None,
            id="discovery type static, cidr addresses with endpoints",
        ),
        pytest.param(
            se(addresses=["172.1.2.16/16"], resolution="DNS"),
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
            id="discovery type DNS, cidr addresses",
        ),
        pytest.param(
            se(
                endpoints=[{"address": "1.1.1.1", "ports": {"http-valid1": 8080}}],
                resolution="STATIC",
            ),
            None,
            id="discovery type static",
        ),
        pytest.param(
            se(endpoints=[{"address": "google.com"}], resolution="STATIC"),
            'endpoint address "google.com" is not a valid IP address',
            id="discovery type static, FQDN in endpoints",
        ),
        pytest.param(se(resolution="STATIC"), None, id="discovery type static, missing endpoints"),
        pytest.param(
            se(
                ports=[
                    {"number": 80, "protocol": "http", "name": "http"},
                    {"number": 81, "protocol": "http", "name": "http"},
                ]
            ),
            'service entry port name "http" already defined',
            id="discovery type none, conflicting port names",
        ),
        pytest.param(
            se(
                ports=[
                    {"number": 80, "protocol": "http", "name": "a"},
                    {"number": 80, "protocol": "http", "name": "b"},
                ]
            ),
            "service entry port 80 already defined",
            id="discovery type none, conflicting port numbers",
        ),
        pytest.param(
            se(endpoints=[{"address": "unix:///path/to/socket"}], resolution="STATIC"),
            None,
            id="unix socket",
        ),
        pytest.param(
            se(endpoints=[{"address": "unix://./relative/path.sock"}], resolution="STATIC"),
            "./relative/path.sock is not an absolute path to a file",
            id="unix socket, relative path",
        ),
        pytest.param(
            se(
                endpoints=[{"address": "unix:///path/to/socket", "ports": {"http-valid1": 123}}],
                resolution="STATIC",
            ),
            "unix endpoint unix:///path/to/socket must not include ports",
            id="unix socket, endpoint ports",
        ),
        pytest.param(
            se(
                ports=[
                    {"number": 80, "protocol": "http", "name": "a"},
                    {"number": 81, "protocol": "http", "name": "b"},
                ],
                endpoints=[{"address": "unix:///path/to/socket"}],
                resolution="STATIC",
            ),
            "exactly 1 service port required for unix endpoints",
            id="unix socket, multiple service ports",
        ),
        pytest.param(
            se(
                ports=[{"number": 80, "name": "http-valid1"}],
                addresses=["1.1.1.1"],
                resolution="DNS",
            ),
            None,
            id="empty protocol",
        ),
        pytest.param(
            se(workloadSelector={"labels": {"app": "foo"}}, resolution="STATIC"),
            None,
            id="selector",
        ),
        pytest.param(
            se(
                workloadSelector={"labels": {"app": "foo"}},
                endpoints=[{"address": "1.1.1.1"}],
                resolution="STATIC",
            ),
            "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
            id="selector and endpoints",
        ),
        pytest.param(
            se(workloadSelector={"labels": {"": "foo"}}, resolution="STATIC"),
            "empty key is not supported in selector",
            id="bad selector key",
        ),
        pytest.param(
            se(ports=[{"number": 80, "protocol": "http", "name": "h", "targetPort": 99999}]),
            "port number 99999 must be in the range 1..65535",
            id="invalid target port",
        ),
        pytest.param(
            se(
                endpoints=[{"address": "1.1.1.1"}, {"address": "1.1.1.2"}],
                resolution="DNS_ROUND_ROBIN",
            ),
            "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
            id="dns round robin with more than one endpoint",
        ),
        pytest.param(se(resolution="DNS_ROUND_ROBIN"), None, id="dns round robin with 0 endpoints"),
        pytest.param(
            {"hosts": ["google.com"], "resolution": "DNS"},
            None,
            id="no ports (Istio accepts a ServiceEntry without ports)",
        ),
        pytest.param(
            se(
                hosts=["a.com", "b.com"],
                ports=[{"number": 3306, "protocol": "tcp", "name": "mysql"}],
                resolution="DNS",
            ),
            "multiple hosts provided with non-HTTP, non-TLS ports",
            id="multiple hosts with tcp port",
        ),
    ],
)
def test_validate_service_entries(spec: dict, error: str | None):
    check(validate("ServiceEntry", spec), error)


@pytest.mark.parametrize(
    ("spec", "warning"),
    [
        pytest.param(
            se(workloadSelector={}, resolution="STATIC"),
            "workload selector specified without labels",
            id="workload selector without labels",
        ),
        pytest.param(
            se(workloadSelector={"labels": {"app": "foo"}}, resolution="NONE"),
            "workloadSelector should not be set when resolution mode is NONE",
            id="selector and resolution NONE",
        ),
        pytest.param(
            se(ports=[{"number": 81, "name": "tcp"}]),
            "addresses are required for ports serving TCP (or unset) protocol",
            id="protocol unset for addresses empty",
        ),
        pytest.param(
            se(hosts=["*foo.com"], resolution="NONE"),
            "partial wildcard '*foo.com' not allowed",
            id="partial wildcard hosts",
        ),
        pytest.param(
            se(endpoints=[{"network": "cluster-1"}], resolution="STATIC"),
            'address is unset with network "cluster-1"',
            id="network set with no address on endpoint",
        ),
    ],
)
def test_validate_service_entries_warnings(spec: dict, warning: str):
    outcome = validate("ServiceEntry", spec)
    assert outcome.ok, outcome.errors
    assert outcome.has_warning(warning), outcome.warnings


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param({"address": "1.2.3.4"}, None, id="valid"),
        pytest.param({}, "address is required", id="missing address"),
        pytest.param({"network": "network-2"}, None, id="missing address with network"),
        pytest.param({"address": "unix:///foo/bar"}, None, id="valid unix endpoint"),
        pytest.param(
            {"address": "unix:///foo/bar", "ports": {"123": 123}},
            "must not include ports",
            id="invalid unix endpoint",
        ),
        pytest.param(
            {"address": "unix:///dir/"},
            "/dir/ is not an absolute path to a file",
            id="UDS may not be a dir",
        ),
        pytest.param(
            {"address": "unix://relative"},
            "relative is not an absolute path to a file",
            id="UDS must be an absolute path or abstract socket",
        ),
        pytest.param({"address": "unix://@foo"}, None, id="abstract unix socket"),
        pytest.param({"address": "test.com"}, None, id="valid FQDN"),
        pytest.param(
            {"address": "test.com*"},
            'endpoint address "test.com*" is not a valid FQDN or an IP address',
            id="invalid FQDN",
        ),
        pytest.param(
            {"address": "1.1.1.1", "ports": {"http": 99999}},
            "port number 99999 must be in the range 1..65535",
            id="port must be between 1-65535",
        ),
        pytest.param(
            {"address": "1.1.1.1", "ports": {"@": 80}}, "invalid port name: @", id="bad port name"
        ),
    ],
)
def test_validate_workload_entry(spec: dict, error: str | None):
    check(validate("WorkloadEntry", spec), error)


def test_validate_workload_entry_missing_address_with_network_warns():
    outcome = validate("WorkloadEntry", {"network": "network-2"})
    assert outcome.warnings == ['spec.address: address is unset with network "network-2"']
