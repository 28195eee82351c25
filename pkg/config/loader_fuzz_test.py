"""Bounded fuzzing of the loader (hypothesis): every input loads or gets a LoadError.

Three generators: YAML text built from the tokens that broke PyYAML-based loaders (tags, huge
numbers, NaN, anchors, deep brackets); real sample documents with one value replaced by
something odd; and specs of every kind generated from the proto schema, so the semantic
validators see type-correct but extreme values. `make test` runs the "ci" profile (fixed
examples, a few seconds); a longer, random run:

    HYPOTHESIS_PROFILE=fuzz-long PYTHONPATH=. .venv/bin/pytest pkg/config/loader_fuzz_test.py
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given
from hypothesis import strategies as st

from pkg.config import loader_fuzz
from pkg.config.kinds import ISTIO
from pkg.testing.fuzz import bounded

FUZZ = bounded(250)

SEEDS = [d for text in loader_fuzz.seeds() for d in yaml.safe_load_all(text) if isinstance(d, dict)]

_TOKENS = [
    "apiVersion: networking.istio.io/v1alpha3\n",
    "apiVersion: security.istio.io/v1beta1\n",
    "apiVersion: config.istio.io/v1alpha2\n",
    "kind: VirtualService\n",
    "kind: DestinationRule\n",
    "kind: AuthorizationPolicy\n",
    "kind: instance\n",
    "metadata: {name: x}\n",
    "spec:\n",
    "  hosts: ",
    "  http: [{route: [{destination: {host: r}, weight: ",
    "}]}]\n",
    "!!int ",
    "!!bool ",
    "!!float ",
    "!!timestamp ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!str ",
    "!foo ",
    "&a ",
    "*a",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "- ",
    "? ",
    "\n",
    "  ",
    "---\n",
    "9" * 400,
    "9" * 5000,
    "0x" + "f" * 300,
    "1e999",
    ".nan",
    "-.inf",
    "2020-02-30",
    "2020-13-45T25:61:61Z",
    "1:30",
    "maybe",
    "abc",
    "''",
    '"\\ud800"',
    '"\\x00"',
    "~",
    "yes",
    "5m",
    "99999999999999999999h",
]

_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**60, max_value=2**2000),
    st.integers(max_value=-(2**60)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "*", "\ud800", "a" * 300, "unix://", "%", "{*}", "1.1.1.1/33", "-1s"]),
    st.recursive(
        st.one_of(st.none(), st.integers(), st.text(max_size=5)),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    ),
    st.integers(min_value=60, max_value=200).map(lambda n: _nested(n)),
)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join))
def test_yaml_text_of_troublesome_tokens(text: str):
    loader_fuzz.check_text(text)


@FUZZ
@given(st.sampled_from(range(len(SEEDS))), st.data())
def test_sample_documents_with_one_odd_value(seed: int, data: st.DataObject):
    document = copy.deepcopy(SEEDS[seed])
    holder, key = data.draw(st.sampled_from(_slots(document)))
    holder[key] = data.draw(_ODD_VALUES)
    loader_fuzz.check_object(document)
    try:
        text = yaml.safe_dump(document)
    except (yaml.YAMLError, RecursionError):
        return  # PyYAML cannot write what it generated; nothing for the loader to read
    loader_fuzz.check_text(text)


def _slots(document: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of a document: the places one value can be replaced."""
    slots, stack = [], [document]
    while stack:
        value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in list(items):
            slots.append((value, key))
            if isinstance(item, dict | list) and item:
                stack.append(item)
    return slots


_SCHEMAS = list(ISTIO)  # the kinds with a proto


@FUZZ
@given(st.sampled_from(range(len(_SCHEMAS))), st.data())
def test_generated_specs_of_every_kind(index: int, data: st.DataObject):
    schema = _SCHEMAS[index]
    spec = data.draw(_message(schema.new_spec().DESCRIPTOR, depth=0))
    document = {
        "apiVersion": schema.api_version,
        "kind": schema.kind,
        "metadata": {"name": "fuzz"},
        "spec": spec,
    }
    loader_fuzz.check_object(document)


_STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "*",
            "reviews",
            "*.example.com",
            "ns/reviews",
            "1.2.3.4",
            "10.0.0.0/8",
            "unix:///var/run/a.sock",
            "unix://",
            "GET",
            "/a/{*}/b",
            "/{**}/x",
            "%START_TIME%",
            "100%",
            "@request.auth.claims.sub",
            "request.headers[x]",
            "source.ip",
            "5xx,connect-failure",
            "{}",
            '{"keys": []}',
            "v1",
            "HTTP",
            "grpc",
            "a..b",
        ]
    ),
)
_INTS = st.one_of(
    st.integers(min_value=-3, max_value=70000),
    st.sampled_from([0, 1, 80, 65535, 65536, 2**31 - 1, -(2**31)]),
)
_DURATIONS = st.sampled_from(["0s", "0.0005s", "1ms", "1.5s", "5m", "1h", "-1s", "10000h", "x"])


def _message(descriptor: Descriptor, depth: int) -> st.SearchStrategy[dict]:
    fields = [f for f in descriptor.fields if depth < 6 or f.message_type is None]
    if not fields:
        return st.just({})
    return st.lists(st.sampled_from(fields), max_size=5, unique_by=lambda f: f.name).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {f.json_name: _field(f, depth) for f in chosen}, optional={}
        )
    )


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        value = message.fields_by_name["value"]
        return st.dictionaries(_STRINGS, _value(value, depth + 1), max_size=3)
    if field.is_repeated:
        return st.lists(_value(field, depth + 1), max_size=3)
    return _value(field, depth + 1)


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "google.protobuf.Duration":
            return _DURATIONS
        if name in ("google.protobuf.Struct", "google.protobuf.Value"):
            return st.dictionaries(st.text(max_size=5), st.one_of(_STRINGS, _INTS), max_size=3)
        if name.startswith("google.protobuf.") and name.endswith("Value"):
            return st.one_of(_INTS, st.booleans(), _STRINGS, st.floats(-1e3, 1e3))
        return _message(field.message_type, depth)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.name for v in field.enum_type.values])
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_STRING:
        return _STRINGS
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(min_value=-1e6, max_value=1e6)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.sampled_from(["", "aGVsbG8=", "!!"])
    return _INTS
