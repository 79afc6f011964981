"""Sweeps: designs, factor paths, backends, failures, resume, fits, CLI (issue 6).

Numbers are checked against closed forms of the one-compartment test model
(C(t) = A exp(-k t) after a bolus A) or against the scenario engine itself.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ONE_COMPARTMENT

from secretome_sim import ScenarioError
from secretome_sim.cli import main
from secretome_sim.loader import load_scenario
from secretome_sim.run import run_scenario
from secretome_sim.sweep import run_sweep
from secretome_sim.sweep_design import design_table
from secretome_sim.sweep_load import load_sweep
from secretome_sim.sweep_store import SweepFolderError

BASE = f"""\
model: {ONE_COMPARTMENT}
time: {{start: 0 h, end: 24 h, step: 1 h}}
outputs: [conc]
metrics: [final, auc]
arms:
  a:
    doses:
      - {{type: bolus, target: drug, amount: 10 nM, time: 0 h}}
  b:
    doses:
      - {{type: bolus, target: drug, amount: 5 nM, time: 0 h, every: 6 h, count: 2}}
"""


@pytest.fixture
def sweep_file(write_scenario):
    """A scenario with the given sweep section (YAML, dedented)."""

    def make(section: str, base: str = BASE) -> Path:
        body = textwrap.indent(textwrap.dedent(section).strip(), "  ")
        return write_scenario(base + "sweep:\n" + body + "\n")

    return make


def quiet(path, tmp_path, name="out", **options):
    return run_sweep(path, out=tmp_path / name, progress="none", plots=False, **options)


# --------------------------------------------------------------------------- designs
def test_grid_runs_every_combination_last_factor_fastest(sweep_file):
    path = sweep_file(
        """
        factors:
          amount: {path: "arms.a.doses[0].amount", values: [1, 2, 3]}
          k: {path: parameters.k_el, range: {low: 0.01, high: 1, count: 3, scale: log}}
        """
    )
    sweep = load_sweep(path)
    design = design_table(sweep.factors, sweep.spec)
    assert list(design.columns) == ["point", "amount", "k"]
    assert design["point"].tolist() == list(range(9))
    assert design["amount"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    np.testing.assert_allclose(design["k"].to_numpy()[:3], [0.01, 0.1, 1.0], rtol=1e-12)
    assert [f.unit for f in sweep.factors] == ["nM", "1/hour"]  # units of the scenario and model


def test_lhs_is_seeded_bounded_and_stratified(sweep_file):
    section = """
        design: lhs
        samples: 40
        seed: {seed}
        factors:
          amount:
            path: arms.a.doses[0].amount
            distribution: {{type: uniform, low: 2 nM, high: 6 nM}}
          k: {{path: parameters.k_el, distribution: {{type: loguniform, low: 0.01, high: 1}}}}
        """
    first = load_sweep(sweep_file(section.format(seed=7)))
    again = load_sweep(sweep_file(section.format(seed=7)))
    other = load_sweep(sweep_file(section.format(seed=8)))
    design = design_table(first.factors, first.spec)
    assert len(design) == 40
    assert design["amount"].between(2, 6).all() and design["k"].between(0.01, 1).all()
    # Latin hypercube: exactly one point in each of the 40 equal strata of every factor
    strata = np.floor((design["amount"] - 2) / 4 * 40).astype(int)
    assert sorted(strata) == list(range(40))
    log_strata = np.floor(np.log(design["k"] / 0.01) / np.log(100) * 40).astype(int)
    assert sorted(log_strata) == list(range(40))
    pd.testing.assert_frame_equal(design, design_table(again.factors, again.spec))
    assert not design.equals(design_table(other.factors, other.spec))


def test_sobol_needs_a_power_of_two_and_is_reproducible(sweep_file):
    section = """
        design: sobol
        samples: {n}
        seed: 3
        factors:
          k: {{path: parameters.k_el, range: {{low: 0.05, high: 0.5}}}}
          mean_amount:
            path: arms.a.doses[0].amount
            distribution: {{type: normal, mean: 10 nM, sd: 2 nM, low: 5 nM, high: 14 nM}}
        """
    sweep = load_sweep(sweep_file(section.format(n=64)))
    design = design_table(sweep.factors, sweep.spec)
    assert len(design) == 64
    assert design["k"].between(0.05, 0.5).all()
    assert design["mean_amount"].between(5, 14).all()
    assert abs(design["mean_amount"].mean() - 10) < 0.5  # symmetric truncation keeps the mean
    pd.testing.assert_frame_equal(design, design_table(sweep.factors, sweep.spec))
    with pytest.raises(ScenarioError, match=r"power of 2 .* got 48; try 32 or 64"):
        load_sweep(sweep_file(section.format(n=48)))


def test_integer_and_variant_factors(write_scenario, tmp_path):
    text = BASE.replace(
        "outputs: [conc]",
        "outputs: [conc]\nproduct:\n  name: p\n  factors: {drug: {concentration: 1 nM}}\n"
        "  variants: {strong: {scale: {drug: 3}}}",
    ) + textwrap.dedent(
        """\
          c:
            doses:
              - {type: bolus, target: product, amount: 2, time: 0 h, every: 4 h, count: 1}
        sweep:
          factors:
            n: {path: "arms.c.doses[0].count", values: [1, 3]}
            v: {path: "arms.c.doses[0].variant", values: [strong]}
          arms: [c]
        """
    )
    result = quiet(write_scenario(text), tmp_path, workers=1)
    table = result.table
    assert table["n"].tolist() == [1, 3] and table["v"].tolist() == ["strong", "strong"]
    k, t = 0.1, 24.0
    expected = [6 * sum(math.exp(-k * (t - 4 * i)) for i in range(n)) for n in (1, 3)]
    np.testing.assert_allclose(table["conc.final"], expected, rtol=1e-6)


# --------------------------------------------------------------------------- correctness
def test_every_point_matches_the_closed_form(sweep_file, tmp_path):
    path = sweep_file(
        """
        factors:
          amount: {path: "arms.a.doses[0].amount", values: [1 nM, 4 nM, 8000 pM]}
          k: {path: parameters.k_el, values: [0.05, 0.2]}
        arms: [a]
        """
    )
    table = quiet(path, tmp_path, workers=1).table
    np.testing.assert_allclose(table["amount"], [1, 1, 4, 4, 8, 8], rtol=1e-12)  # pM -> nM
    expected = table["amount"] * np.exp(-table["k"] * 24)
    np.testing.assert_allclose(table["conc.final"], expected, rtol=1e-6)
    hours = np.arange(25.0)  # AUC is the trapezoid rule on the output grid
    pairs = zip(table["amount"], table["k"], strict=True)
    auc = [np.trapezoid(a * np.exp(-k * hours), hours) for a, k in pairs]
    np.testing.assert_allclose(table["conc.auc"], auc, rtol=1e-6)


def test_a_point_equals_running_the_changed_scenario(sweep_file, tmp_path, write_scenario):
    path = sweep_file(
        """
        factors:
          every: {path: "arms.b.doses[0].every", values: [3 h, 9 h]}
          k: {path: [parameters.k_el], values: [0.3]}
        """
    )
    table = quiet(path, tmp_path, workers=1).table
    changed = write_scenario(BASE.replace("every: 6 h", "every: 9 h"))
    from secretome_sim.loader import with_parameters

    reference = run_scenario(with_parameters(load_scenario(changed), {"k_el": 0.3}))
    row = table[(table["every"] == 9) & (table["arm"] == "b")].iloc[0]
    assert row["conc.final"] == pytest.approx(reference.metric("b", "conc", "final"), rel=1e-9)
    assert row["conc.auc"] == pytest.approx(reference.metric("b", "conc", "auc"), rel=1e-9)


PRODUCT_BASE = f"""\
model: {ONE_COMPARTMENT}
time: {{start: 0 h, end: 24 h, step: 1 h}}
outputs: [conc]
metrics: [final, auc]
product:
  name: p
  factors: {{drug: {{concentration: 1 nM}}}}
  variants: {{strong: {{scale: {{drug: 3}}}}, weak: {{scale: {{drug: 0.5}}}}}}
