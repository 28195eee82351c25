"""The adapters compiled into this Mixer, by the name a handler's `compiledAdapter` gives.

Listed explicitly: adding an adapter is one import and one entry here, and importing an
adapter package never registers anything by side effect.
"""

from __future__ import annotations

from collections.abc import Mapping

from mixer.adapter.api import AdapterInfo
from mixer.adapters.denier import denier
from mixer.adapters.list import listchecker
from mixer.adapters.memquota import memquota
from mixer.adapters.prometheus import prometheus
from mixer.adapters.redisquota import redisquota
from mixer.adapters.stdio import stdio

ADAPTERS: Mapping[str, AdapterInfo] = {
    info.name: info
    for info in (
        denier.INFO,
        listchecker.INFO,
        memquota.INFO,
        redisquota.INFO,
        prometheus.INFO,
        stdio.INFO,
    )
}
