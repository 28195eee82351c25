"""The broker end to end over its OSB API, with a real config store and a real CA in this
event loop: the lifecycle, what it leaves in the mesh, idempotency, conflicts and bad input."""

from __future__ import annotations

import asyncio
import base64
import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from broker import names, testing
from broker.records import BINDING, INSTANCE
from broker.resources import AUTHORIZATION_POLICY
from pilot.configstore.server import Options as StoreOptions
from pilot.configstore.server import serving
from pilot.configstore.testing import StoreProcess
from pkg.kube import errors as kube_errors
from pkg.kube.client import ConfigClient
from pkg.testing.aio import run_async

PATH = "/v2/service_instances"


def _identity(platform: str, value: dict) -> str:
    return f"{platform} {base64.b64encode(json.dumps(value).encode()).decode()}"


async def _fence(store_url: str, instance_id: str | None):
    """The instance's fence, or (None) the broker's mesh-wide one."""
    name, namespace = (
        (names.owned(instance_id, "fence"), "default")
        if instance_id is not None
        else ("istio-broker-fence", "istio-system")
    )
    async with ConfigClient(store_url) as client:
        try:
            return await client.get(AUTHORIZATION_POLICY, name, namespace)
        except kube_errors.NotFound:
            return None


def _not_principals(fence) -> list[str]:
    return list(getattr(fence.spec.rules[0], "from")[0].source.not_principals)


async def _records(store_url: str, namespace: str = "istio-broker") -> list:
    async with ConfigClient(store_url) as client:
        instances = await client.list(INSTANCE, namespace)
        bindings = await client.list(BINDING, namespace)
        return instances.items + bindings.items


async def _ready_catalog(broker: testing.Running, osb: testing.OsbClient) -> dict:
    await testing.apply(broker.store_url, testing.PRODUCTPAGE, testing.DEMO_CATALOG)
    return await testing.wait_catalog(osb, lambda c: len(c["services"]) == 1)


