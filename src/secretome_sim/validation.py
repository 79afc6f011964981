"""Turn pydantic validation errors into located, readable issues.

pydantic reports locations in its own terms (union tags, validator names); this module maps them
back onto the user's key path, finds the line in the YAML file, and adds a "did you mean" for
unknown keys using the fields the schema allows at that place.
"""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

import pydantic

from .errors import Issue, KeyPath, describe_value, did_you_mean
from .yaml_source import Positions, position_of

Model = TypeVar("Model", bound=pydantic.BaseModel)


def validate_document(
    schema: type[Model], data: Any, positions: Positions, filename: str
) -> tuple[Model | None, list[Issue]]:
    """Validate ``data`` against ``schema``; return the object (or None) and every issue found."""
    try:
        return schema.model_validate(data), []
    except pydantic.ValidationError as exc:
        return None, [_issue(schema, data, err, positions, filename) for err in exc.errors()]


def _issue(schema: type, data: Any, err: Any, positions: Positions, filename: str) -> Issue:
    raw_loc = tuple(err["loc"])
    path = _data_path(data, raw_loc, err["type"])
    line, column = position_of(positions, path)
    kind = err["type"]
    hint = None
    if kind == "extra_forbidden":
        allowed = _allowed_keys(schema, data, raw_loc[:-1])
        hint = did_you_mean(str(path[-1]), allowed) if allowed else None
        message = "unknown key"
        if allowed and not hint:
            message += f" (allowed here: {', '.join(sorted(allowed))})"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        expected = err.get("ctx", {}).get("expected_tags", "")
        found = _lookup(data, path)
        tag = found.get("type") if isinstance(found, dict) else None
        expected_list = [t.strip().strip("'") for t in str(expected).split(",") if t.strip()]
        if tag is None:
            message = f"missing 'type' (one of {expected})"
            path = (*path, "type")
        else:
            message = f"unknown type {tag!r} (expected one of {expected})"
            path = (*path, "type")
            hint = did_you_mean(str(tag), expected_list)
        line, column = position_of(positions, path)
    else:
        message = _clean_message(err)
        if "input" in err and kind not in ("value_error", "assertion_error"):
            message += f", got {describe_value(err['input'])}"
    return Issue(filename, line, column, path, message, hint)


def _clean_message(err: Any) -> str:
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message[:1].lower() + message[1:] if message else message


def _lookup(data: Any, path: KeyPath) -> Any:
    node = data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _data_path(data: Any, loc: tuple, kind: str) -> KeyPath:
    """Keep the parts of a pydantic location that are keys or indices in the user's data."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict | list) and _has(node, part):
            path.append(part)
            node = node[part]
        elif last and kind == "missing" and isinstance(node, dict):
            path.append(part)
        # anything else is a union tag or validator name that the user never wrote
    return tuple(path)


def _allowed_keys(schema: Any, data: Any, loc: tuple) -> set[str]:
    """Field names the schema accepts at ``loc`` (a raw pydantic location)."""
    annotation: Any = schema
    node = data
    for part in loc:
        annotation = _unwrap(annotation, node)
        if annotation is None:
            return set()
        if _is_model(annotation) and isinstance(part, str) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) in (dict, list, tuple):
            args = typing.get_args(annotation)
            annotation = args[-1] if args else Any
        else:
            continue  # a union tag or validator name: stay on the same data node
        node = node[part] if isinstance(node, dict | list) and _has(node, part) else None
    annotation = _unwrap(annotation, node)
    return set(annotation.model_fields) if _is_model(annotation) else set()


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _unwrap(annotation: Any, node: Any) -> Any:
    """Strip Annotated/Optional; pick the union member a tagged mapping selects."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [m for m in members if _is_model(_strip(m))]
            containers = [m for m in members if typing.get_origin(m) in (dict, list, tuple)]
            if isinstance(node, dict) and models:
                tag = node.get("type")
                chosen = next((m for m in models if _tag_of(_strip(m)) == tag), None)
                annotation = _strip(chosen if chosen is not None else models[0])
                continue
            if containers:
                annotation = containers[0]
                continue
            annotation = members[0] if members else None
            continue
        return annotation


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _tag_of(model: Any) -> Any:
    field = model.model_fields.get("type") if _is_model(model) else None
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None
