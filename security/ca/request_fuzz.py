"""Fuzzing the CA's request decoder: whatever the bytes, a CreateCertificate request is parsed
into a signing request or refused with a Refusal carrying INVALID_ARGUMENT, nothing else.

The decoder is what a request goes through before anything is signed: the bytes parsed as
an IstioCertificateRequest (pkg/grpcserver, refused with ValueError), then its CSR parsed
and checked (request.parse_csr: PEM, DER, signature, key, SANs, identities). What it
accepts must name only identities of the trust domain and DNS names it granted.

The property (`check_request_bytes`, `check_csr`) is shared by the bounded run in
`make test` (request_fuzz_test.py, hypothesis) and by the long run of this module under
atheris, which mutates real CSRs' DER with coverage guidance:

    PYTHONPATH=. .venv/bin/python -m security.ca.request_fuzz -atheris_runs=100000

(any libFuzzer flag works; the corpus grows in run/fuzz/ca-request/). libFuzzer prints the
inputs it ran (`#N DONE`); a crash prints its traceback, is saved as crash-<sha1> and exits
non-zero.
"""

from __future__ import annotations

import base64
import pathlib
import sys

import grpc

from api.security.v1alpha1 import ca_pb2
from pkg.grpcserver.requests import parse_request
from security.ca.errors import Refusal
from security.ca.identity import SpiffeId
from security.ca.request import SigningRequest, parse_csr

TRUST_DOMAIN = "cluster.local"
GRANTED_DNS = ("reviews.default.svc", "*.example.com")


def dns_grants(identity: SpiffeId) -> tuple[str, ...]:
    return GRANTED_DNS if identity.namespace == "default" else ()


def check_request_bytes(data: bytes) -> SigningRequest | None:
    """Decodes `data` as CreateCertificate's request; fails if the decoder misbehaves."""
    try:
        request = parse_request(ca_pb2.IstioCertificateRequest, data)
    except ValueError as error:
        assert str(error), "a refusal must say why"
        return None
    return check_csr(request.csr)


def check_csr(csr_pem: str) -> SigningRequest | None:
    try:
        parsed = parse_csr(csr_pem, TRUST_DOMAIN, dns_grants)
    except Refusal as refusal:
        assert refusal.code is grpc.StatusCode.INVALID_ARGUMENT, refusal.code
        assert refusal.message, "a refusal must say why"
        return None
    assert parsed.identities, "a CSR is signed for at least one identity"
    assert all(i.trust_domain == TRUST_DOMAIN for i in parsed.identities)
    assert set(parsed.dns_names) <= set(GRANTED_DNS)
    return parsed


def pem_of(der: bytes) -> str:
    """DER (well-formed or not) as a PEM CSR block."""
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def seeds() -> list[bytes]:
    """Real CSRs' DER to start from: one identity, two, a granted DNS name, two SAN extensions."""
    from cryptography import x509  # imported here: only the seeds need the builders
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pkg.ca.csr import csr_for
    from security.ca.testing import csr_with_two_sans

    key = ec.generate_private_key(ec.SECP256R1())  # ECDSA: the two-SAN CSR is signed so
    a = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/a"
    b = f"spiffe://{TRUST_DOMAIN}/ns/default/sa/b"
    pems = [csr_for(key, a), csr_for(key, [a, b]), csr_with_two_sans(key, a, b)]
    return [
        x509.load_pem_x509_csr(p.encode()).public_bytes(serialization.Encoding.DER) for p in pems
    ]


def _one_input(data: bytes) -> None:
    check_csr(pem_of(data))
    check_request_bytes(data)


def main(argv: list[str]) -> None:
    import atheris  # only the long run needs it

    atheris.instrument_all()
    corpus = pathlib.Path("run/fuzz/ca-request")
    corpus.mkdir(parents=True, exist_ok=True)
    for number, seed in enumerate(seeds()):
        (corpus / f"seed-{number}.der").write_bytes(seed)
    atheris.Setup([*argv, str(corpus)], _one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
