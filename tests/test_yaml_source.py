"""The YAML reader keeps positions, rejects duplicates and avoids PyYAML's type traps."""

from __future__ import annotations

import pytest

from secretome_sim.errors import ScenarioError
from secretome_sim.yaml_source import load_yaml


def test_positions_of_nested_keys_and_list_items():
    """Every key path maps to its 1-based line and column."""
    data, positions = load_yaml("a:\n  b:\n    - x: 1\n    - y: 2\n", "f.yaml")
    assert data == {"a": {"b": [{"x": 1}, {"y": 2}]}}
    assert positions[("a", "b", 1, "y")] == (4, 7)
    assert positions[("a", "b", 0)] == (3, 7)


def test_duplicate_keys_are_errors_naming_both_lines():
    """YAML silently keeps the last duplicate; we refuse and point at both."""
    with pytest.raises(ScenarioError) as info:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert "f.yaml:3:1: a: duplicate key (first given on line 1)" in str(info.value)


def test_scientific_notation_without_dot_is_a_float():
    """PyYAML reads 1e-3 as a string (YAML 1.1); we read it as a number."""
    data, _ = load_yaml("a: 1e-3\nb: 2E9\nc: 1.5e+2\nd: '1e-3'\n", "f.yaml")
    assert data == {"a": 0.001, "b": 2e9, "c": 150.0, "d": "1e-3"}


def test_no_and_off_stay_strings():
    """'no'/'off'/'yes' are strings (YAML 1.2), so a factor named 'no' is not False."""
    data, _ = load_yaml("a: no\nb: off\nc: true\nd: False\n", "f.yaml")
    assert data == {"a": "no", "b": "off", "c": True, "d": False}


def test_syntax_error_has_line():
    """Malformed YAML reports where the parser stopped."""
    with pytest.raises(ScenarioError) as info:
        load_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    assert "f.yaml:2:" in str(info.value) and "malformed YAML" in str(info.value)
