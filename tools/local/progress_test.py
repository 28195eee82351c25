"""What `make bookinfo` says while it waits and when a process fails (launcher.wait_ready)."""

import asyncio
import sys

import pytest

from tools.local import launcher
from tools.local.topology import ProcessSpec, Topology

# Serves /ready after a delay on a port it is given; exits with a message when told to.
SLOW_SERVER = """
import http.server, sys, time
delay, port = float(sys.argv[1]), int(sys.argv[2])
if delay < 0:
    print("fatal: the config file names no listener", flush=True)
    sys.exit(3)
time.sleep(delay)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spec(name: str, delay: float, port: int) -> ProcessSpec:
    argv = (sys.executable, "-c", SLOW_SERVER, str(delay), str(port))
    return ProcessSpec(name, argv, f"http://127.0.0.1:{port}/ready", stage=0)


def run(topology: Topology, specs: list[ProcessSpec], timeout: float) -> list[str]:
    lines: list[str] = []
    started = {s.name: launcher.start(topology.log_dir, s) for s in specs}
    launcher.record(topology.run_dir, started.values())
    try:
        asyncio.run(launcher.wait_ready(specs, started, timeout, progress=lines.append))
    finally:
        launcher.stop(topology.run_dir, grace=5)
        lines.append("stopped")
    return lines


def test_a_slow_start_says_what_it_waits_on_then_that_the_stage_is_ready(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher, "SLOW_AFTER", 0.5)
    monkeypatch.setattr(launcher, "SLOW_EVERY", 10.0)
    lines = run(Topology(run_dir=tmp_path), [spec("slowpoke", 2.0, free_port())], timeout=30)
    assert lines[0].startswith("still waiting (")
    assert "for slowpoke (" in lines[0]
    assert "Connection refused" in lines[0]
    assert lines[1].startswith("ready in ")
    assert lines[2] == "stopped"


def test_a_process_that_dies_is_named_with_its_log_and_last_lines(tmp_path):
    topology = Topology(run_dir=tmp_path)
    with pytest.raises(launcher.LaunchError) as caught:
        run(topology, [spec("fine", 0.0, free_port()), spec("broken", -1, free_port())], 30)
    message = str(caught.value)
    assert message.startswith(
        f"broken exited during start-up; its log is {topology.log_dir / 'broken.log'}"
    )
    assert "fatal: the config file names no listener" in message


def test_a_process_that_never_gets_ready_times_out_with_its_last_answer(tmp_path):
    with pytest.raises(launcher.LaunchError) as caught:
        run(Topology(run_dir=tmp_path), [spec("sleepy", 60.0, free_port())], timeout=1.0)
    message = str(caught.value)
    assert message.startswith("sleepy not ready after 1s (http://127.0.0.1:")
    assert "Connection refused" in message
    assert "its log is" in message


def test_a_missing_program_is_a_launch_error(tmp_path):
    missing = ProcessSpec("ghost", ("/nonexistent/prometheus",), "http://127.0.0.1:1/", stage=0)
    with pytest.raises(launcher.LaunchError, match="ghost: cannot run /nonexistent/prometheus"):
        launcher.start(Topology(run_dir=tmp_path).log_dir, missing)
