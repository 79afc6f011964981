"""Edge cases found in review: each is either computed correctly or a located input error
(exit 2), never a traceback and never a silent no-op."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ONE_COMPARTMENT

from secretome_sim import ModelError, ScenarioError, cli, load_scenario, run_scenario

K = 0.1  # 1/h, k_el of tests/models/one_compartment


def test_dose_time_defaults_to_the_start_of_the_span(pk_scenario):
    """With time.start 2 h, a dose without 'time' is given at 2 h (not at 0 h)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM}]}",
        time="{start: 2 h, end: 10 h, step: 1 h}",
    )
    result = run_scenario(path)
    table = result.wide("a")
    assert table.index[0] == 2.0 and table["conc"].iloc[0] == pytest.approx(10.0)
    assert table["conc"].iloc[-1] == pytest.approx(10 * math.exp(-K * 8), rel=1e-6)


def test_bare_zero_times_are_accepted(pk_scenario):
    """'start: 0' and 'time: 0' need no unit (zero is zero in any unit)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 1 nM, time: 0}]}",
        time="{start: 0, end: 2 h}",
    )
    assert run_scenario(path).wide("a")["conc"].iloc[0] == pytest.approx(1.0)


def test_product_medium_change_sums_factors_feeding_one_input(write_scenario):
    """Two factors feeding one input: a medium change sets their sum, like a bolus adds it."""
    path = write_scenario(
        f"""
        model: {ONE_COMPARTMENT}
        time: {{end: 2 h, step: 1 h}}
        outputs: [conc]
        product:
          name: CM
          factors:
            a: {{concentration: 10 nM, input: drug}}
            b: {{concentration: 5 nM, input: drug}}
        arms:
          added: {{doses: [{{type: bolus, target: product, amount: 1}}]}}
          set: {{doses: [{{type: medium_change, target: product, value: 1}}]}}
        """
    )
    result = run_scenario(path)
    assert result.wide("added")["conc"].iloc[0] == pytest.approx(15.0)
    assert result.wide("set")["conc"].iloc[0] == pytest.approx(15.0)


def test_depots_with_nearly_equal_half_lives_are_distinct(pk_scenario):
    """Depot helpers are named from the exact half-life: no collision at 7 significant figures."""
    path = pk_scenario(
        "a: {doses: [{type: depot, target: drug, amount: 1 nM, half_life: 1.0000001 h},"
        " {type: depot, target: drug, amount: 1 nM, half_life: 1.0000002 h}]}"
    )
    t = run_scenario(path).wide("a")
    ka = math.log(2)
    expected = 2 * ka / (ka - K) * (np.exp(-K * t.index) - np.exp(-ka * t.index))
    np.testing.assert_allclose(t["conc"], expected, rtol=1e-5, atol=1e-8)


def test_very_fine_grid_on_a_short_span(pk_scenario):
    """A 1 ms span on 10,000 points runs (event tolerance is relative to the span)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM}]}",
        time="{end: 1 ms, points: 10000}",
    )
    values = run_scenario(path).wide("a")["conc"].to_numpy()
    assert values.shape == (10000,) and values[-1] == pytest.approx(10 * math.exp(-K / 3.6e6))


def test_events_after_the_end_are_not_listed(pk_scenario):
    """dose_events.csv lists what was applied: an infusion stop after the end is not."""
    path = pk_scenario(
        "a: {doses: [{type: infusion, target: drug, rate: 1 nM/h, time: 20 h, duration: 10 h}]}"
    )
    doses = run_scenario(path).doses
    assert list(doses["model_time"]) == [20.0]


ARM = "arms:\n  a:\n"


