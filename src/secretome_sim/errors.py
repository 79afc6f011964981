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


def nearest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` valid names nearest to ``word``, best first.

    Names within difflib's similarity cutoff (0.6) first, best ratio first and, among equals,
    the longest shared prefix (so 'S_1O' finds 'S_10' before 'S_61'); if none is that close,
    the same ignoring case; if still none, the names sharing a case-insensitive prefix of at
    least two characters with the word (one, for a one-character word), longest prefix first.
    Empty if nothing is near."""
    names = sorted({str(c) for c in choices})
    word = str(word)
    for fold in (str, str.lower):
        key = fold(word)
        scored = []
        for name in names:
            ratio = difflib.SequenceMatcher(None, key, fold(name)).ratio()
            if ratio >= 0.6:
                scored.append((-ratio, -_common_prefix(key, fold(name)), name))
        if scored:
            return [name for *_, name in sorted(scored)[:n]]
    lower = word.lower()
    least = max(1, min(2, len(lower)))
    shared = [(-_common_prefix(lower, name.lower()), len(name), name) for name in names]
    return [name for prefix, _, name in sorted(shared) if -prefix >= least][:n]


def _common_prefix(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


LIST_IN_FULL = 12  # name lists longer than this are shown as the nearest few and a count


def valid_names(
    word: str, choices: Iterable[str], noun: str, listed_by: str, also: str | None = None
) -> str:
    """What to append to "unknown <noun> 'word'": every valid name when there are at most
    LIST_IN_FULL (`` (inputs: a, b; or 'product')``), else the nearest few, how many there are
    and where ``listed_by`` says to see them all (``; nearest: 'a', 'b', 'c' (75 inputs in
    all, or 'product'; `secretome-sim models show m` lists them)``). ``also`` is one more
    valid word outside the list (a dose's 'product')."""
    names = sorted({str(c) for c in choices})
    if len(names) <= LIST_IN_FULL:
        return f" ({noun}: {', '.join(names) or 'none'}" + (f"; or {also})" if also else ")")
    close = nearest(word, names)
    found = f"nearest: {', '.join(repr(name) for name in close)}" if close else "none is close"
    count = f"{len(names)} {noun} in all" + (f", or {also}" if also else "")
    return f"; {found} ({count}; {listed_by})"


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
