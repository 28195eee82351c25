from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from security.nodeagent import keys

SPIFFE = "spiffe://cluster.local/ns/default/sa/reviews"


def test_default_key_is_ecdsa_p256() -> None:
    key = keys.new_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"


def test_rsa_key_is_2048_bits() -> None:
    key = keys.new_key(keys.KeyType.RSA)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_every_key_is_fresh() -> None:
    assert keys.public_key_der(keys.new_key()) != keys.public_key_der(keys.new_key())


def test_csr_carries_the_spiffe_uri_and_the_key() -> None:
    for key_type in keys.KeyType:
        key = keys.new_key(key_type)
        csr = x509.load_pem_x509_csr(keys.csr_for(key, SPIFFE).encode())
        assert csr.is_signature_valid
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]
        assert sans.get_values_for_type(x509.DNSName) == []
        assert list(csr.subject) == []
        assert csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == keys.public_key_der(key)


def test_private_key_pem_is_unencrypted_pkcs8() -> None:
    key = keys.new_key()
    pem = keys.private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert keys.public_key_der(loaded) == keys.public_key_der(key)  # type: ignore[arg-type]
