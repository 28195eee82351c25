"""Bounded fuzzing of the CA's request decoder (hypothesis): any bytes are parsed or refused
INVALID_ARGUMENT.

Four generators: random bytes as the request and as a CSR's DER; real CSRs with DER bytes
cut, flipped or inserted (the signature no longer verifies, or the structure breaks);
correctly signed CSRs asking for SANs of every kind (SPIFFE URIs in and out of the trust
domain, odd URIs, DNS names granted or not, IPs, emails, two SAN extensions); and PEM text
around them. `make test` runs the "ci" profile (fixed examples, a few seconds); a longer,
random run:

    HYPOTHESIS_PROFILE=fuzz-long PYTHONPATH=. .venv/bin/pytest security/ca/request_fuzz_test.py \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from api.security.v1alpha1 import ca_pb2
from pkg.testing.fuzz import bounded
from security.ca import request_fuzz
from security.ca.testing import csr_with_two_sans

FUZZ = bounded(200)

SEEDS = request_fuzz.seeds()
KEY = ec.generate_private_key(
    ec.SECP256R1()
)  # one (ECDSA, as the two-SAN CSR needs) key: generating one per example would be most of the run


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes):
    request_fuzz.check_request_bytes(data)
    request_fuzz.check_csr(request_fuzz.pem_of(data))


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        match draw(st.sampled_from(["cut", "flip", "insert"])):
            case "cut":
                del data[at:]
            case "flip" if data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            case _:
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@FUZZ
@given(_mutated())
def test_real_csrs_mutated(der: bytes):
    pem = request_fuzz.pem_of(der)
    request_fuzz.check_csr(pem)
    request_fuzz.check_request_bytes(ca_pb2.IstioCertificateRequest(csr=pem).SerializeToString())


_SEGMENT = st.one_of(
    st.sampled_from(["default", "a", "*", "", "..", "x" * 70]), st.text("az09-.%", max_size=8)
)
_URIS = st.one_of(
    st.builds(
        lambda td, ns, sa: f"spiffe://{td}/ns/{ns}/sa/{sa}",
        st.sampled_from(["cluster.local", "other.domain", "", "CLUSTER.LOCAL", "a" * 300]),
        _SEGMENT,
        _SEGMENT,
    ),
    st.sampled_from(["spiffe://", "spiffe://cluster.local", "https://x", "spiffe:///ns/a/sa/b"]),
)
_NAMES = st.one_of(
    _URIS.map(x509.UniformResourceIdentifier),
    st.sampled_from([*request_fuzz.GRANTED_DNS, "evil.com", "*", "a.example.com"]).map(
        x509.DNSName
    ),
    st.just(x509.IPAddress(ipaddress.ip_address("10.0.0.1"))),
    st.just(x509.RFC822Name("a@b.c")),
)


@FUZZ
@given(st.lists(_NAMES, max_size=4))
def test_signed_csrs_asking_for_any_names(names):
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    pem = builder.sign(KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    request_fuzz.check_csr(pem)


@FUZZ
@given(_URIS, _URIS)
def test_two_san_extensions(first: str, second: str):
    assert request_fuzz.check_csr(csr_with_two_sans(KEY, first, second)) is None


@FUZZ
@given(st.text(max_size=200), st.sampled_from(SEEDS))
def test_pem_text_around_a_csr(text: str, der: bytes):
    request_fuzz.check_csr(text)
    request_fuzz.check_csr(text + request_fuzz.pem_of(der) + text)


def test_the_seeds():
    assert request_fuzz.check_csr(request_fuzz.pem_of(SEEDS[0])) is not None
    assert request_fuzz.check_csr(request_fuzz.pem_of(SEEDS[2])) is None  # two SAN extensions
