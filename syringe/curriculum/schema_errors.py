"""Turn pydantic validation errors into problems an author can act on."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from syringe.curriculum.problems import Problem
from syringe.curriculum.yamlsource import Path, YamlDocument

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
    "int_from_float": "an integer",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"number {value}"
    return f"string '{value}'"


def _unwrap(annotation: Any) -> Any:
    """Strip Optional, list and Annotated wrappers down to the model class, if any."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        elif origin is list:
            annotation = get_args(annotation)[0]
        else:
            return annotation


def _model_at(root: type[BaseModel], path: Path) -> type[BaseModel] | None:
    model: Any = root
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = next(
            (f for name, f in model.model_fields.items() if part in (name, f.alias)),
            None,
        )
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def unknown_key_message(root: type[BaseModel], path: Path) -> str:
    key = str(path[-1])
    message = f"unknown key '{key}'"
    model = _model_at(root, path[:-1])
    if model is not None:
        keys = _keys_of(model)
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
        if not close:
            lowered = {k.lower(): k for k in keys}
            close = [lowered[key.lower()]] if key.lower() in lowered else []
        if close:
            message += f"; did you mean '{close[0]}'?"
        else:
            message += f"; allowed keys are: {', '.join(keys)}"
    return message


def _message(root: type[BaseModel], path: Path, error: Any) -> str:
    kind: str = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    field = str(next((p for p in reversed(path) if isinstance(p, str)), ""))
    if kind == "extra_forbidden":
        return unknown_key_message(root, path)
    if kind == "missing":
        return f"required field '{path[-1]}' is missing"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        return f"{_describe(value)} is not allowed here; expected one of: {ctx.get('expected', '')}"
    if kind in ("greater_than_equal", "less_than_equal") and "port" in field.lower():
        return f"port {value} is outside 1–65535"
    if kind == "greater_than_equal":
        return f"{value} is too small; the minimum is {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"{value} is too large; the maximum is {ctx.get('le')}"
    if kind == "string_pattern_mismatch":
        if field in ("slug", "image", "collection", "prereqs"):
            return (
                f"'{value}' is not a valid slug: use lowercase letters, digits and single hyphens "
                "(for example linux-basics)"
            )
        if field == "name":
            return (
                f"'{value}' is not a valid name: use lowercase letters, digits and hyphens, "
                "starting and ending with a letter or digit (it becomes a DNS name)"
            )
        return f"'{value}' does not match the pattern {ctx.get('pattern')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is longer than {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "value_error" and ctx.get("error") is not None:
        return str(ctx["error"])  # a validator's own sentence, without pydantic's "Value error, " prefix
    return str(error.get("msg", "invalid value"))


def problems_from_validation(doc: YamlDocument, model: type[BaseModel], error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        path: Path = tuple(item["loc"])
        problems.append(doc.problem(path, _message(model, path, item)))
    return problems
