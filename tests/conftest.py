"""Shared fixtures: write small scenarios against the test models and run them in-process."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_MODELS = Path(__file__).resolve().parent / "models"
ONE_COMPARTMENT = TEST_MODELS / "one_compartment.yaml"


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text (dedented) to a file in tmp_path and return its path."""
    counter = iter(range(10_000))

    def write(text: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"scenario_{next(counter)}.yaml")
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


@pytest.fixture
def pk_scenario(write_scenario: Callable[..., Path]) -> Callable[..., Path]:
    """A one-compartment scenario: give the arms block (YAML) and optional time block."""

    def make(arms: str, time: str = "{start: 0 h, end: 24 h, step: 1 h}", extra: str = "") -> Path:
        arms_block = textwrap.indent(textwrap.dedent(arms).strip(), "  ")
        text = (
            f"model: {ONE_COMPARTMENT}\n"
            f"time: {time}\n"
            f"outputs: [conc]\n"
            f"{textwrap.dedent(extra).strip()}\n"
            f"arms:\n{arms_block}\n"
        )
        return write_scenario(text)

    return make


def notes_module(name: str) -> ModuleType:
    """A script from models/notes (e.g. a model's calibration claims), imported by file path:
    the notes are not a package, and the tests check the claims they state."""
    path = ROOT / "models" / "notes" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
