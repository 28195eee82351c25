import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pkg.testing.wait import eventually
from security.nodeagent import keys
from security.nodeagent.cache import CacheOptions, SecretCache
from security.nodeagent.caclient import CaError
from security.nodeagent.fakeca import FakeCa
from security.nodeagent.identity import Identity
from security.nodeagent.testing import FakeClock, run_async

REVIEWS = Identity("cluster.local", "bookinfo", "reviews")
RATINGS = Identity("cluster.local", "bookinfo", "ratings")


@contextlib.asynccontextmanager
async def running(cache: SecretCache) -> AsyncIterator[SecretCache]:
    async with asyncio.TaskGroup() as tasks:
        started = asyncio.Event()
        task = tasks.create_task(cache.run(started=started), name="cache")
        await started.wait()
        try:
            yield cache
        finally:
            task.cancel()


def make_cache(ca: FakeCa, clock: FakeClock, seed: int = 1, **options: object) -> SecretCache:
    return SecretCache(
        signer=ca,
        options=CacheOptions(**options),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(seed),
    )


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def renew_point(cache: SecretCache, identity: Identity = REVIEWS) -> float:
    secret = cache.workload_secret(identity)
    assert secret is not None
    return secret.renew_at


def serial(cache: SecretCache, identity: Identity = REVIEWS) -> int:
    secret = cache.workload_secret(identity)
    assert secret is not None
    return secret.chain.serial


@run_async
async def test_first_watcher_gets_a_certificate_for_its_identity() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    cache = make_cache(ca, clock, ttl=3600)
    async with running(cache):
        notified = Counter()
        cache.watch(REVIEWS, notified)
        await clock.settle()
        secret = cache.workload_secret(REVIEWS)
        assert secret is not None
        assert secret.chain.uris == (REVIEWS.spiffe_id,)
        assert ca.requests == [(REVIEWS.spiffe_id, 3600)]
        assert notified.count == 1
        assert cache.root_bundle() == ca.root_pem.encode()
        # The key served is the one the leaf certifies.
        loaded = serialization.load_pem_private_key(secret.key_pem, password=None)
        leaf = x509.load_pem_x509_certificate(secret.chain.leaf_pem.encode())
        assert keys.public_key_der(loaded) == leaf.public_key().public_bytes(  # type: ignore[arg-type]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        [status] = cache.status()
        assert status.identity == REVIEWS.spiffe_id
        assert status.serial == format(secret.chain.serial, "x")
        assert status.issued == 1
        assert status.rotations == 0
        assert status.last_error is None
        assert status.watchers == 1


@run_async
async def test_renewal_when_the_grace_ratio_of_the_lifetime_is_left_with_jitter() -> None:
    clock = FakeClock()
    # The CA backdates notBefore by a minute; the lifetime counts from the request, so the
    # renewal point does not move earlier by half of that minute.
    ca = FakeCa(clock=clock, backdate=60)
    cache = make_cache(ca, clock, ttl=1000, grace_ratio=0.5, grace_jitter=0.01)
    start = clock.now()
    async with running(cache):
        identities = [Identity("cluster.local", "ns", f"sa{i}") for i in range(20)]
        for identity in identities:
            cache.watch(identity, lambda: None)
        await clock.settle()
        points = []
        for identity in identities:
            secret = cache.workload_secret(identity)
            assert secret is not None
            points.append(secret.renew_at - start)
        assert all(490 <= p <= 510 for p in points), points
        assert len(set(points)) == len(points)  # jittered

        first = min(points)
        who = identities[points.index(first)]
        before = serial(cache, who)
        await clock.advance(first - 1)
        assert ca.calls == 20
        await clock.advance(1.0001)
        assert ca.calls == 21
        assert serial(cache, who) != before
        status = {s.identity: s for s in cache.status()}[who.spiffe_id]
        assert status.rotations == 1
        assert status.issued == 2


@run_async
async def test_grace_ratio_is_the_fraction_of_the_lifetime_left() -> None:
    clock = FakeClock()
    cache = make_cache(FakeCa(clock=clock), clock, ttl=1000, grace_ratio=0.2, grace_jitter=0)
    async with running(cache):
        cache.watch(REVIEWS, lambda: None)
        await clock.settle()
        secret = cache.workload_secret(REVIEWS)
        assert secret is not None
        assert secret.renew_at == pytest.approx(clock.now() + 800)


@run_async
async def test_renewal_follows_the_lifetime_the_ca_granted() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock, max_ttl=100)
    cache = make_cache(ca, clock, ttl=3600, grace_jitter=0)
    async with running(cache):
        cache.watch(REVIEWS, lambda: None)
        await clock.settle()
        assert clock.deadlines() == [pytest.approx(clock.now() + 50)]
        await clock.advance(50)
        assert ca.calls == 2


