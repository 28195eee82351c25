"""Asynchronous operations: 202, polling last_operation, resumption after a restart, and the
tombstones that answer 410 Gone to pollers until they are swept."""

from __future__ import annotations

import asyncio
import datetime

from broker import names, testing
from broker.records import INSTANCE
from broker.resources import AUTHORIZATION_POLICY
from pilot.configstore.server import Options as StoreOptions
from pilot.configstore.server import serving
from pkg.kube import errors as kube_errors
from pkg.kube.client import ConfigClient
from pkg.testing.aio import run_async

PATH = "/v2/service_instances"
ASYNC_PLAN = "ratings-async"

# ratings in the registry without any workload yet, and a plan that works in the background.
RATINGS = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServiceClass
metadata: {name: ratings, namespace: default}
spec:
  deployment: {instance: ratings}
  entry: {name: bookinfo-ratings, id: ratings-service, description: Book ratings}
---
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: ratings-async, namespace: default}
spec:
  plan: {name: background, id: ratings-async, description: provisioned once a workload serves it}
  services: [service-class/default/ratings]
  provisioning: {asynchronous: true, readyTimeout: READY}
"""
WORKLOAD = """
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: ratings-v1, namespace: default}
spec:
  address: 127.0.1.7
  labels: {app: ratings, version: v1}
  serviceAccount: bookinfo-ratings
