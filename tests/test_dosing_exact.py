"""Doses act at exactly their time: conformance against closed-form solutions.

Model: one compartment (volume 2.5, not 1), first-order elimination k = 0.1 /h
(tests/models/one_compartment.ant). Each case carries its analytic answer, in the spirit of
PEtab's conformance suite and AMICI's event tests. Tolerance: 1e-6 relative (solver rtol 1e-8).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from secretome_sim import run_scenario

K = 0.1  # 1/h, k_el of the test model
RTOL = 1e-6
ATOL = 1e-9


def conc(result, arm: str = "a") -> tuple[np.ndarray, np.ndarray]:
    table = result.trajectories
    rows = table[(table.arm == arm) & (table.output == "conc")]
    return rows["time"].to_numpy(), rows["value"].to_numpy()


def bolus_curve(t: np.ndarray, dose: float, at: float) -> np.ndarray:
    """First-order elimination after a bolus; zero before it (right-continuous at the dose)."""
    return np.where(t >= at, dose * np.exp(-K * (t - at)), 0.0)


def test_bolus_at_time_zero_fires(pk_scenario):
    """An event true at t = 0 is the classic SBML miss; here the dose must be in the first row."""
    path = pk_scenario("a: {doses: [{type: bolus, target: drug, amount: 10 nM, time: 0 h}]}")
    t, c = conc(run_scenario(path))
    assert c[0] == pytest.approx(10.0, rel=RTOL)
    np.testing.assert_allclose(c, bolus_curve(t, 10.0, 0.0), rtol=RTOL, atol=ATOL)


def test_bolus_between_output_points(pk_scenario):
    """A dose at 3.37 h on a 1 h grid acts at 3.37 h, not at the next grid point."""
    path = pk_scenario("a: {doses: [{type: bolus, target: drug, amount: 10 nM, time: 3.37 h}]}")
    t, c = conc(run_scenario(path))
    np.testing.assert_allclose(c, bolus_curve(t, 10.0, 3.37), rtol=RTOL, atol=ATOL)
    assert c[3] == 0.0 and c[4] == pytest.approx(10 * math.exp(-K * 0.63), rel=RTOL)


def test_repeated_bolus_is_superposition(pk_scenario):
    """every/count: the sum of shifted single-dose curves (linear model => superposition)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 5 nM, time: 1 h, every: 6 h, count: 4}]}"
    )
    t, c = conc(run_scenario(path))
    expected = sum(bolus_curve(t, 5.0, 1.0 + 6.0 * i) for i in range(4))
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_repeat_until_includes_the_until_time(pk_scenario):
    """every 8 h until 16 h gives doses at 0, 8 and 16 h (the end point included)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 1 nM, every: 8 h, until: 16 h}]}"
    )
    result = run_scenario(path)
    assert list(result.doses["model_time"]) == [0.0, 8.0, 16.0]
    t, c = conc(result)
    expected = sum(bolus_curve(t, 1.0, at) for at in (0.0, 8.0, 16.0))
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_many_doses_close_together(pk_scenario):
    """Ten doses 0.001 h apart inside one output interval all act (none stepped over)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 1 nM, time: 2.5 h, every: 0.001 h, "
        "count: 10}]}"
    )
    t, c = conc(run_scenario(path))
    expected = sum(bolus_curve(t, 1.0, 2.5 + 0.001 * i) for i in range(10))
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_dose_at_last_time_point(pk_scenario):
    """A dose at the end of the span shows in the final value (post-dose, right-continuous)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM, time: 0 h},"
        " {type: bolus, target: drug, amount: 7 nM, time: 24 h}]}"
    )
    _t, c = conc(run_scenario(path))
    assert c[-1] == pytest.approx(10 * math.exp(-K * 24) + 7.0, rel=RTOL)
    assert c[-2] == pytest.approx(10 * math.exp(-K * 23), rel=RTOL)


def test_results_do_not_depend_on_output_points(pk_scenario):
    """The same doses on an 11-point and a 2401-point grid agree at the shared times."""
    arms = (
        "a: {doses: [{type: bolus, target: drug, amount: 3 nM, time: 0.7 h, every: 2.3 h,"
        " count: 9}, {type: infusion, target: drug, rate: 1 nM/h, time: 4.1 h, duration: 3.3 h}]}"
    )
    coarse = conc(run_scenario(pk_scenario(arms, time="{end: 24 h, points: 11}")))
    fine = conc(run_scenario(pk_scenario(arms, time="{end: 24 h, points: 2401}")))
    shared = np.isin(np.round(fine[0], 9), np.round(coarse[0], 9))
    np.testing.assert_allclose(fine[1][shared], coarse[1], rtol=RTOL, atol=ATOL)


def test_infusion_rises_then_decays(pk_scenario):
    """Zero-order infusion R for T: R/k (1 - e^-kt), then exponential decay from the plateau."""
    path = pk_scenario(
        "a: {doses: [{type: infusion, target: drug, rate: 2 nM/h, time: 2 h, duration: 5 h}]}"
    )
    t, c = conc(run_scenario(path))
    rate, start, stop = 2.0, 2.0, 7.0
    during = rate / K * (1 - np.exp(-K * (t - start)))
    at_stop = rate / K * (1 - math.exp(-K * (stop - start)))
    after = at_stop * np.exp(-K * (t - stop))
    expected = np.where(t < start, 0.0, np.where(t <= stop, during, after))
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_overlapping_infusions_add_and_stop_exactly(pk_scenario):
    """Two overlapping infusions sum; after both stop the rate is exactly zero (pure decay)."""
    path = pk_scenario(
        "a: {doses: [{type: infusion, target: drug, rate: 1 nM/h, time: 0 h, duration: 4 h},"
        " {type: infusion, target: drug, rate: 3 nM/h, time: 2 h, duration: 4 h}]}"
    )
    result = run_scenario(path)
    rates = result.doses[result.doses.action == "rate"]
    np.testing.assert_allclose(rates[["model_time", "value"]], [[0, 1], [2, 4], [4, 3], [6, 0]])
    assert list(rates["is_dose"]) == [True, True, False, False]  # starts are doses, stops not
    t, c = conc(result)
    c6 = float(c[t == 6.0][0])
    np.testing.assert_allclose(c[t >= 6], c6 * np.exp(-K * (t[t >= 6] - 6)), rtol=RTOL)


def test_depot_release_is_bateman(pk_scenario):
    """A depot with half-life h releases first-order: D ka/(ka-k) (e^-kt - e^-ka t) (Bateman)."""
    path = pk_scenario(
        "a: {doses: [{type: depot, target: drug, amount: 10 nM, time: 0 h, half_life: 3 h}]}"
    )
    t, c = conc(run_scenario(path))
    ka = math.log(2) / 3.0
    expected = 10.0 * ka / (ka - K) * (np.exp(-K * t) - np.exp(-ka * t))
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=1e-8)


def test_depot_burst_fraction(pk_scenario):
    """burst_fraction f releases f*D at once and the rest first-order."""
    path = pk_scenario(
        "a: {doses: [{type: depot, target: drug, amount: 10 nM, time: 1 h, half_life: 6 h,"
        " burst_fraction: 0.25}]}"
    )
    t, c = conc(run_scenario(path))
    ka, s = math.log(2) / 6.0, np.clip(t - 1.0, 0, None)
    slow = 7.5 * ka / (ka - K) * (np.exp(-K * s) - np.exp(-ka * s))
    expected = np.where(t >= 1.0, 2.5 * np.exp(-K * s) + slow, 0.0)
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=1e-8)


def test_depot_versus_bolus_same_total_exposure(pk_scenario):
    """A depot delivers the same AUC(0-inf) as the bolus, later and lower (mass balance)."""
    path = pk_scenario(
        "bolus: {doses: [{type: bolus, target: drug, amount: 10 nM}]}\n"
        "gel: {doses: [{type: depot, target: drug, amount: 10 nM, half_life: 12 h}]}",
        time="{end: 600 h, step: 0.25 h}",
    )
    result = run_scenario(path)
    assert result.metric("gel", "conc", "auc") == pytest.approx(10.0 / K, rel=1e-3)
    assert result.metric("bolus", "conc", "auc") == pytest.approx(10.0 / K, rel=1e-3)
    assert result.metric("gel", "conc", "max") < 0.5 * result.metric("bolus", "conc", "max")
    assert result.metric("gel", "conc", "time_of_max") > 10.0


def test_medium_change_resets_to_value(pk_scenario):
    """Fresh medium every 6 h sets the concentration back to the given value (default 0)."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM, every: 6 h, count: 4},"
        " {type: medium_change, target: drug, time: 3 h, every: 6 h, count: 4}]}"
    )
    t, c = conc(run_scenario(path))
    phase = np.mod(t, 6.0)
    dosed = (phase < 3.0) & (t < 24.0)  # four doses: 0, 6, 12, 18 h
    expected = np.where(dosed, 10 * np.exp(-K * phase), 0.0)
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_set_level_holds_the_input_like_a_medium_change(pk_scenario):
    """`set_level` (the in vivo name) sets the target exactly as `medium_change` does."""
    path = pk_scenario(
        "a: {doses: [{type: set_level, target: drug, value: 7 nM, time: 2 h}]}\n"
        "b: {doses: [{type: medium_change, target: drug, value: 7 nM, time: 2 h}]}"
    )
    result = run_scenario(path)
    t, level = conc(result, "a")
    _, medium = conc(result, "b")
    np.testing.assert_allclose(level, medium, rtol=0, atol=0)
    expected = np.where(t >= 2.0, 7 * np.exp(-K * (t - 2.0)), 0.0)
    np.testing.assert_allclose(level, expected, rtol=RTOL, atol=ATOL)


