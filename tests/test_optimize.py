"""Schedule optimisation (issue 7, part 2): known optima, constraints, enumeration, errors, folder.

The analytic problems use the one-compartment test model (C' = -k C, k = 0.1/h): n boluses of
A every tau hours from t = 0 give C(t) = A sum_{i: i tau <= t} exp(-k (t - i tau)), whose
troughs lie just before each redose and at 24 h and whose peak follows the last dose. The
tests brute-force that closed form over a fine tau grid and compare the optimiser with it.

The engine's metrics are taken on the output grid (step 0.02 h): a trough or peak between two
grid points is missed by at most k * step = 0.2 % (relative), so the optimiser may land up to
that much on the favourable side of the closed form; hence 1 % tolerances.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ONE_COMPARTMENT

from secretome_sim import ScenarioError
from secretome_sim.dosing import dose_totals, resolved_arms
from secretome_sim.loader import load_scenario
from secretome_sim.optimize import (
    FEASIBILITY_TOLERANCE,
    build_optimization,
    load_optimization,
    run_optimization,
)
from secretome_sim.run import run_scenario

K = 0.1  # 1/h, the test model's elimination rate
END = 24.0
ROOT = Path(__file__).resolve().parents[1]

SCENARIO = f"""\
model: {ONE_COMPARTMENT}
time: {{start: 0 h, end: 24 h, step: 0.02 h}}
outputs: [conc]
metrics: [min, max, final, auc]
arms:
  a:
    doses:
      - {{type: bolus, target: drug, amount: 10 nM, time: 0 h, every: 12 h, count: 1}}
"""

LEAST_DRUG = """\
optimize:
  arm: a
  objective: {minimize: total_amount}
  variables:
    A: {path: arms.a.doses.0.amount, low: 0.5 nM, high: 50 nM, scale: log}
    tau: {path: arms.a.doses.0.every, low: 2 h, high: 24 h}
    n: {path: arms.a.doses.0.count, values: [1, 2, 3, 4, 5]}
  constraints:
    - {metric: conc.min, min: 1 nM}
  starts: 3
  seed: 1
