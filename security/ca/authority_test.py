import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pkg.ca.csr import new_key
from security.ca import cadir
from security.ca.authority import CertificateAuthority, IssuePolicy
from security.ca.identity import SpiffeId

ID = SpiffeId.parse("spiffe://cluster.local/ns/default/sa/a")
HOUR = datetime.timedelta(hours=1)


def _authority(tmp_path, **policy):
    bundle = cadir.load_or_create(tmp_path / "ca", cadir.RootOptions())
    return CertificateAuthority(bundle, IssuePolicy(**policy))


def _leaf(chain):
    return x509.load_pem_x509_certificate(chain[0].encode())


def test_a_workload_leaf_has_istios_profile(tmp_path):
    authority = _authority(tmp_path)
    key = new_key()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    chain = authority.sign_workload(key.public_key(), [ID], 3600, now=now)
    leaf = _leaf(chain)

    assert authority.issued == 1
    assert chain[1:] == [authority.bundle.root_pem().decode()]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    assert leaf.issuer == authority.bundle.cert.subject
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "cluster.local"
    )
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment
    assert not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [str(ID)]
    assert leaf.not_valid_before_utc == now - datetime.timedelta(minutes=1)  # clock skew
    assert leaf.not_valid_after_utc == now + HOUR

    # An independent RFC 5280 verifier accepts it as a client certificate of this root.
    store = verification.Store([authority.bundle.root])
    verifier = verification.PolicyBuilder().store(store).build_client_verifier()
    verified = verifier.verify(leaf, [])
    assert verified.subjects == [x509.UniformResourceIdentifier(str(ID))]


def test_serials_are_random(tmp_path):
    authority = _authority(tmp_path)
    key = new_key()
    serials = {_leaf(authority.sign_workload(key.public_key(), [ID], 60)).serial_number}
    serials.add(_leaf(authority.sign_workload(key.public_key(), [ID], 60)).serial_number)
    assert len(serials) == 2
    assert all(s.bit_length() > 64 for s in serials)


def test_ttl_default_requested_and_capped(tmp_path):
    authority = _authority(tmp_path, default_ttl=2 * HOUR, max_ttl=10 * HOUR)
    assert authority.ttl_for(0) == 2 * HOUR
    assert authority.ttl_for(-5) == 2 * HOUR
    assert authority.ttl_for(1800) == datetime.timedelta(minutes=30)
    assert authority.ttl_for(11 * 3600) == 10 * HOUR
    assert authority.ttl_for(2**63 - 1) == 10 * HOUR


def test_a_leaf_never_outlives_its_issuer(tmp_path):
    short = cadir.RootOptions(ttl=datetime.timedelta(days=2))
    bundle = cadir.load_or_create(tmp_path / "ca", short)
    authority = CertificateAuthority(bundle, IssuePolicy(max_ttl=datetime.timedelta(days=90)))
    leaf = _leaf(authority.sign_workload(new_key().public_key(), [ID], 30 * 86400))
    assert leaf.not_valid_after_utc == bundle.cert.not_valid_after_utc


def test_the_serving_certificate_verifies_for_istio_ca(tmp_path):
    authority = _authority(tmp_path)
    serving = authority.issue_server_cert(["istio-ca", "localhost"], ["127.0.0.1"])
    leaf, *rest = x509.load_pem_x509_certificates(serving.chain_pem)
    assert rest == [authority.bundle.root]
    serialization.load_pem_private_key(serving.key_pem, None)
    store = verification.Store([authority.bundle.root])
    for name in (
        x509.DNSName("istio-ca"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ):
        verifier = verification.PolicyBuilder().store(store).build_server_verifier(name)
        verifier.verify(leaf, [])
    assert authority.issued == 0  # only workload certificates count