arms:
  a:
    doses:
      - {{type: bolus, target: product, amount: 2, time: 0 h, variant: strong}}
      - {{type: depot, target: drug, amount: 10 nM, time: 2 h, half_life: 3 h}}
    perturbations:
      - {{type: block, parameter: k_el, fraction: 0.5, time: 4 h, until: 10 h}}
"""


@pytest.mark.parametrize(
    ("path", "value", "old", "new"),
    [
        (
            "product.factors.drug.concentration",
            "2 nM",
            "concentration: 1 nM",
            "concentration: 2 nM",
        ),
        ("product.variants.strong.scale.drug", "5", "drug: 3", "drug: 5"),
        ("arms.a.doses.0.variant", "weak", "variant: strong", "variant: weak"),
        ("arms.a.doses.1.half_life", "7 h", "half_life: 3 h", "half_life: 7 h"),
        ("arms.a.perturbations.0.fraction", "0.8", "fraction: 0.5", "fraction: 0.8"),
        ("arms.a.perturbations.0.until", "16 h", "until: 10 h", "until: 16 h"),
    ],
)
def test_every_path_kind_equals_running_the_changed_scenario(
    write_scenario, tmp_path, path, value, old, new
):
    """A factor applied in memory (no YAML, no re-validation) gives exactly what the scenario
    file edited by hand gives, for product, variant, depot and perturbation paths."""
    section = f"sweep:\n  factors:\n    f: {{path: {path}, values: [{value}]}}\n"
    swept = quiet(write_scenario(PRODUCT_BASE + section), tmp_path, workers=1).table
    assert PRODUCT_BASE.count(old) == 1
    reference = run_scenario(load_scenario(write_scenario(PRODUCT_BASE.replace(old, new))))
    unchanged = run_scenario(load_scenario(write_scenario(PRODUCT_BASE)))
    for metric in ("final", "auc"):
        expected = reference.metric("a", "conc", metric)
        assert swept[f"conc.{metric}"].iloc[0] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert expected != pytest.approx(unchanged.metric("a", "conc", metric), rel=1e-6)


# --------------------------------------------------------------------------- located errors
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("arms.x.doses[0].amount", r"no arm 'x' \(arms: a, b\)"),
        ("arms.a.doses[3].amount", r"arm 'a' has 1 own doses \(indexes 0 to 0\)"),
        ("arms.a.doses[0].amout", r"no sweepable field 'amout' .*did you mean 'amount'"),
        ("parameters.k_eL", r"'k_eL' is not a settable parameter .*did you mean 'k_el'"),
        ("arm.a.doses[0].amount", r"starts with parameters, arms or product.*did you mean 'arms'"),
        ("arms.a.doses.amount", r"expected an index after doses"),
    ],
)
def test_unknown_factor_paths_are_located(sweep_file, path, expected):
    file = sweep_file(f"factors:\n  f: {{path: '{path}', values: [1]}}")
    with pytest.raises(ScenarioError, match=expected) as info:
        load_sweep(file)
    assert f"{file}:14:" in str(info.value)  # the line of the factor's path in the file
    assert "sweep.factors.f.path" in str(info.value)


def test_values_that_make_the_scenario_invalid_are_located(sweep_file):
    file = sweep_file(
        """
        factors:
          t: {path: "arms.a.doses[0].time", values: [1 h, 30 h]}
          amount: {path: "arms.a.doses[0].amount", range: {low: 0 nM, high: 2 nM, count: 3}}
        """
    )
    with pytest.raises(ScenarioError) as info:
        load_sweep(file)
    text = str(info.value)
    assert "sweep.factors.t.values[1]: the value 30 h makes the scenario invalid" in text
    assert "dose time 30 hour is outside the simulated span [0, 24] hour" in text
    assert "sweep.factors.amount.range.low: factor 'amount' = 0 nM" in text and "> 0" in text


@pytest.mark.parametrize(
    ("section", "line", "key", "message"),
    [
        (
            "factors:\n  k: {path: parameters.k_el, distribution: {type: uniform, low: 0.1, "
            "high: 1}}",
            14,
            "sweep.factors.k.distribution",
            "has a distribution, which needs design lhs or sobol",
        ),
        (
            "design: lhs\nsamples: 8\nseed: 1\nfactors:\n  k:\n    path: parameters.k_el\n"
            "    range: {low: 0.1, high: 1, count: 3}",
            19,
            "sweep.factors.k.range.count",
            "'count' applies to grid designs",
        ),
        (
            "design: sobol\nsamples: 12\nseed: 1\nfactors:\n  k: {path: parameters.k_el, "
            "range: {low: 0.1, high: 1}}",
            14,
            "sweep.samples",
            "power of 2 .* got 12; try 8 or 16",
        ),
        (
            "factors:\n  status: {path: parameters.k_el, values: [0.1]}",
            14,
            "sweep.factors.status",
            "'status' is reserved",
        ),
    ],
)
def test_design_errors_point_at_the_key_they_are_about(sweep_file, section, line, key, message):
    file = sweep_file(section)
    with pytest.raises(ScenarioError, match=message) as info:
        load_sweep(file)
    assert f"{file}:{line}:" in str(info.value) and f" {key}: " in str(info.value)


def test_a_sweep_files_errors_say_sweep_and_check_its_metrics(write_scenario):
    """A time_above threshold given only in the sweep is checked against the output's unit."""
    write_scenario(BASE, name="base.yaml")
    own = write_scenario(
        "scenario: base.yaml\nfactors:\n  k: {path: parameters.k_el, values: [0.1]}\n"
        "metrics:\n  - final\n  - {type: time_above, threshold: 3 h}\n",
        name="my_sweep.yaml",
    )
    with pytest.raises(ScenarioError) as info:
        load_sweep(own)
    text = str(info.value)
    assert text.startswith("1 problem in sweep:")
    assert "my_sweep.yaml:6:" in text and "metrics[1].threshold: for output 'conc'" in text
    assert "expected a quantity convertible to nM" in text and "got 3 h" in text


