"""Gateway servers and their TLS; parameter ids are Istio's case names (TestValidateServer,
TestValidateGateway, TestValidateTlsOptions)."""

from __future__ import annotations

import pytest

from pkg.config.validation.testing import check, validate

HTTP = {"number": 80, "name": "http", "protocol": "HTTP"}
HTTPS = {"number": 443, "name": "https", "protocol": "HTTPS"}


def gateway(**server) -> dict:
    return {"servers": [{"hosts": ["foo.bar.com"], "port": HTTP, **server}]}


@pytest.mark.parametrize(
    ("server", "error"),
    [
        pytest.param({"hosts": []}, "server config must contain at least one host", id="empty"),
        pytest.param({}, None, id="happy"),
        pytest.param({"hosts": ["1.1.1.1"]}, None, id="happy ip"),
        pytest.param({"hosts": ["ns1/foo.bar.com"]}, None, id="happy ns/name"),
        pytest.param({"hosts": ["*/foo.bar.com"]}, None, id="happy */name"),
        pytest.param({"hosts": ["./foo.bar.com"]}, None, id="happy ./name"),
        pytest.param(
            {"hosts": ["~/foo.bar.com"]},
            'invalid namespace value "~" in gateway',
            id="invalid ~/name",
        ),
        pytest.param(
            {"hosts": ["ns1/foo.*.bar.com"]}, "domain name", id="invalid domain ns/name format"
        ),
        pytest.param({"hosts": ["foo.*.bar.com"]}, "domain name", id="invalid domain"),
        pytest.param(
            {"hosts": ["foo"]},
            "short names (non FQDN) are not allowed",
            id="invalid short name host",
        ),
        pytest.param(
            {"port": {"number": 66000, "name": "http", "protocol": "HTTP"}},
            "port number 66000 must be in the range 1..65535",
            id="invalid port",
        ),
        pytest.param(
            {"port": HTTPS},
            "server must have TLS settings for HTTPS/TLS protocols",
            id="no tls on HTTPS",
        ),
        pytest.param(
            {"tls": {"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k"}},
            "server cannot have TLS settings for plain text HTTP ports",
            id="tls on HTTP",
        ),
        pytest.param({"tls": {"httpsRedirect": True}}, None, id="tls redirect on HTTP"),
        pytest.param(
            {
                "port": {"number": 31400, "name": "tcp", "protocol": "TCP"},
                "tls": {"mode": "SIMPLE", "credentialName": "c"},
            },
            "server cannot have TLS settings for non HTTPS/TLS ports",
            id="tls on TCP",
        ),
        pytest.param({"bind": "127.0.0.1"}, None, id="bind ip"),
        pytest.param(
            {
                "bind": "unix:///@foo/bar.sock",
                "port": {"number": 80, "name": "http", "protocol": "HTTP"},
            },
            "port number must be 0 for unix domain socket",
            id="bind unix path with invalid port",
        ),
        pytest.param(
            {
                "bind": "unix:///@foo/bar.sock",
                "port": {"number": 0, "name": "http", "protocol": "HTTP"},
            },
            None,
            id="bind unix path",
        ),
        pytest.param({"bind": "foo.bar"}, "foo.bar is not a valid IP", id="bind bad ip"),
        pytest.param(
            {"port": {"number": 80, "protocol": "HTTP"}},
            "port name must be set",
            id="port without name",
        ),
        pytest.param(
            {"port": {"number": 80, "name": "x", "protocol": "fancy"}},
            'invalid protocol "fancy"',
            id="invalid protocol",
        ),
    ],
)
def test_validate_server(server: dict, error: str | None):
    check(validate("Gateway", gateway(**server)), error)


