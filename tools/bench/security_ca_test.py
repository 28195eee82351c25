import asyncio
import pathlib
import time
from collections.abc import Callable

import pytest

from tools.bench import security_ca


def test_rates_takes_turns_in_blocks_and_reports_each() -> None:
    order: list[str] = []

    def work(name: str) -> Callable[[], None]:
        def once() -> None:
            order.append(name)
            time.sleep(0.001)

        return once

    result = security_ca.rates(0.04, {"a": work("a"), "b": work("b")}, blocks=4)
    assert set(result) == {"a", "b"}
    for figure in result.values():
        assert 0 < figure["per_s"] <= 1000  # each call sleeps 1 ms
        assert figure["ms_each"] == pytest.approx(1e3 / figure["per_s"], abs=0.001)
    # Four blocks of each, in turns: a's, then b's, then a's again...
    runs = [name for i, name in enumerate(order) if i == 0 or order[i - 1] != name]
    assert runs == ["a", "b"] * 4


def test_signing_rate_times_signing_alone_and_after_the_csr_checks() -> None:
    result = security_ca.signing_rate("ec", "rsa", 0.05)
    assert (result["ca_key"], result["workload_key"]) == ("ec", "rsa")
    for figure in ("sign", "parse_and_sign"):
        assert result[figure]["per_s"] > 0
        assert result[figure]["ms_each"] > 0


def test_csr_rate_counts_keys_and_csrs() -> None:
    result = security_ca.csr_rate("ec", 0.05)
    assert result["workload_key"] == "ec"
    assert result["per_s"] > 0


def test_issuance_load_against_the_real_ca_process(tmp_path: pathlib.Path) -> None:
    async def main() -> list[dict]:
        async with security_ca.ca_process(tmp_path) as ca:
            assert ca.cpu_seconds() > 0  # its start-up (imports, a new root) used some
            return [
                await security_ca.issuance_load(
                    ca, key_kind="ec", workers=2, seconds=0.3, mode=mode, warm_up=0.1
                )
                for mode in ("full", "rpc")
            ]

    results = asyncio.run(asyncio.wait_for(main(), 60))
    for result in results:
        assert result["errors"] == 0, result["error_samples"]
        assert result["issued"] > 0
        assert result["latency"]["count"] == result["issued"]
        assert result["ca_cpu_percent"] >= 0
        assert result["client_cpu_percent"] > 0
    assert "issued a certificate" in (tmp_path / "istio-ca.log").read_text()


def test_ca_process_that_cannot_start_says_why(tmp_path: pathlib.Path) -> None:
    async def main() -> None:
        async with security_ca.ca_process(tmp_path, key_type="dsa"):
            pass

    with pytest.raises(RuntimeError, match=r"(?s)did not become ready.*invalid choice: 'dsa'"):
        asyncio.run(asyncio.wait_for(main(), 60))


def test_issuance_load_rejects_an_unknown_mode() -> None:
    ca = security_ca.CaProcess(pid=0, address="127.0.0.1:1", root_pem=b"", log=pathlib.Path())
    with pytest.raises(ValueError, match="unknown mode"):
        asyncio.run(
            security_ca.issuance_load(ca, key_kind="ec", workers=1, seconds=0.1, mode="bulk")
        )
