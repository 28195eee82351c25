"""schemathesis against the running broker: every phase (examples, coverage, fuzzing,
stateful), every check, zero failures. See conformance.py for what is laid over the official
OpenAPI file and why. Bounded: a fixed seed and example count, and a hard timeout."""

from __future__ import annotations

import asyncio
import sys

from broker import conformance, testing
from pkg.testing.aio import run_async

ASYNC_PLAN = """
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: background-service-plan, namespace: default}
spec:
  plan: {name: istio-background, id: 9d7f8a41-0d2c-4a6e-9c53-2f1f1b6e5a10, description: async}
  services: [service-class/default/productpage-service-class]
  provisioning: {asynchronous: true, readyTimeout: 10s}
"""
ASYNC_ID = "9d7f8a41-0d2c-4a6e-9c53-2f1f1b6e5a10"
RUN_SECONDS = 420


@run_async(timeout=RUN_SECONDS + 60)
async def test_schemathesis_finds_no_failure_in_any_phase(tmp_path):
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await testing.apply(broker.store_url, testing.PRODUCTPAGE, testing.DEMO_CATALOG, ASYNC_PLAN)
        await testing.wait_catalog(
            osb, lambda c: c["services"] and len(c["services"][0]["plans"]) == 3
        )
        spec = conformance.write_spec(tmp_path)
        settings = tmp_path / "schemathesis.toml"
        settings.write_text(
            conformance.config(
                url=broker.url,
                username=testing.USER,
                password=testing.PASSWORD,
                service_ids=[testing.SERVICE_ID],
                plan_ids=[testing.MONTHLY, testing.YEARLY, ASYNC_ID],
            )
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli",
            "--config-file", str(settings), "--no-color",
            "run", str(spec),
            "--checks", "all", "--max-examples", "30", "--seed", "1",
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report
    assert " passed" in report, report
    assert "failure" not in report.split("SUMMARY")[-1], report
