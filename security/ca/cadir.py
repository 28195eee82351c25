"""The CA directory: where the signing key and certificates live, found the way istiod does.

Two layouts, told apart by which files are present:

- plugged-in (Istio's `cacerts` secret): `ca-cert.pem`, `ca-key.pem`, `root-cert.pem` and
  `cert-chain.pem` all present. The CA signs as an intermediate of an operator's root and
  never writes to the directory.
- self-signed (Istio's `istio-ca-secret`): `ca-cert.pem` + `ca-key.pem` are loaded if present;
  otherwise a root is generated and persisted (key 0600, directory 0700), with
  `root-cert.pem` beside it for clients, so a restart keeps the same root.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import pathlib
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from security.ca.bundle import (
    CaConfigError,
    KeyCertBundle,
    Mode,
    SigningKey,
    build_bundle,
    key_pem,
    load_certs,
    load_key,
    pem,
    with_root,
)

log = logging.getLogger("security.ca")

CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
ROOT_CERT = "root-cert.pem"
CERT_CHAIN = "cert-chain.pem"
PLUGGED_FILES = (CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN)


@dataclasses.dataclass(frozen=True)
class RootOptions:
    """How to make a self-signed root when the directory has none."""

    trust_domain: str = "cluster.local"
    ttl: datetime.timedelta = datetime.timedelta(days=3650)  # CITADEL_SELF_SIGNED_CA_CERT_TTL
    key_type: str = "ec"  # "ec" (P-256) or "rsa" (2048, CITADEL_SELF_SIGNED_CA_RSA_KEY_SIZE)


def load_or_create(ca_dir: pathlib.Path, options: RootOptions) -> KeyCertBundle:
    """The bundle from `ca_dir`: plugged-in if all four cacerts files exist, else self-signed."""
    if all((ca_dir / name).is_file() for name in PLUGGED_FILES):
        return load_plugged_in(ca_dir)
    return load_or_create_self_signed(ca_dir, options)


def load_plugged_in(ca_dir: pathlib.Path) -> KeyCertBundle:
    key = load_key(_read(ca_dir / CA_KEY), str(ca_dir / CA_KEY))
    certs = load_certs(_read(ca_dir / CA_CERT), str(ca_dir / CA_CERT))
    chain = load_certs(_read(ca_dir / CERT_CHAIN), str(ca_dir / CERT_CHAIN))
    roots = load_certs(_read(ca_dir / ROOT_CERT), str(ca_dir / ROOT_CERT))
    if len(roots) != 1:
        raise CaConfigError(f"{ca_dir / ROOT_CERT}: want one root certificate, found {len(roots)}")
    try:
        return with_root(key, certs[0], [*certs[1:], *chain], roots[0], Mode.PLUGGED_IN)
    except CaConfigError as e:
        raise CaConfigError(f"plugged-in CA in {ca_dir}: {e}") from None


def load_or_create_self_signed(ca_dir: pathlib.Path, options: RootOptions) -> KeyCertBundle:
    cert_path, key_path = ca_dir / CA_CERT, ca_dir / CA_KEY
    if cert_path.is_file() and key_path.is_file():
        key = load_key(_read(key_path), str(key_path))
        certs = load_certs(_read(cert_path), str(cert_path))
        try:
            bundle = build_bundle(key, certs[0], certs[1:], Mode.SELF_SIGNED)
        except CaConfigError as e:
            raise CaConfigError(f"self-signed CA in {ca_dir}: {e}") from None
        if not (ca_dir / ROOT_CERT).is_file():
            _write_atomic(ca_dir / ROOT_CERT, bundle.root_pem(), 0o644)
        log.info("loaded the self-signed CA from %s", ca_dir)
        return bundle
    if cert_path.is_file():
        # The root may already be in every workload's trust store: replacing it silently
        # would cut them all off. Make the operator choose.
        raise CaConfigError(
            f"{cert_path} exists but {key_path} does not; restore the key or remove "
            f"{cert_path} to generate a new root"
        )
    key, cert = generate_root(options)
    ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ca_dir, 0o700)
    # Key first: a crash before the certificate is written leaves a directory that the next
    # start treats as empty, never a certificate without its key.
    _write_atomic(key_path, key_pem(key), 0o600)
    _write_atomic(cert_path, pem(cert).encode(), 0o644)
    _write_atomic(ca_dir / ROOT_CERT, pem(cert).encode(), 0o644)
    log.info("generated a self-signed root for %s in %s", options.trust_domain, ca_dir)
    return build_bundle(key, cert, [], Mode.SELF_SIGNED)


def generate_root(
    options: RootOptions, *, now: datetime.datetime | None = None
) -> tuple[SigningKey, x509.Certificate]:
    key = new_signing_key(options.key_type)
    now = now or datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, options.trust_domain)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + options.ttl)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def new_signing_key(key_type: str) -> SigningKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise CaConfigError(f"unknown key type {key_type!r}; want ec or rsa")


def _read(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CaConfigError(f"{path}: {e.strerror}") from None


def _write_atomic(path: pathlib.Path, data: bytes, mode: int) -> None:
    """Write via a temporary file in the same directory, fsync, rename: never a torn file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    replaced = False
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        replaced = True
    finally:
        if not replaced:
            pathlib.Path(tmp).unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
