"""Semantic checks of Mixer's config.istio.io/v1alpha2 resources (rule, handler, ...)."""

from __future__ import annotations

import functools
import pathlib
import re
import types
from collections.abc import Mapping

from pkg.config.validation.result import FieldPath, ValidationResult
from pkg.lang import vocabulary
from pkg.lang.compiler import compile_expression
from pkg.lang.errors import LangError
from pkg.lang.types import ValueType

# Istio's own names have capitals after the first letter (source.serviceAccount).
_ATTRIBUTE_NAME = re.compile(r"^[a-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")

STANDARD_VOCABULARY = (
    pathlib.Path(__file__).parents[3] / "api" / "policy" / "v1beta1" / "attributes.yaml"
)

# Params of the compiled-in templates that hold expressions: (single fields, maps of them).
_EXPRESSION_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "listentry": (("value",), ()),
    "metric": (("value",), ("dimensions",)),
    "quota": ((), ("dimensions",)),
    "logentry": (("severity", "timestamp"), ("variables",)),
}


@functools.cache
def standard_vocabulary() -> Mapping[str, ValueType]:
    """Istio's attribute vocabulary (api/policy/v1beta1/attributes.yaml), read once."""
    return types.MappingProxyType(vocabulary.load(STANDARD_VOCABULARY))


def check_expression(
    text: str, path: FieldPath, out: ValidationResult, *, want: ValueType | None = None
) -> None:
    """`text` must parse and type-check against the standard vocabulary."""
    try:
        compile_expression(text, standard_vocabulary(), want=want)
    except LangError as error:
        out.error(path, str(error))


def validate_rule(spec, path: FieldPath, out: ValidationResult) -> None:
    if spec.match.strip():  # empty: the rule always applies
        check_expression(spec.match, path / "match", out, want=ValueType.BOOL)
    if not (spec.actions or spec.request_header_operations or spec.response_header_operations):
        # Mixer drops such a rule ("empty rule is omitted"): refuse it rather than keep it idle.
        out.error(path / "actions", "No valid actions found in rule")
    for index, action in enumerate(spec.actions):
        action_path = path / "actions" / index
        if not action.handler:
            out.error(action_path / "handler", "an action needs a handler")
        seen: set[str] = set()
        for i, instance in enumerate(action.instances):
            if not instance:
                out.error(action_path / "instances" / i, "an instance name must not be empty")
                continue
            name = _instance_name(instance)
            if name in seen:
                out.error(
                    action_path / "instances" / i,
                    f"action specified the same instance multiple times: instance='{instance}'",
                )
            seen.add(name)


def _instance_name(reference: str) -> str:
    """`requestcount`, `requestcount.instance` and `requestcount.metric` (the Mixer 1.0 form,
    kind in the middle) name one instance of the rule's namespace; a third part is that namespace."""
    parts = reference.split(".")
    return parts[0] if len(parts) <= 2 else f"{parts[0]}.{parts[2]}"


def validate_handler(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.adapter and not spec.compiled_adapter:
        out.error(path / "adapter", "a handler needs an adapter")


def validate_instance(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.template and not spec.compiled_template:
        out.error(path / "template", "an instance needs a template")
    if not spec.HasField("params"):
        return
    singles, maps = _EXPRESSION_PARAMS.get(spec.compiled_template, ((), ()))
    params = spec.params.fields
    params_path = path / "params"
    for name in singles:
        if name in params:
            _check_param(params[name], params_path / name, out)
    for name in maps:
        if name not in params:
            continue
        value = params[name]
        if value.WhichOneof("kind") != "struct_value":
            out.error(params_path / name, "want a map of expressions")
            continue
        for key, entry in sorted(value.struct_value.fields.items()):
            _check_param(entry, params_path / name / key, out)


def _check_param(value, path: FieldPath, out: ValidationResult) -> None:
    """An expression param: a string to check, or a plain number or bool (a constant)."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        check_expression(value.string_value, path, out)
    elif kind in ("struct_value", "list_value"):
        out.error(path, "want an expression (a string)")


def validate_attribute_manifest(spec, path: FieldPath, out: ValidationResult) -> None:
    for name, info in sorted(spec.attributes.items()):
        if not _ATTRIBUTE_NAME.match(name):
            out.error(path / "attributes" / name, f"{name!r} is not a valid attribute name")
        if info.value_type == 0:
            out.error(path / "attributes" / name / "valueType", "an attribute needs a value type")