def test_unquoted_brackets_in_braces_get_a_hint(sweep_file):
    with pytest.raises(ScenarioError, match=r"must be quoted, e.g. path: 'arms.a.doses\[0\]"):
        load_sweep(sweep_file("factors:\n  f: {path: arms.a.doses[0].amount, values: [1]}"))


def test_sweep_file_names_its_scenario(write_scenario, tmp_path):
    write_scenario(BASE, name="base.yaml")
    own = write_scenario(
        "scenario: base.yaml\nfactors:\n  k: {path: parameters.k_el, values: [0.1]}\n"
        "arms: [a, c]\n",
        name="my_sweep.yaml",
    )
    with pytest.raises(ScenarioError, match=r"my_sweep.yaml:4:\d+: arms\[1\]: no arm 'c'"):
        load_sweep(own)
    twice = write_scenario(
        "scenario: base.yaml\nfactors:\n  k: {path: parameters.k_el, values: [0.1]}\n"
        "arms: [a, a]\n",
        name="twice.yaml",
    )
    with pytest.raises(ScenarioError, match=r"arms\[1\]: arm 'a' is listed twice"):
        load_sweep(twice)
    missing = write_scenario(
        "scenario: nope.yaml\nfactors:\n  k: {path: parameters.k_el, values: [0.1]}\n",
        name="s2.yaml",
    )
    with pytest.raises(ScenarioError, match=r"s2.yaml:1:1: scenario: scenario file nope.yaml not"):
        load_sweep(missing)


