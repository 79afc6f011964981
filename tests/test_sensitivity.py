"""Sensitivity analysis: local (central differences), Morris, Sobol, evidence flags, CLI (issue 7).

Numbers are checked against closed forms: the one-compartment model (C(t) = A exp(-k t) after a
bolus A) for local sensitivities, and the Ishigami function (Ishigami & Homma 1990,
doi:10.1109/ISUMA.1990.151285; indices in Saltelli et al. 2008, Global Sensitivity Analysis:
The Primer, Wiley, section 4.9) for Sobol indices.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ONE_COMPARTMENT, TEST_MODELS

from secretome_sim import ScenarioError
from secretome_sim.cli import main
from secretome_sim.sensitivity import run_sensitivity
from secretome_sim.sensitivity_load import load_sensitivity

PK = f"""\
model: {ONE_COMPARTMENT}
time: {{start: 0 h, end: 24 h, step: 1 h}}
outputs: [conc]
metrics: [final, auc]
arms:
  a:
    doses:
      - {{type: bolus, target: drug, amount: 10 nM, time: 0 h}}
"""

ISHIGAMI = f"""\
model: {TEST_MODELS / "ishigami.yaml"}
time: {{start: 0 h, end: 1 h, step: 1 h}}
outputs: [y]
metrics: [final]
arms:
  only: {{}}
