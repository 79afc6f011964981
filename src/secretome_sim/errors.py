"""Exception hierarchy: every error a user can cause says where, what was expected, what was found.

The CLI maps these to exit codes: input problems (``ScenarioError``, ``ModelError``) exit 2 and
write nothing; a solver failure (``SimulationError``) exits 1 and keeps the arms that completed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    """``('arms', 'x', 'doses', 0, 'amount')`` -> ``arms.x.doses[0].amount``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "<top level>"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid name, if one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(str(word), sorted(set(choices)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def describe_value(value: Any) -> str:
    """How a found value is shown in a message: its repr and, for non-strings, its YAML type."""
    if isinstance(value, str):
        return repr(value)
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a mapping",
    }
    return f"{value!r} ({kind.get(type(value), type(value).__name__)})"


@dataclass(frozen=True)
class Issue:
    """One problem in an input file, located as precisely as we can."""

    file: str
    line: int | None
    column: int | None
    path: KeyPath
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {format_key_path(self.path)}: {self.message}"
        if self.hint:
            text += f"; did you mean '{self.hint}'?"
        return text


class LocatedValueError(ValueError):
    """Raised in a schema validator about one key below the validated object (e.g. one
    factor of a sweep), so the error points at that key's line, not at the object's."""

    def __init__(self, subpath: KeyPath, message: str):
        self.subpath = subpath
        super().__init__(message)


class SecretomeError(Exception):
    """Base class for every error secretome-sim raises on purpose."""

    exit_code = 2


class ScenarioError(SecretomeError):
    """A scenario (or sweep) file is invalid. Carries every issue found, sorted by line."""

    def __init__(self, issues: list[Issue], kind: str = "scenario"):
        self.issues = sorted(issues, key=lambda i: (i.file, i.line or 0, i.column or 0))
        count = len(self.issues)
        header = f"{count} problem{'s' if count != 1 else ''} in {kind}"
        super().__init__(header + ":\n" + "\n".join(f"  {issue}" for issue in self.issues))


class ModelError(SecretomeError):
    """A model file or its metadata cannot be found, compiled or trusted."""


class SimulationError(SecretomeError):
    """The solver failed. Names the arm and time; ``partial`` holds what completed."""

    exit_code = 1

    def __init__(self, message: str, arm: str, time: float, partial: Any = None):
        self.arm = arm
        self.time = time
        self.partial = partial
        super().__init__(message)