def test_medium_change_then_bolus_at_same_time(pk_scenario):
    """At one time, medium change applies before a bolus: fresh medium then the new dose."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM, time: 0 h},"
        " {type: bolus, target: drug, amount: 4 nM, time: 5 h},"
        " {type: medium_change, target: drug, time: 5 h}]}"
    )
    t, c = conc(run_scenario(path))
    assert c[t == 5.0][0] == pytest.approx(4.0, rel=RTOL)


def test_mass_dose_converts_with_molecular_weight_and_volume(pk_scenario):
    """1 mg of a 500 g/mol drug into 2 L is 1 uM = 1000 nM (pint conversion through metadata)."""
    path = pk_scenario("a: {doses: [{type: bolus, target: drug, amount: 1 mg}]}")
    _t, c = conc(run_scenario(path))
    assert c[0] == pytest.approx(1000.0, rel=1e-9)


def test_output_reported_in_mass_units(pk_scenario):
    """An output can be reported in ng/mL via its molecular weight: 10 nM x 500 g/mol = 5 ng/mL."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM}]}",
    )
    text = path.read_text().replace("outputs: [conc]", "outputs: [{name: conc, unit: ng/mL}]")
    path.write_text(text)
    result = run_scenario(path)
    first = result.trajectories.iloc[0]
    assert first["unit"] == "ng/mL" and first["value"] == pytest.approx(5.0, rel=1e-9)