"""


def study_file(write_scenario, base: str, section: str) -> Path:
    body = textwrap.indent(textwrap.dedent(section).strip(), "  ")
    return write_scenario(base + "sensitivity:\n" + body + "\n")


def quiet(path, tmp_path, name="out", **options):
    return run_sensitivity(path, out=tmp_path / name, progress="none", plots=False, **options)


def row(result, metric: str, name: str, arm: str = "a") -> pd.Series:
    table = result.indices
    return table[(table.arm == arm) & (table.metric == metric) & (table.input == name)].iloc[0]


# --------------------------------------------------------------------------- local
def test_local_sensitivities_match_the_closed_form(write_scenario, tmp_path):
    """C(T) = A e^{-kT}: S_k = -kT, S_A = 1; the AUC is the trapezoid sum of A e^{-k t_i}, so
    d ln AUC / d ln k = -k sum w_i t_i e^{-k t_i} / sum w_i e^{-k t_i}; S(t) = -k t."""
    path = study_file(
        write_scenario,
        PK,
        "factors:\n  amount: {path: arms.a.doses.0.amount}\nlocal: {relative_step: 0.001}",
    )
    result = quiet(path, tmp_path, workers=1)
    k, hours = 0.1, np.arange(25.0)
    weights = np.full(25, 1.0)
    weights[[0, -1]] = 0.5
    decay = np.exp(-k * hours)
    expected_auc = -k * np.sum(weights * hours * decay) / np.sum(weights * decay)
    assert row(result, "conc.final", "k_el")["S"] == pytest.approx(-k * 24, rel=1e-5)
    assert row(result, "conc.auc", "k_el")["S"] == pytest.approx(expected_auc, rel=1e-5)
    assert row(result, "conc.final", "amount")["S"] == pytest.approx(1.0, rel=1e-7)
    assert row(result, "conc.final", "k_el")["S_error"] < 1e-4  # the Richardson estimate
    # absolute sensitivity d C(T) / d k = -T A e^{-kT}
    absolute = row(result, "conc.final", "k_el")["absolute"]
    assert absolute == pytest.approx(-24 * 10 * math.exp(-2.4), rel=1e-5)
    over_time = result.over_time
    curve = over_time[(over_time.input == "k_el") & (over_time.output == "conc")]
    np.testing.assert_allclose(curve["S"], -k * curve["time"], rtol=1e-5, atol=1e-12)
    # parameters at 0 have no relative sensitivity: not varied, and said so
    assert dict(result.study.skipped)["k_in"].startswith("nominal value is 0")
    assert result.summary["points"] == 1 + 4 * 2


# --------------------------------------------------------------------------- global
def test_ishigami_sobol_indices_within_their_confidence_intervals(write_scenario, tmp_path):
    """Ishigami (a = 7, b = 0.1) on x in [-pi, pi]^3 run as a model through the sweep engine:
    S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437)."""
    a, b = 7.0, 0.1
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * math.pi**8 * (1 / 18 - 1 / 50)
    variance = v1 + v2 + v13
    first = [v1 / variance, v2 / variance, 0.0]
    total = [(v1 + v13) / variance, v2 / variance, v13 / variance]
    path = study_file(write_scenario, ISHIGAMI, "method: sobol\nsobol: {samples: 1024}\nseed: 2")
    result = quiet(path, tmp_path, workers=2)
    assert result.summary["points"] == 1024 * 5 and result.failed == 0
    for k, name in enumerate(["x1", "x2", "x3"]):
        found = row(result, "y.final", name, arm="only")
        assert abs(found["S1"] - first[k]) <= found["S1_conf"], (name, found["S1"], first[k])
        assert abs(found["ST"] - total[k]) <= found["ST_conf"], (name, found["ST"], total[k])
    # evidence: x1 has a DOI, x2 and x3 are 'assumed'; all three are influential (ST >= 0.05)
    flagged = set(result.flagged["input"])
    assert flagged == {"x2", "x3"}
    report = result.report()
    assert "x3 (range -3.14159-3.14159 dimensionless) drives only: y.final" in report
    assert "x1: ST = " in report and "[sourced]" in report


def test_morris_ranks_the_dominant_parameter_first(write_scenario, tmp_path):
    """C(24 h) = 10 e^{-24 k} + k_in/k (1 - e^{-24 k}): over k in [0.05, 0.2] and k_in in
    [0, 0.01] nM/h the elimination rate dominates; 'level' does not enter C at all."""
    path = study_file(
        write_scenario,
        PK,
        """
        method: morris
        parameters:
          k_el: {low: 0.05, high: 0.2}
          k_in: {low: 0, high: 0.01}
          level: null
        morris: {trajectories: 12}
        seed: 4
        """,
    )
    result = quiet(path, tmp_path, workers=1)
    final = result.indices[result.indices.metric == "conc.final"]
    ranked = final.sort_values("mu_star", ascending=False)["input"].tolist()
    assert ranked == ["k_el", "k_in", "level"]
    assert row(result, "conc.final", "level")["mu_star"] == 0.0
    assert row(result, "conc.final", "k_el")["mu_star_relative"] == 1.0
    # the flag: k_el is influential and its source is 'assumed'; level is not influential
    assert row(result, "conc.final", "k_el")["flag"] == "influential, source assumed"
    assert row(result, "conc.final", "level")["flag"] == ""
    assert result.summary["points"] == 12 * 4


def test_morris_drops_broken_trajectories_and_says_so(write_scenario, tmp_path):
    """A point whose value its path rejects fails; Morris keeps the whole trajectories."""
    path = study_file(
        write_scenario,
        PK,
        """
        method: morris
        parameters: [k_el]
        factors:
          t: {path: arms.a.doses.0.amount, range: {low: 1 nM, high: 20 nM}}
        morris: {trajectories: 6}
        """,
    )
    study = load_sensitivity(path)
    from secretome_sim.sensitivity_methods import compute_indices, sensitivity_design

    design = sensitivity_design(study)
    rows = len(design)
    table = pd.DataFrame(
        {
            "point": np.arange(rows),
            "arm": "a",
            "status": ["failed" if p == 4 else "ok" for p in range(rows)],
            "conc.final": design["k_el"].to_numpy() * 2 + design["t"].to_numpy(),
        }
    )
    indices, notes = compute_indices(study, design, table, ["conc.final"])
    assert notes == [
        "arm 'a', conc.final: 1 of 6 trajectories dropped (1 points failed); "
        "indices from the other 5"
    ]
    assert indices["mu_star"].notna().all()


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "parameters: [k_eI]",
            r":\d+:\d+: sensitivity.parameters\[0\]: 'k_eI' is not a settable "
            r"parameter of model 'one_compartment'; did you mean 'k_el'\?",
        ),
        (
            "method: sobol\nsobol: {samples: 100}",
            r"sensitivity.sobol.samples: 'samples' must be "
            r"a power of 2, got 100; try 64 or 128",
        ),
        (
            "method: morris\nfactors:\n  amount: {path: arms.a.doses.0.amount}",
            r"sensitivity.factors.amount: factor 'amount': morris samples a range; give range",
        ),
        (
            "factors:\n  amount: {path: arms.a.doses.0.amout}",
            r"sensitivity.factors.amount.path: .*did you mean 'amount'",
        ),
        (
            "method: morris\nparameters: {k_el: {low: 0.5 h, high: 1}}",
            r"sensitivity.parameters.k_el: expected a value in 1/hour, got 0.5 h",
        ),
        ("exclude: [k_zz]", r"sensitivity.exclude\[0\]: unknown parameter 'k_zz'"),
    ],
)
def test_bad_studies_get_located_errors(write_scenario, section, expected):
    path = study_file(write_scenario, PK, section)
    with pytest.raises(ScenarioError, match=expected) as info:
        load_sensitivity(path)
    assert str(path) in str(info.value)


def test_a_parameter_an_arm_sets_itself_is_skipped_or_refused(write_scenario):
    base = PK.replace("  a:\n", "  a:\n    parameters: {k_el: 0.2 1/h}\n")
    section = "method: local\nfactors:\n  amount: {path: arms.a.doses.0.amount}"
    default = load_sensitivity(study_file(write_scenario, base, section))
    assert "k_el" not in [i.name for i in default.inputs]
    assert "arm 'a' sets it itself" in dict(default.skipped)["k_el"]
    with pytest.raises(ScenarioError, match="'k_el': arm 'a' sets it itself"):
        load_sensitivity(study_file(write_scenario, base, "parameters: [k_el]"))


def test_a_study_file_names_its_scenario_and_method_can_be_overridden(write_scenario):
    write_scenario(PK, name="base.yaml")
    own = write_scenario(
        "scenario: base.yaml\nmethod: sobol\nparameters: [k_el]\n", name="study.yaml"
    )
    assert load_sensitivity(own).method == "sobol"
    local = load_sensitivity(own, method="local")
    assert local.method == "local" and [i.name for i in local.inputs] == ["k_el"]
    missing = write_scenario("scenario: nope.yaml\n", name="s2.yaml")
    with pytest.raises(ScenarioError, match=r"s2.yaml:1:1: scenario: scenario file nope.yaml"):
        load_sensitivity(missing)


# --------------------------------------------------------------------------- resume and CLI
def test_an_interrupted_study_resumes_without_redoing_points(write_scenario, tmp_path):
    path = study_file(write_scenario, PK, "method: morris\nparameters: [k_el, k_in]\nchunk_size: 3")
    whole = quiet(path, tmp_path, "whole", workers=1)
    part = quiet(path, tmp_path, "part", workers=1)
    chunks = sorted((tmp_path / "part" / "points" / "chunks").iterdir())
    for chunk in chunks[2:]:  # as if killed after the first two chunks
        chunk.unlink()
    resumed = quiet(path, tmp_path, "part", workers=1, resume=True)
    import json

    points = json.loads((tmp_path / "part" / "points" / "summary.json").read_text())
    assert points["resumed_points"] == 6  # the two kept chunks of 3 points were not rerun
    pd.testing.assert_frame_equal(whole.indices, resumed.indices)
    assert part.summary["points"] == resumed.summary["points"]


def test_cli_sensitivity_end_to_end(write_scenario, tmp_path, capsys):
    path = study_file(write_scenario, PK, "factors:\n  amount: {path: arms.a.doses.0.amount}")
    out = tmp_path / "cli"
    code = main(
        [
            "sensitivity",
            str(path),
            "--method",
            "local",
            "--out",
            str(out),
            "--workers",
            "2",
            "--progress",
            "none",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "# local sensitivity of" in printed
    assert "k_el: S = -2.4" in printed and "FLAG: influential, source assumed" in printed
    for name in ("indices.csv", "report.md", "summary.json", "over_time.parquet"):
        assert (out / name).exists(), name
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == [
        "local_conc.auc.png",
        "local_conc.final.png",
        "local_over_time_conc.png",
        "local_overview.png",
    ]
    table = pd.read_csv(out / "indices.csv")
    assert {"S", "S_error", "source", "evidence", "influential", "flag"} <= set(table.columns)
    assert main(["sensitivity", str(path), "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["sensitivity", str(path), "--out", str(out), "--progress", "none"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "section", "expected"),
    [
        ("", "arms: [a, a]", r"sensitivity.arms\[1\]: arm 'a' is listed twice"),
        ("", "factors:\n  k_el: {path: arms.a.doses.0.amount}", "has the name of a varied"),
        ("", "factors:\n  k: {path: parameters.k_el}", "are listed under 'parameters'"),
        ("", "factors:\n  n: {path: arms.b.doses.0.count}", "'n' is a count; sensitivities"),
        ("", "factors:\n  f: {path: arms.b.perturbations.0.fraction}", "a fraction at or near 1"),
        (
            "",
            "factors:\n  d: {path: [arms.a.doses.0.amount, arms.b.doses.0.amount]}",
            "its paths hold different values",
        ),
    ],
)
def test_inputs_that_would_give_wrong_numbers_are_refused(write_scenario, extra, section, expected):
    """Review findings: each of these silently produced wrong or NaN indices before."""
    base = PK + textwrap.indent(
        textwrap.dedent(
            """\
            b:
              doses:
                - {type: bolus, target: drug, amount: 20 nM, time: 0 h, every: 6 h, count: 2}
              perturbations:
                - {type: block, parameter: k_el, fraction: 1.0, time: 2 h}
            """
        ),
        "  ",
    )
    with pytest.raises(ScenarioError, match=expected):
        load_sensitivity(study_file(write_scenario, base + extra, section))


def test_parameters_inherited_through_extends_are_not_varied(write_scenario):
    base = PK.replace("  a:\n", "  a:\n    parameters: {k_el: 0.2 1/h}\n") + "  c: {extends: a}\n"
    study = load_sensitivity(
        study_file(write_scenario, base, "arms: [c]\nfactors:\n  d: {path: arms.a.doses.0.amount}")
    )
    assert "arm 'c' sets it itself" in dict(study.skipped)["k_el"]


def test_small_metrics_are_not_mistaken_for_constant(write_scenario, tmp_path):
    """A 1 pM level reported in M varies by orders of magnitude over k_el's range."""
    path = study_file(
        write_scenario,
        PK.replace("amount: 10 nM", "amount: 1 pM").replace(
            "outputs: [conc]", "outputs: [{name: conc, unit: M}]"
        ),
        "method: morris\nparameters: [k_el]\nmorris: {trajectories: 4}",
    )
    result = quiet(path, tmp_path, workers=1)
    assert result.notes == []
    assert row(result, "conc.final", "k_el")["mu_star"] > 0


def test_a_metric_that_jumps_is_marked_unreliable(write_scenario, tmp_path):
    """AUC on a 1 h output grid jumps when a redose at 6 h moves by +-0.012 h (review
    finding): the Richardson estimate exposes it and the report says so."""
    base = PK.replace("time: 0 h}", "time: 0 h, every: 6 h, count: 2}")
    path = study_file(
        write_scenario, base, "parameters: [k_el]\nfactors:\n  every: {path: arms.a.doses.0.every}"
    )
    result = quiet(path, tmp_path, workers=1)
    assert any("S unreliable" in note and "every" in note for note in result.notes)
    assert "conc.final" not in " ".join(n for n in result.notes if "k_el" in n)