@run_async(timeout=90)
async def test_lifecycle_leaves_exactly_the_policy_it_needs_in_the_mesh(tmp_path):
    origin = _identity("cloudfoundry", {"user_id": "683ea748"})
    async with testing.running_broker(tmp_path) as broker, broker.client(identity=origin) as osb:
        await _ready_catalog(broker, osb)
        # No instance yet, so no binding identity can exist: the mesh carries no broker policy.
        assert await _fence(broker.store_url, None) is None
        created = await osb.provision("inst-1", parameters={"tier": "gold"})
        assert (created.status, created.body) == (201, {})
        fence = await _fence(broker.store_url, "inst-1")
        assert fence is not None
        assert list(_not_principals(fence)) == []
        assert await _fence(broker.store_url, None) is not None  # from the first instance on

        fetched = await osb.get(f"{PATH}/inst-1")
        assert fetched.status == 200
        assert fetched.body["plan_id"] == testing.MONTHLY
        assert fetched.body["parameters"] == {"tier": "gold"}

        bound = await osb.bind("inst-1", "b-1", bind_resource={"app_guid": "app-1"})
        assert bound.status == 201
        creds = bound.body["credentials"]
        spiffe = names.spiffe_id("cluster.local", "istio-broker", "inst-1", "b-1")
        assert creds["spiffe_id"] == spiffe
        assert creds["uri"] == "http://productpage.default.svc.cluster.local:9080"
        assert creds["server_identities"] == [
            "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
        ]
        assert bound.body["endpoints"] == [
            {"host": "productpage.default.svc.cluster.local", "ports": ["9080"], "protocol": "tcp"}
        ]
        _check_certificate(creds, broker.ca_root.read_text(), spiffe)
        assert bound.body["metadata"]["expires_at"] == creds["expires_at"]

        fence = await _fence(broker.store_url, "inst-1")
        assert list(_not_principals(fence)) == [spiffe.removeprefix("spiffe://")]
        assert _not_principals(await _fence(broker.store_url, None)) == _not_principals(fence)
        again = await osb.bind("inst-1", "b-1", bind_resource={"app_guid": "app-1"})
        assert again.status == 200
        assert again.body == bound.body  # the same credentials
        got = await osb.get(f"{PATH}/inst-1/service_bindings/b-1")
        assert got.status == 200
        assert got.body["credentials"] == creds
        op = await osb.get(f"{PATH}/inst-1/service_bindings/b-1/last_operation")
        assert (op.status, op.body) == (200, {"state": "succeeded", "description": "bound"})

        # Who asked, as the platform said, is in the records.
        async with ConfigClient(broker.store_url) as client:
            record = await client.get(INSTANCE, names.instance_record("inst-1"), "istio-broker")
        assert record.spec.originating_identity.platform == "cloudfoundry"
        assert dict(record.spec.originating_identity.value) == {"user_id": "683ea748"}

        unbound = await osb.unbind("inst-1", "b-1")
        assert (unbound.status, unbound.body) == (200, {})
        fence = await _fence(broker.store_url, "inst-1")
        assert list(_not_principals(fence)) == []  # revoked, here and mesh-wide
        assert _not_principals(await _fence(broker.store_url, None)) == []
        assert (await osb.get(f"{PATH}/inst-1/service_bindings/b-1")).status == 404
        assert (await osb.unbind("inst-1", "b-1")).status == 410
        # The key went with the binding.
        assert all(
            "PRIVATE KEY" not in json.dumps(r.to_dict()) for r in await _records(broker.store_url)
        )

        gone = await osb.deprovision("inst-1")
        assert (gone.status, gone.body) == (200, {})
        assert await _fence(broker.store_url, "inst-1") is None
        # The broker's own fence stays: the revoked certificate is refused everywhere still.
        assert await _fence(broker.store_url, None) is not None
        assert (await osb.get(f"{PATH}/inst-1")).status == 404
        assert (await osb.deprovision("inst-1")).status == 410
        assert (await osb.get(f"{PATH}/inst-1/last_operation")).status == 410


