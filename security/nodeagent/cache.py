"""The agent's secrets: one certificate per workload identity, issued, cached and rotated.

Every identity some Envoy asks for gets an entry and a rotation task (owned by `run()`'s
TaskGroup): a fresh key and CSR, CreateCertificate, then sleep until the renewal point and do
it again. Several Envoys of one identity share its entry. The current certificate is served
until its successor is installed, so a slow or absent CA never takes a certificate away; CA
failures are retried with bounded exponential back-off and logged.

Renewal follows Istio's agent: with lifetime L (from the time of the request to `notAfter`)
and grace ratio r (SECRET_GRACE_PERIOD_RATIO), renew when r*L is left, give or take a jitter
of `grace_jitter`*L so that identities issued together do not renew together.

The trust bundle served as `ROOTCA` is the root of the newest chain, followed by the other
roots still anchoring a cached certificate (so that during a root change both old and new
peers are trusted), or the agent's configured CA root before any chain arrived. When a new
root shows up, every identity still chained to an old one is renewed at once.

An identity nobody watches any more is dropped at its next renewal point, not before: an
Envoy restarting finds its certificate still there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import random
from collections.abc import Callable
from typing import Any

from pkg.aio.backoff import Backoff
from security.nodeagent import keys
from security.nodeagent.caclient import CaError, Signer
from security.nodeagent.certificate import Chain, InvalidChainError, check_chain, parse_chain
from security.nodeagent.clock import Clock, SystemClock
from security.nodeagent.identity import Identity

log = logging.getLogger("security.nodeagent")

OnChange = Callable[[], None]

DEFAULT_TTL = 24 * 3600.0  # Istio's DEFAULT_WORKLOAD_CERT_TTL


@dataclasses.dataclass(frozen=True, kw_only=True)
class CacheOptions:
    ttl: float = DEFAULT_TTL  # requested lifetime, seconds
    grace_ratio: float = 0.5  # renew when this fraction of the lifetime is left
    grace_jitter: float = 0.01  # +- this fraction of the lifetime
    key_type: keys.KeyType = keys.KeyType.EC
    backoff_min: float = 0.2
    backoff_max: float = 30.0
    wake_interval: float = 60.0  # longest single sleep before looking at the clock again
    fallback_root_pem: bytes | None = None  # ROOTCA until a chain brings its root

    def __post_init__(self) -> None:
        if self.ttl < 1:
            raise ValueError(f"ttl must be at least 1s, not {self.ttl}")
        if not 0 < self.grace_ratio < 1:
            raise ValueError(f"grace ratio must be in (0, 1), not {self.grace_ratio}")
        if not 0 <= self.grace_jitter < min(self.grace_ratio, 1 - self.grace_ratio):
            raise ValueError(f"grace jitter {self.grace_jitter} too large for the grace ratio")
        if self.wake_interval <= 0:
            raise ValueError(f"wake interval must be positive, not {self.wake_interval}")
        if not 0 < self.backoff_min <= self.backoff_max:
            raise ValueError("back-off bounds must satisfy 0 < min <= max")


@dataclasses.dataclass(frozen=True)
class WorkloadSecret:
    """One issued certificate with its key: what SDS serves as `default`."""

    identity: Identity
    chain: Chain
    key_pem: bytes
    issued_at: float  # when the CSR was sent (agent clock)
    renew_at: float


@dataclasses.dataclass
class _Entry:
    identity: Identity
    secret: WorkloadSecret | None = None
    watchers: list[OnChange] = dataclasses.field(default_factory=list)
    issued: int = 0
    failures: int = 0  # consecutive
    total_failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    renew_now: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def rotations(self) -> int:
        return max(self.issued - 1, 0)


@dataclasses.dataclass(frozen=True)
class IdentityStatus:
    identity: str
    watchers: int
    serial: str | None
    not_before: str | None
    not_after: str | None
    renew_at: str | None
    issued: int
    rotations: int
    failures: int
    last_error: str | None
    last_error_at: str | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


class SecretCache:
    def __init__(
        self,
        *,
        signer: Signer,
        options: CacheOptions,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._signer = signer
        self._options = options
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._entries: dict[Identity, _Entry] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._newest_root: bytes | None = None
        self._bundle = self._compute_bundle()

    # Lifecycle.

    async def run(self, *, started: asyncio.Event | None = None) -> None:
        """Own the rotation tasks; runs until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            if started is not None:
                started.set()
            try:
                await asyncio.Event().wait()
            finally:
                self._tasks = None

    # Watching.

    def watch(self, identity: Identity, on_change: OnChange) -> None:
        """Call `on_change` whenever `identity`'s secret or the trust bundle changes.

        The first watcher of an identity starts its issuance.
        """
        if self._tasks is None:
            raise RuntimeError("the secret cache is not running")
        entry = self._entries.get(identity)
        if entry is None:
            entry = self._entries[identity] = _Entry(identity)
            self._tasks.create_task(self._rotate(entry), name=f"rotate {identity}")
            log.info("now managing a certificate for %s", identity)
        entry.watchers.append(on_change)

    def unwatch(self, identity: Identity, on_change: OnChange) -> None:
        entry = self._entries.get(identity)
        if entry is not None and on_change in entry.watchers:
            entry.watchers.remove(on_change)

    def workload_secret(self, identity: Identity) -> WorkloadSecret | None:
        entry = self._entries.get(identity)
        return None if entry is None else entry.secret

    def root_bundle(self) -> bytes | None:
        """The trust roots to serve as ROOTCA (PEM, newest first), or None if none is known."""
        return self._bundle

    def status(self) -> list[IdentityStatus]:
        result = []
        for identity in sorted(self._entries):
            entry = self._entries[identity]
            secret = entry.secret
            result.append(
                IdentityStatus(
                    identity=identity.spiffe_id,
                    watchers=len(entry.watchers),
                    serial=None if secret is None else secret.chain.serial_hex,
                    not_before=None if secret is None else secret.chain.not_before.isoformat(),
                    not_after=None if secret is None else secret.chain.not_after.isoformat(),
                    renew_at=None if secret is None else _iso(secret.renew_at),
                    issued=entry.issued,
                    rotations=entry.rotations,
                    failures=entry.total_failures,
                    last_error=entry.last_error,
                    last_error_at=_iso(entry.last_error_at),
                )
            )
        return result

    # Rotation.

    async def _rotate(self, entry: _Entry) -> None:
        backoff = Backoff(
            self._options.backoff_min, self._options.backoff_max, jitter=0.2, rng=self._rng
        )
        while True:
            if not entry.watchers and self._due(entry):
                self._drop(entry)
                return
            try:
                secret = await self._issue(entry.identity)
            except (CaError, InvalidChainError) as error:
                delay = backoff.next_delay()
                self._record_failure(entry, str(error), delay)
                await self._clock.sleep(delay)
                continue
            except Exception as error:
                # A bug in one identity's issuance must not stop the others: log it loudly
                # and treat it as a failed attempt.
                log.exception("issuing a certificate for %s failed unexpectedly", entry.identity)
                delay = backoff.next_delay()
                self._record_failure(entry, f"{type(error).__name__}: {error}", delay)
                await self._clock.sleep(delay)
                continue
            backoff.reset()
            self._install(entry, secret)
            await self._wait_renewal(entry)

    def _due(self, entry: _Entry) -> bool:
        return entry.secret is None or self._clock.now() >= entry.secret.renew_at

    def _drop(self, entry: _Entry) -> None:
        if self._entries.get(entry.identity) is entry:
            del self._entries[entry.identity]
        log.info("no Envoy uses %s any more; stopped rotating its certificate", entry.identity)
        self._update_bundle()

    async def _issue(self, identity: Identity) -> WorkloadSecret:
        if self._options.key_type is keys.KeyType.RSA:
            key = await asyncio.to_thread(keys.new_key, keys.KeyType.RSA)
        else:
            key = keys.new_key(keys.KeyType.EC)  # microseconds: no thread needed
        csr = keys.csr_for(key, identity.spiffe_id)
        issued_at = self._clock.now()
        pems = await self._signer.sign(csr, max(int(self._options.ttl), 1))
        chain = parse_chain(pems)
        check_chain(chain, key, identity.spiffe_id, self._clock.now())
        return WorkloadSecret(
            identity=identity,
            chain=chain,
            key_pem=keys.private_key_pem(key),
            issued_at=issued_at,
            renew_at=self._renew_at(chain, issued_at),
        )

    def _renew_at(self, chain: Chain, issued_at: float) -> float:
        not_after = chain.not_after.timestamp()
        lifetime = max(not_after - issued_at, 0.0)
        jitter = self._options.grace_jitter * self._rng.uniform(-1.0, 1.0)
        return not_after - lifetime * (self._options.grace_ratio + jitter)

    def _record_failure(self, entry: _Entry, message: str, delay: float) -> None:
        entry.failures += 1
        entry.total_failures += 1
        entry.last_error = message
        entry.last_error_at = self._clock.now()
        secret = entry.secret
        if secret is None:
            serving = "no certificate yet"
        elif secret.chain.not_after.timestamp() <= self._clock.now():
            serving = f"serving serial {secret.chain.serial_hex}, EXPIRED"
        else:
            serving = (
                f"serving serial {secret.chain.serial_hex} until "
                f"{secret.chain.not_after.isoformat()}"
            )
        log.warning(
            "certificate for %s: attempt %d failed (%s); retrying in %.1fs; %s",
            entry.identity,
            entry.failures,
            message,
            delay,
            serving,
        )

    def _install(self, entry: _Entry, secret: WorkloadSecret) -> None:
        previous = entry.secret
        entry.secret = secret
        entry.issued += 1
        if entry.failures:
            log.info(
                "certificate for %s: CA reached again after %d failures",
                entry.identity,
                entry.failures,
            )
        entry.failures = 0
        entry.renew_now.clear()
        log.info(
            "certificate for %s: serial %s, valid until %s, renewal at %s%s",
            entry.identity,
            secret.chain.serial_hex,
            secret.chain.not_after.isoformat(),
            _iso(secret.renew_at),
            "" if previous is None else f" (replaces serial {previous.chain.serial_hex})",
        )
        root = secret.chain.root_pem.encode() if secret.chain.root_pem else None
        if root is not None and root != self._newest_root:
            if self._newest_root is not None:
                self._on_root_change(root)
            self._newest_root = root
        if not self._update_bundle():
            self._notify(entry)

    def _on_root_change(self, root: bytes) -> None:
        stale = [
            e
            for e in self._entries.values()
            if e.secret is not None
            and e.secret.chain.root_pem is not None
            and e.secret.chain.root_pem.encode() != root
        ]
        log.warning(
            "the CA's root changed; renewing %d certificate(s) chained to the old root now",
            len(stale),
        )
        for other in stale:
            other.renew_now.set()

    async def _wait_renewal(self, entry: _Entry) -> None:
        """Sleep until the renewal point, or until a root change asks for renewal now.

        The sleep is cut into pieces of at most `wake_interval`, each ending with a look at
        the wall clock: the event loop's clock stops while a laptop is suspended, and a
        certificate's lifetime does not.
        """
        assert entry.secret is not None
        renew_at = entry.secret.renew_at
        while not entry.renew_now.is_set():
            delay = renew_at - self._clock.now()
            if delay <= 0:
                break
            sleeper = asyncio.ensure_future(
                self._clock.sleep(min(delay, self._options.wake_interval))
            )
            waker = asyncio.ensure_future(entry.renew_now.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)
        entry.renew_now.clear()

    # Trust bundle and notifications.

    def _compute_bundle(self) -> bytes | None:
        roots: list[bytes] = []
        if self._newest_root is not None:
            roots.append(self._newest_root)
        for entry in self._entries.values():
            if entry.secret is not None and entry.secret.chain.root_pem is not None:
                root = entry.secret.chain.root_pem.encode()
                if root not in roots:
                    roots.append(root)
        if not roots:
            return self._options.fallback_root_pem
        return b"".join(roots)

    def _update_bundle(self) -> bool:
        """Recompute the bundle; if it changed, tell every watcher and return True."""
        bundle = self._compute_bundle()
        if bundle == self._bundle:
            return False
        self._bundle = bundle
        log.info("trust bundle now holds %d root(s)", (bundle or b"").count(b"BEGIN CERT"))
        for entry in list(self._entries.values()):
            self._notify(entry)
        return True

    @staticmethod
    def _notify(entry: _Entry) -> None:
        for on_change in list(entry.watchers):
            on_change()
