from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from security.nodeagent.resources import SECRET_TYPE, root_secret, version_of
from security.nodeagent.stream import Action, StreamState


def request(
    names: tuple[str, ...] = ("default",),
    nonce: str = "",
    version: str = "",
    error: str | None = None,
    type_url: str = SECRET_TYPE,
) -> discovery_pb2.DiscoveryRequest:
    result = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), response_nonce=nonce, version_info=version
    )
    if error is not None:
        result.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
    return result


SECRETS = [secret_pb2.Secret(name="default"), root_secret(b"root")]


def sent(state: StreamState, version: str = "v1") -> discovery_pb2.DiscoveryResponse:
    return state.record_sent(SECRETS, version)


def test_first_request_is_answered() -> None:
    state = StreamState()
    decision = state.on_request(request(("default", "ROOTCA")))
    assert decision.respond
    assert state.names == {"default", "ROOTCA"}
    assert state.should_send("v1")


def test_response_carries_secrets_and_a_fresh_nonce() -> None:
    state = StreamState()
    state.on_request(request(("default", "ROOTCA")))
    first = sent(state)
    assert first.type_url == SECRET_TYPE
    assert first.version_info == "v1"
    assert [r.type_url for r in first.resources] == [SECRET_TYPE, SECRET_TYPE]
    second = sent(state, "v2")
    assert first.nonce != second.nonce
    assert not state.owed


def test_ack_is_not_answered_and_same_content_not_resent() -> None:
    state = StreamState()
    state.on_request(request())
    response = sent(state)
    decision = state.on_request(request(nonce=response.nonce, version="v1"))
    assert decision.action is Action.ACK
    assert state.version_acked == "v1"
    assert state.acks == 1
    assert not state.should_send("v1")
    assert state.should_send("v2")  # a push of new content


def test_nack_is_recorded_not_answered_and_not_resent() -> None:
    state = StreamState()
    state.on_request(request())
    response = sent(state, "v1")
    state.on_request(request(nonce=response.nonce, version="v1"))
    response = sent(state, "v2")
    decision = state.on_request(request(nonce=response.nonce, version="v1", error="bad key"))
    assert decision.action is Action.NACK
    assert state.nacks == 1
    assert state.last_nack is not None
    assert state.last_nack.message == "bad key"
    assert state.last_nack.version == "v1"
    assert state.version_acked == "v1"
    assert not state.should_send("v2")  # the rejected content again: no
    assert state.should_send("v3")  # new content: yes


def test_nack_naming_new_secrets_is_answered() -> None:
    state = StreamState()
    state.on_request(request(("default",)))
    response = sent(state)
    decision = state.on_request(
        request(("default", "ROOTCA"), nonce=response.nonce, error="missing")
    )
    assert decision.respond


def test_stale_nonce_is_ignored_unless_it_names_new_secrets() -> None:
    state = StreamState()
    state.on_request(request(("default",)))
    old = sent(state)
    sent(state, "v2")
    assert state.on_request(request(("default",), nonce=old.nonce)).action is Action.STALE
    decision = state.on_request(request(("default", "ROOTCA"), nonce=old.nonce))
    assert decision.respond
    assert state.names == {"default", "ROOTCA"}


def test_request_without_nonce_is_answered_again() -> None:
    state = StreamState()
    state.on_request(request())
    sent(state)
    assert state.on_request(request()).respond
    assert state.should_send("v1")  # owed, even with unchanged content


def test_changed_subscription_in_an_ack_is_answered() -> None:
    state = StreamState()
    state.on_request(request(("default",)))
    response = sent(state)
    decision = state.on_request(request(("ROOTCA",), nonce=response.nonce, version="v1"))
    assert decision.respond
    assert state.names == {"ROOTCA"}


def test_empty_names_unsubscribe() -> None:
    state = StreamState()
    state.on_request(request())
    response = sent(state)
    decision = state.on_request(request((), nonce=response.nonce, version="v1"))
    assert decision.action is Action.UNSUBSCRIBE
    assert not state.should_send("v2")
    # Subscribing again counts as new.
    assert state.on_request(request(("default",), nonce=response.nonce)).respond


def test_other_types_are_invalid() -> None:
    state = StreamState()
    decision = state.on_request(
        request(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster")
    )
    assert decision.action is Action.INVALID
    assert not state.started


def test_versions_come_from_content_not_order() -> None:
    a = [secret_pb2.Secret(name="default"), root_secret(b"one")]
    assert version_of(a) == version_of(list(reversed(a)))
    assert version_of(a) != version_of([secret_pb2.Secret(name="default"), root_secret(b"two")])
