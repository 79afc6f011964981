"""Read YAML into plain data plus the line and column of every key, rejecting duplicate keys.

PyYAML alone loses positions, keeps the last of two duplicate keys silently, reads ``1e-3`` as a
string and ``no``/``off`` as False. This loader fixes all four, so that later validation can point
at ``file:line:column`` for any key path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import Issue, KeyPath, ScenarioError


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style floats (``1e-3``) and booleans (only true/false)."""


# Floats: accept 1e-3, 1E9, .5e2 (YAML 1.1 in PyYAML requires a dot and a signed exponent).
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool",)]
    for key, resolvers in _Loader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

Positions = dict[KeyPath, tuple[int, int]]


def load_yaml(text: str, filename: str) -> tuple[Any, Positions]:
    """Parse ``text``; return the data and a map from key path to (line, column), 1-based.

    Raises ScenarioError listing every duplicate key, or the first syntax error.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"malformed YAML: {problem}" + (f" ({context})" if context else "")
        if "flow mapping" in str(context) and "got '['" in str(problem):
            message += (
                "; inside { } a value containing [ ] must be quoted, e.g. "
                "path: 'arms.a.doses[0].amount' (or write arms.a.doses.0.amount)"
            )
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise ScenarioError([Issue(filename, line, column, (), message)]) from None
    finally:
        loader.dispose()
    positions: Positions = {}
    issues: list[Issue] = []
    if root is None:
        return None, positions
    data = _build(root, (), loader, positions, issues, filename)
    if issues:
        raise ScenarioError(issues)
    return data, positions


def load_yaml_file(path: str | Path) -> tuple[Any, Positions, str]:
    """Read and parse a file; return (data, positions, text)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Issue(str(path), None, None, (), "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            [Issue(str(path), None, None, (), f"cannot read file: {exc}")]
        ) from None
    data, positions = load_yaml(text, str(path))
    return data, positions, text


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(
    node: yaml.Node,
    path: KeyPath,
    loader: _Loader,
    positions: Positions,
    issues: list[Issue],
    filename: str,
) -> Any:
    if isinstance(node, yaml.MappingNode):
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<): merged pairs come first
        result: dict[Any, Any] = {}
        merged: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                key = str(key)
            child = (*path, key)
            if id(key_node) not in own:
                merged.add(key)
            elif key in merged:  # an explicit key overrides a merged one: that is what << is for
                merged.discard(key)
                del result[key]
            if key in result:
                first_line = positions[child][0]
                line, column = _position(key_node)
                issues.append(
                    Issue(
                        filename,
                        line,
                        column,
                        child,
                        f"duplicate key (first given on line {first_line}); "
                        "YAML would silently keep only the last one",
                    )
                )
                continue
            positions[child] = _position(key_node)
            result[key] = _build(value_node, child, loader, positions, issues, filename)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            positions[child] = _position(item)
            items.append(_build(item, child, loader, positions, issues, filename))
        return items
    return loader.construct_object(node, deep=True)


def position_of(positions: Positions, path: KeyPath) -> tuple[int | None, int | None]:
    """Position of ``path``, or of its nearest ancestor present in the file (for missing keys)."""
    for end in range(len(path), -1, -1):
        found = positions.get(tuple(path[:end]))
        if found:
            return found
    return None, None