def test_time_units_convert(pk_scenario):
    """A span in days and a dose time in minutes land on the model's hour clock."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM, time: 90 min}]}",
        time="{end: 1 day, step: 0.125 day}",
    )
    result = run_scenario(path)
    t, c = conc(result)
    assert result.time_unit == "d" and t[-1] == 1.0
    np.testing.assert_allclose(c, bolus_curve(t * 24, 10.0, 1.5), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("perturbation", "factor"),
    [
        ("{type: block, parameter: k_el, fraction: 0.75, time: 5 h}", 0.25),
        ("{type: scale, parameter: k_el, factor: 3, time: 5 h}", 3.0),
        ("{type: inhibitor, parameter: k_el, concentration: 2 uM, ic50: 500 nM, time: 5 h}", 0.2),
        (
            "{type: inhibitor, parameter: k_el, concentration: 1 uM, ic50: 1 uM, hill: 2,"
            " time: 5 h}",
            0.5,
        ),
        ("{type: set, parameter: k_el, value: 0.3 1/h, time: 5 h}", 3.0),
    ],
)
def test_perturbation_changes_rate_from_its_time(pk_scenario, perturbation, factor):
    """Block, scale, IC50 inhibitor and set all change k_el exactly from t = 5 h."""
    path = pk_scenario(
        f"a: {{doses: [{{type: bolus, target: drug, amount: 10 nM}}], "
        f"perturbations: [{perturbation}]}}"
    )
    t, c = conc(run_scenario(path))
    k2 = K * factor
    expected = np.where(t <= 5, 10 * np.exp(-K * t), 10 * np.exp(-K * 5 - k2 * (t - 5)))
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_perturbation_window_ends(pk_scenario):
    """A block with 'until' lifts at that time: the original rate returns."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: drug, amount: 10 nM}],"
        " perturbations: [{type: block, parameter: k_el, fraction: 1.0, time: 2 h, until: 6 h}]}"
    )
    t, c = conc(run_scenario(path))
    held = 10 * math.exp(-K * 2)
    expected = np.where(
        t <= 2, 10 * np.exp(-K * t), np.where(t <= 6, held, held * np.exp(-K * (t - 6)))
    )
    np.testing.assert_allclose(c, expected, rtol=RTOL, atol=ATOL)