"""


def _taus(n: int) -> np.ndarray:
    """Intervals that keep n doses inside [0, 24] h (any, for a single dose)."""
    return np.linspace(2.0, min(END, END / (n - 1)), 100_001) if n > 1 else np.array([2.0])


def least_drug(n: int) -> tuple[float, float, float]:
    """Closed form: (total, tau, A) of the least total amount keeping C >= 1 nM on [0, 24] h.
    For each tau the smallest A meets both troughs: A e^{-k tau} >= 1 (before the second dose,
    the lowest pre-dose trough) and C(24) >= 1."""
    taus = _taus(n)
    i = np.arange(n)[:, None]
    amount = 1.0 / np.exp(-K * (END - i * taus)).sum(axis=0)
    if n > 1:
        amount = np.maximum(amount, np.exp(K * taus))
    j = int(np.argmin(amount))
    return n * float(amount[j]), float(taus[j]), float(amount[j])


def most_exposure(n: int, budget: float, ceiling: float) -> tuple[float, float, float]:
    """Closed form: (AUC, tau, A) of the largest AUC on [0, 24] h with n * A <= budget and a
    peak (just after the last dose: A sum e^{-k i tau}) <= ceiling."""
    taus = _taus(n)
    i = np.arange(n)[:, None]
    amount = np.minimum(budget / n, ceiling / np.exp(-K * i * taus).sum(axis=0))
    auc = amount / K * (1 - np.exp(-K * (END - i * taus))).sum(axis=0)
    j = int(np.argmax(auc))
    return float(auc[j]), float(taus[j]), float(amount[j])


def scenario_at(amount: float, every: float, count: int) -> str:
    """The scenario with a schedule written out by hand (checked independently of the
    optimiser's own way of setting values)."""
    dose = f"{{type: bolus, target: drug, amount: {amount!r} nM, time: 0 h, every: {every!r} h, "
    return SCENARIO.replace(
        "{type: bolus, target: drug, amount: 10 nM, time: 0 h, every: 12 h, count: 1}",
        dose + f"count: {count}}}",
    )


def quiet(path, out: Path, **options):
    return run_optimization(path, out=out, progress="none", **options)


@pytest.fixture(scope="module")
def least(tmp_path_factory):
    """The least-drug problem, optimised once (with plots) for the tests that read it."""
    folder = tmp_path_factory.mktemp("least")
    path = folder / "least.yaml"
    path.write_text(SCENARIO + LEAST_DRUG, encoding="utf-8")
    return run_optimization(path, out=folder / "out", progress="none")


# --------------------------------------------------------------------------- known optima
def test_finds_the_analytic_optimum_and_respects_every_constraint(least, write_scenario):
    closed = {n: least_drug(n) for n in range(1, 6)}
    n_star = min(closed, key=lambda n: closed[n][0])
    total, tau, amount = closed[n_star]
    assert n_star == 3 and total == pytest.approx(5.4316, abs=1e-3)  # the brief's numbers
    assert least.feasible
    assert least.best["n"] == 3
    assert least.best["A"] == pytest.approx(amount, rel=0.01)
    assert least.best["tau"] == pytest.approx(tau, rel=0.01)
    assert least.objective == pytest.approx(total, rel=0.01)
    # every combination's own optimum was found too (integers enumerated, not rounded)
    table = least.evaluations
    for n, (expected, _, _) in closed.items():
        rows = table[(table["n"] == n) & table["feasible"]]
        assert rows["objective"].min() == pytest.approx(expected, rel=0.01), n
    # the constraints, recomputed from the best schedule written out by hand
    best = least.best
    rerun = run_scenario(write_scenario(scenario_at(best["A"], best["tau"], best["n"])))
    assert rerun.metric("a", "conc", "min") >= 1.0 * (1 - FEASIBILITY_TOLERANCE)
    assert (best["n"] - 1) * best["tau"] <= END
    assert best["n"] * best["A"] == pytest.approx(least.objective, rel=1e-12)
    trough = best["A"] * math.exp(-K * best["tau"])  # just before the 2nd dose, exactly
    assert trough >= 1 - 0.003  # the grid's 0.2 % at most


@pytest.mark.parametrize("method", ["cobyla", "slsqp"])
def test_other_methods_find_the_same_optimum(write_scenario, tmp_path, method):
    section = LEAST_DRUG.replace("values: [1, 2, 3, 4, 5]", "values: [3]").replace(
        "seed: 1", f"seed: 1\n  method: {method}\n  max_evaluations: 150"
    )
    result = quiet(write_scenario(SCENARIO + section), tmp_path / "o", plots=False)
    total, tau, _ = least_drug(3)
    assert result.feasible and result.objective == pytest.approx(total, rel=0.01)
    assert result.best["tau"] == pytest.approx(tau, rel=0.01)


def test_a_binding_ceiling_and_budget_move_the_answer(write_scenario, tmp_path):
    """Maximise exposure (AUC) with a budget and a peak ceiling: more, smaller doses keep the
    peak down, later doses add less AUC. Without the ceiling tau would sit at its 2 h bound."""
    section = """\
    optimize:
      arm: a
      objective: {maximize: conc.auc}
      variables:
        A: {path: arms.a.doses.0.amount, low: 0.5 nM, high: 50 nM, scale: log}
        tau: {path: arms.a.doses.0.every, low: 2 h, high: 24 h}
        n: {path: arms.a.doses.0.count, low: 2, high: 5}
      constraints:
        - {total_amount: {max: 10 nM}}
        - {metric: conc.max, max: 5 nM}
      starts: 3
      seed: 2
    """
    result = quiet(write_scenario(SCENARIO + textwrap.dedent(section)), tmp_path / "o")
    closed = {n: most_exposure(n, 10.0, 5.0) for n in range(2, 6)}
    n_star = max(closed, key=lambda n: closed[n][0])
    auc, tau, amount = closed[n_star]
    free = most_exposure(n_star, 10.0, math.inf)
    assert free[1] == pytest.approx(2.0) and tau > 4  # the ceiling moved tau off its bound
    assert result.feasible and result.best["n"] == n_star == 5
    assert result.best["tau"] == pytest.approx(tau, rel=0.01)
    assert result.best["A"] == pytest.approx(amount, rel=0.01)
    assert result.objective == pytest.approx(auc, rel=0.01)
    comparison = result.comparison.set_index("name")
    peak = comparison.loc["conc.max <= 5 nM"]
    budget = comparison.loc["total_amount[drug] <= 10 nM"]
    assert peak["best"] == pytest.approx(5.0, rel=0.01)  # active
    assert budget["best"] == pytest.approx(10.0, rel=0.01)  # active
    for row in (peak, budget):
        assert row["best_satisfied"]
        assert row["best_slack"] >= -FEASIBILITY_TOLERANCE * row["limit"]
    rerun = run_scenario(write_scenario(scenario_at(amount, tau, n_star)))
    assert rerun.metric("a", "conc", "max") <= 5.0 * (1 + 0.003)


def test_pure_enumeration_of_variants_and_forms(write_scenario, tmp_path):
    """Only discrete variables: every combination is evaluated once, no local search. A
    hydrogel spreads the strong product below the ceiling that its bolus breaks."""
    text = f"""\
    model: {ONE_COMPARTMENT}
    time: {{start: 0 h, end: 24 h, step: 0.1 h}}
    outputs: [conc]
    product:
      name: test product
      factors: {{drug: {{concentration: 10 nM}}}}
      variants:
        weak: {{scale: {{drug: 0.5}}}}
        strong: {{scale: {{drug: 2}}}}
    arms:
      a:
        doses:
          - {{type: bolus, target: product, amount: 1, time: 0 h}}
    optimize:
      arm: a
      objective: {{maximize: conc.final}}
      variables:
        variant: {{path: arms.a.doses.0.variant, values: [weak, strong]}}
        form:
          path: arms.a.doses.0
          choices:
            bolus: {{type: bolus}}
            gel: {{type: depot, half_life: 6 h}}
      constraints:
        - {{metric: conc.max, max: 15 nM}}
    """
    result = quiet(write_scenario(textwrap.dedent(text)), tmp_path / "o", plots=False)
    searches = result.searches
    assert len(searches) == 4 and (searches["evaluations"] == 1).all()
    assert searches["message"].str.startswith("enumerated").all()
    assert result.best == {"variant": "strong", "form": "gel"}
    table = result.evaluations.set_index(["variant", "form"])
    assert not table.loc[("strong", "bolus"), "feasible"]  # a 20 nM peak
    assert table.loc[("strong", "bolus"), "conc.max <= 15 nM"] == pytest.approx(20.0)
    assert table["feasible"].sum() == 3
    # closed form of the depot: C(24) = A kr / (kr - k) (e^{-k t} - e^{-kr t})
    kr = math.log(2) / 6
    final = 20 * kr / (kr - K) * (math.exp(-K * END) - math.exp(-kr * END))
    assert result.objective == pytest.approx(final, rel=1e-4)
    assert result.simulations == 4 + 1  # and the baseline
    best = yaml.safe_load((result.folder / "best.yaml").read_text(encoding="utf-8"))
    assert best["chosen"] == {"form": "gel"}
    assert best["values"]["arms.a.doses.0"]["type"] == "depot"
    assert best["values"]["arms.a.doses.0.variant"] == "strong"


def test_schedule_constraints_and_the_scenarios_own_metrics(write_scenario, tmp_path):
    """Counts and totals come from the schedule (a budget in umol through the input's 2 L
    volume), integers given as low/high are enumerated, and a time_above metric the scenario
    defines can be the objective."""
    text = SCENARIO.replace(
        "metrics: [min, max, final, auc]", "metrics: [final, {type: time_above, threshold: 1 nM}]"
    )
    section = """\
    optimize:
      arm: a
      objective: {maximize: conc.time_above_1}
      variables:
        n: {path: arms.a.doses.0.count, low: 1, high: 4}
        A: {path: arms.a.doses.0.amount, values: [1 nM, 2 nM, 4 nM]}
      constraints:
        - {doses: {max: 3, target: drug}}
        - {total_amount: {max: 0.01 umol, target: drug}}
    """
    result = quiet(write_scenario(text + textwrap.dedent(section)), tmp_path / "o", plots=False)
    table = result.evaluations
    assert len(table) == 12 and sorted(set(table["n"])) == [1, 2, 3, 4]
    budget = table["total_amount[drug] <= 0.01 µmol"]
    assert budget.to_numpy() == pytest.approx(table["n"] * table["A"] * 2e-3)  # nM x 2 L
    expected = (table["n"] <= 3) & (budget <= 0.01)
    assert (table["feasible"] == expected).all()
    assert result.best == {"n": 2, "A": 2.0}
    # closed form: time above 1 nM of two 2 nM doses 12 h apart (crossings interpolated
    # linearly on the grid: a few hundredths of an hour)
    above = math.log(2) / K + math.log(2 * (1 + math.exp(-12 * K))) / K
    assert result.objective == pytest.approx(above, abs=0.05)


def test_inactive_variables_and_combinations(write_scenario):
    """A depot's half-life and burst fraction do not exist when the choice is a bolus: the
    bolus combination searches nothing and appears once."""
    text = SCENARIO.replace(
        "{type: bolus, target: drug, amount: 10 nM, time: 0 h, every: 12 h, count: 1}",
        "{type: depot, target: drug, amount: 10 nM, half_life: 2 h}",
    )
    section = """\
    optimize:
      arm: a
      objective: {maximize: conc.auc}
      variables:
        form:
          path: arms.a.doses.0
          choices: {gel: {type: depot}, bolus: {type: bolus}}
        half_life: {path: arms.a.doses.0.half_life, low: 1 h, high: 12 h}
        burst: {path: arms.a.doses.0.burst_fraction, values: [0, 0.5]}
    """
    opt = load_optimization(write_scenario(text + textwrap.dedent(section)))
    labels = [c.label for c in opt.combinations]
    assert labels == ["form=gel, burst=0", "form=gel, burst=0.5", "form=bolus"]
    assert [len(c.continuous) for c in opt.combinations] == [1, 1, 0]
    assert not any(b.measure.kind == "span" for b in opt.constraints)  # no timing moves


def test_a_failing_point_is_infeasible_not_fatal(least, write_scenario, tmp_path, monkeypatch):
    """A point whose simulation fails is recorded (status failed, never the answer) and the
    searches go on."""
    from secretome_sim import optimize
    from secretome_sim.errors import SimulationError

    original = optimize._Problem._simulate

    def flaky(self, scenario, measures):
        if scenario.arms["a"].doses[0].amount.magnitude > 20:
            raise SimulationError("arm 'a': the solver failed (test)", "a", 1.0)
        return original(self, scenario, measures)

    monkeypatch.setattr(optimize._Problem, "_simulate", flaky)
    section = LEAST_DRUG.replace("values: [1, 2, 3, 4, 5]", "values: [1, 3]")
    result = quiet(write_scenario(SCENARIO + section), tmp_path / "o", plots=False)
    failed = result.evaluations[result.evaluations["status"] == "failed"]
    assert len(failed) > 0 and not failed["feasible"].any()
    assert failed["message"].str.contains("the solver failed").all()
    assert result.feasible and result.best["n"] == 3  # n = 1 needs 11 nM: found, not failed


def test_no_feasible_schedule_is_reported_with_what_fails(write_scenario, tmp_path):
    section = """\
    optimize:
      arm: a
      objective: {minimize: total_amount}
      variables:
        n: {path: arms.a.doses.0.count, values: [1, 2]}
      constraints:
        - {metric: conc.max, max: 1 nM}
        - {doses: {max: 1}}
    """
    result = quiet(write_scenario(SCENARIO + textwrap.dedent(section)), tmp_path / "o")
    assert not result.feasible
    assert result.best["n"] == 1  # the least violated point: only the peak is too high
    assert result.violated == ["conc.max <= 1 nM"]
    report = result.report()
    assert "no feasible schedule found" in report and "conc.max <= 1 nM" in report
    manifest = json.loads((result.folder / "optimization.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "no feasible schedule found"
    assert "NO feasible schedule" in (result.folder / "best.yaml").read_text(encoding="utf-8")


def test_same_seed_same_answer_serial_and_processes(write_scenario, tmp_path):
    section = LEAST_DRUG.replace("values: [1, 2, 3, 4, 5]", "values: [2, 3]").replace(
        "starts: 3", "starts: 2\n  max_evaluations: 40"
    )
    path = write_scenario(SCENARIO + section)
    serial = quiet(path, tmp_path / "serial", plots=False)
    parallel = quiet(path, tmp_path / "parallel", plots=False, workers=2)
    pd.testing.assert_frame_equal(serial.evaluations, parallel.evaluations)
    drop = ["seconds"]
    pd.testing.assert_frame_equal(
        serial.searches.drop(columns=drop), parallel.searches.drop(columns=drop)
    )
    assert serial.best == parallel.best and serial.simulations == parallel.simulations
    other = quiet(write_scenario(SCENARIO + section.replace("seed: 1", "seed: 7")), tmp_path / "b")
    assert not other.searches["start.A"].equals(serial.searches["start.A"])


# --------------------------------------------------------------------------- the folder
def test_api_end_to_end_writes_the_folder(least, write_scenario):
    folder = least.folder
    expected = {
        "optimization.json",
        "searches.csv",
        "evaluations.csv",
        "best.yaml",
        "comparison.csv",
        "trajectories.csv",
        "least.yaml",
        "plots",
    }
    assert {p.name for p in folder.iterdir()} == expected
    assert (folder / "plots" / "optimized_vs_baseline.png").stat().st_size > 10_000
    manifest = json.loads((folder / "optimization.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "feasible" and "not measurements" in manifest["disclaimer"]
    assert manifest["best"]["values"]["n"] == 3 and manifest["spec"]["seed"] == 1
    assert manifest["simulations"] == least.simulations > 100
    searches = pd.read_csv(folder / "searches.csv")
    assert len(searches) == 5 * 3 and {"combination", "start", "success", "message"} <= set(
        searches.columns
    )
    evaluations = pd.read_csv(folder / "evaluations.csv")
    assert len(evaluations) == manifest["evaluations"]
    assert {"A", "tau", "n", "objective", "conc.min >= 1 nM", "feasible"} <= set(evaluations)
    comparison = pd.read_csv(folder / "comparison.csv").set_index("name")
    assert comparison.loc["total_amount[drug]", "baseline"] == pytest.approx(10.0)
    assert not comparison.loc["conc.min >= 1 nM", "baseline_satisfied"]  # 10 nM once: too low
    trajectories = pd.read_csv(folder / "trajectories.csv")
    assert set(trajectories["schedule"]) == {"baseline", "best"}
    # best.yaml: values by path with units, and the arm as a scenario writes it
    best = yaml.safe_load((folder / "best.yaml").read_text(encoding="utf-8"))
    assert best["values"]["arms.a.doses.0.count"] == 3
    assert best["values"]["arms.a.doses.0.amount"].endswith(" nM")
    pasted = yaml.safe_load(SCENARIO)
    pasted["arms"] = best["scenario"]["arms"]
    rerun = run_scenario(write_scenario(yaml.safe_dump(pasted)))
    assert rerun.metric("a", "conc", "min") == pytest.approx(1.0, rel=1e-4)
    report = least.report()
    assert "n   = 3" in report and "simplified mechanistic model, not measurements" in report
    assert str(folder) in report


def test_an_optimization_file_names_its_scenario(write_scenario):
    write_scenario(SCENARIO, name="base.yaml")
    keys = textwrap.dedent(LEAST_DRUG.split("\n", 1)[1])  # the section's keys, unindented
    opt = load_optimization(write_scenario("scenario: base.yaml\n" + keys, name="my_opt.yaml"))
    assert opt.optimization_id == "my_opt" and opt.spec.arm == "a" and len(opt.combinations) == 5
    broken = keys.replace("{metric: conc.min,", "{metric: conx.min,")
    bad = write_scenario("scenario: base.yaml\n" + broken, name="bad.yaml")
    text = _problems(bad)
    assert text.startswith("1 problem in optimization:")
    assert f"{bad}:9:" in text and " constraints[0].metric: 'conx' is not among" in text


# --------------------------------------------------------------------------- errors
def _problems(path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_optimization(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("change", "line", "key", "message"),
    [
        (
            ("arms.a.doses.0.amount, low: 0.5", "arms.a.doses.0.amout, low: 0.5"),
            13,
            "optimize.variables.A.path",
            r"no sweepable field 'amout' .*; did you mean 'amount'\?",
        ),
        (
            ("{minimize: total_amount}", "{minimize: conx.min}"),
            11,
            "optimize.objective.minimize",
            r"'conx' is not among the scenario's outputs \(conc\); did you mean 'conc'\?",
        ),
        (
            ("{minimize: total_amount}", "{minimize: conc.mx}"),
            11,
            "optimize.objective.minimize",
            r"'mx' is not a metric of 'conc' .*; did you mean 'max'\?",
        ),
        (
            ("{metric: conc.min, min: 1 nM}", "{total_amount: {max: 5 h}}"),
            17,
            "optimize.constraints[0].total_amount.max",
            r"expected a quantity convertible to nM .*got 5 h",
        ),
        (
            ("{metric: conc.min, min: 1 nM}", "{metric: conc.min, min: 1}"),
            17,
            "optimize.constraints[0].min",
            r"expected a quantity convertible to nM, got 1",
        ),
        (
            ("low: 0.5 nM, high: 50 nM, scale: log", "low: 0 nM, high: 50 nM"),
            13,
            "optimize.variables.A.low",
            r"factor 'A' = 0 nM: arms.a.doses.0.amount must be > 0",
        ),
        (
            ("values: [1, 2, 3, 4, 5]", "low: 1.2, high: 1.8"),
            15,
            "optimize.variables.n.low",
            r"no integer lies between 1.2 and 1.8",
        ),
        (
            ("arm: a\n", "arm: b\n"),
            10,
            "optimize.arm",
            r"no arm 'b' \(arms: a\)",
        ),
        (
            ("values: [1, 2, 3, 4, 5]", "values: [1], low: 1"),
            15,
            "optimize.variables.n",
            r"give exactly one of 'low'/'high', 'values' or 'choices' \(found: low/high, values\)",
        ),
        (
            ("{minimize: total_amount}", "{minimize: total_amount, maximize: conc.auc}"),
            11,
            "optimize.objective",
            r"give exactly one of 'minimize' or 'maximize'",
        ),
    ],
)
def test_errors_are_located(write_scenario, change, line, key, message):
    path = write_scenario(SCENARIO + LEAST_DRUG.replace(*change))
    text = _problems(path)
    assert f"{path}:{line}:" in text and f" {key}: " in text, text
    assert re.search(message, text), text


def test_every_problem_is_reported_at_once(write_scenario):
    section = (
        LEAST_DRUG.replace("arms.a.doses.0.amount, low", "arms.a.doses.0.amout, low")
        .replace("{minimize: total_amount}", "{minimize: conx.min}")
        .replace("{metric: conc.min, min: 1 nM}", "{total_amount: {max: 5 h}}")
    )
    text = _problems(write_scenario(SCENARIO + section))
    assert text.startswith("3 problems in optimization:")


def test_a_choice_that_makes_the_scenario_invalid_is_located(write_scenario):
    section = """\
    optimize:
      arm: a
      objective: {maximize: conc.auc}
      variables:
        form:
          path: arms.a.doses.0
          choices: {gel: {type: depot}, slow: {type: infusion, rate: 1 nM/h}}
    """
    path = write_scenario(SCENARIO + textwrap.dedent(section))
    text = _problems(path)
    assert f"{path}:15:" in text and "optimize.variables.form.choices.gel: choice 'gel'" in text
    assert "arms.a.doses[0].half_life: required key is missing" in text
    assert "choices.slow: choice 'slow'" in text and "duration: required key is missing" in text


def test_too_many_combinations_are_refused(write_scenario):
    amounts = ", ".join(f"{1 + i} nM" for i in range(101))
    section = LEAST_DRUG.replace("low: 0.5 nM, high: 50 nM, scale: log", f"values: [{amounts}]")
    section = section.replace("values: [1, 2, 3, 4, 5]", "low: 1, high: 100")
    text = _problems(write_scenario(SCENARIO + section))
    assert "optimize.variables: the enumerated variables" in text and "10,100 combinations" in text


def test_a_built_spec_is_checked_like_a_file(write_scenario):
    scenario = load_scenario(write_scenario(SCENARIO))
    spec = {
        "arm": "a",
        "objective": {"minimize": "conc.auc"},
        "variables": {"A": {"path": "arms.a.doses.0.amount", "low": "1 nM", "high": "2 nM"}},
    }
    opt = build_optimization(scenario, spec)
    assert [v.name for v in opt.variables] == ["A"] and opt.constraints == []
    spec["variables"] = {}
    with pytest.raises(ScenarioError, match="give at least one decision variable"):
        build_optimization(scenario, spec)


def test_shipped_optimization_examples_load():
    for path in sorted((ROOT / "scenarios").glob("optimize_*.yaml")):
        opt = load_optimization(path)
        assert opt.combinations, path


# --------------------------------------------------------------------------- dose totals
def test_dose_totals_count_repeats_and_convert_units(write_scenario):
    text = SCENARIO.replace(
        "      - {type: bolus, target: drug, amount: 10 nM, time: 0 h, every: 12 h, count: 1}",
        "      - {type: bolus, target: drug, amount: 2 nM, time: 0 h, every: 6 h, count: 3}\n"
        "      - {type: infusion, target: drug, rate: 1 nM/h, duration: 2 h, time: 1 h}\n"
        "      - {type: depot, target: drug, amount: 1 nmol, half_life: 1 h, time: 2 h}\n"
        "      - {type: set_level, target: level, value: 1, time: 3 h, every: 1 h, until: 5 h}",
    )
    scenario = load_scenario(write_scenario(text))
    totals = dose_totals(resolved_arms(scenario)["a"], scenario, scenario.model_definition)
    drug, level = totals["drug"], totals["level"]
    assert drug.events == 3 + 1 + 1 and level.events == 3 and level.amount is None
    # 1 nmol in the input's 2 L volume is 0.5 nM
    assert drug.amount.to("nM").magnitude == pytest.approx(3 * 2 + 1 * 2 + 0.5)


def test_cli_optimize_end_to_end(write_scenario, tmp_path, capsys):
    """`secretome-sim optimize`: a single bolus time in [0, 20] h maximising C(24 h) is the
    latest time (C = A e^{-k (24 - t)}); exit 0, the report and the folder."""
    from secretome_sim.cli import main

    path = write_scenario(
        f"""\
        model: {ONE_COMPARTMENT}
        time: {{start: 0 h, end: 24 h, step: 0.5 h}}
        outputs: [conc]
        arms:
          a:
            doses:
              - {{type: bolus, target: drug, amount: 10 nM, time: 2 h}}
        optimize:
          arm: a
          objective: {{maximize: conc.final}}
          variables:
            t: {{path: arms.a.doses.0.time, low: 0 h, high: 20 h}}
          starts: 2
        """
    )
    out = tmp_path / "cli"
    assert main(["optimize", str(path), "--out", str(out), "--progress", "none"]) == 0
    printed = capsys.readouterr().out
    assert "t = 20 h" in printed and "(as written: 2 h)" in printed
    assert (out / "best.yaml").exists() and (out / "plots" / "optimized_vs_baseline.png").exists()
    assert main(["optimize", str(path), "--out", str(out), "--progress", "none"]) == 2
    assert main(["optimize", str(path), "--workers", "0"]) == 2
