"""`istioctl dashboard envoy|controlz <pod>|prometheus|mesh`: where a web UI is.

On the local platform every pod and component listens on a loopback address this machine
reaches directly, so nothing needs forwarding (Istio's istioctl port-forwards into the
cluster): the command checks that something answers there, prints the URL, and opens it in
a browser when asked (`--browser`), or by default when a display is available.

- `envoy <pod>`: the pod's Envoy admin UI, http://<pod ip>:15000.
- `controlz <pod>`: a component's introspection page: for the control plane (`istiod`,
  `pilot`, `pilot-discovery`) Pilot's debug server (15014, as istiod's ControlZ); for a
  workload pod its pilot-agent's status port (15020).
- `prometheus`, `mesh` (alias `kiali`: the service graph page) and `zipkin` (the trace
  collector's API): `make bookinfo` starts them beside Pilot, on its address, at Istio's
  ports (Prometheus 9090, Kiali 20001, Zipkin 9411); so they are looked for on the host of
  the Pilot istioctl talks to (`--pilot`, $ISTIO_PILOT; 127.0.0.1 by default).
  $PROMETHEUS_URL, $ISTIO_MESH_PAGE_URL, $ZIPKIN_URL or --address point elsewhere.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse

from istioctl.proxy import admin

# The observability add-ons: (environment override, port beside Pilot, path shown).
ADDONS = {
    "prometheus": ("PROMETHEUS_URL", 9090, ""),
    "mesh": ("ISTIO_MESH_PAGE_URL", 20001, ""),
    "zipkin": ("ZIPKIN_URL", 9411, "/api/v2/services"),
}
CONTROL_PLANE = {"istiod", "pilot", "pilot-discovery"}
_WHAT = {
    "prometheus": "Prometheus (make bookinfo starts it)",
    "mesh": "the mesh page (make bookinfo starts it)",
    "zipkin": "the Zipkin collector (make bookinfo starts it)",
    "envoy": "the pod's Envoy admin",
    "controlz": "its status page",
}


def dashboard(args: argparse.Namespace) -> int:
    try:
        url = _url(args)
    except admin.ProxyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        admin.get(url, timeout=3)
    except admin.ProxyError as error:
        print(f"error: nothing answers at {url}: is {_WHAT[args.dashboard]} running? ({error})", file=sys.stderr)  # fmt: skip
        return 1
    print(url)
    if _open_browser(args.browser):
        import webbrowser

        if not webbrowser.open(url):
            print(f"Warning: no browser could be started; open {url}", file=sys.stderr)
    return 0


def _url(args: argparse.Namespace) -> str:
    if args.address:
        return args.address if "://" in args.address else f"http://{args.address}"
    if args.dashboard in ADDONS:
        variable, port, path = ADDONS[args.dashboard]
        override = os.environ.get(variable)
        if override:
            return override.rstrip("/")
        host = urllib.parse.urlsplit(args.pilot).hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{path}"
    pod, namespace = admin.split_pod(args.pod, args)
    if args.dashboard == "controlz" and pod in CONTROL_PLANE:
        return f"{args.pilot}/debug/syncz"
    address = admin.pod_address(args, pod, namespace)
    if args.dashboard == "envoy":
        return f"http://{address}:{admin.ADMIN_PORT}"
    return f"http://{address}:{admin.AGENT_STATUS_PORT}/healthz/ready"


def _open_browser(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
