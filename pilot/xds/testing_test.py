"""The test helpers themselves: leaked tasks fail a test; a broken Envoy says why."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from pilot.xds.testing import EnvoyError, EnvoyProcess, ads_bootstrap, envoy_path, run_async


def test_run_async_fails_a_test_that_leaks_a_task():
    @run_async
    async def leaky() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(30), name="leaked sleeper")

    with pytest.raises(AssertionError, match="leaked sleeper"):
        leaky()


def test_run_async_bounds_a_test():
    async def stuck() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        run_async(stuck, timeout=0.05)()


def test_envoy_binary_is_found():
    assert pathlib.Path(envoy_path()).is_file()


@run_async
async def test_envoy_that_exits_reports_its_log(tmp_path: pathlib.Path):
    bootstrap = ads_bootstrap("sidecar~127.0.0.1~test.default~default.svc.cluster.local", 1)
    bootstrap["static_resources"]["clusters"][0]["type"] = "NOT_A_TYPE"
    envoy = EnvoyProcess(bootstrap, tmp_path)
    envoy.start()
    try:
        with pytest.raises(EnvoyError, match="Envoy exited with") as raised:
            await envoy.wait_live(timeout=15)
        assert "NOT_A_TYPE" in str(raised.value)
    finally:
        envoy.stop()