@run_async
async def test_rotation_repeats_and_notifies_every_watcher_of_the_identity() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    # The configured root is the CA's: the first chains change no trust bundle, so each
    # watcher hears of its own identity only.
    cache = make_cache(ca, clock, ttl=100, fallback_root_pem=ca.root_pem.encode())
    async with running(cache):
        first, second, other = Counter(), Counter(), Counter()
        cache.watch(REVIEWS, first)
        cache.watch(REVIEWS, second)
        cache.watch(RATINGS, other)
        await clock.settle()
        assert sorted(r[0] for r in ca.requests) == sorted(
            [REVIEWS.spiffe_id, RATINGS.spiffe_id]
        )  # one certificate per identity, shared by its watchers
        serials = {serial(cache)}
        for _ in range(5):
            await clock.advance(52)
            serials.add(serial(cache))
        assert len(serials) == 6
        assert first.count == second.count == 6
        assert other.count == 6
        assert {s.identity: s.rotations for s in cache.status()} == {
            RATINGS.spiffe_id: 5,
            REVIEWS.spiffe_id: 5,
        }


@run_async
async def test_ca_down_backs_off_keeps_serving_and_recovers() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    cache = make_cache(ca, clock, ttl=3600, grace_jitter=0, backoff_min=0.2, backoff_max=30)
    async with running(cache):
        notified = Counter()
        cache.watch(REVIEWS, notified)
        await clock.settle()
        served = serial(cache)
        ca.fail_with = "CA unavailable"
        await clock.advance_to(renew_point(cache))

        delays = []
        for _ in range(12):
            [deadline] = clock.deadlines()
            delays.append(deadline - clock.now())
            await clock.advance_to(deadline)
        nominal = [min(0.2 * 2**k, 30.0) for k in range(12)]
        for delay, expected in zip(delays, nominal, strict=True):
            assert 0.8 * expected - 1e-9 <= delay <= expected + 1e-9, (delays, nominal)
        assert serial(cache) == served  # still the current certificate
        assert notified.count == 1
        [status] = cache.status()
        assert status.failures == 13
        assert status.last_error == "CA unavailable"

        ca.fail_with = None
        [deadline] = clock.deadlines()
        await clock.advance_to(deadline)
        assert serial(cache) != served
        assert notified.count == 2
        [status] = cache.status()
        assert status.rotations == 1
        assert status.failures == 13  # total; the back-off starts over:

        ca.fail_with = "down again"
        await clock.advance_to(renew_point(cache))
        [deadline] = clock.deadlines()
        assert 0.16 - 1e-9 <= deadline - clock.now() <= 0.2 + 1e-9


@run_async
async def test_no_certificate_until_the_ca_first_answers() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    ca.fail_with = "connection refused"
    cache = make_cache(ca, clock, fallback_root_pem=b"configured root\n")
    async with running(cache):
        notified = Counter()
        cache.watch(REVIEWS, notified)
        await clock.advance(5)
        assert cache.workload_secret(REVIEWS) is None
        assert cache.root_bundle() == b"configured root\n"
        assert cache.status()[0].last_error == "connection refused"
        ca.fail_with = None
        await clock.advance(10)
        assert cache.workload_secret(REVIEWS) is not None
        assert cache.root_bundle() == ca.root_pem.encode()
        assert notified.count == 1  # the certificate and the bundle arrived together


@run_async
async def test_a_new_root_is_trusted_beside_the_old_until_all_certificates_moved() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    cache = make_cache(ca, clock, ttl=1000)
    old_root = ca.root_pem.encode()
    async with running(cache):
        bundles: list[bytes | None] = []
        cache.watch(REVIEWS, lambda: bundles.append(cache.root_bundle()))
        cache.watch(RATINGS, lambda: None)
        await clock.settle()
        assert cache.root_bundle() == old_root
        ca.replace_root()
        new_root = ca.root_pem.encode()
        calls = ca.calls
        await clock.advance_to(min(renew_point(cache, i) for i in (REVIEWS, RATINGS)))
        # One renewal found the new root; the other identity renewed at once.
        assert ca.calls == calls + 2
        assert new_root + old_root in bundles  # both trusted meanwhile
        assert bundles[-1] == new_root
        assert cache.root_bundle() == new_root
        for identity in (REVIEWS, RATINGS):
            secret = cache.workload_secret(identity)
            assert secret is not None
            assert secret.chain.root_pem == ca.root_pem.strip() + "\n"


