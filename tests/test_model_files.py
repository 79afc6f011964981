"""A scenario may name any Antimony or SBML file by path; its own ids are inputs and outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secretome_sim import ModelError, ScenarioError, load_scenario, run_scenario
from secretome_sim.models import antimony_to_sbml

DECAY = """
model decay()
  compartment cell = 0.5;
  species X in cell = 0;
  X -> ; cell * k * X;
  k = 0.2;
end
"""


@pytest.fixture
def sbml_file(tmp_path):
    path = tmp_path / "decay.xml"
    path.write_text(antimony_to_sbml(DECAY, "test"))
    return path


def test_sbml_file_by_path_with_plain_numbers(sbml_file, write_scenario):
    """An SBML model without metadata: dose its species by id in the model's own units."""
    path = write_scenario(
        f"""
        model: {{file: {sbml_file}, time_unit: minute}}
        time: {{end: 1 h, step: 5 min}}
        arms:
          a: {{doses: [{{type: bolus, target: X, amount: 4, time: 10 min}}]}}
        """
    )
    result = run_scenario(path)
    table = result.wide("a")
    minutes = table.index.to_numpy() * 60
    expected = np.where(minutes >= 10, 4 * np.exp(-0.2 * (minutes - 10)), 0.0)
    np.testing.assert_allclose(table["X"].to_numpy(), expected, rtol=1e-6, atol=1e-9)


def test_antimony_file_parameter_override(tmp_path, write_scenario):
    """A bare .ant file: parameters by id, plain numbers; outputs are species and rules."""
    model = tmp_path / "decay.ant"
    model.write_text(DECAY)
    path = write_scenario(
        f"""
        model: {{file: {model}, time_unit: minute}}
        time: {{end: 10 min, points: 11}}
        arms:
          a: {{parameters: {{k: 0.5}}, doses: [{{type: bolus, target: X, amount: 1}}]}}
        """
    )
    result = run_scenario(path)
    assert result.wide("a")["X"].iloc[-1] == pytest.approx(math.exp(-5), rel=1e-6)


def test_units_on_a_model_without_metadata_are_refused(sbml_file, write_scenario):
    """Without unit metadata a unit cannot be converted: say so rather than guess."""
    path = write_scenario(
        f"""
        model: {{file: {sbml_file}, time_unit: minute}}
        time: {{end: 1 h}}
        arms:
          a: {{doses: [{{type: bolus, target: X, amount: 2 nM}}]}}
        """
    )
    with pytest.raises(ScenarioError, match=r"doses\[0\]\.amount: input 'X' has no unit metadata"):
        load_scenario(path)


def test_model_file_without_time_unit_is_an_error(sbml_file, write_scenario):
    """A bare model file needs its time unit; the error shows how to give it."""
    path = write_scenario(f"model: {sbml_file}\ntime: {{end: 1 h}}\narms: {{a: {{}}}}\n")
    with pytest.raises(ScenarioError, match=r"model: .*needs its time unit.*time_unit: hour"):
        load_scenario(path)


def test_metadata_that_disagrees_with_equations_is_refused(tmp_path, write_scenario):
    """A metadata value that differs from the equations is a ModelError, not a silent choice."""
    from conftest import TEST_MODELS

    (tmp_path / "one_compartment.ant").write_text(
        (TEST_MODELS / "one_compartment.ant").read_text().replace("k_el = 0.1", "k_el = 0.2")
    )
    (tmp_path / "one_compartment.yaml").write_text(
        (TEST_MODELS / "one_compartment.yaml").read_text()
    )
    path = write_scenario(
        f"model: {tmp_path / 'one_compartment.yaml'}\ntime: {{end: 1 h}}\narms: {{a: {{}}}}\n"
    )
    with pytest.raises(ModelError, match=r"k_el': metadata value 0.1 differs from the model's 0.2"):
        load_scenario(path)
