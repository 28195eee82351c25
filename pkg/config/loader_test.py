"""The loader: Bookinfo's routing samples round-trip; bad input gets a precise error."""

from __future__ import annotations

import pathlib
import textwrap

import pytest
import yaml

from pkg.config import loader
from pkg.config.resource import dump_yaml

BOOKINFO = pathlib.Path(__file__).parents[2] / "samples" / "bookinfo" / "networking"
SAMPLES = sorted(BOOKINFO.glob("*.yaml"))


def test_every_bookinfo_sample_is_present():
    names = {p.name for p in SAMPLES}
    assert {
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-reviews-50-v3.yaml",
        "virtual-service-reviews-80-20.yaml",
        "virtual-service-ratings-test-delay.yaml",
        "virtual-service-ratings-test-abort.yaml",
        "destination-rule-all.yaml",
        "bookinfo-gateway.yaml",
    } <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_parses_and_prints_back_equivalent(path: pathlib.Path):
    original = [d for d in yaml.safe_load_all(path.read_text()) if d]
    resources = loader.load_file(path)

    assert len(resources) == len(original)
    printed = list(yaml.safe_load_all(dump_yaml(resources)))
    for before, after, resource in zip(original, printed, resources, strict=True):
        # Printed at the stored version, as a Kubernetes API server reads it back.
        assert loader.ALL.by_kind(before["apiVersion"], before["kind"]) is resource.schema
        assert after["apiVersion"] == resource.schema.api_version
        assert after["kind"] == before["kind"] == resource.schema.kind
        assert after["metadata"]["name"] == before["metadata"]["name"]
        assert after["metadata"]["namespace"] == "default"
        assert after["spec"] == before["spec"]
    # And what was printed loads to the very same typed messages.
    again = loader.load_text(dump_yaml(resources))
    assert [r.spec for r in again] == [r.spec for r in resources]


def test_typed_access_to_a_header_match_and_weights():
    (test_v2,) = loader.load_file(BOOKINFO / "virtual-service-reviews-test-v2.yaml")
    first = test_v2.spec.http[0]
    assert first.match[0].headers["end-user"].exact == "jason"
    assert first.route[0].destination.subset == "v2"

    (split,) = loader.load_file(BOOKINFO / "virtual-service-reviews-80-20.yaml")
    assert [(d.destination.subset, d.weight) for d in split.spec.http[0].route] == [
        ("v1", 80),
        ("v2", 20),
    ]


def test_fault_delay_and_abort_are_typed():
    (delay,) = loader.load_file(BOOKINFO / "virtual-service-ratings-test-delay.yaml")
    fault = delay.spec.http[0].fault
    assert fault.delay.fixed_delay.seconds == 7
    assert fault.delay.percentage.value == 100.0
    (abort,) = loader.load_file(BOOKINFO / "virtual-service-ratings-test-abort.yaml")
    assert abort.spec.http[0].fault.abort.http_status == 500


def test_namespace_defaults_and_flag():
    text = (BOOKINFO / "virtual-service-reviews-v3.yaml").read_text()
    assert loader.load_text(text)[0].metadata.namespace == "default"
    assert loader.load_text(text, namespace="bookinfo")[0].metadata.namespace == "bookinfo"


def _vs(http: str, *, name: str = "reviews") -> str:
    return textwrap.dedent(
        """\
        apiVersion: networking.istio.io/v1alpha3
        kind: VirtualService
        metadata:
          name: {name}
        spec:
          hosts:
          - reviews
          http:
        {http}"""
    ).format(name=name, http=textwrap.indent(textwrap.dedent(http), "  "))


def _only_error(text: str, source: str = "bad.yaml") -> str:
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(text, source=source)
    (error,) = caught.value.errors
    assert len(error.problems) == 1, error
    return str(error)


def test_unknown_field_names_the_path():
    message = _only_error(
        _vs(
            """\
            - route:
              - destination:
                  host: reviews
                  subsett: v1
            """
        )
    )
    assert message.startswith("bad.yaml: document 1 (VirtualService default/reviews): ")
    assert "spec.http[0].route[0].destination.subsett: unknown field 'subsett'" in message


