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

from .errors import Issue, KeyPath, LocatedValueError, describe_value, did_you_mean
from .yaml_source import Positions, position_of

Model = TypeVar("Model", bound=pydantic.BaseModel)


def validate_document(
    schema: type[Model], data: Any, positions: Positions, filename: str
) -> tuple[Model | None, list[Issue]]:
    """Validate ``data`` against ``schema``; return the object (or None) and every issue found."""
    try:
        return schema.model_validate(data), []
    except pydantic.ValidationError as exc:
        errors = _drop_union_noise(data, exc.errors())
        return None, [_issue(schema, data, err, positions, filename) for err in errors]


_TYPE_MISMATCH = {
    "string_type",
    "bool_type",
    "bool_parsing",
    "int_type",
    "float_type",
    "literal_error",
}
_NOT_A_MAPPING = {"model_type", "model_attributes_type", "dict_type"}


def _drop_union_noise(data: Any, errors: list[Any]) -> list[Any]:
    """For a field like ``str | OutputSpec``, pydantic reports why *each* member failed. Keep
    the member that matches what the user wrote: a mapping's own errors, or a scalar's."""
    paths = [(_data_path(data, tuple(e["loc"]), e["type"]), e) for e in errors]
    kept = []
    for path, err in paths:
        others = [p for p, e in paths if e is not err]
        if err["type"] in _NOT_A_MAPPING and any(p[: len(path)] == path for p in others):
            continue  # the scalar member's error explains it better
        if (
            err["type"] in _TYPE_MISMATCH
            and isinstance(err.get("input"), dict)
            and any(len(p) > len(path) and p[: len(path)] == path for p in others)
        ):
            continue  # the mapping member's deeper errors explain it better
        kept.append(err)
    return kept


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
        expected_list = _expected_tags(schema, data, raw_loc)
        expected = ", ".join(f"'{t}'" for t in expected_list)
        found = _lookup(data, path)
        tag = found.get("type") if isinstance(found, dict) else None
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
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, LocatedValueError):  # a validator named the key it is about
            path = _data_path(data, (*raw_loc, *cause.subpath), kind)
            line, column = position_of(positions, path)
        if "input" in err and kind not in ("value_error", "assertion_error"):
            message += f", got {describe_value(err['input'])}"
        if kind == "literal_error" and isinstance(err.get("input"), str):
            choices = [
                c.strip().strip("'") for c in err["ctx"]["expected"].replace(" or ", ",").split(",")
            ]
            hint = did_you_mean(err["input"], [c for c in choices if c])
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


def _annotation_at(schema: Any, data: Any, loc: tuple) -> tuple[Any, Any]:
    """The schema annotation (still wrapped) and the data node at a raw pydantic location."""
    annotation: Any = schema
    node = data
    for part in loc:
        annotation = _unwrap(annotation, node)
        if annotation is None:
            return None, None
        if _is_model(annotation) and isinstance(part, str) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        elif typing.get_origin(annotation) in (dict, list, tuple):
            args = typing.get_args(annotation)
            annotation = args[-1] if args else Any
        else:
            continue  # a union tag or validator name: stay on the same data node
        node = node[part] if isinstance(node, dict | list) and _has(node, part) else None
    return annotation, node


def _allowed_keys(schema: Any, data: Any, loc: tuple) -> set[str]:
    """Field names the schema accepts at ``loc`` (a raw pydantic location)."""
    annotation, node = _annotation_at(schema, data, loc)
    annotation = _unwrap(annotation, node)
    return set(annotation.model_fields) if _is_model(annotation) else set()


def _expected_tags(schema: Any, data: Any, loc: tuple) -> list[str]:
    """The 'type' values a discriminated union at ``loc`` accepts."""
    annotation, _ = _annotation_at(schema, data, loc)
    annotation = _strip(annotation)
    members = typing.get_args(annotation) if annotation is not None else ()
    return [str(tag) for m in members for tag in _tags_of(_strip(m))]


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
                chosen = next((m for m in models if tag in _tags_of(_strip(m))), None)
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


def _tags_of(model: Any) -> tuple[Any, ...]:
    """The 'type' values that select ``model`` (a Literal may name more than one)."""
    field = model.model_fields.get("type") if _is_model(model) else None
    return typing.get_args(field.annotation) if field is not None else ()