@pytest.mark.parametrize(
    ("body", "path_text", "message"),
    [
        (
            "outputs: [{unit: nM}]\n" + ARM + "    doses: []\n",
            "outputs[0].name",
            "required key is missing",
        ),
        (ARM + "    doses: [{type: [bolus], target: drug, amount: 1 nM}]\n", "doses[0]", "type"),
        (
            ARM + "    doses: [{type: bolus, target: [drug], amount: 1 nM}]\n",
            "doses[0].target",
            "valid string",
        ),
        (
            ARM + "    doses: [{type: bolus, target: drug, amount: 1 nM, every: 1e-7 h,"
            " until: 10 h}]\n",
            "doses[0].every",
            "expands to 100,000,001 doses",
        ),
        (
            ARM + "    doses: [{type: bolus, target: drug, amount: 1 nM, time: 5 h, every: 1 h,"
            " until: 2 h}]\n",
            "doses[0].until",
            "the dose would never be given",
        ),
        (
            ARM + "    perturbations: [{type: block, parameter: k_el, fraction: 1, time: 5 h,"
            " until: 2 h}]\n",
            "perturbations[0].until",
            "it would never act",
        ),
        ("metrics: [final, final]\n" + ARM + "    doses: []\n", "metrics[1]", "listed twice"),
        ("outputs: [conc, conc]\n" + ARM + "    doses: []\n", "outputs[1]", "listed twice"),
        (
            "outputs: [conc, level]\nmetrics: [{type: time_above, threshold: 1 nM}]\n"
            + ARM
            + "    doses: []\n",
            "metrics[0].threshold",
            "for output 'level'",
        ),
        (
            "product: {name: P, factors: {level: {concentration: 1}}}\n"
            + ARM
            + "    doses: [{type: depot, target: product, amount: 1, half_life: 1 h}]\n",
            "doses[0].type",
            "product factor 'level' feeds input 'level'",
        ),
        (
            "time: {end: 10 h, step: 1e-6 s}\n" + ARM + "    doses: []\n",
            "time.step",
            "output grid would have",
        ),
    ],
)
def test_bad_inputs_are_located_errors(write_scenario, body, path_text, message):
    """Each of these once raised a bare traceback or passed silently."""
    head = f"model: {ONE_COMPARTMENT}\n"
    text = head + ("" if body.startswith("time:") else "time: {end: 10 h}\n") + body
    path = write_scenario(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    rendered = str(info.value)
    assert path_text in rendered and message in rendered, rendered
    assert info.value.exit_code == 2


def test_model_file_time_unit_must_be_a_time(write_scenario, tmp_path):
    """A bad time_unit for a model file is located at model.time_unit."""
    model = tmp_path / "m.ant"
    model.write_text("model m(); species X = 0; X -> ; k*X; k = 1; end")
    path = write_scenario(
        f"model: {{file: {model}, time_unit: fortnightz}}\ntime: {{end: 1 h}}\narms: {{a: {{}}}}\n"
    )
    with pytest.raises(ScenarioError, match=r"model\.time_unit: .*fortnightz"):
        load_scenario(path)


def test_time_unit_contradicting_metadata_is_refused(write_scenario):
    """A time_unit that disagrees with the model's own metadata is an error, not ignored."""
    model_file = ONE_COMPARTMENT.with_suffix(".ant")
    path = write_scenario(
        f"model: {{file: {model_file}, time_unit: minute}}\ntime: {{end: 1 h}}\narms: {{a: {{}}}}\n"
    )
    with pytest.raises(ScenarioError, match=r"contradicts the model's metadata"):
        load_scenario(path)


def test_out_below_a_file_is_refused_before_running(write_scenario, tmp_path, capsys):
    """--out under an existing file: exit 2 with a message, nothing simulated or written."""
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    path = write_scenario(f"model: {ONE_COMPARTMENT}\ntime: {{end: 1 h}}\narms: {{a: {{}}}}\n")
    assert cli.main(["run", str(path), "--out", str(blocker / "run")]) == 2
    assert f"{blocker} is a file" in capsys.readouterr().err


def test_model_error_is_not_a_traceback(write_scenario, capsys):
    """ModelError reaches the CLI as a message with exit code 2."""
    assert issubclass(ModelError, Exception) and ModelError.exit_code == 2
    path = write_scenario("model: no_such_model\ntime: {end: 1 h}\narms: {a: {}}\n")
    assert cli.main(["validate", str(path)]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err


def test_parameter_sized_compartment_follows_arm_override(tmp_path, write_scenario):
    """A compartment sized by a parameter (c = vol) takes the arm's value of vol (regression:
    plain reset() kept the old size). A bolus without unit metadata adds concentration."""
    model = tmp_path / "vol.ant"
    model.write_text(
        "model vol_model()\n  compartment c = vol;\n  vol = 2;\n  species S in c = 0;\n"
        "  size := c;\nend\n"
    )
    path = write_scenario(
        f"model: {{file: {model}, time_unit: hour}}\n"
        "time: {end: 1 h, points: 3}\n"
        "arms:\n  default: {doses: [{type: bolus, target: S, amount: 1, time: 0 h}]}\n"
        "  big: {extends: default, parameters: {vol: 8}}\n"
        "outputs: [S, size]\n"
    )
    result = run_scenario(path)
    assert result.metric("default", "size", "final") == pytest.approx(2.0)
    assert result.metric("big", "size", "final") == pytest.approx(8.0)
    # the bolus sets concentration units (no metadata): 1 per volume unit either way
    assert result.metric("big", "S", "final") == pytest.approx(1.0)


def test_tiny_but_meaningful_states_are_not_flushed(tmp_path, write_scenario):
    """Only numerical dust (|x| < 1e-30) is zeroed at segment starts: a state of 1e-16 that
    grows as x' = x keeps its exact solution across dose events (regression: a threshold tied
    to atol zeroed it). The solver resolves it because the scenario asks for atol 1e-24; at
    the default 1e-12 a 1e-16 state is below the requested accuracy."""
    model = tmp_path / "growth.ant"
    model.write_text("model growth()\n  species X = 1e-16;\n  species Y = 0;\n  J: -> X; X;\nend\n")
    path = write_scenario(
        f"model: {{file: {model}, time_unit: hour}}\n"
        "time: {end: 4 h, points: 5}\n"
        "arms:\n  a:\n    doses:\n"
        "      - {type: bolus, target: Y, amount: 1, time: 1 h, every: 1 h, count: 3}\n"
        "outputs: [X]\nsolver: {atol: 1e-24}\n"
    )
    result = run_scenario(path)
    exact = 1e-16 * np.exp(np.arange(5))
    np.testing.assert_allclose(result.wide("a")["X"].to_numpy(), exact, rtol=1e-5)


def test_preequilibration_with_rate_rules_is_not_short_cut(tmp_path, write_scenario):
    """A model whose only change is a rate rule (a growing volume) is not 'already at steady
    state' just because its species rates are zero: pre-equilibration must not claim so."""
    model = tmp_path / "grow.ant"
    model.write_text("model grow()\n  V = 1;\n  V' = 0.05 * V;\nend\n")
    path = write_scenario(
        f"model: {{file: {model}, time_unit: hour}}\n"
        "time: {end: 1 h, points: 3}\narms: {a: {}}\n"
        "preequilibrate: {max_time: 10 h, on_failure: warn}\n"
    )
    result = run_scenario(path)
    assert result.manifest["arms"]["a"]["steady_state"]["method"] != "initial state"


def test_with_parameters_validates_like_a_file(pk_scenario):
    """The API override names the parameter and says what was expected: unknown names get a
    suggestion; wrong units, non-finite, negative (for a non-negative range), lists and bools
    are refused; numpy numbers are accepted and take effect."""
    from secretome_sim import with_parameters

    scenario = load_scenario(
        pk_scenario("bolus: {doses: [{type: bolus, target: drug, amount: 1 uM}]}")
    )
    with pytest.raises(ScenarioError) as info:
        with_parameters(scenario, {"k_e": 0.2})
    assert "not a settable parameter" in str(info.value) and "'k_el'" in str(info.value)
    for bad, expected in [
        ("1 uM", "convertible to"),
        (float("inf"), "finite"),
        (-0.1, ">= 0"),
        ([1, 2], "expected a number"),
        (True, "expected a number"),
    ]:
        with pytest.raises(ScenarioError, match=expected):
            with_parameters(scenario, {"k_el": bad})
    faster = run_scenario(with_parameters(scenario, {"k_el": np.float64(0.2)}))
    slower = run_scenario(with_parameters(scenario, {"k_el": "0.05 1/h"}))
    assert faster.metric("bolus", "conc", "auc") < slower.metric("bolus", "conc", "auc")


CHAIN = (
    "model chain()\n  species A = 0;\n  species B = 0;\n  species Y = 0;\n"
    "  fast: A -> B; 4 * A;\n  slow: B -> ; 1 * B;\nend\n"
)


def test_a_late_dose_onto_decayed_states_keeps_the_requested_tolerance(
    tmp_path, write_scenario, capfd
):
    """Regression (sys-bio/roadrunner#1349): from a scalar atol, libRoadRunner derives each
    state's tolerance from its value when simulate() starts. After a week of decay B sits near
    1e-29 (above the 1e-30 dust threshold), so the next dose got a tolerance near 1e-41 and
    CVODE collapsed its step ('t + h = t'). The engine now sets a fixed tolerance vector."""
    model = tmp_path / "chain.ant"
    model.write_text(CHAIN)
    path = write_scenario(
        f"model: {{file: {model}, time_unit: hour}}\n"
        "time: {end: 3 week, step: 1 day}\n"
        "arms:\n  a:\n    doses:\n"
        "      - {type: bolus, target: A, amount: 100, time: 0 h, every: 1 week, count: 3}\n"
        "outputs: [A, B]\n"
    )
    result = run_scenario(path)
    captured = capfd.readouterr()
    assert "t + h = t" not in captured.out + captured.err
    t = result.wide("a").index.to_numpy() * 24 * 7  # weeks -> h
    since = np.mod(t, 168.0)
    exact_b = 100 * 4 / 3 * (np.exp(-since) - np.exp(-4 * since))  # A -> B -> out, per dose
    np.testing.assert_allclose(result.wide("a")["B"].to_numpy(), exact_b, rtol=1e-6, atol=1e-9)


def test_results_do_not_depend_on_how_the_run_is_segmented(tmp_path, write_scenario):
    """Doses split a run into simulate() calls. Events that change nothing the outputs depend
    on (setting an unrelated species to 0 every hour) must not change the trajectory beyond
    solver tolerance (CVODE restarts at each segment; its steps differ, its accuracy must not)."""
    model = tmp_path / "chain.ant"
    model.write_text(CHAIN)
    base = (
        f"model: {{file: {model}, time_unit: hour}}\n"
        "time: {end: 48 h, step: 1 h}\noutputs: [B]\n"
        "arms:\n  whole:\n    doses: [{type: bolus, target: A, amount: 100, time: 0 h}]\n"
        "  split:\n    extends: whole\n"
        "    doses: [{type: set_level, target: Y, value: 0, time: 1 h, every: 1 h, count: 46}]\n"
    )
    result = run_scenario(write_scenario(base))
    whole, split = result.wide("whole")["B"].to_numpy(), result.wide("split")["B"].to_numpy()
    np.testing.assert_allclose(split, whole, rtol=1e-6, atol=1e-9)


def test_species_with_a_rate_rule_runs(tmp_path, write_scenario):
    """A species driven by a rate rule is one CVODE state, not two (regression: the tolerance
    vector counted it as a species and as a rate rule, and every run failed on its size)."""
    model = tmp_path / "ruled.ant"
    model.write_text("model ruled()\n  species X = 1;\n  X' = -0.5 * X;\n  species Y = 0;\nend\n")
    path = write_scenario(
        f"model: {{file: {model}, time_unit: hour}}\n"
        "time: {end: 4 h, step: 1 h}\narms:\n  a:\n    doses:\n"
        "      - {type: bolus, target: Y, amount: 1, time: 1 h}\n"
        "outputs: [X, Y]\n"
    )
    table = run_scenario(path).wide("a")
    np.testing.assert_allclose(table["X"].to_numpy(), np.exp(-0.5 * np.arange(5)), rtol=1e-6)
    assert table["Y"].iloc[-1] == pytest.approx(1.0)
