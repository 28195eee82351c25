import datetime
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from security.ca import cadir
from security.ca.authority import CertificateAuthority, IssuePolicy
from security.ca.bundle import CaConfigError, Mode, key_pem
from security.ca.testing import write_plugged_in

OPTIONS = cadir.RootOptions(trust_domain="cluster.local")


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_self_signed_root_is_generated_with_private_files(tmp_path):
    ca_dir = tmp_path / "ca"
    bundle = cadir.load_or_create(ca_dir, OPTIONS)

    assert bundle.mode is Mode.SELF_SIGNED
    assert bundle.root == bundle.cert
    assert bundle.issuers == ()
    assert _mode(ca_dir) == 0o700
    assert _mode(ca_dir / "ca-key.pem") == 0o600
    assert x509.load_pem_x509_certificate((ca_dir / "root-cert.pem").read_bytes()) == bundle.cert
    assert x509.load_pem_x509_certificate((ca_dir / "ca-cert.pem").read_bytes()) == bundle.cert
    assert not [p.name for p in ca_dir.iterdir() if p.name.startswith(".")]  # no temp files

    root = bundle.cert
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "cluster.local"
    )
    assert root.issuer == root.subject
    basic = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert not usage.digital_signature
    assert isinstance(bundle.key, ec.EllipticCurvePrivateKey)
    assert bundle.key.curve.name == "secp256r1"
    lifetime = root.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=3649) < lifetime <= datetime.timedelta(days=3650)


def test_a_restart_reuses_the_root(tmp_path):
    first = cadir.load_or_create(tmp_path / "ca", OPTIONS)
    again = cadir.load_or_create(tmp_path / "ca", OPTIONS)
    assert again.root_fingerprint() == first.root_fingerprint()
    assert key_pem(again.key) == key_pem(first.key)


def test_rsa_roots_and_their_ttl(tmp_path):
    options = cadir.RootOptions(
        trust_domain="example.org", ttl=datetime.timedelta(days=30), key_type="rsa"
    )
    bundle = cadir.load_or_create(tmp_path / "ca", options)
    assert isinstance(bundle.key, rsa.RSAPrivateKey)
    assert bundle.key.key_size == 2048
    org = bundle.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert org == "example.org"
    lifetime = bundle.cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=29) < lifetime <= datetime.timedelta(days=30)


def test_a_key_without_its_certificate_is_regenerated_but_not_the_reverse(tmp_path):
    ca_dir = tmp_path / "ca"
    first = cadir.load_or_create(ca_dir, OPTIONS)
    (ca_dir / "ca-cert.pem").unlink()  # as if the first start died between the two writes
    second = cadir.load_or_create(ca_dir, OPTIONS)
    assert second.root_fingerprint() != first.root_fingerprint()

    (ca_dir / "ca-key.pem").unlink()
    with pytest.raises(CaConfigError, match=r"ca-key\.pem does not; restore the key"):
        cadir.load_or_create(ca_dir, OPTIONS)


def test_a_self_signed_directory_with_a_foreign_key_is_refused(tmp_path):
    ca_dir = tmp_path / "ca"
    cadir.load_or_create(ca_dir, OPTIONS)
    (ca_dir / "ca-key.pem").write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CaConfigError, match="does not match the CA certificate"):
        cadir.load_or_create(ca_dir, OPTIONS)


def test_plugged_in_files_make_an_intermediate_ca(tmp_path):
    ca_dir = tmp_path / "cacerts"
    plugged = write_plugged_in(ca_dir)
    before = {p.name: p.read_bytes() for p in ca_dir.iterdir()}

    bundle = cadir.load_or_create(ca_dir, OPTIONS)

    assert bundle.mode is Mode.PLUGGED_IN
    assert bundle.cert == plugged.intermediate
    assert bundle.issuers == (plugged.root,)
    assert bundle.root == plugged.root
    assert {p.name: p.read_bytes() for p in ca_dir.iterdir()} == before  # never written


def test_a_plugged_in_chain_without_the_root_is_completed_from_root_cert(tmp_path):
    ca_dir = tmp_path / "cacerts"
    plugged = write_plugged_in(ca_dir)
    (ca_dir / "cert-chain.pem").write_bytes((ca_dir / "ca-cert.pem").read_bytes())
    bundle = cadir.load_or_create(ca_dir, OPTIONS)
    assert bundle.chain_after_leaf() == [plugged.intermediate, plugged.root]


def test_a_plugged_in_key_that_is_not_the_certificates_is_refused(tmp_path):
    ca_dir = tmp_path / "cacerts"
    write_plugged_in(ca_dir)
    (ca_dir / "ca-key.pem").write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CaConfigError, match="the CA key does not match the CA certificate"):
        cadir.load_or_create(ca_dir, OPTIONS)


def test_a_plugged_in_chain_that_does_not_verify_is_refused(tmp_path):
    ca_dir = tmp_path / "cacerts"
    write_plugged_in(ca_dir)
    other = write_plugged_in(tmp_path / "other")
    # root-cert.pem from another operator: the intermediate was not signed by it.
    (ca_dir / "root-cert.pem").write_bytes((tmp_path / "other" / "root-cert.pem").read_bytes())
    (ca_dir / "cert-chain.pem").write_bytes((ca_dir / "ca-cert.pem").read_bytes())
    with pytest.raises(CaConfigError, match="does not verify against") as e:
        cadir.load_or_create(ca_dir, OPTIONS)
    assert "plugged-in CA in" in str(e.value)
    assert other.root.subject.rfc4514_string() in str(e.value)


def test_a_plugged_in_signing_certificate_that_is_not_a_ca_is_refused(tmp_path):
    ca_dir = tmp_path / "cacerts"
    write_plugged_in(ca_dir)
    # A leaf of the plugged CA is no CA itself.
    authority = CertificateAuthority(cadir.load_or_create(ca_dir, OPTIONS), IssuePolicy())
    server = authority.issue_server_cert(["istio-ca"], [])
    (ca_dir / "ca-cert.pem").write_bytes(server.chain_pem)
    (ca_dir / "ca-key.pem").write_bytes(server.key_pem)
    with pytest.raises(CaConfigError, match="CA:FALSE; not a CA"):
        cadir.load_or_create(ca_dir, OPTIONS)


def test_an_unreadable_file_names_itself(tmp_path):
    ca_dir = tmp_path / "cacerts"
    write_plugged_in(ca_dir)
    (ca_dir / "ca-key.pem").write_text("not a key")
    with pytest.raises(CaConfigError, match=r"ca-key.pem: not an unencrypted PEM private key"):
        cadir.load_or_create(ca_dir, OPTIONS)