@run_async
async def test_an_identity_nobody_watches_is_dropped_at_its_next_renewal() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    cache = make_cache(ca, clock, ttl=100)
    async with running(cache):
        watcher = Counter()
        cache.watch(REVIEWS, watcher)
        await clock.settle()
        cache.unwatch(REVIEWS, watcher)
        await clock.advance(10)
        assert cache.workload_secret(REVIEWS) is not None  # kept for a restarting Envoy
        await clock.advance(50)
        assert cache.status() == []
        assert ca.calls == 1
        assert clock.deadlines() == []
        cache.watch(REVIEWS, watcher)
        await clock.settle()
        assert ca.calls == 2
        assert cache.workload_secret(REVIEWS) is not None


class WrongIdentitySigner:
    def __init__(self, ca: FakeCa) -> None:
        self.ca = ca
        self.wrong = 1

    async def sign(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        if self.wrong:
            self.wrong -= 1
            key = keys.new_key()
            csr = keys.csr_for(key, "spiffe://cluster.local/ns/kube-system/sa/admin")
            return self.ca.sign_csr(csr, ttl_seconds)
        return self.ca.sign_csr(csr_pem, ttl_seconds)


@run_async
async def test_an_answer_that_is_not_ours_is_never_served() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    cache = SecretCache(signer=WrongIdentitySigner(ca), options=CacheOptions(), clock=clock)
    async with running(cache):
        cache.watch(REVIEWS, lambda: None)
        await clock.settle()
        assert cache.workload_secret(REVIEWS) is None
        assert "does not carry the key of our CSR" in (cache.status()[0].last_error or "")
        await clock.advance(1)
        assert cache.workload_secret(REVIEWS) is not None


class BrokenOnceSigner:
    def __init__(self, ca: FakeCa) -> None:
        self.ca = ca
        self.broken = True

    async def sign(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        if self.broken:
            self.broken = False
            raise KeyError("bug")
        return await self.ca.sign(csr_pem, ttl_seconds)


@run_async
async def test_an_unexpected_error_is_retried_not_fatal() -> None:
    clock = FakeClock()
    cache = SecretCache(
        signer=BrokenOnceSigner(FakeCa(clock=clock)), options=CacheOptions(), clock=clock
    )
    async with running(cache):
        cache.watch(REVIEWS, lambda: None)
        await clock.settle()
        assert cache.status()[0].last_error == "KeyError: 'bug'"
        await clock.advance(1)
        assert cache.workload_secret(REVIEWS) is not None


@run_async
async def test_rsa_keys_on_request() -> None:
    clock = FakeClock()
    cache = make_cache(FakeCa(clock=clock), clock, key_type=keys.KeyType.RSA)
    async with running(cache):
        cache.watch(REVIEWS, lambda: None)
        # RSA keys are made in a thread: wait for it in real time, bounded.
        await eventually(
            lambda: cache.workload_secret(REVIEWS) is not None, interval=0.01, what="the secret"
        )
        secret = cache.workload_secret(REVIEWS)
        assert secret is not None
        key = serialization.load_pem_private_key(secret.key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == 2048


@run_async
async def test_signer_errors_carry_their_message() -> None:
    error = CaError("UNAVAILABLE: down", retryable=True)
    assert str(error) == "UNAVAILABLE: down"
    assert error.retryable


def test_watching_needs_a_running_cache() -> None:
    cache = SecretCache(signer=FakeCa(), options=CacheOptions())
    with pytest.raises(RuntimeError, match="not running"):
        cache.watch(REVIEWS, lambda: None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0.5}, "ttl must be at least 1s"),
        ({"grace_ratio": 0}, "grace ratio must be in"),
        ({"grace_ratio": 1}, "grace ratio must be in"),
        ({"grace_ratio": 0.5, "grace_jitter": 0.6}, "too large for the grace ratio"),
        ({"backoff_min": 0}, "back-off bounds must satisfy"),
        ({"backoff_min": 5, "backoff_max": 1}, "back-off bounds must satisfy"),
        ({"wake_interval": 0}, "wake interval must be positive"),
    ],
)
def test_options_are_checked(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CacheOptions(**options)  # type: ignore[arg-type]


@run_async
async def test_long_sleeps_look_at_the_wall_clock_again() -> None:
    clock = FakeClock()
    ca = FakeCa(clock=clock)
    cache = make_cache(ca, clock, ttl=86400, grace_jitter=0, wake_interval=60)
    async with running(cache):
        cache.watch(REVIEWS, lambda: None)
        await clock.settle()
        assert clock.deadlines() == [pytest.approx(clock.now() + 60)]
        # The wall clock jumps (the machine slept): renewal follows the certificate's time.
        clock.jump(43200)
        await clock.advance(60)
        assert ca.calls == 2
