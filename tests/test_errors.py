"""Bad scenario input gets one clear error: file, exact line, key path, expected, found, hint.

Every test writes a small scenario into ``tmp_path`` (a valid base with one edit) and checks
the ``ScenarioError`` that ``load_scenario`` raises: its issues (line, key path, hint) and the
text a user reads. Nothing here writes into the source tree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from secretome_sim.errors import (
    Issue,
    ModelError,
    ScenarioError,
    SecretomeError,
    SimulationError,
    format_key_path,
)
from secretome_sim.loader import load_scenario
from secretome_sim.yaml_source import load_yaml

MODELS = Path(__file__).resolve().parents[1] / "models"

# A valid scenario on the registered secretome_delivery model (found via models_dir).
BASE = """\
id: small_test
model: secretome_delivery
time:
  start: 0 h
  end: 2 day
  step: 2 h
arms:
  untreated: {}
  bolus:
    doses:
      - type: bolus
        target: vegf
        amount: 5 ng/mL
        time: 0 h
  infused:
    doses:
      - type: infusion
        target: vegf
        rate: 1 ng/mL/h
        duration: 4 h
        time: 1 h
reference_arm: bolus
"""

BOLUS_DOSE = ("arms", "bolus", "doses", 0)
INFUSION_DOSE = ("arms", "infused", "doses", 0)


# --------------------------------------------------------------------------- helpers
def edit(text: str, old: str, new: str) -> str:
    """Replace ``old`` (which must occur exactly once, so an edit never silently no-ops)."""
    assert text.count(old) == 1, f"edit target {old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def scenario_file(tmp_path: Path, text: str = BASE, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """1-based number of the only line of ``text`` containing ``needle``."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def load_error(tmp_path: Path, text: str) -> tuple[ScenarioError, Path]:
    """Load ``text`` as a scenario; return the ScenarioError it must raise, and the file."""
    path = scenario_file(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, models_dir=MODELS)
    error = caught.value
    assert error.exit_code == 2
    assert error.issues, "a ScenarioError must carry at least one issue"
    return error, path


def issue_at(error: ScenarioError, path: tuple) -> Issue:
    """The one issue reported at key ``path``."""
    found = [issue for issue in error.issues if issue.path == path]
    assert len(found) == 1, f"expected one issue at {format_key_path(path)}, got:\n{error}"
    return found[0]


def assert_located(error: ScenarioError, file: Path, line: int, path: tuple) -> Issue:
    """The issue at ``path`` is on ``line`` and the message shows ``file:line:col: key.path``."""
    issue = issue_at(error, path)
    assert issue.file == str(file)
    assert issue.line == line, f"{format_key_path(path)} reported on line {issue.line}"
    assert f"{file}:{line}:{issue.column}: {format_key_path(path)}: " in str(error)
    return issue


# --------------------------------------------------------------------------- sanity
def test_base_scenario_is_valid(tmp_path):
    """The base used below loads cleanly, so every error in this file comes from its edit."""
    scenario = load_scenario(scenario_file(tmp_path), models_dir=MODELS)
    assert list(scenario.arms) == ["untreated", "bolus", "infused"]
    assert scenario.model_definition.id == "secretome_delivery"


# --------------------------------------------------------------------------- YAML syntax
@pytest.mark.parametrize(
    ("old", "new", "bad_line_marker", "problem"),
    [
        pytest.param(
            "        target: vegf\n        amount: 5 ng/mL\n",
            "        target: vegf\n      amount: 5 ng/mL\n",
            "amount: 5 ng/mL",
            "expected <block end>",
            id="bad-indentation",
        ),
        pytest.param(
            "        time: 0 h\n",
            "\ttime: 0 h\n",
            "\ttime: 0 h",
            "'\\t'",
            id="tab-indentation",
        ),
    ],
)
def test_malformed_yaml_reports_the_line(tmp_path, old, new, bad_line_marker, problem):
    """Broken YAML is reported as 'malformed YAML' at the line the parser stopped on."""
    text = edit(BASE, old, new)
    error, path = load_error(tmp_path, text)
    (issue,) = error.issues
    line = line_of(text, bad_line_marker)
    assert issue.line == line
    assert f"{path}:{line}:" in str(error)
    assert "malformed YAML" in issue.message
    assert problem in issue.message


