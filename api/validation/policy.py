"""Semantic checks of Mixer's config.istio.io/v1alpha2 resources (rule, handler, ...)."""

from __future__ import annotations

import re

from api.validation.result import FieldPath, ValidationResult

_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


def validate_rule(spec, path: FieldPath, out: ValidationResult) -> None:
    for index, action in enumerate(spec.actions):
        action_path = path / "actions" / index
        if not action.handler:
            out.error(action_path / "handler", "an action needs a handler")
        for i, instance in enumerate(action.instances):
            if not instance:
                out.error(action_path / "instances" / i, "an instance name must not be empty")


def validate_handler(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.adapter and not spec.compiled_adapter:
        out.error(path / "adapter", "a handler needs an adapter")


def validate_instance(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.template and not spec.compiled_template:
        out.error(path / "template", "an instance needs a template")


def validate_attribute_manifest(spec, path: FieldPath, out: ValidationResult) -> None:
    for name, info in sorted(spec.attributes.items()):
        if not _ATTRIBUTE_NAME.match(name):
            out.error(path / "attributes" / name, f"{name!r} is not a valid attribute name")
        if info.value_type == 0:
            out.error(path / "attributes" / name / "valueType", "an attribute needs a value type")
