import asyncio
import pathlib

import pytest

from tools.bench import benchmesh, security_mesh
from tools.local.mesh import Mesh
from tools.local.topology import Topology


def _bench(tmp_path: pathlib.Path) -> benchmesh.BenchMesh:
    topology = Topology(run_dir=tmp_path, subnet="127.0.11", control_address="127.0.11.100")
    return benchmesh.BenchMesh(Mesh(topology))  # never started


def test_first_true_is_when_the_check_first_held_and_errors_do_not_count() -> None:
    calls = []

    async def check() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("HTTP 503")  # nothing ready yet
        return len(calls) >= 3

    async def main() -> tuple[float, float | None, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        held = await security_mesh.first_true(check, timeout=5, interval=0.001)
        return before, held, loop.time()

    before, held, after = asyncio.run(main())
    assert len(calls) == 3
    assert held is not None
    assert before <= held <= after


def test_first_true_gives_none_and_wait_for_raises_on_timeout() -> None:
    async def never() -> bool:
        return False

    assert asyncio.run(security_mesh.first_true(never, timeout=0.05)) is None
    with pytest.raises(RuntimeError, match="waiting for the moon"):
        asyncio.run(security_mesh.wait_for("the moon", never, 0.05))


def test_negated() -> None:
    async def nothing() -> None:
        return None

    async def negated_nothing() -> bool:
        return await security_mesh.negated(nothing)()

    assert asyncio.run(negated_nothing()) is True


def test_names_of_the_mesh(tmp_path: pathlib.Path) -> None:
    bench = _bench(tmp_path)
    assert (
        security_mesh.identity_of(bench, "reviews-v2")
        == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    )
    assert security_mesh.node_agent_url(bench) == "http://127.0.11.100:15030/debug/secrets"