def test_empty_file_says_a_mapping_was_expected(tmp_path):
    """An empty scenario file says what was expected (a mapping) and what was found."""
    error, path = load_error(tmp_path, "# nothing yet\n")
    assert str(error).endswith(
        f"{path}:1:1: <top level>: expected a mapping of keys, got an empty file"
    )


def test_missing_scenario_file_is_a_scenario_error(tmp_path):
    """A scenario path that does not exist is an input error naming the file, not a traceback."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(missing, models_dir=MODELS)
    assert caught.value.exit_code == 2
    assert f"{missing}: <top level>: file not found" in str(caught.value)


# --------------------------------------------------------------------------- unknown keys
def test_misspelt_infusion_key_suggests_duration(tmp_path):
    """`duraton:` in an infusion is an unknown key at its exact line, with did-you-mean."""
    text = edit(BASE, "duration: 4 h", "duraton: 4 h")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "duraton"), (*INFUSION_DOSE, "duraton"))
    assert issue.message == "unknown key"
    assert issue.hint == "duration"
    assert (
        f"{path}:{issue.line}:9: arms.infused.doses[0].duraton: unknown key; "
        "did you mean 'duration'?"
    ) in str(error)
    # ...and the required key it replaced is reported missing, at the dose it belongs to
    missing = issue_at(error, (*INFUSION_DOSE, "duration"))
    assert missing.message == "required key is missing"
    assert missing.line == line_of(text, "type: infusion")


def test_dose_instead_of_doses_suggests_doses(tmp_path):
    """`dose:` in an arm is an unknown key with the hint 'doses'."""
    text = edit(BASE, "  bolus:\n    doses:", "  bolus:\n    dose:")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "dose:"), ("arms", "bolus", "dose"))
    assert issue.hint == "doses"
    assert "arms.bolus.dose: unknown key; did you mean 'doses'?" in str(error)


def test_unknown_top_level_key_suggests_closest(tmp_path):
    """A misspelt top-level key (reference_arms) is reported with the correct spelling."""
    text = edit(BASE, "reference_arm: bolus", "reference_arms: bolus")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "reference_arms"), ("reference_arms",))
    assert issue.hint == "reference_arm"


def test_unknown_dose_type_suggests_and_lists_types(tmp_path):
    """A misspelt dose type lists the valid types and suggests the closest one."""
    text = edit(BASE, "type: bolus", "type: bolsu")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "bolsu"), (*BOLUS_DOSE, "type"))
    assert "unknown type 'bolsu'" in issue.message
    for kind in ("bolus", "infusion", "depot", "medium_change", "set_level"):
        assert f"'{kind}'" in issue.message
    assert issue.hint == "bolus"


def test_dose_without_type_lists_the_valid_types(tmp_path):
    """A dose with no `type:` says which types exist."""
    text = edit(BASE, "      - type: bolus\n        target: vegf\n", "      - target: vegf\n")
    error, _ = load_error(tmp_path, text)
    issue = issue_at(error, (*BOLUS_DOSE, "type"))
    assert issue.message.startswith("missing 'type'")
    for kind in ("bolus", "infusion", "depot", "medium_change", "set_level"):
        assert f"'{kind}'" in issue.message


def test_typo_inside_a_mapping_form_reports_only_the_typo(tmp_path):
    """A typo in `outputs: [{name, unit}]` is one issue (the key), not 'should be a string'."""
    text = BASE + "outputs:\n  - {name: vegf_free, unti: pg/mL}\n"
    error, _ = load_error(tmp_path, text)
    assert [format_key_path(issue.path) for issue in error.issues] == ["outputs[0].unti"]
    assert error.issues[0].hint == "unit"


# --------------------------------------------------------------------------- duplicates
def test_duplicate_key_names_the_first_line(tmp_path):
    """A key given twice is an error at the second one that names the line of the first."""
    text = edit(BASE, "amount: 5 ng/mL\n", "amount: 5 ng/mL\n        amount: 6 ng/mL\n")
    error, path = load_error(tmp_path, text)
    first, second = line_of(text, "amount: 5 ng/mL"), line_of(text, "amount: 6 ng/mL")
    issue = assert_located(error, path, second, (*BOLUS_DOSE, "amount"))
    assert f"duplicate key (first given on line {first})" in issue.message


def test_duplicate_top_level_key_is_rejected(tmp_path):
    """Two `reference_arm:` lines are an error, not a silent last-one-wins."""
    text = BASE + "reference_arm: untreated\n"
    error, path = load_error(tmp_path, text)
    issue = assert_located(
        error, path, line_of(text, "reference_arm: untreated"), ("reference_arm",)
    )
    assert f"first given on line {line_of(text, 'reference_arm: bolus')}" in issue.message


# --------------------------------------------------------------------------- names vs model
def test_unknown_model_name_suggests_registered_model(tmp_path):
    """A misspelt model name lists registered models and suggests the closest."""
    text = edit(BASE, "model: secretome_delivery", "model: secretome_delivry")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "model:"), ("model",))
    assert "unknown model 'secretome_delivry'" in issue.message
    assert "did you mean 'secretome_delivery'?" in issue.message
    assert "registered models: " in issue.message and "secretome_delivery" in issue.message


def test_model_file_not_found_names_the_path(tmp_path):
    """A model path that does not exist is reported at `model:` with the resolved path."""
    text = edit(BASE, "model: secretome_delivery", "model: missing.ant")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, 2, ("model",))
    assert issue.message == f"model file not found: {tmp_path / 'missing.ant'}"


def test_unknown_input_target_suggests_input(tmp_path):
    """A dose target that is not a model input lists the inputs and suggests the closest."""
    text = edit(BASE, "target: vegf\n        amount", "target: vegff\n        amount")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "vegff"), (*BOLUS_DOSE, "target"))
    assert "unknown input 'vegff' of model 'secretome_delivery'" in issue.message
    assert "(inputs: exosomes, vegf; or 'product')" in issue.message
    assert issue.hint == "vegf"


def test_unknown_output_name_suggests_output(tmp_path):
    """An output the model does not have lists the outputs and suggests the closest."""
    text = BASE + "outputs:\n  - repair_signal\n  - vegf_fre\n"
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "vegf_fre"), ("outputs", 1))
    assert "unknown output 'vegf_fre' of model 'secretome_delivery'" in issue.message
    assert "vegfr2_occupancy" in issue.message  # the list of valid outputs
    assert issue.hint == "vegf_free"


def test_unknown_parameter_in_arm_parameters(tmp_path):
    """Overriding a parameter the model lacks names the model and suggests the closest."""
    text = edit(BASE, "  untreated: {}", "  untreated:\n    parameters: {k_clear_vegff: 1 1/h}")
    error, path = load_error(tmp_path, text)
    issue = assert_located(
        error,
        path,
        line_of(text, "k_clear_vegff"),
        ("arms", "untreated", "parameters", "k_clear_vegff"),
    )
    assert "unknown parameter 'k_clear_vegff' of model 'secretome_delivery'" in issue.message
    assert issue.hint == "k_clear_vegf"


def test_parameter_override_with_wrong_unit(tmp_path):
    """A parameter override whose unit does not convert says the expected unit and dimension."""
    text = edit(BASE, "  untreated: {}", "  untreated:\n    parameters: {k_clear_vegf: 1 ng/mL}")
    error, path = load_error(tmp_path, text)
    issue = assert_located(
        error,
        path,
        line_of(text, "k_clear_vegf"),
        ("arms", "untreated", "parameters", "k_clear_vegf"),
    )
    assert "expected a quantity convertible to 1/hour (1 / [time])" in issue.message
    assert "[mass] / [length] ** 3" in issue.message


def test_unknown_reference_arm_suggests_arm(tmp_path):
    """`reference_arm` naming no arm lists the arms and suggests the closest."""
    text = edit(BASE, "reference_arm: bolus", "reference_arm: bolsu")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "reference_arm"), ("reference_arm",))
    assert issue.message == "unknown arm 'bolsu' (arms: untreated, bolus, infused)"
    assert issue.hint == "bolus"


def test_unknown_extends_suggests_arm(tmp_path):
    """`extends` naming no arm is reported at that line with a suggestion."""
    text = edit(BASE, "  untreated: {}", "  untreated: {extends: bolsu}")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "bolsu"), ("arms", "untreated", "extends"))
    assert "unknown arm 'bolsu'" in issue.message
    assert issue.hint == "bolus"


def test_extends_cycle_is_reported_for_each_arm(tmp_path):
    """Arms extending each other in a loop are an error showing the cycle, at each `extends`."""
    text = edit(BASE, "  untreated: {}", "  untreated:\n    extends: bolus")
    text = edit(text, "  bolus:\n    doses:", "  bolus:\n    extends: untreated\n    doses:")
    error, path = load_error(tmp_path, text)
    first = assert_located(
        error, path, line_of(text, "extends: bolus"), ("arms", "untreated", "extends")
    )
    second = assert_located(
        error, path, line_of(text, "extends: untreated"), ("arms", "bolus", "extends")
    )
    assert first.message == "arms extend each other in a cycle: untreated -> bolus -> untreated"
    assert second.message == "arms extend each other in a cycle: bolus -> untreated -> bolus"


# --------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        pytest.param("-5 ng/mL", "expected a number > 0, got '-5 ng/mL'", id="negative-with-unit"),
        pytest.param("-5", "expected a number > 0, got -5", id="negative-plain"),
        pytest.param("0 ng/mL", "expected a number > 0, got '0 ng/mL'", id="zero"),
        pytest.param(".nan", "expected a finite number with a unit, got nan", id="yaml-nan"),
        pytest.param(
            "nan ng/mL", "expected a finite number with a unit, got 'nan ng/mL'", id="nan"
        ),
        pytest.param(".inf", "expected a finite number, got inf", id="yaml-inf"),
    ],
)
def test_bad_amount_says_expected_and_found(tmp_path, amount, expected):
    """A non-positive or non-finite dose amount is rejected at its line with what was found."""
    text = edit(BASE, "amount: 5 ng/mL", f"amount: {amount}")
    error, path = load_error(tmp_path, text)
    line = line_of(text, "amount:")
    messages = [i.message for i in error.issues if i.path == (*BOLUS_DOSE, "amount")]
    assert expected in messages, str(error)
    assert all(i.line == line for i in error.issues)
    assert f"{path}:{line}:9: arms.bolus.doses[0].amount: {expected}" in str(error)


def test_dose_time_outside_span(tmp_path):
    """A dose after the end of the simulated span gives the time and the span in model units."""
    text = edit(BASE, "        time: 0 h\n", "        time: 3 day\n")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "3 day"), (*BOLUS_DOSE, "time"))
    assert issue.message == "dose time 72 hour is outside the simulated span [0, 48] hour"


def test_dose_time_before_start(tmp_path):
    """A dose before the start of the span is outside it too."""
    text = edit(BASE, "        time: 0 h\n", "        time: -1 h\n")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "-1 h"), (*BOLUS_DOSE, "time"))
    assert "dose time -1 hour is outside the simulated span [0, 48] hour" in issue.message


def test_repeated_dose_last_repeat_after_end(tmp_path):
    """`every`/`count` whose last repeat falls after the end points at `count` with the time."""
    text = edit(
        BASE, "        time: 0 h\n", "        time: 0 h\n        every: 12 h\n        count: 6\n"
    )
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "count: 6"), (*BOLUS_DOSE, "count"))
    assert "the last of 6 doses falls at 60 hour, after the end of the span (48 hour)" in (
        issue.message
    )
    assert "lower 'count' or extend 'time.end'" in issue.message


def test_repeat_until_after_end(tmp_path):
    """`until` after the end of the span is reported at `until`."""
    text = edit(
        BASE,
        "        time: 0 h\n",
        "        time: 0 h\n        every: 12 h\n        until: 3 day\n",
    )
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "until"), (*BOLUS_DOSE, "until"))
    assert issue.message == "'until' (72 hour) is after the end of the span (48 hour)"


def test_perturbation_time_outside_span(tmp_path):
    """A perturbation starting after the end of the span is reported at its `time`."""
    text = edit(
        BASE,
        "  untreated: {}",
        "  untreated:\n    perturbations:\n"
        "      - {type: block, parameter: kon_vegfr2, fraction: 0.5, time: 3 day}",
    )
    error, path = load_error(tmp_path, text)
    issue = assert_located(
        error, path, line_of(text, "3 day"), ("arms", "untreated", "perturbations", 0, "time")
    )
    assert "time 72 hour is outside the simulated span [0, 48] hour" in issue.message


# --------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("old", "new", "marker", "key_path", "expected", "found"),
    [
        pytest.param(
            "amount: 5 ng/mL",
            "amount: 5 h",
            "amount: 5 h",
            (*BOLUS_DOSE, "amount"),
            "expected a quantity convertible to pM ([substance] / [length] ** 3)",
            "got 5 h ([time])",
            id="time-as-concentration",
        ),
        pytest.param(
            "rate: 1 ng/mL/h",
            "rate: 1 ng/mL",
            "rate: 1 ng/mL",
            (*INFUSION_DOSE, "rate"),
            "expected a quantity convertible to (pM) / (hour) "
            "([substance] / [length] ** 3 / [time])",
            "got 1.0 ng/ml ([mass] / [length] ** 3); a rate needs a per-time unit",
            id="rate-without-per-time",
        ),
        pytest.param(
            "        time: 0 h\n",
            "        time: 3\n",
            "time: 3",
            (*BOLUS_DOSE, "time"),
            "expected a time with a unit such as '24 h' or '2 day'",
            "got 3",
            id="dose-time-plain-number",
        ),
        pytest.param(
            "  end: 2 day",
            "  end: 48",
            "end: 48",
            ("time", "end"),
            "expected a time with a unit such as '24 h' or '2 day'",
            "got 48",
            id="end-plain-number",
        ),
        pytest.param(
            "        time: 1 h\n",
            "        time: 1 h\n        every: 12\n        count: 2\n",
            "every: 12",
            (*INFUSION_DOSE, "every"),
            "expected a time with a unit such as '24 h' or '2 day'",
            "got 12",
            id="every-plain-number",
        ),
    ],
)
def test_wrong_units_say_expected_and_found(tmp_path, old, new, marker, key_path, expected, found):
    """A quantity in the wrong unit names the expected unit and dimension and what was given."""
    text = edit(BASE, old, new)
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, marker), key_path)
    assert expected in issue.message
    assert found in issue.message


# --------------------------------------------------------------------------- all at once
def test_several_problems_are_all_reported_sorted_by_line(tmp_path):
    """One run of validate shows every problem in the file, in file order, in one error."""
    text = edit(BASE, "duration: 4 h", "duraton: 4 h")  # unknown key (line 20)
    text = edit(text, "amount: 5 ng/mL", "amount: -5 ng/mL")  # negative amount (line 13)
    text = edit(text, "target: vegf\n        amount", "target: vegff\n        amount")  # line 12
    text = edit(text, "reference_arm: bolus", "reference_arm: bolsu")  # unknown arm (line 22)
    error, path = load_error(tmp_path, text)
    expected = [
        (line_of(text, "vegff"), "arms.bolus.doses[0].target"),
        (line_of(text, "-5 ng/mL"), "arms.bolus.doses[0].amount"),
        (line_of(text, "type: infusion"), "arms.infused.doses[0].duration"),
        (line_of(text, "duraton"), "arms.infused.doses[0].duraton"),
        (line_of(text, "bolsu"), "reference_arm"),
    ]
    assert [(i.line, format_key_path(i.path)) for i in error.issues] == expected
    text_lines = str(error).splitlines()
    assert text_lines[0] == "5 problems in scenario:"
    assert [line.split(": ")[0].strip() for line in text_lines[1:]] == [
        f"{path}:{line}:{issue.column}"
        for (line, _), issue in zip(expected, error.issues, strict=True)
    ]
    assert "did you mean 'vegf'?" in text_lines[1]
    assert "did you mean 'duration'?" in text_lines[4]
    assert "did you mean 'bolus'?" in text_lines[5]


# --------------------------------------------------------------------------- YAML traps
def test_exponent_without_dot_is_a_float():
    """`1e-3` reads as the number 0.001 (PyYAML's YAML 1.1 would read the string '1e-3')."""
    data, _ = load_yaml("a: 1e-3\nb: 1E9\nc: .5e2\nd: 2.5\ne: 7\n", "t.yaml")
    assert data == {"a": 0.001, "b": 1e9, "c": 50.0, "d": 2.5, "e": 7}
    assert all(isinstance(data[k], float) for k in "abcd")
    assert type(data["e"]) is int


def test_exponent_in_scenario_solver_is_a_number(tmp_path):
    """`solver: {rtol: 1e-3, atol: 1E-9}` in a scenario sets numeric tolerances."""
    scenario = load_scenario(
        scenario_file(tmp_path, BASE + "solver: {rtol: 1e-3, atol: 1E-9}\n"), models_dir=MODELS
    )
    assert scenario.solver.rtol == pytest.approx(1e-3)
    assert scenario.solver.atol == pytest.approx(1e-9)


def test_no_yes_on_off_are_strings_not_booleans():
    """`no`, `yes`, `on`, `off` stay text (YAML 1.1 would turn Norway's `no` into False)."""
    data, _ = load_yaml("a: no\nb: yes\nc: on\nd: off\ne: true\nf: False\n", "t.yaml")
    assert data == {"a": "no", "b": "yes", "c": "on", "d": "off", "e": True, "f": False}


def test_no_as_a_scenario_name_stays_text(tmp_path):
    """A scenario `name: no` / `description: off` is kept as written, not made a boolean."""
    scenario = load_scenario(
        scenario_file(tmp_path, BASE + "name: no\ndescription: off\n"), models_dir=MODELS
    )
    assert scenario.name == "no"
    assert scenario.description == "off"


def test_yes_as_an_amount_is_an_unreadable_quantity(tmp_path):
    """`amount: yes` is the text 'yes' and is reported as an unreadable quantity."""
    text = edit(BASE, "amount: 5 ng/mL", "amount: yes")
    error, path = load_error(tmp_path, text)
    issue = assert_located(error, path, line_of(text, "amount: yes"), (*BOLUS_DOSE, "amount"))
    assert "cannot read 'yes' as a quantity" in issue.message


def test_merge_key_override_is_not_a_duplicate(tmp_path):
    """An arm that merges another with `<<: *anchor` may override a merged key."""
    text = edit(
        BASE,
        "  untreated: {}",
        "  untreated: &plain {description: no treatment}\n"
        "  untreated_again:\n    <<: *plain\n    description: a second control",
    )
    scenario = load_scenario(scenario_file(tmp_path, text), models_dir=MODELS)
    assert scenario.arms["untreated_again"].description == "a second control"


# --------------------------------------------------------------------------- exit codes
def test_input_errors_exit_2_and_solver_errors_exit_1():
    """The CLI's exit-code contract: input problems 2, solver failures 1."""
    issue = Issue("s.yaml", 1, 1, (), "bad")
    assert ScenarioError([issue]).exit_code == 2
    assert ModelError("bad model").exit_code == 2
    assert SimulationError("failed", arm="a", time=0.0).exit_code == 1
    assert issubclass(ScenarioError, SecretomeError)
    assert issubclass(ModelError, SecretomeError)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("duration: 4 h", "duraton: 4 h"),
        ("model: secretome_delivery", "model: nope"),
        ("amount: 5 ng/mL", "amount: .nan"),
        ("reference_arm: bolus", "reference_arm: bolus\nreference_arm: bolus"),
        ("  end: 2 day", "  end: 2"),
        ("        target: vegf\n        amount", "        target: vegf\n      amount"),
    ],
    ids=["unknown-key", "unknown-model", "nan", "duplicate", "plain-time", "syntax"],
)
def test_every_scenario_error_has_exit_code_2(tmp_path, old, new):
    """Whatever is wrong with a scenario, the error carries exit code 2 (invalid input)."""
    error, _ = load_error(tmp_path, edit(BASE, old, new))
    assert type(error) is ScenarioError
    assert error.exit_code == 2


def test_model_metadata_disagreeing_with_equations_is_a_model_error(tmp_path):
    """A model whose metadata value differs from its equations is refused (exit 2), named."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MODELS / "secretome_delivery.ant", models)
    meta = (MODELS / "secretome_delivery.yaml").read_text(encoding="utf-8")
    meta = edit(meta, "    value: 1.234\n", "    value: 1.5\n")
    (models / "secretome_delivery.yaml").write_text(meta, encoding="utf-8")
    path = scenario_file(tmp_path)
    with pytest.raises(ModelError) as caught:
        load_scenario(path, models_dir=models)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert "model 'secretome_delivery'" in message
    assert "parameter 'k_clear_vegf': metadata value 1.5 differs from the model's 1.234" in message
