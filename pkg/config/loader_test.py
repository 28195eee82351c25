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


def test_weights_are_relative_and_must_not_total_0():
    (split,) = loader.load_text(
        _vs(
            """\
            - route:
              - destination: {host: reviews, subset: v1}
                weight: 4
              - destination: {host: reviews, subset: v2}
                weight: 1
            """
        )
    )
    assert [d.weight for d in split.spec.http[0].route] == [4, 1]
    message = _only_error(
        _vs(
            """\
            - route:
              - destination: {host: reviews, subset: v1}
              - destination: {host: reviews, subset: v2}
                weight: 0
            """
        )
    )
    assert "spec.http[0].route: total destination weight = 0" in message


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
    assert "spec.subsets[1].name: duplicate subset names: v1" in message


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
    assert "spec.http[0].timeout: duration must be greater than 1ms" in message


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
            weight: 0
          - destination: {host: "bad host!", subset: v2}
            weight: 0
          retries: {attempts: 3, retryOn: "5xx,sometimes"}
        """
    )
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(text)
    paths = [p.path for p in caught.value.errors[0].problems]
    assert paths == [
        "spec.http[0].retries.retryOn",
        "spec.http[0].route[1].destination.host",
        "spec.http[0].route",
    ]


# Input PyYAML cannot construct, and values no JSON has: a LoadError naming the file, the
# document, the field and the reason, never another exception.
_HEADER = "apiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\nmetadata: {name: r}\n"


@pytest.mark.parametrize(
    ("spec", "path", "reason"),
    [
        pytest.param(
            "hosts: [!!int abc]",
            "spec.hosts[0]",
            "'abc' is not an integer (line 5, column 11)",
            id="bad !!int",
        ),
        pytest.param(
            "hosts: [!!bool maybe]", "spec.hosts[0]", "'maybe' is not a boolean", id="bad !!bool"
        ),
        pytest.param(
            "hosts: [!!timestamp 2020-13-45]",
            "spec.hosts[0]",
            "'2020-13-45' is not a timestamp",
            id="bad !!timestamp",
        ),
        pytest.param(
            "hosts: [!!timestamp 2020-02-30]",
            "spec.hosts[0]",
            "is not a timestamp",
            id="impossible !!timestamp date",
        ),
        pytest.param(
            "hosts: [!!float x]", "spec.hosts[0]", "'x' is not a number", id="bad !!float"
        ),
        pytest.param(
            "hosts: [!!binary '!!']", "spec.hosts[0]", "is not base64 data", id="bad !!binary"
        ),
        pytest.param(
            "hosts: !!set {a, b}",
            "spec.hosts",
            "is a YAML !!set, which has no JSON form",
            id="!!set",
        ),
        pytest.param(
            "hosts: [!!python/object:os.system x]",
            "spec.hosts[0]",
            "which is not a YAML core type",
            id="python tag",
        ),
        pytest.param(
            "http: [{timeout: " + "9" * 5000 + "}]",
            "spec.http[0].timeout",
            "is an integer of 5000 digits (at most 4300)",
            id="5000-digit integer",
        ),
        pytest.param(
            "http: [{mirrorPercentage: {value: " + "9" * 400 + "}}]",
            "spec.http[0].mirrorPercentage.value",
            "an integer of 1329 bits is too large",
            id="integer too large for a double",
        ),
        pytest.param(
            "http: [{mirrorPercentage: {value: .nan}}]",
            "spec.http[0].mirrorPercentage.value",
            "nan is not a JSON number",
            id="NaN",
        ),
        pytest.param(
            "http: [{mirrorPercentage: {value: -.inf}}]",
            "spec.http[0].mirrorPercentage.value",
            "-inf is not a JSON number",
            id="infinity",
        ),
        pytest.param(
            "http: [{mirrorPercentage: {value: 1e999}}]",
            "spec.http[0].mirrorPercentage.value",
            "inf is not a JSON number",
            id="float overflow",
        ),
        pytest.param(
            'hosts: ["\\ud800"]',
            "spec.hosts[0]",
            "is not valid Unicode (a lone surrogate)",
            id="lone surrogate",
        ),
        pytest.param(
            "hosts: " + "[" * 100 + "]" * 100,
            "spec.hosts[0][0][0][0][0][0][0][0][0]...",
            "nested deeper than 64 levels",
            id="nesting too deep",
        ),
    ],
)
def test_input_pyyaml_cannot_construct_is_a_load_error(spec: str, path: str, reason: str):
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(_HEADER + "spec:\n  " + spec + "\n", source="odd.yaml")
    (error,) = caught.value.errors
    assert (error.source, error.document) == ("odd.yaml", 1)
    (problem,) = error.problems
    assert problem.path == path
    assert reason in problem.message


def test_impossible_plain_dates_are_strings_as_in_kubectl():
    # go-yaml (kubectl) hands timestamps to JSON as strings; a label value stays a string.
    text = _HEADER.replace("{name: r}", "{name: r, labels: {built: 2020-02-30}}")
    text += "spec: {hosts: [r], http: [{route: [{destination: {host: r}}]}]}\n"
    (resource,) = loader.load_text(text)
    assert resource.metadata.labels == {"built": "2020-02-30"}


def test_an_alias_bomb_and_a_self_alias_are_refused_quickly():
    bomb = "a: &a [" + ",".join(["x"] * 10) + "]\n"
    for level in range(8):
        name, previous = chr(98 + level), chr(97 + level)
        bomb += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 10) + "]\n"
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(bomb)
    assert "expands to more than 1000000 values through aliases" in str(caught.value)
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text("&a [*a]\n")
    assert "alias *a refers to itself" in str(caught.value)


def test_a_syntax_error_names_its_document():
    good = (BOOKINFO / "virtual-service-reviews-v3.yaml").read_text()
    with pytest.raises(loader.LoadError) as caught:
        loader.load_text(good + "---\nkind: [unclosed\n", source="two.yaml")
    (error,) = caught.value.errors
    assert error.document == 2
    assert "not valid YAML" in str(error)


def test_json_documents_get_the_same_checks():
    # The config store hands the loader decoded JSON: json.loads accepts NaN and huge ints.
    document = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "r"},
        "spec": {"hosts": ["r"], "http": [{"mirrorPercentage": {"value": float("nan")}}]},
    }
    with pytest.raises(loader.LoadError) as caught:
        loader.load_object(document, source="<request>")
    assert str(caught.value) == (
        "<request>: document 1 (VirtualService default/r): spec.http[0].mirrorPercentage.value: "
        "nan is not a JSON number"
    )
    deep: list = []
    for _ in range(200):
        deep = [deep]
    document["spec"] = {"hosts": deep}
    with pytest.raises(loader.LoadError) as caught:
        loader.load_object(document)
    assert "nested deeper than 64 levels" in str(caught.value)


def test_warnings_are_collected_for_accepted_documents():
    text = (
        _HEADER
        + "spec: {hosts: [r], http: [{websocketUpgrade: true, route: [{destination: {host: r}}]}]}\n"
    )
    found: list[loader.DocumentError] = []
    (resource,) = loader.load_text(text, source="old.yaml", warnings=found)
    assert [str(w) for w in found] == [
        "old.yaml: document 1 (VirtualService default/r): warning: spec.http[0].websocketUpgrade: "
        "removed from Istio's API (websocket "
        "upgrades are done automatically since Istio 1.0); ignored"
    ]
    assert loader.load_text(text) == [resource]  # without a list, warnings are not wanted


ALL_SAMPLES = sorted((BOOKINFO.parents[1]).rglob("*.yaml"))


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: str(p.relative_to(BOOKINFO.parents[1])))
def test_every_sample_yaml_of_the_repository_loads_without_warnings(path: pathlib.Path):
    found: list[loader.DocumentError] = []
    assert loader.load_file(path, warnings=found)
    assert found == []