@pytest.mark.parametrize(
    ("spec", "error", "name"),
    [
        pytest.param({}, "gateway must have at least one server", "gw", id="empty"),
        pytest.param(gateway(), None, "gw", id="happy domain"),
        pytest.param(
            {
                "servers": [
                    {"hosts": ["foo.bar.com"], "port": HTTP},
                    {
                        "hosts": ["foo.bar.com"],
                        "port": {"number": 81, "name": "http", "protocol": "HTTP"},
                    },
                ]
            },
            "port names in servers must be unique: duplicate name http",
            "gw",
            id="duplicate port names",
        ),
        pytest.param(
            gateway(hosts=["*.foo.com", "*bar.com"]),
            "partial wildcard",
            "gw",
            id="invalid partial wildcard",
        ),
        pytest.param(
            gateway(), 'invalid gateway name: "my.gw"', "my.gw", id="invalid gateway name"
        ),
    ],
)
def test_validate_gateway(spec: dict, error: str | None, name: str):
    check(validate("Gateway", spec, name=name), error)


def test_validate_gateway_invalid_https_https_redirect_warns():
    spec = {
        "servers": [
            {
                "hosts": ["a.com"],
                "port": HTTPS,
                "tls": {"httpsRedirect": True, "mode": "SIMPLE", "credentialName": "c"},
            }
        ]
    }
    outcome = validate("Gateway", spec)
    assert outcome.ok
    assert outcome.has_warning("tls.httpsRedirect should only be used with http servers")


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        pytest.param(
            {
                "mode": "SIMPLE",
                "serverCertificate": "Captain Jean-Luc Picard",
                "privateKey": "Khan Noonien Singh",
            },
            None,
            id="simple",
        ),
        pytest.param(
            {"mode": "SIMPLE", "credentialName": "sds-name"},
            None,
            id="simple sds with client bundle",
        ),
        pytest.param(
            {"mode": "SIMPLE", "privateKey": "k"},
            "SIMPLE TLS requires a server certificate",
            id="simple no server cert",
        ),
        pytest.param(
            {"mode": "SIMPLE", "serverCertificate": "c"},
            "SIMPLE TLS requires a private key",
            id="simple no private key",
        ),
        pytest.param(
            {
                "mode": "SIMPLE",
                "serverCertificate": "c",
                "privateKey": "k",
                "tlsCertificates": [{"serverCertificate": "c", "privateKey": "k"}],
            },
            "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified",
            id="simple with both server cert and tls certs",
        ),
        pytest.param(
            {"mode": "MUTUAL", "serverCertificate": "c", "privateKey": "k", "caCertificates": "ca"},
            None,
            id="mutual",
        ),
        pytest.param({"mode": "MUTUAL", "credentialName": "sds-name"}, None, id="mutual sds"),
        pytest.param(
            {"mode": "MUTUAL", "serverCertificate": "c", "privateKey": "k"},
            "MUTUAL TLS requires a client CA bundle",
            id="mutual no client CA bundle",
        ),
        pytest.param({"mode": "PASSTHROUGH"}, None, id="pass through sds no certs"),
        pytest.param({"mode": "ISTIO_MUTUAL"}, None, id="istio_mutual no certs"),
        pytest.param(
            {"mode": "ISTIO_MUTUAL", "serverCertificate": "c"},
            "ISTIO_MUTUAL TLS cannot have associated server certificate",
            id="istio_mutual with server cert",
        ),
        pytest.param(
            {"mode": "ISTIO_MUTUAL", "credentialName": "c"},
            "ISTIO_MUTUAL TLS cannot have associated credentialName",
            id="istio_mutual with credential name",
        ),
        pytest.param(
            {"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k", "caCrl": "crl"},
            "CRL is not supported with SIMPLE TLS",
            id="crl specified for SIMPLE TLS",
        ),
    ],
)
def test_validate_tls_options(tls: dict, error: str | None):
    check(
        validate("Gateway", {"servers": [{"hosts": ["a.com"], "port": HTTPS, "tls": tls}]}), error
    )


def test_validate_tls_options_invalid_cipher_suites_warn():
    tls = {
        "mode": "SIMPLE",
        "credentialName": "c",
        "cipherSuites": ["not-a-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    }
    outcome = validate("Gateway", {"servers": [{"hosts": ["a.com"], "port": HTTPS, "tls": tls}]})
    assert outcome.ok
    assert outcome.has_warning("ignoring invalid cipher suites: [not-a-cipher]")
