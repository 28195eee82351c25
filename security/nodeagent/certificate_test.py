import re

import pytest

from security.nodeagent import keys
from security.nodeagent.certificate import (
    InvalidChainError,
    certificate_uris,
    check_chain,
    parse_chain,
)
from security.nodeagent.fakeca import FakeCa
from security.nodeagent.testing import FakeClock

SPIFFE = "spiffe://cluster.local/ns/default/sa/reviews"


def _signed(ca: FakeCa, spiffe: str = SPIFFE, ttl: int = 3600) -> tuple[keys.PrivateKey, list[str]]:
    key = keys.new_key()
    return key, ca.sign_csr(keys.csr_for(key, spiffe), ttl)


def test_chain_with_intermediate_is_split_leaf_intermediates_root() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock, intermediate=True)
    key, pems = _signed(ca)
    chain = parse_chain(pems)
    assert len(pems) == 3
    assert chain.intermediate_pems == (pems[1].strip() + "\n",)
    assert chain.root_pem == ca.root_pem.strip() + "\n"
    assert chain.uris == (SPIFFE,)
    assert chain.not_after.timestamp() == clock.now() + 3600
    assert chain.serial_hex == format(chain.serial, "x")
    # What Envoy presents: leaf and intermediate, never the root.
    presented = chain.certificate_chain_pem.decode()
    assert presented.count("BEGIN CERTIFICATE") == 2
    assert ca.root_pem.strip() not in presented
    assert certificate_uris(chain.leaf_pem) == (SPIFFE,)
    check_chain(chain, key, SPIFFE, clock.now())


def test_leaf_alone_has_no_root() -> None:
    ca = FakeCa(clock=FakeClock())
    _, pems = _signed(ca)
    chain = parse_chain(pems[:1])
    assert chain.root_pem is None
    assert chain.intermediate_pems == ()


def test_empty_or_garbled_chains_are_refused() -> None:
    with pytest.raises(InvalidChainError, match="empty"):
        parse_chain([])
    with pytest.raises(InvalidChainError, match=r"cert_chain\[1\]"):
        parse_chain([_signed(FakeCa(clock=FakeClock()))[1][0], "not a certificate"])


def test_a_leaf_for_another_key_is_refused() -> None:
    clock = FakeClock()
    _, pems = _signed(FakeCa(clock=clock))
    with pytest.raises(InvalidChainError, match="key"):
        check_chain(parse_chain(pems), keys.new_key(), SPIFFE, clock.now())


def test_a_leaf_for_another_identity_is_refused() -> None:
    clock = FakeClock()
    key, pems = _signed(FakeCa(clock=clock), "spiffe://cluster.local/ns/default/sa/other")
    with pytest.raises(InvalidChainError, match=re.escape(f"not {SPIFFE}")):
        check_chain(parse_chain(pems), key, SPIFFE, clock.now())


def test_an_expired_leaf_is_refused() -> None:
    clock = FakeClock()
    key, pems = _signed(FakeCa(clock=clock), ttl=10)
    with pytest.raises(InvalidChainError, match="expired"):
        check_chain(parse_chain(pems), key, SPIFFE, clock.now() + 11)