LEVEL_DOSE = "{type: set_level, target: level, value: 1, time: 1 h}"


def test_percent_values_are_converted_not_read_as_plain_numbers(sweep_file, tmp_path):
    """'50 %' of a dimensionless level is 0.5, while a plain 0.5 is in the factor's unit."""
    path = sweep_file(
        """
        factors:
          level: {path: arms.a.doses.1.value, values: [50 %, 0.25]}
        arms: [a]
        """,
        base=BASE.replace(
            "amount: 10 nM, time: 0 h}",
            "amount: 10 nM, time: 0 h}\n      - " + LEVEL_DOSE,
        ),
    )
    sweep = load_sweep(path)
    assert design_table(sweep.factors, sweep.spec)["level"].tolist() == [0.5, 0.25]


def test_an_unexpected_error_at_one_point_is_recorded(write_scenario, tmp_path):
    """An inhibitor at 1e200 x its IC50 with hill 2 overflows (OverflowError, not a solver
    error): that point is failed, the others run."""
    path = write_scenario(
        BASE
        + textwrap.dedent(
            """              c:
                perturbations:
                  - {type: inhibitor, parameter: k_el, concentration: 1 nM, ic50: 1 nM, hill: 2}
            sweep:
              factors:
                c: {path: arms.c.perturbations.0.concentration, values: [1 nM, 1.0e200 nM, 3 nM]}
              arms: [c]
            """
        )
    )
    table = quiet(path, tmp_path, workers=1).table
    assert table["status"].tolist() == ["ok", "failed", "ok"]
    assert table["message"][1].startswith("OverflowError")