def test_wrong_type_names_the_path():
    message = _only_error(
        _vs(
            """\
            - route:
              - destination:
                  host: reviews
                weight: "fifty"
            """
        )
    )
    assert "spec.http[0].route[0].weight: expected an integer, got 'fifty'" in message


def test_weights_must_total_100():
    message = _only_error(
        _vs(
            """\
            - route:
              - destination: {host: reviews, subset: v1}
                weight: 50
              - destination: {host: reviews, subset: v2}
                weight: 40
            """
        )
    )
    assert "spec.http[0].route: the weights of the destinations must total 100, got 90" in message


def test_duplicate_subset():
    text = """\
        apiVersion: networking.istio.io/v1alpha3
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
          subsets:
          - {name: v1, labels: {version: v1}}
          - {name: v1, labels: {version: v2}}
        """
    message = _only_error(textwrap.dedent(text))
    assert "spec.subsets[1]: duplicate subset name 'v1'" in message


def test_bad_regex_is_judged_by_re2():
    message = _only_error(
        _vs(
            """\
            - match:
              - uri:
                  regex: "/api/(v1"
              route:
              - destination: {host: reviews}
            """
        )
    )
    assert "spec.http[0].match[0].uri.regex: invalid regular expression '/api/(v1'" in message
    # A Python-only construct (lookahead) is refused too: Envoy's RE2 has none.
    message = _only_error(
        _vs(
            """\
            - match:
              - uri:
                  regex: "/(?!admin)"
              route:
              - destination: {host: reviews}
            """
        )
    )
    assert "invalid regular expression" in message


def test_malformed_duration():
    message = _only_error(
        _vs(
            """\
            - timeout: 5 seconds
              route:
              - destination: {host: reviews}
            """
        )
    )
    assert "spec.http[0].timeout: malformed duration '5 seconds'" in message


def test_zero_duration_is_refused():
    message = _only_error(
        _vs(
            """\
            - timeout: 0s
              route:
              - destination: {host: reviews}
            """
        )
    )
    assert "spec.http[0].timeout: timeout must be at least 1ms" in message


def test_document_without_kind():
    text = "apiVersion: networking.istio.io/v1alpha3\nmetadata: {name: x}\nspec: {}\n"
    message = _only_error(text)
    assert message == "bad.yaml: document 1: kind: missing: every resource needs a kind"


def test_unknown_kind_lists_the_known_ones():
    text = "apiVersion: networking.istio.io/v1alpha3\nkind: RouteRule\nmetadata: {name: x}\n"
    message = _only_error(text)
    assert "unknown kind 'RouteRule' of apiVersion 'networking.istio.io/v1alpha3'" in message
    assert "VirtualService" in message


def test_one_bad_document_refuses_the_whole_stream():
    good = (BOOKINFO / "virtual-service-reviews-v3.yaml").read_text()
    bad = "apiVersion: networking.istio.io/v1alpha3\nmetadata: {name: x}\n"
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(good + "---\n" + bad, source="two.yaml")
    (error,) = caught.value.errors
    assert error.document == 2


def test_invalid_name_and_yaml_syntax():
    message = _only_error(
        "apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {name: Bad_Name}\n"
        "spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n"
    )
    assert "metadata.name: 'Bad_Name' is not a valid name" in message
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text("kind: [unclosed\n", source="syntax.yaml")
    assert str(caught.value).startswith("syntax.yaml: document 1: not valid YAML at line 2")


def test_every_problem_is_reported_not_just_the_first():
    text = _vs(
        """\
        - route:
          - destination: {host: reviews, subset: v1}
            weight: 30
          - destination: {host: "bad host!", subset: v2}
            weight: 30
          retries: {attempts: 3, retryOn: "5xx,sometimes"}
        """
    )
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(text)
    paths = [p.path for p in caught.value.errors[0].problems]
    assert paths == [
        "spec.http[0].route[1].destination.host",
        "spec.http[0].route",
        "spec.http[0].retries.retryOn",
    ]
