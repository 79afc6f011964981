"""A study (sweep, sensitivity, optimisation) is a section of a scenario or its own file.

Own file: ``scenario: <path relative to this file>`` plus the section's keys. Either way the
study gets the loaded scenario, its spec and where to locate errors; one reader for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Issue, KeyPath, ScenarioError
from .loader import load_scenario
from .scenario import Scenario
from .validation import validate_document
from .yaml_source import Positions, load_yaml_file, position_of


@dataclass(frozen=True)
class StudySource:
    """The scenario a study works on, its spec (None: the scenario has no such section), where
    the spec's keys are (file, key prefix, positions), and the study file's path and text."""

    scenario: Scenario
    spec: Any | None
    where: tuple[str, KeyPath, Positions]
    path: Path
    text: str


def read_study(
    path: str | Path,
    section: str,
    file_schema: Any,
    section_schema: Any,
    kind: str,
    models_dir: str | Path | None = None,
) -> StudySource:
    """Read a scenario and its ``section``, or a study file (one with ``scenario:`` and no
    ``model:``) validated against ``file_schema``; errors say '<N> problems in <kind>'."""
    path = Path(path)
    data, positions, text = load_yaml_file(path)
    if isinstance(data, dict) and "scenario" in data and "model" not in data:
        spec, issues = validate_document(file_schema, data, positions, str(path))
        if issues:
            raise ScenarioError(issues, kind)
        assert spec is not None
        scenario_path = (path.parent / spec.scenario).resolve()
        if not scenario_path.exists():
            line, column = position_of(positions, ("scenario",))
            message = f"scenario file {spec.scenario} not found (looked for {scenario_path})"
            raise ScenarioError([Issue(str(path), line, column, ("scenario",), message)], kind)
        scenario = load_scenario(scenario_path, models_dir=models_dir)
        own = section_schema.model_validate(
            {name: getattr(spec, name) for name in section_schema.model_fields}
        )
        return StudySource(scenario, own, (str(path), (), positions), path, text)
    scenario = load_scenario(path, models_dir=models_dir)
    where = (str(path), (section,), positions)
    return StudySource(scenario, getattr(scenario, section), where, path, text)


def no_section(path: str | Path, section: str, what: str) -> ScenarioError:
    """The error for a scenario without the section a command needs."""
    message = (
        f"this scenario has no '{section}:' section; add one, or write a {what} file with "
        f"'scenario: <path>' and the same keys (see the README)"
    )
    return ScenarioError([Issue(str(path), None, None, (section,), message)])
