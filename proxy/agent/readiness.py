"""Is this proxy ready for traffic? Envoy's own `/ready` is not enough to say.

Envoy reports LIVE while a listener Pilot sent is warming or was rejected (a duplicate
address is NACKed, yet `/ready` stays LIVE), so, as Istio's agent does, readiness also asks
for the first CDS and LDS updates and for the listeners this kind of proxy cannot work without.
"""

from __future__ import annotations

import dataclasses

from proxy.agent import options as agent_options
from proxy.agent.admin import AdminClient, AdminUnavailable

_UPDATE_STATS = r"^(cluster_manager\.cds|listener_manager\.lds)\.update_success$"
_CONNECTED_STAT = r"^control_plane\.connected_state$"
CONNECTED = "control_plane.connected_state"  # 1 while the ADS stream to Pilot is up
CDS_UPDATES = "cluster_manager.cds.update_success"
LDS_UPDATES = "listener_manager.lds.update_success"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadinessOptions:
    proxy_type: str  # "sidecar" or "router"
    ip: str
    outbound_port: int = agent_options.OUTBOUND_PORT
    inbound_port: int = agent_options.INBOUND_PORT
    # NONE: Pilot puts the sidecar's listeners on the pod's address (the apps' HTTP proxy);
    # REDIRECT or TPROXY: iptables sends everything to Istio's capture listeners on 0.0.0.0.
    interception_mode: str = "NONE"

    @property
    def listener_address(self) -> str:
        return self.ip if self.interception_mode == "NONE" else "0.0.0.0"

    def required_listeners(self) -> dict[str, int]:
        """Listener name -> port a proxy of this type needs (a gateway's are config-driven)."""
        if self.proxy_type != "sidecar":
            return {}
        return {"virtualOutbound": self.outbound_port, "virtualInbound": self.inbound_port}


async def check_ready(client: AdminClient, options: ReadinessOptions) -> str | None:
    """None when ready; otherwise why not, in words an operator can act on."""
    try:
        state = await client.server_state()
        if state != "LIVE":
            connected = await client.stats(_CONNECTED_STAT)
            pilot = "; not connected to Pilot" if connected.get(CONNECTED, 1) == 0 else ""
            return f"envoy is not live yet: server state {state or 'unknown'}{pilot}"
        updates = await client.stats(_UPDATE_STATS)
        cds, lds = updates.get(CDS_UPDATES, 0), updates.get(LDS_UPDATES, 0)
        if cds < 1 or lds < 1:
            return f"waiting for the first config from Pilot: CDS updates {cds}, LDS updates {lds}"
        listeners = await client.dynamic_listeners()
    except AdminUnavailable as error:
        return f"envoy admin is not answering: {error}"

    active = {listener.name: listener for listener in listeners if listener.active}
    required = options.required_listeners()
    if not required:
        return None if active else "no listener from Pilot is active yet"
    for name, port in required.items():
        listener = active.get(name)
        if listener is None:
            return f"listener {name} is not active yet"
        if (listener.address, listener.port) != (options.listener_address, port):
            return (
                f"listener {name} is on {listener.address}:{listener.port}, "
                f"expected {options.listener_address}:{port}"
            )
    return None