"""
INCOMPLETE = {"accepts_incomplete": "true"}


async def _catalog(broker: testing.Running, osb: testing.OsbClient, ready: str = "30s") -> None:
    await testing.apply(broker.store_url, RATINGS.replace("READY", ready))
    await testing.wait_catalog(
        osb, lambda c: any(s["id"] == "ratings-service" for s in c["services"])
    )


def _ids(**kw):
    return {"service_id": "ratings-service", "plan_id": ASYNC_PLAN, **kw}


@run_async(timeout=90)
async def test_asynchronous_provision_bind_unbind_deprovision_with_polling(tmp_path):
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await _catalog(broker, osb)
        required = await osb.provision("a", **_ids())
        assert (required.status, required.body["error"]) == (422, "AsyncRequired")

        accepted = await osb.provision("a", **_ids(), params=INCOMPLETE)
        assert accepted.status == 202
        operation = accepted.body["operation"]
        assert operation.startswith("provision-")
        again = await osb.provision("a", **_ids(), params=INCOMPLETE)
        assert (again.status, again.body) == (202, {"operation": operation})

        polled = await osb.get(f"{PATH}/a/last_operation", params={"operation": operation})
        assert polled.status == 200
        assert polled.body == {"state": "in progress", "description": "provision in progress"}
        assert polled.headers["Retry-After"] == "1"
        assert (await osb.get(f"{PATH}/a")).status == 404  # still being provisioned
        busy = await osb.bind("a", "b", **_ids(), params=INCOMPLETE)
        assert (busy.status, busy.body["error"]) == (422, "ConcurrencyError")
        assert (await osb.deprovision("a", **_ids(), **INCOMPLETE)).status == 422

        # A workload registers: the provision completes.
        await testing.apply(broker.store_url, WORKLOAD)
        done = await osb.poll(f"{PATH}/a/last_operation", operation=operation)
        assert (done.status, done.body) == (
            200,
            {"state": "succeeded", "description": "provisioned"},
        )
        assert (await osb.get(f"{PATH}/a")).status == 200
        assert (await osb.provision("a", **_ids(), params=INCOMPLETE)).status == 200

        binding = await osb.bind("a", "b", **_ids(), params=INCOMPLETE)
        assert binding.status == 202
        assert "credentials" not in binding.body
        path = f"{PATH}/a/service_bindings/b"
        bound = await osb.poll(f"{path}/last_operation", operation=binding.body["operation"])
        assert bound.body["state"] == "succeeded"
        fetched = await osb.get(path)
        assert fetched.status == 200
        assert fetched.body["credentials"]["server_identities"] == [
            "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
        ]

        unbinding = await osb.unbind("a", "b", **_ids(), **INCOMPLETE)
        assert unbinding.status == 202
        resent = await osb.unbind("a", "b", **_ids(), **INCOMPLETE)
        # The same operation while it runs; Gone once it is done (it is quick).
        assert (resent.status, resent.body) == (202, unbinding.body) or resent.status == 410
        gone = await osb.poll(f"{path}/last_operation", operation=unbinding.body["operation"])
        assert gone.status == 410  # the spec's "success" for an asynchronous delete

        leaving = await osb.deprovision("a", **_ids(), **INCOMPLETE)
        assert leaving.status == 202
        gone = await osb.poll(f"{PATH}/a/last_operation", operation=leaving.body["operation"])
        assert gone.status == 410
        assert (await osb.get(f"{PATH}/a")).status == 404


@run_async(timeout=90)
async def test_an_asynchronous_provision_without_a_workload_fails_and_can_be_removed(tmp_path):
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await _catalog(broker, osb, ready="1s")
        accepted = await osb.provision("lonely", **_ids(), params=INCOMPLETE)
        failed = await osb.poll(f"{PATH}/lonely/last_operation")
        assert failed.body == {
            "state": "failed",
            "description": "no workload of ratings.default.svc.cluster.local registered within 1s",
            "instance_usable": False,
        }
        assert accepted.status == 202
        assert (await osb.bind("lonely", "b", **_ids(), params=INCOMPLETE)).status == 422
        update = await osb.call(
            "PATCH", f"{PATH}/lonely", {"service_id": "ratings-service"}, params=INCOMPLETE
        )
        assert (update.status, update.body["error"]) == (422, "InstanceNotUsable")
        # The platform's orphan mitigation: deprovision removes what it made.
        leaving = await osb.deprovision("lonely", **_ids(), **INCOMPLETE)
        assert leaving.status == 202
        assert (await osb.poll(f"{PATH}/lonely/last_operation")).status == 410
        async with ConfigClient(broker.store_url) as client:
            policies = await client.list(AUTHORIZATION_POLICY, "default")
        assert [p.metadata.name for p in policies.items] == []


@run_async(timeout=120)
async def test_an_operation_left_in_progress_is_finished_by_the_next_broker(tmp_path):
    async with serving(StoreOptions(port=0, db=tmp_path / "store.db")) as store:
        async with (
            testing.running_broker(tmp_path / "b", store_url=store.url) as first,
            first.client() as osb,
        ):
            await _catalog(first, osb)
            accepted = await osb.provision("resumed", **_ids(), params=INCOMPLETE)
            assert accepted.status == 202
        # The broker stopped while waiting for a workload; the record still says so.
        async with ConfigClient(store.url) as client:
            record = await client.get(INSTANCE, names.instance_record("resumed"), "istio-broker")
        assert record.spec.last_operation.state == record.spec.last_operation.IN_PROGRESS
        await testing.apply(store.url, WORKLOAD)
        async with (
            testing.running_broker(tmp_path / "b", store_url=store.url) as second,
            second.client() as osb,
        ):
            done = await osb.poll(
                f"{PATH}/resumed/last_operation", operation=accepted.body["operation"]
            )
            assert done.body["state"] == "succeeded"


@run_async(timeout=90)
async def test_tombstones_are_forgotten_after_their_time(tmp_path):
    async with (
        testing.running_broker(
            tmp_path, tombstone_ttl=datetime.timedelta(0), sweep_interval=0.1
        ) as broker,
        broker.client() as osb,
    ):
        await testing.apply(broker.store_url, testing.PRODUCTPAGE, testing.DEMO_CATALOG)
        await testing.wait_catalog(osb, lambda c: len(c["services"]) == 1)
        assert (await osb.provision("brief")).status == 201
        assert (await osb.deprovision("brief")).status == 200
        for _ in range(100):
            answer = await osb.get(f"{PATH}/brief/last_operation")
            if answer.status == 404:
                break
            assert answer.status == 410
            await asyncio.sleep(0.05)
        assert answer.status == 404
        async with ConfigClient(broker.store_url) as client:
            try:
                await client.get(INSTANCE, names.instance_record("brief"), "istio-broker")
                raise AssertionError("the tombstone should be gone")
            except kube_errors.NotFound:
                pass
