import base64

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pkg.ca.csr import csr_for, new_key
from security.ca.errors import Refusal
from security.ca.identity import SpiffeId
from security.ca.request import parse_csr
from security.ca.testing import csr_with_two_sans, tampered_csr

TD = "cluster.local"
A = "spiffe://cluster.local/ns/default/sa/a"


def _csr(key, names, extensions=()):
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _refused(csr_pem):
    with pytest.raises(Refusal) as e:
        parse_csr(csr_pem, TD)
    return e.value


def test_a_good_csr_yields_its_key_and_identities():
    key = new_key()
    parsed = parse_csr(csr_for(key, [A, A, "spiffe://cluster.local/ns/default/sa/b"]), TD)
    assert parsed.public_key.public_numbers() == key.public_key().public_numbers()
    assert parsed.identities == (
        SpiffeId.parse(A),
        SpiffeId.parse("spiffe://cluster.local/ns/default/sa/b"),
    )


def test_rsa_csrs_are_accepted():
    parsed = parse_csr(csr_for(new_key("rsa"), A), TD)
    assert isinstance(parsed.public_key, rsa.RSAPublicKey)


@pytest.mark.parametrize(
    ("csr_pem", "message"),
    [
        ("", "invalid CSR: the request has no CSR"),
        ("garbage", "invalid CSR: "),
        (
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "invalid CSR: ",
        ),
    ],
)
def test_garbage_is_an_invalid_argument(csr_pem, message):
    refusal = _refused(csr_pem)
    assert refusal.code.name == "INVALID_ARGUMENT"
    assert refusal.message.startswith(message)


def test_a_csr_changed_after_signing_is_refused():
    forged = tampered_csr(csr_for(new_key(), A), b"sa/a", b"sa/b")
    refusal = _refused(forged)
    assert refusal.code.name == "INVALID_ARGUMENT"
    assert refusal.message == "invalid CSR: the signature does not verify with its public key"


def test_a_csr_without_san_is_refused():
    refusal = _refused(_csr(new_key(), None))
    assert refusal.code.name == "INVALID_ARGUMENT"
    assert refusal.message.startswith("invalid CSR: no subject alternative name")
    assert "spiffe://cluster.local/ns/<namespace>/sa/<account>" in refusal.message


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (x509.DNSName("evil.example.com"), "subject alternative name DNS:evil.example.com"),
        (x509.UniformResourceIdentifier("https://example.com"), "is not a SPIFFE URI"),
        (x509.UniformResourceIdentifier("spiffe://cluster.local/ns/a"), "is not of the form"),
    ],
)
def test_only_spiffe_uris_may_be_asked_for(name, message):
    refusal = _refused(_csr(new_key(), [x509.UniformResourceIdentifier(A), name]))
    assert refusal.code.name == "INVALID_ARGUMENT"
    assert message in refusal.message


def test_another_trust_domain_is_refused_naming_ours():
    refusal = _refused(csr_for(new_key(), "spiffe://evil.org/ns/default/sa/a"))
    assert refusal.code.name == "INVALID_ARGUMENT"
    assert refusal.message == (
        "identity spiffe://evil.org/ns/default/sa/a is outside this CA's trust domain "
        "'cluster.local'"
    )


def test_weak_keys_are_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert "RSA key of 1024 bits" in _refused(csr_for(small, A)).message
    p521 = ec.generate_private_key(ec.SECP521R1())
    assert "EC curve secp521r1 not supported" in _refused(csr_for(p521, A)).message


def test_requested_extensions_other_than_the_san_are_ignored():
    # A CSR may ask to be a CA; parsing keeps only the key and the identities.
    asks_for_ca = _csr(
        new_key(),
        [x509.UniformResourceIdentifier(A)],
        [x509.BasicConstraints(ca=True, path_length=None)],
    )
    parsed = parse_csr(asks_for_ca, TD)
    assert parsed.identities == (SpiffeId.parse(A),)


def test_dns_names_only_as_granted_to_an_identity():
    # Citadel's --custom-dns-names: istiod's certificates may name the host the API server dials.
    istiod = "spiffe://cluster.local/ns/istio-system/sa/istiod"
    grants = {SpiffeId.parse(istiod): {"istiod.istio-system.svc"}}

    def granted(identity):
        return grants.get(identity, set())

    names = [x509.UniformResourceIdentifier(istiod), x509.DNSName("istiod.istio-system.svc")]
    parsed = parse_csr(_csr(new_key(), names), TD, granted)
    assert parsed.dns_names == ("istiod.istio-system.svc",)
    assert parsed.identities == (SpiffeId.parse(istiod),)
    for names, message in [
        ([x509.UniformResourceIdentifier(A), x509.DNSName("istiod.istio-system.svc")],
         f"subject alternative name DNS:istiod.istio-system.svc is not allowed for {A}"),
        ([x509.UniformResourceIdentifier(istiod), x509.DNSName("evil.example.com")],
         "DNS:evil.example.com is not allowed"),
        ([x509.DNSName("istiod.istio-system.svc")], "invalid CSR: no SPIFFE identity"),
    ]:  # fmt: skip
        with pytest.raises(Refusal) as refused:
            parse_csr(_csr(new_key(), names), TD, granted)
        assert refused.value.code.name == "INVALID_ARGUMENT"
        assert message in refused.value.message


def test_two_subject_alternative_name_extensions_are_refused():
    csr = csr_with_two_sans(new_key(), A, "spiffe://cluster.local/ns/default/sa/b")
    assert x509.load_pem_x509_csr(csr.encode()).is_signature_valid  # only the SANs are wrong
    refusal = _refused(csr)
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "2.5.29.17 (subject alternative name) appears more than once" in refusal.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (bytes.fromhex("2a8648ce3d0201"), bytes.fromhex("2a8648ce3d0202")),  # key type unknown
        (bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2a8648ce3d030108")),  # curve unknown
    ],
    ids=["key-type", "curve"],
)
def test_a_public_key_cryptography_cannot_use_is_refused(old, new):
    # Found by request_fuzz: cryptography raises UnsupportedAlgorithm, not ValueError.
    der = x509.load_pem_x509_csr(csr_for(new_key(), A).encode()).public_bytes(
        serialization.Encoding.DER
    )
    assert der.count(old) == 1
    bad = x509.load_der_x509_csr(der.replace(old, new))
    refusal = _refused(bad.public_bytes(serialization.Encoding.PEM).decode())
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal.message.startswith("invalid CSR: ")


def test_a_csr_of_an_unknown_version_is_refused():
    # Found by request_fuzz: cryptography raises InvalidVersion, not ValueError.
    der = x509.load_pem_x509_csr(csr_for(new_key(), A).encode()).public_bytes(
        serialization.Encoding.DER
    )
    version = der.index(b"\x02\x01\x00")  # CertificationRequestInfo's first field, v1 (0)
    bad = der[:version] + b"\x02\x01\x01" + der[version + 3 :]
    body = base64.encodebytes(bad).decode()
    refusal = _refused(
        f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    )
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid CSR version" in refusal.message