# --------------------------------------------------------------------------- backends
def test_serial_processes_and_dask_give_identical_tables(sweep_file, tmp_path):
    pytest.importorskip("distributed")
    path = sweep_file(
        """
        design: lhs
        samples: 24
        seed: 11
        chunk_size: 4
        factors:
          amount:
            path: arms.a.doses[0].amount
            distribution: {type: loguniform, low: 0.1 nM, high: 100 nM}
          k: {path: parameters.k_el, range: {low: 0.01, high: 1, scale: log}}
        """
    )
    serial = quiet(path, tmp_path, "serial", workers=1).table
    processes = quiet(path, tmp_path, "processes", workers=2).table
    dask = quiet(path, tmp_path, "dask", workers=2, scheduler="local").table
    assert len(serial) == 48 and (serial["status"] == "ok").all()
    pd.testing.assert_frame_equal(serial, processes, check_exact=True)
    pd.testing.assert_frame_equal(serial, dask, check_exact=True)


def test_process_pools_are_replaced_and_give_the_same_table(sweep_file, tmp_path, monkeypatch):
    """Workers are recycled every POINTS_PER_WORKER_POOL points (libRoadRunner leaks a little
    per simulate call); the numbers do not change."""
    from secretome_sim import sweep_executors

    pools = []
    original = sweep_executors.ProcessPoolExecutor

    def counted(*args, **kwargs):
        pools.append(1)
        return original(*args, **kwargs)

    path = sweep_file(
        "chunk_size: 2\nfactors:\n  k: {path: parameters.k_el, range: {low: 0.01, high: 1, "
        "count: 10}}"
    )
    serial = quiet(path, tmp_path, "serial", workers=1).table
    monkeypatch.setattr(sweep_executors, "POINTS_PER_WORKER_POOL", 2)
    monkeypatch.setattr(sweep_executors, "ProcessPoolExecutor", counted)
    recycled = quiet(path, tmp_path, "recycled", workers=2).table
    assert len(pools) == 3  # 10 points, 4 per pool of 2 workers
    pd.testing.assert_frame_equal(serial, recycled, check_exact=True)


# --------------------------------------------------------------------------- failures
OSCILLATOR = """\
model oscillator()
  species x = 1, y = 0
  Jx: -> x; w * y
  Jy: -> y; -w * x
  w = 1
end
"""


def test_a_failing_point_is_recorded_and_the_rest_finish(write_scenario, tmp_path):
    model = tmp_path / "oscillator.ant"
    model.write_text(OSCILLATOR, encoding="utf-8")
    path = write_scenario(
        f"""\
        model: {{file: {model}, time_unit: hour}}
        time: {{end: 10 h, step: 1 h}}
        outputs: [x]
        solver: {{max_steps: 100}}
        arms: {{only: {{}}}}
        sweep:
          factors:
            w: {{path: parameters.w, values: [1, 1.0e5, 2]}}
        """
    )
    result = quiet(path, tmp_path, workers=1)
    table = result.table
    assert table["status"].tolist() == ["ok", "failed", "ok"]
    assert "solver failed" in table["message"][1]
    assert np.isnan(table["x.final"][1])
    assert table["x.final"][0] == pytest.approx(math.cos(10), abs=1e-5)  # x = cos(w t)
    assert table["x.final"][2] == pytest.approx(math.cos(20), abs=1e-5)
    assert result.summary["rows_failed"] == 1
    assert result.summary["failure_reasons"][0]["count"] == 1


# --------------------------------------------------------------------------- resume
GRID_12 = """
factors:
  amount: {path: arms.a.doses.0.amount, values: [1, 2, 3, 4, 5, 6]}  # no quotes needed
  k: {path: parameters.k_el, values: [0.1, 0.2]}
chunk_size: 2
"""


