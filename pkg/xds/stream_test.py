"""The stream state machine alone: requests in, decisions out, no sockets, no tasks.

The same machine serves Pilot's ADS (many types) and the node agent's SDS (one type)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from pkg.xds import resources as res
from pkg.xds.request import decode
from pkg.xds.resources import Resource, Resources
from pkg.xds.status import SyncState, TypeStatus
from pkg.xds.stream import Action, StreamState


def request(
    type_url: str,
    names: tuple[str, ...] = (),
    *,
    nonce: str = "",
    version: str = "",
    error: str | None = None,
) -> discovery_pb2.DiscoveryRequest:
    req = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=names, response_nonce=nonce, version_info=version
    )
    if error is not None:
        req.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return req


def clusters(*names: str) -> list[Resource]:
    return res.check(res.CLUSTER, [Resource(n, cluster_pb2.Cluster(name=n)) for n in names])


def send(state: StreamState, type_url: str, resources: list[Resource]):
    return state.record_sent(type_url, Resources.of(type_url, resources)).to_proto()


def test_first_request_of_a_type_is_answered():
    state = StreamState()
    decision = state.on_request(request(res.CLUSTER))
    assert decision.action is Action.RESPOND
    watch = state.watches[res.CLUSTER]
    assert watch.wildcard
    assert watch.request_names() == []
    assert TypeStatus.of(res.CLUSTER, watch).state is SyncState.NOT_SENT


def test_response_carries_exact_type_url_version_and_fresh_nonces():
    state = StreamState()
    state.on_request(request(res.CLUSTER))
    first = send(state, res.CLUSTER, clusters("a", "b"))
    second = send(state, res.CLUSTER, clusters("a", "b"))
    assert first.type_url == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert [r.type_url for r in first.resources] == [res.CLUSTER] * 2
    assert first.version_info == second.version_info
    assert first.nonce != second.nonce


def test_ack_of_the_latest_nonce_needs_no_response():
    state = StreamState()
    state.on_request(request(res.CLUSTER))
    sent = send(state, res.CLUSTER, clusters("a"))
    decision = state.on_request(request(res.CLUSTER, nonce=sent.nonce, version=sent.version_info))
    assert decision.action is Action.ACK
    assert decision.acked
    status = TypeStatus.of(res.CLUSTER, state.watches[res.CLUSTER])
    assert status.state is SyncState.SYNCED
    assert (status.version_acked, status.acks) == (sent.version_info, 1)


def test_sent_but_not_acked_is_stale():
    state = StreamState()
    state.on_request(request(res.LISTENER))
    send(state, res.LISTENER, [])
    assert TypeStatus.of(res.LISTENER, state.watches[res.LISTENER]).state is SyncState.STALE


def test_nack_is_recorded_not_answered_and_the_last_good_version_stays():
    state = StreamState()
    state.on_request(request(res.CLUSTER))
    good = send(state, res.CLUSTER, clusters("a"))
    state.on_request(request(res.CLUSTER, nonce=good.nonce, version=good.version_info))
    bad = send(state, res.CLUSTER, clusters("a", "b"))

    decision = state.on_request(
        request(res.CLUSTER, nonce=bad.nonce, version=good.version_info, error="bad cluster b")
    )

    assert decision.action is Action.NACK
    assert not decision.respond
    status = TypeStatus.of(res.CLUSTER, state.watches[res.CLUSTER])
    assert status.state is SyncState.NACKED
    assert status.nacks == 1
    assert status.last_nack_message == "bad cluster b"
    assert status.last_nack_time is not None
    assert status.version_acked == good.version_info  # what Envoy still runs
    assert status.version_sent == bad.version_info


def test_a_later_good_response_clears_nacked():
    state = StreamState()
    state.on_request(request(res.CLUSTER))
    bad = send(state, res.CLUSTER, clusters("x"))
    state.on_request(request(res.CLUSTER, nonce=bad.nonce, error="no"))
    fixed = send(state, res.CLUSTER, clusters("a"))
    watch = state.watches[res.CLUSTER]
    assert TypeStatus.of(res.CLUSTER, watch).state is SyncState.STALE
    state.on_request(request(res.CLUSTER, nonce=fixed.nonce, version=fixed.version_info))
    status = TypeStatus.of(res.CLUSTER, watch)
    assert status.state is SyncState.SYNCED
    assert status.last_nack_message == "no"  # history kept


def test_stale_nonce_is_ignored():
    state = StreamState()
    state.on_request(request(res.ENDPOINT, ("a",)))
    old = send(state, res.ENDPOINT, [])
    send(state, res.ENDPOINT, [])  # a push Envoy has not seen yet
    decision = state.on_request(request(res.ENDPOINT, ("a",), nonce=old.nonce))
    assert decision.action is Action.STALE
    assert state.watches[res.ENDPOINT].acks == 0


def test_stale_nonce_naming_unanswered_resources_is_answered():
    # Envoy after a CDS change: EDS for the new cluster, with the EDS nonce it already ACKed.
    state = StreamState()
    state.on_request(request(res.ENDPOINT, ("a",)))
    old = send(state, res.ENDPOINT, [])
    send(state, res.ENDPOINT, [])
    decision = state.on_request(request(res.ENDPOINT, ("a", "b"), nonce=old.nonce))
    assert decision.respond
    assert state.watches[res.ENDPOINT].request_names() == ["a", "b"]


def test_already_acked_nonce_with_new_names_is_answered():
    state = StreamState()
    state.on_request(request(res.ENDPOINT, ("a",)))
    sent = send(state, res.ENDPOINT, [])
    assert state.on_request(request(res.ENDPOINT, ("a",), nonce=sent.nonce)).action is Action.ACK
    # The same, already ACKed nonce again, now naming a new cluster.
    decision = state.on_request(request(res.ENDPOINT, ("a", "b"), nonce=sent.nonce))
    assert decision.respond
    assert state.watches[res.ENDPOINT].request_names() == ["a", "b"]


def test_repeated_request_for_answered_names_is_not_answered_twice():
    state = StreamState()
    state.on_request(request(res.ENDPOINT, ("a", "b")))
    sent = send(state, res.ENDPOINT, [])
    send(state, res.ENDPOINT, [])
    decision = state.on_request(request(res.ENDPOINT, ("b",), nonce=sent.nonce))
    assert decision.action is Action.STALE


def test_subscription_change_with_the_latest_nonce_is_answered():
    state = StreamState()
    state.on_request(request(res.ROUTE, ("80",)))
    sent = send(state, res.ROUTE, [])
    decision = state.on_request(request(res.ROUTE, ("9080",), nonce=sent.nonce))
    assert decision.respond
    assert decision.acked
    assert state.watches[res.ROUTE].request_names() == ["9080"]


def test_empty_names_unsubscribe_a_non_wildcard_type():
    state = StreamState()
    state.on_request(request(res.ENDPOINT, ("a",)))
    sent = send(state, res.ENDPOINT, [])
    decision = state.on_request(request(res.ENDPOINT, (), nonce=sent.nonce))
    assert decision.action is Action.UNSUBSCRIBE
    watch = state.watches[res.ENDPOINT]
    assert not watch.subscribed
    assert watch.answered == set()
    # Subscribing again is new: answered, even with a stale nonce.
    send(state, res.ENDPOINT, [])
    assert state.on_request(request(res.ENDPOINT, ("a",), nonce=sent.nonce)).respond


def test_empty_names_on_a_wildcard_type_mean_everything():
    state = StreamState()
    state.on_request(request(res.LISTENER))
    sent = send(state, res.LISTENER, [])
    decision = state.on_request(request(res.LISTENER, (), nonce=sent.nonce))
    assert decision.action is Action.ACK
    assert state.watches[res.LISTENER].wildcard
    # "*" is the explicit spelling of the same subscription.
    assert state.on_request(request(res.LISTENER, ("*",), nonce=sent.nonce)).action is Action.ACK


def test_request_without_nonce_mid_stream_is_answered():
    state = StreamState()
    state.on_request(request(res.CLUSTER))
    sent = send(state, res.CLUSTER, [])
    state.on_request(request(res.CLUSTER, nonce=sent.nonce))
    assert state.on_request(request(res.CLUSTER)).respond


def test_nack_naming_new_resources_is_answered():
    state = StreamState()
    state.on_request(request(res.ENDPOINT, ("a",)))
    sent = send(state, res.ENDPOINT, [])
    decision = state.on_request(request(res.ENDPOINT, ("a", "b"), nonce=sent.nonce, error="x"))
    assert decision.respond
    assert state.watches[res.ENDPOINT].nacks == 1


def test_nack_on_a_new_stream_still_gets_a_first_answer():
    # Envoy reconnecting to a restarted Pilot after rejecting the old one's config.
    state = StreamState()
    decision = state.on_request(request(res.CLUSTER, nonce="old-7", version="v1", error="bad"))
    assert decision.respond
    assert state.watches[res.CLUSTER].version_acked == "v1"


def test_request_without_type_url_is_invalid():
    assert StreamState().on_request(request("")).action is Action.INVALID


def test_versions_come_from_content():
    assert res.version_of(clusters("a", "b")) == res.version_of(clusters("b", "a"))
    assert res.version_of(clusters("a", "b")) != res.version_of(clusters("a"))
    changed = res.check(
        res.CLUSTER, [Resource("a", cluster_pb2.Cluster(name="a", alt_stat_name="x"))]
    )
    assert res.version_of(changed) != res.version_of(clusters("a"))
    # The same message under another name is other content.
    renamed = res.check(res.CLUSTER, [Resource("z", cluster_pb2.Cluster(name="a"))])
    assert res.version_of(renamed) != res.version_of(clusters("a"))


# As the node agent's SDS stream uses it: one type served.


def test_a_type_not_served_is_invalid_and_opens_nothing():
    state = StreamState(frozenset({res.SECRET}))
    decision = state.on_request(request(res.CLUSTER, ("x",)))
    assert decision.action is Action.INVALID
    assert state.watches == {}
    assert state.on_request(request(res.SECRET, ("default",))).respond


def test_a_request_leaves_its_watch_owed_until_answered():
    state = StreamState(frozenset({res.SECRET}))
    state.on_request(request(res.SECRET, ("default", "ROOTCA")))
    watch = state.watches[res.SECRET]
    assert watch.owed
    assert watch.names == {"default", "ROOTCA"}
    sent = send(state, res.SECRET, [])
    assert not watch.owed
    assert watch.responses == 1
    state.on_request(request(res.SECRET, ("default", "ROOTCA"), nonce=sent.nonce))
    assert not watch.owed  # an ACK owes nothing
    # Asked again without a nonce: owed again, even though the content is unchanged.
    assert state.on_request(request(res.SECRET, ("default", "ROOTCA"))).respond
    assert watch.owed


def test_a_nack_keeps_the_version_the_client_still_runs():
    state = StreamState(frozenset({res.SECRET}))
    state.on_request(request(res.SECRET, ("default",)))
    first = send(state, res.SECRET, [])
    state.on_request(request(res.SECRET, ("default",), nonce=first.nonce, version="v1"))
    second = send(state, res.SECRET, [])
    decision = state.on_request(
        request(res.SECRET, ("default",), nonce=second.nonce, version="v1", error="bad key")
    )
    assert decision.action is Action.NACK
    watch = state.watches[res.SECRET]
    assert watch.last_nack is not None
    assert (watch.last_nack.message, watch.last_nack.version) == ("bad key", "v1")
    assert watch.version_acked == "v1"
    assert watch.nacks == 1
    assert not watch.owed


def test_an_ack_repeating_its_names_reuses_them_by_their_key():
    names = tuple(f"outbound|80||svc-{i}" for i in range(50))

    def received(nonce: str, version: str, these: tuple[str, ...] = names):
        return decode(
            request(res.ENDPOINT, these, nonce=nonce, version=version).SerializeToString()
        )

    first, ack, other = received("", ""), received("n-1", "v1"), received("n-1", "v1", names[:-1])
    assert first.names_key == ack.names_key != other.names_key
    assert first.message == request(res.ENDPOINT, names)
    state = StreamState()
    state.on_request(first.message, first.names_key)
    sent = send(state, res.ENDPOINT, [])
    watch = state.watches[res.ENDPOINT]
    subscribed = watch.names
    ack = received(sent.nonce, sent.version_info)
    assert state.on_request(ack.message, ack.names_key).action is Action.ACK
    assert watch.names is subscribed  # not rebuilt
    narrower = received(sent.nonce, sent.version_info, names[:-1])
    assert state.on_request(narrower.message, narrower.names_key).respond
    assert watch.names == frozenset(names[:-1])


def test_streams_subscribed_to_the_same_many_names_share_one_set():
    names = tuple(f"outbound|80||svc-{i}" for i in range(100))
    a, b = StreamState(), StreamState()
    a.on_request(request(res.ENDPOINT, names))
    b.on_request(request(res.ENDPOINT, tuple(reversed(names))))
    assert a.watches[res.ENDPOINT].names is b.watches[res.ENDPOINT].names
    sent = send(a, res.ENDPOINT, [])
    assert a.watches[res.ENDPOINT].answered is a.watches[res.ENDPOINT].names
    assert a.on_request(request(res.ENDPOINT, names, nonce=sent.nonce)).action is Action.ACK