def test_parameter_override_with_units_and_extends(pk_scenario):
    """Arm parameters convert units (2.4 1/day = 0.1 1/h x 1); extends inherits doses."""
    path = pk_scenario(
        "base: {doses: [{type: bolus, target: drug, amount: 10 nM}]}\n"
        "fast: {extends: base, parameters: {k_el: 7.2 1/day}}"
    )
    result = run_scenario(path)
    t, c = conc(result, "fast")
    np.testing.assert_allclose(c, 10 * np.exp(-0.3 * t), rtol=RTOL, atol=ATOL)
    assert len(result.doses[result.doses.arm == "fast"]) == 1


def test_parameter_input_bolus_and_expression_output(pk_scenario):
    """A bolus on a parameter input adds to it; an expression output is computed by the model."""
    path = pk_scenario(
        "a: {doses: [{type: bolus, target: level, amount: 0.25, time: 2 h},"
        " {type: bolus, target: level, amount: 0.5, time: 4 h},"
        " {type: bolus, target: drug, amount: 10 nM}]}"
    )
    text = path.read_text().replace("outputs: [conc]", "outputs: [conc, level, twice]")
    path.write_text(text)
    result = run_scenario(path)
    level = result.wide("a")["level"]
    assert level[1.0] == 0.0 and level[3.0] == 0.25 and level[5.0] == 0.75
    np.testing.assert_allclose(result.wide("a")["twice"], 2 * result.wide("a")["conc"], rtol=1e-12)


def test_preequilibration_starts_at_steady_state(pk_scenario):
    """With production k_in, pre-equilibration starts the arm at C = k_in/k_el and it stays flat."""
    path = pk_scenario(
        "a: {parameters: {k_in: 2 nM/h}}",
        extra="preequilibrate: true",
    )
    result = run_scenario(path)
    _t, c = conc(result)
    np.testing.assert_allclose(c, 20.0, rtol=1e-7)
    assert result.manifest["arms"]["a"]["steady_state"]["found"] is True


def test_missing_steady_state_is_reported(pk_scenario):
    """With elimination off and production on, no steady state exists: say so, clearly."""
    from secretome_sim import SimulationError

    path = pk_scenario(
        "a: {parameters: {k_in: 1 nM/h, k_el: 0 1/h}}",
        extra="preequilibrate: {max_time: 100 h}",
    )
    with pytest.raises(SimulationError, match=r"arm 'a': no steady state within 100 h"):
        run_scenario(path)
    warn = pk_scenario(
        "a: {parameters: {k_in: 1 nM/h, k_el: 0 1/h}}",
        extra="preequilibrate: {max_time: 100 h, on_failure: warn}",
    )
    result = run_scenario(warn)
    assert any("no steady state" in w for w in result.warnings)


def test_product_dose_maps_factors_and_variants(write_scenario):
    """A product dose delivers each factor to its input, scaled by the variant (fraction of CM)."""
    from conftest import ONE_COMPARTMENT

    path = write_scenario(
        f"""
        model: {ONE_COMPARTMENT}
        time: {{end: 10 h, step: 1 h}}
        outputs: [conc, level]
        product:
          name: CM
          factors:
            drug: {{concentration: 40 nM}}
            potency: {{concentration: 0.8, input: level}}
          variants:
            strong: {{scale: {{drug: 2.5}}}}
        arms:
          plain: {{doses: [{{type: bolus, target: product, amount: 0.5}}]}}
          strong: {{doses: [{{type: bolus, target: product, variant: strong, amount: 50 %}}]}}
        """
    )
    result = run_scenario(path)
    assert result.wide("plain")["conc"].iloc[0] == pytest.approx(20.0, rel=1e-9)
    assert result.wide("strong")["conc"].iloc[0] == pytest.approx(50.0, rel=1e-9)
    assert result.wide("strong")["level"].iloc[0] == pytest.approx(0.4, rel=1e-9)


def test_a_dose_a_round_off_before_the_end_is_a_dose_at_the_end(pk_scenario):
    """12 h x 2 can land at 23.999999999999996 h: it is the end, not a zero-length segment
    (found by the schedule optimiser)."""
    from secretome_sim.run import run_scenario

    near = run_scenario(
        pk_scenario(
            "a: {doses: [{type: bolus, target: drug, amount: 1 nM, time: 23.999999999999996 h}]}"
        )
    )
    exact = run_scenario(
        pk_scenario("a: {doses: [{type: bolus, target: drug, amount: 1 nM, time: 24 h}]}")
    )
    assert near.metric("a", "conc", "final") == exact.metric("a", "conc", "final")