def test_resume_after_an_interruption_runs_only_unfinished_chunks(
    sweep_file, tmp_path, monkeypatch
):
    import secretome_sim.sweep_executors as executors
    from secretome_sim.sweep_store import SweepStore

    path = sweep_file(GRID_12)
    complete = quiet(path, tmp_path, "reference", workers=1).table
    evaluated: list[int] = []
    original_task = executors.run_chunk_task

    def counting(job, chunk, points, values):
        evaluated.extend(int(p) for p in points)
        return original_task(job, chunk, points, values)

    monkeypatch.setattr(executors, "run_chunk_task", counting)
    original_write = SweepStore.write_chunk
    written = []

    def interrupt_after_three(self, chunk, table, trajectories):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(chunk)
        original_write(self, chunk, table, trajectories)

    monkeypatch.setattr(SweepStore, "write_chunk", interrupt_after_three)
    with pytest.raises(KeyboardInterrupt):
        quiet(path, tmp_path, workers=1)
    monkeypatch.setattr(SweepStore, "write_chunk", original_write)
    assert sorted(os.listdir(tmp_path / "out" / "chunks")) == [
        "chunk-000000.parquet",
        "chunk-000001.parquet",
        "chunk-000002.parquet",
    ]
    evaluated.clear()
    resumed = quiet(path, tmp_path, workers=1, resume=True)
    assert sorted(evaluated) == list(range(6, 12))  # finished points are not run again
    assert resumed.summary["resumed_points"] == 6
    pd.testing.assert_frame_equal(resumed.table, complete)  # none lost, none twice
    assert not [p for p in (tmp_path / "out").rglob("*") if ".partial" in p.name]