def _check_certificate(creds: dict, root_pem: str, spiffe: str) -> None:
    leaf = x509.load_pem_x509_certificate(creds["certificate"].encode())
    root = x509.load_pem_x509_certificate(root_pem.encode())
    assert creds["ca_certificate"].strip() == root_pem.strip()
    assert leaf.issuer == root.subject
    leaf.verify_directly_issued_by(root)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe]
    key = serialization.load_pem_private_key(creds["private_key"].encode(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == (
        leaf.public_key().public_bytes(serialization.Encoding.DER, spki)
    )


@run_async(timeout=90)
async def test_same_request_again_is_200_a_different_one_409(tmp_path):
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await _ready_catalog(broker, osb)
        assert (await osb.provision("i", parameters={"a": 1})).status == 201
        assert (await osb.provision("i", parameters={"a": 1})).status == 200
        other = await osb.provision("i", parameters={"a": 2})
        assert other.status == 409
        assert other.body == {
            "error": "InstanceExists",
            "description": "instance 'i' exists with other attributes (parameters differ)",
        }
        assert (await osb.provision("i", plan_id=testing.YEARLY, parameters={"a": 1})).status == 409
        assert (await osb.bind("i", "b", parameters={"x": True})).status == 201
        assert (await osb.bind("i", "b", parameters={"x": True})).status == 200
        conflict = await osb.bind("i", "b", parameters={"x": False})
        assert conflict.status == 409
        assert conflict.body["error"] == "BindingExists"
        # Nothing was changed by the refused requests.
        fetched = await osb.get(f"{PATH}/i")
        assert fetched.body["parameters"] == {"a": 1}
        assert (await osb.get(f"{PATH}/i/service_bindings/b")).body["parameters"] == {"x": True}


@run_async(timeout=90)
async def test_bad_input_is_refused_with_the_spec_codes_and_changes_nothing(tmp_path):
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await _ready_catalog(broker, osb)
        before = await _records(broker.store_url)

        unknown = await osb.provision("x", service_id="no-such-service")
        assert (unknown.status, unknown.body["error"]) == (400, "UnknownService")
        plan = await osb.provision("x", plan_id="no-such-plan")
        assert (plan.status, plan.body["error"]) == (400, "UnknownPlan")
        assert "its plans: 58646b26" in plan.body["description"]
        malformed = await osb.call(
            "PUT",
            f"{PATH}/x",
            data=b'{"service_id": ',
            headers={"Content-Type": "application/json"},
        )
        assert (malformed.status, malformed.body["error"]) == (400, "MalformedJSON")
        missing = await osb.call("PUT", f"{PATH}/x", {"service_id": testing.SERVICE_ID})
        assert (missing.status, missing.body["description"]) == (400, "body.plan_id is required")
        upkeep = await osb.provision("x", maintenance_info={"version": "1.0.0"})
        assert (upkeep.status, upkeep.body["error"]) == (422, "MaintenanceInfoConflict")
        flag = await osb.provision("x", params={"accepts_incomplete": "yes"})
        assert flag.status == 400

        async with testing.OsbClient(broker.url, version=None) as bare:
            no_version = await bare.get("/v2/catalog")
        assert (no_version.status, no_version.body["error"]) == (412, "MissingVersion")
        async with testing.OsbClient(broker.url, version="2.12") as old:
            assert (await old.get("/v2/catalog")).status == 412
        async with testing.OsbClient(broker.url, password="wrong") as intruder:
            refused = await intruder.provision("x")
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
        async with testing.OsbClient(broker.url, username="") as anonymous:
            assert (await anonymous.get("/v2/catalog")).status == 401

        assert (await osb.get("/v2/nothing-here")).status == 404
        wrong_method = await osb.call("POST", f"{PATH}/x")
        assert wrong_method.status == 405
        assert wrong_method.headers["Allow"] == "PUT, PATCH, DELETE, GET"
        assert (await osb.get(f"{PATH}/x")).status == 404
        assert (await osb.get(f"{PATH}/x/last_operation")).status == 404
        assert (await osb.get(f"{PATH}/x/service_bindings/b")).status == 404
        assert (await osb.get(f"{PATH}/x/service_bindings/b/last_operation")).status == 404
        assert (await osb.deprovision("x")).status == 410
        assert (await osb.unbind("x", "b")).status == 410
        patch = await osb.call("PATCH", f"{PATH}/x", {"service_id": testing.SERVICE_ID})
        assert (patch.status, patch.body["error"]) == (422, "InstanceNotFound")
        bind = await osb.bind("x", "b")
        assert (bind.status, bind.body["error"]) == (422, "InstanceNotFound")
        no_plan = await osb.call("DELETE", f"{PATH}/x", params={"service_id": testing.SERVICE_ID})
        assert no_plan.status == 400
        bad_identity = await osb.call(
            "DELETE",
            f"{PATH}/x",
            params={"service_id": testing.SERVICE_ID, "plan_id": testing.MONTHLY},
            headers={"X-Broker-API-Originating-Identity": "k8s %%%"},
        )
        assert bad_identity.status == 400
        # Reads ignore it: who asked is recorded for changes only.
        ignored = await osb.get(f"{PATH}/x", headers={"X-Broker-API-Originating-Identity": "k8s"})
        assert ignored.status == 404

        echoed = await osb.get("/v2/catalog", headers={"X-Broker-API-Request-Identity": "req-42"})
        assert echoed.headers["X-Broker-API-Request-Identity"] == "req-42"
        assert await _records(broker.store_url) == before

        # Ids that must match the instance's are checked too.
        assert (await osb.provision("real")).status == 201
        wrong = await osb.deprovision("real", plan_id=testing.YEARLY)
        assert wrong.status == 400
        assert "is not the instance's" in wrong.body["description"]
        assert (await osb.bind("real", "b", plan_id=testing.YEARLY)).status == 400
        assert (
            await osb.get(f"{PATH}/real/last_operation", params={"operation": "nope"})
        ).status == 400


@run_async(timeout=90)
async def test_update_moves_the_instance_to_another_plan_and_its_resources_follow(tmp_path):
    exposed = """
apiVersion: broker.istio.io/v1alpha1
kind: ServicePlan
metadata: {name: exposed, namespace: default}
spec:
  plan: {name: exposed, id: exposed-plan, description: also an ALLOW policy and a route}
  services: [service-class/default/productpage-service-class]
  provisioning:
    allowPolicy: true
    virtualService:
      hosts: [productpage.partner.example]
      gateways: [istio-system/bookinfo-gateway]
      http: [{route: [{destination: {host: productpage.default.svc.cluster.local}}]}]
"""
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await _ready_catalog(broker, osb)
        await testing.apply(broker.store_url, exposed)
        await testing.wait_catalog(osb, lambda c: len(c["services"][0]["plans"]) == 3)
        assert (await osb.provision("u")).status == 201
        assert (await osb.bind("u", "b")).status == 201

        moved = await osb.call(
            "PATCH",
            f"{PATH}/u",
            {"service_id": testing.SERVICE_ID, "plan_id": "exposed-plan", "parameters": {"p": 1}},
        )
        assert (moved.status, moved.body) == (200, {})
        fetched = await osb.get(f"{PATH}/u")
        assert (fetched.body["plan_id"], fetched.body["parameters"]) == ("exposed-plan", {"p": 1})
        owned = fetched.body["metadata"]["attributes"]["resources"]
        key = names.instance_key("u")
        assert owned == [
            f"AuthorizationPolicy/default/osb-{key}-fence",
            f"AuthorizationPolicy/default/osb-{key}-allow",
            f"VirtualService/default/osb-{key}",
        ]
        async with ConfigClient(broker.store_url) as client:
            allow = await client.get(AUTHORIZATION_POLICY, names.owned("u", "allow"))
        spiffe = names.spiffe_id("cluster.local", "istio-broker", "u", "b")
        assert list(getattr(allow.spec.rules[0], "from")[0].source.principals) == [
            spiffe.removeprefix("spiffe://")
        ]

        # The same update again changes nothing; an unknown plan is refused.
        same = await osb.call(
            "PATCH", f"{PATH}/u", {"service_id": testing.SERVICE_ID, "plan_id": "exposed-plan"}
        )
        assert same.status == 200
        unknown = await osb.call(
            "PATCH", f"{PATH}/u", {"service_id": testing.SERVICE_ID, "plan_id": "nope"}
        )
        assert unknown.status == 400

        back = await osb.call(
            "PATCH", f"{PATH}/u", {"service_id": testing.SERVICE_ID, "plan_id": testing.MONTHLY}
        )
        assert back.status == 200
        async with ConfigClient(broker.store_url) as client:
            for schema, name in ((AUTHORIZATION_POLICY, names.owned("u", "allow")),):
                try:
                    await client.get(schema, name)
                    raise AssertionError(f"{name} should be gone")
                except kube_errors.NotFound:
                    pass
        assert (await osb.get(f"{PATH}/u")).body["metadata"]["attributes"]["resources"] == [
            f"AuthorizationPolicy/default/osb-{key}-fence"
        ]
        assert (await osb.unbind("u", "b")).status == 200
        assert (await osb.deprovision("u")).status == 200


@run_async(timeout=120)
async def test_concurrent_requests_for_one_instance_leave_nothing_half_made(tmp_path):
    # Two brokers on one store, hammered with the same ids: only the record's resourceVersion
    # keeps them apart across processes, a lock within each.
    async with (
        testing.running_broker(tmp_path / "a") as first,
        testing.running_broker(tmp_path / "b", store_url=first.store_url) as second,
        first.client() as one,
        second.client() as two,
    ):
        await _ready_catalog(first, one)
        await testing.wait_catalog(two, lambda c: len(c["services"]) == 1)
        answers = await asyncio.gather(*(c.provision("race") for c in (one, two) * 4))
        statuses = sorted(a.status for a in answers)
        assert statuses.count(201) == 1, statuses
        assert set(statuses) <= {200, 201, 422}, statuses

        async def churn(client: testing.OsbClient, binding: str) -> None:
            for _ in range(3):
                await client.bind("race", binding)
                await client.unbind("race", binding)
            await client.bind("race", binding)

        await asyncio.gather(churn(one, "b1"), churn(two, "b2"), churn(one, "b3"), churn(two, "b1"))
        await _assert_consistent(first.store_url, "race")
        answers = await asyncio.gather(
            one.deprovision("race"), two.deprovision("race"), one.bind("race", "late")
        )
        assert sorted(a.status for a in answers[:2]) in ([200, 410], [200, 422]), answers
        await _assert_consistent(first.store_url, "race")


async def _assert_consistent(store_url: str, instance_id: str) -> None:
    """What the mesh holds for the instance is exactly what its record says."""
    async with ConfigClient(store_url) as client:
        try:
            record = (
                await client.get(INSTANCE, names.instance_record(instance_id), "istio-broker")
            ).spec
        except kube_errors.NotFound:
            record = None
        bindings = [
            b.spec
            for b in (await client.list(BINDING, "istio-broker")).items
            if b.spec.instance_id == instance_id and not b.spec.unbound
        ]
        policies = [
            p
            for p in (await client.list(AUTHORIZATION_POLICY, "default")).items
            if p.metadata.labels.get(names.INSTANCE_LABEL) == names.instance_key(instance_id)
        ]
    if record is None or record.deprovisioned:
        assert policies == []
        assert bindings == []
        return
    assert sorted(p.metadata.name for p in policies) == sorted(r.name for r in record.resources)
    admitted = {
        b.spiffe_id for b in bindings if b.last_operation.state == b.last_operation.SUCCEEDED
    }
    assert set(record.bound_identities) == admitted
    fence = next(p for p in policies if p.metadata.name.endswith("-fence"))
    assert {f"spiffe://{p}" for p in _not_principals(fence)} == admitted
    broker_fence = await _fence(store_url, None)
    assert {f"spiffe://{p}" for p in _not_principals(broker_fence)} == admitted


@run_async(timeout=90)
async def test_instances_of_one_service_admit_each_others_bindings_there_and_only_there(tmp_path):
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await _ready_catalog(broker, osb)
        assert (await osb.provision("one")).status == 201
        assert (await osb.provision("two", plan_id=testing.YEARLY)).status == 201
        assert (await osb.bind("one", "b")).status == 201
        assert (await osb.bind("two", "b", plan_id=testing.YEARLY)).status == 201
        first = names.spiffe_id("cluster.local", "istio-broker", "one", "b").removeprefix(
            "spiffe://"
        )
        second = names.spiffe_id("cluster.local", "istio-broker", "two", "b").removeprefix(
            "spiffe://"
        )
        # Both fences on productpage let both bindings through (DENY policies add up).
        for instance_id in ("one", "two"):
            assert _not_principals(await _fence(broker.store_url, instance_id)) == sorted(
                [first, second]
            )
        assert (await osb.deprovision("one")).status == 200
        assert _not_principals(await _fence(broker.store_url, "two")) == [second]
        assert _not_principals(await _fence(broker.store_url, None)) == [second]


@run_async(timeout=90)
async def test_an_annotated_service_entry_is_offered_and_provisioned_with_its_default_plan(
    tmp_path,
):
    annotated = testing.PRODUCTPAGE.replace(
        "metadata: {name: productpage, namespace: default}",
        'metadata: {name: productpage, namespace: default, annotations: {"broker.istio.io/catalog": "true"}}',
    )
    async with testing.running_broker(tmp_path) as broker, broker.client() as osb:
        await testing.apply(broker.store_url, annotated)
        catalog = await testing.wait_catalog(osb, lambda c: len(c["services"]) == 1)
        (service,) = catalog["services"]
        assert service["name"] == "productpage.default"
        (plan,) = service["plans"]
        assert plan["name"] == "default"
        created = await osb.provision("opted-in", service_id=service["id"], plan_id=plan["id"])
        assert created.status == 201
        bound = await osb.bind("opted-in", "b", service_id=service["id"], plan_id=plan["id"])
        assert bound.body["credentials"]["host"] == "productpage.default.svc.cluster.local"


@run_async(timeout=90)
async def test_state_survives_a_restart_of_the_broker(tmp_path):
    async with serving(StoreOptions(port=0, db=tmp_path / "store.db")) as store:
        async with (
            testing.running_broker(tmp_path / "one", store_url=store.url) as first,
            first.client() as osb,
        ):
            await _ready_catalog(first, osb)
            assert (await osb.provision("keep", parameters={"n": 1})).status == 201
            bound = await osb.bind("keep", "b")
            assert bound.status == 201
        # A new broker process on the same store (and the same CA) knows all of it.
        async with testing.running_broker(tmp_path / "one", store_url=store.url) as second:
            async with second.client() as osb:
                await testing.wait_catalog(osb, lambda c: len(c["services"]) == 1)
                assert (await osb.provision("keep", parameters={"n": 1})).status == 200
                assert (await osb.get(f"{PATH}/keep")).body["parameters"] == {"n": 1}
                again = await osb.bind("keep", "b")
                assert (again.status, again.body) == (200, bound.body)
                assert (await osb.unbind("keep", "b")).status == 200
                assert (await osb.deprovision("keep")).status == 200
            assert await _fence(store.url, "keep") is None


@run_async(timeout=90)
async def test_a_ca_that_does_not_answer_is_a_503_and_leaves_no_binding_behind(tmp_path):
    async with (
        testing.running_broker(tmp_path, ca_address="127.0.0.1:1") as broker,
        broker.client() as osb,
    ):
        await _ready_catalog(broker, osb)
        assert (await osb.provision("i")).status == 201
        refused = await osb.bind("i", "b")
        assert (refused.status, refused.body["error"]) == (503, "ServiceUnavailable")
        assert "the CA did not issue a certificate" in refused.body["description"]
        assert (await osb.get(f"{PATH}/i/service_bindings/b")).status == 404
        assert _not_principals(await _fence(broker.store_url, "i")) == []
        async with ConfigClient(broker.store_url) as client:
            assert (await client.list(BINDING, "istio-broker")).items == []


@run_async(timeout=90)
async def test_a_config_store_that_is_gone_is_a_503_not_a_500(tmp_path):
    store = await asyncio.to_thread(StoreProcess(tmp_path / "store.db").start)
    try:
        async with (
            testing.running_broker(tmp_path, store_url=store.url) as broker,
            broker.client() as osb,
        ):
            await _ready_catalog(broker, osb)
            await asyncio.to_thread(store.kill)
            answer = await osb.provision("i")
            assert (answer.status, answer.body["error"]) == (503, "ServiceUnavailable")
            assert "cannot reach the config store" in answer.body["description"]
            assert (await osb.get(f"{PATH}/i")).status == 503
    finally:
        await asyncio.to_thread(store.kill)


@run_async(timeout=90)
async def test_request_identity_and_readiness(tmp_path):
    async with testing.running_broker(tmp_path) as broker:
        async with testing.OsbClient(broker.url, username="") as anonymous:
            ready = await anonymous.get("/ready")
        assert (ready.status, ready.body) == (200, {"ready": True})
