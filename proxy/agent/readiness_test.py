"""Every reason readiness gives, against a scripted admin API (real Envoy: supervisor_test)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from proxy.agent.admin import AdminUnavailable, ListenerState
from proxy.agent.readiness import (
    CDS_UPDATES,
    CONNECTED,
    LDS_UPDATES,
    ReadinessOptions,
    check_ready,
)

IP = "127.0.1.5"
OUTBOUND = ListenerState("virtualOutbound", IP, 15001, active=True)
INBOUND = ListenerState("virtualInbound", IP, 15006, active=True)


@dataclasses.dataclass
class ScriptedAdmin:
    state: str = "LIVE"
    updates: tuple[int, int] = (1, 1)
    listeners: list[ListenerState] = dataclasses.field(default_factory=lambda: [OUTBOUND, INBOUND])
    down: bool = False
    connected: int = 1

    async def server_state(self) -> str:
        if self.down:
            raise AdminUnavailable("GET http://127.0.1.5:15000/ready: connection refused")
        return self.state

    async def stats(self, pattern: str) -> dict[str, int]:
        if "connected_state" in pattern:
            return {CONNECTED: self.connected}
        assert "update_success" in pattern
        return {CDS_UPDATES: self.updates[0], LDS_UPDATES: self.updates[1]}

    async def dynamic_listeners(self) -> list[ListenerState]:
        return self.listeners


def _check(admin: ScriptedAdmin, proxy_type: str = "sidecar") -> str | None:
    options = ReadinessOptions(proxy_type=proxy_type, ip=IP)
    return asyncio.run(check_ready(admin, options))  # type: ignore[arg-type]


def test_ready_sidecar() -> None:
    assert _check(ScriptedAdmin()) is None


@pytest.mark.parametrize(
    ("admin", "reason"),
    [
        (ScriptedAdmin(down=True), "envoy admin is not answering: GET http://127.0.1.5"),
        (ScriptedAdmin(state="INITIALIZING"), "envoy is not live yet: server state INITIALIZING"),
        (
            ScriptedAdmin(state="PRE_INITIALIZING", connected=0),
            "server state PRE_INITIALIZING; not connected to Pilot",
        ),
        (ScriptedAdmin(updates=(1, 0)), "CDS updates 1, LDS updates 0"),
        (ScriptedAdmin(listeners=[INBOUND]), "listener virtualOutbound is not active yet"),
        (
            ScriptedAdmin(listeners=[OUTBOUND, dataclasses.replace(INBOUND, active=False)]),
            "listener virtualInbound is not active yet",
        ),
        (
            ScriptedAdmin(listeners=[dataclasses.replace(OUTBOUND, address="0.0.0.0"), INBOUND]),
            "listener virtualOutbound is on 0.0.0.0:15001, expected 127.0.1.5:15001",
        ),
        (
            ScriptedAdmin(listeners=[OUTBOUND, dataclasses.replace(INBOUND, port=15007)]),
            "expected 127.0.1.5:15006",
        ),
    ],
)
def test_sidecar_not_ready(admin: ScriptedAdmin, reason: str) -> None:
    answer = _check(admin)
    assert answer is not None
    assert reason in answer


def test_router_needs_one_active_listener_of_any_name() -> None:
    gateway = ListenerState("0.0.0.0_8080", "0.0.0.0", 8080, active=True)
    assert _check(ScriptedAdmin(listeners=[gateway]), "router") is None
    warming = dataclasses.replace(gateway, active=False)
    assert _check(ScriptedAdmin(listeners=[warming]), "router") == (
        "no listener from Pilot is active yet"
    )
    assert _check(ScriptedAdmin(listeners=[]), "router") == "no listener from Pilot is active yet"


def test_a_captured_sidecar_needs_istios_capture_listeners_on_the_wildcard() -> None:
    # REDIRECT: iptables sends all traffic to 15001/15006, where Pilot's listeners bind 0.0.0.0.
    captured = [dataclasses.replace(x, address="0.0.0.0") for x in (OUTBOUND, INBOUND)]
    options = ReadinessOptions(proxy_type="sidecar", ip=IP, interception_mode="REDIRECT")
    assert asyncio.run(check_ready(ScriptedAdmin(listeners=captured), options)) is None  # type: ignore[arg-type]
    # The pod's own address would mean Pilot took the pod for one without capture.
    answer = asyncio.run(check_ready(ScriptedAdmin(), options))  # type: ignore[arg-type]
    assert answer == "listener virtualOutbound is on 127.0.1.5:15001, expected 0.0.0.0:15001"