def test_a_killed_sweep_resumes_from_the_command_line(sweep_file, tmp_path):
    path = sweep_file(GRID_12.replace("chunk_size: 2", "chunk_size: 1"))
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "secretome_sim.cli", "sweep", str(path), "--out", str(out)]
    process = subprocess.Popen(
        [*command, "--workers", "1", "--progress", "none", "--no-plot"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        chunks = out / "chunks"
        if chunks.exists() and len(list(chunks.glob("chunk-*.parquet"))) >= 3:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    survived = len(list((out / "chunks").glob("chunk-*.parquet")))
    assert 3 <= survived < 12  # killed in the middle
    for chunk in (out / "chunks").glob("chunk-*.parquet"):
        assert len(pd.read_parquet(chunk)) == 2  # every file that exists is complete
    assert main(["sweep", str(path), "--out", str(out), "--resume", "--progress", "none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_points"] == survived  # finished chunks were not run again
    table = pd.read_parquet(out / "results.parquet")
    assert table["point"].tolist() == sorted(list(range(12)) * 2)
    expected = table["amount"] * np.exp(-table["k"] * 24)
    np.testing.assert_allclose(
        table.loc[table.arm == "a", "conc.final"], expected[table.arm == "a"], rtol=1e-6
    )


def test_resume_refuses_a_folder_of_another_sweep(sweep_file, tmp_path):
    path = sweep_file(GRID_12)
    quiet(path, tmp_path, workers=1)
    with pytest.raises(SweepFolderError, match="pass --resume to continue"):
        quiet(path, tmp_path, workers=1)
    changed = sweep_file(GRID_12.replace("0.2]", "0.3]"))
    with pytest.raises(SweepFolderError, match="holds a different sweep"):
        quiet(changed, tmp_path, workers=1, resume=True)


def test_resume_refuses_a_changed_model_metadata(write_scenario, tmp_path):
    """A molecular weight changed between start and resume would mix two models' numbers."""
    import shutil

    models = tmp_path / "models"
    shutil.copytree(ONE_COMPARTMENT.parent, models)
    text = BASE.replace(str(ONE_COMPARTMENT), str(models / "one_compartment.yaml"))
    path = write_scenario(
        text + "sweep:\n  factors:\n    k: {path: parameters.k_el, values: [0.1]}\n"
    )
    quiet(path, tmp_path, workers=1)
    meta = models / "one_compartment.yaml"
    meta.write_text(meta.read_text().replace("500 g/mol", "250 g/mol"))
    with pytest.raises(SweepFolderError, match="holds a different sweep"):
        quiet(path, tmp_path, workers=1, resume=True)


# --------------------------------------------------------------------------- outputs
HILL_MODEL = """\
model hill()
  species R = 0
  R' = 0
  E := e0 + emax * D^n / (ec50^n + D^n)
  D = 1; e0 = 0.2; emax = 3; ec50 = 2.5; n = 1.4
end
"""


def test_dose_response_fit_recovers_a_known_ec50(write_scenario, tmp_path):
    model = tmp_path / "hill.ant"
    model.write_text(HILL_MODEL, encoding="utf-8")
    path = write_scenario(
        f"""\
        model: {{file: {model}, time_unit: hour}}
        time: {{end: 1 h, points: 3}}
        outputs: [E]
        metrics: [final]
        arms: {{only: {{}}}}
        sweep:
          factors:
            dose: {{path: parameters.D, range: {{low: 0.01, high: 1000, count: 11, scale: log}}}}
          dose_response: {{factor: dose, percent: [50, 80]}}
        """
    )
    result = run_sweep(path, out=tmp_path / "fit", workers=1, progress="none")
    fit = result.fits.iloc[0]
    assert fit["ec50"] == pytest.approx(2.5, rel=0.05)  # synthetic Hill: EC50 2.5
    assert fit["hill"] == pytest.approx(1.4, rel=0.05)
    assert fit["emax"] == pytest.approx(3.0, rel=0.05)
    assert fit["ed80"] == pytest.approx(2.5 * 4 ** (1 / 1.4), rel=0.05)
    assert (tmp_path / "fit" / "fits.csv").exists()
    assert (tmp_path / "fit" / "plots" / "response_E.png").exists()


def test_consolidated_results_are_one_pass_and_compact(sweep_file, tmp_path, monkeypatch):
    """results.parquet and results.csv hold the same rows in point order; each chunk file is
    read once, and row groups are bigger than chunks."""
    import pyarrow.parquet as pq

    from secretome_sim import sweep_store

    monkeypatch.setattr(sweep_store, "ROW_GROUP", 10)
    reads = []
    original = pd.read_parquet

    def counting(path, *args, **kwargs):
        reads.append(Path(path).name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(sweep_store.pd, "read_parquet", counting)
    path = sweep_file(
        "factors:\n  k: {path: parameters.k_el, range: {low: 0.01, high: 1, count: 13}}"
    )
    result = quiet(path, tmp_path, workers=1, chunk_size=2)
    chunk_reads = [name for name in reads if name.startswith("chunk-")]
    assert len(chunk_reads) == 7 == len(set(chunk_reads))  # 13 points in chunks of 2
    monkeypatch.undo()
    parquet = pq.ParquetFile(tmp_path / "out" / "results.parquet")
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [
        12,
        12,
        2,
    ]
    table = result.table
    assert table["point"].tolist() == [p for p in range(13) for _ in range(2)]
    csv = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False)
    assert csv["status"].tolist() == table["status"].tolist()
    np.testing.assert_array_equal(csv["conc.final"], table["conc.final"])  # repr round-trips
    assert result.summary["rows_ok"] == 26


def test_saved_trajectories_and_uncertainty_bands(sweep_file, tmp_path):
    path = sweep_file(
        """
        design: lhs
        samples: 30
        seed: 5
        save_trajectories: true
        factors:
          k: {path: parameters.k_el, distribution: {type: uniform, low: 0.05, high: 0.5}}
        """
    )
    result = run_sweep(path, out=tmp_path / "bands", workers=1, progress="none")
    data = result.trajectories()
    assert dict(data.sizes) == {"point": 30, "arm": 2, "time": 25, "output": 1}
    k = result.table.drop_duplicates("point")["k"].to_numpy()
    a = data["value"].sel(arm="a", output="conc").to_numpy()
    np.testing.assert_allclose(a, 10 * np.exp(-np.outer(k, np.arange(25.0))), rtol=1e-6)
    assert (tmp_path / "bands" / "plots" / "bands.png").exists()
    from secretome_sim.sweep_plots import band_quantiles

    _, bands = band_quantiles(tmp_path / "bands")
    np.testing.assert_allclose(bands[1, 0, :, 0], np.median(a, axis=0), rtol=1e-12)


# --------------------------------------------------------------------------- CLI
def test_cli_sweep_end_to_end(sweep_file, tmp_path, capsys):
    path = sweep_file(
        """
        factors:
          amount:
            path: arms.a.doses[0].amount
            range: {low: 0.1 nM, high: 100 nM, count: 7, scale: log}
        """
    )
    out = tmp_path / "cli"
    code = main(["sweep", str(path), "--out", str(out), "--workers", "2", "--progress", "none"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "7 points x 2 arms, 14 rows ok, 0 failed" in printed
    assert "dose-response fits against 'amount' (automatic" in printed
    for name in ("sweep.json", "design.csv", "results.csv", "results.parquet", "summary.json"):
        assert (out / name).exists(), name
    csv = pd.read_csv(out / "results.csv")
    assert list(csv.columns[:5]) == ["point", "amount", "arm", "status", "message"]
    assert len(csv) == 14
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["response_conc.png"]
    assert main(["sweep", str(path), "--resume", "--progress", "none"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "nope.yaml")]) == 2
