"""Smoke test over every shipped model and scenario: metadata agrees with equations, every
parameter is traceable, every scenario validates and runs, and an undosed model stays put."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import notes_module

from secretome_sim import load_scenario, run_scenario
from secretome_sim.models import list_models, load_model

ROOT = Path(__file__).resolve().parents[1]
MODEL_IDS = sorted(p.stem for p in (ROOT / "models").glob("*.yaml"))
ALL_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
# sweep files name a scenario ("scenario: x.yaml") instead of a model (as load_sweep decides)
STUDIES = [p for p in ALL_FILES if "model" not in (yaml.safe_load(p.read_text("utf-8")) or {})]
SWEEPS = [p for p in STUDIES if p.stem.startswith("sweep_")]
SENSITIVITY = [p for p in STUDIES if p.stem.startswith("sensitivity_")]
SCENARIOS = [p for p in ALL_FILES if p not in STUDIES]
# run in the suite (seconds each); the others are loaded and checked only (cardio: ~1 min)
QUICK_STUDIES = {"sensitivity_kidney_local", "sensitivity_delivery_morris"}


def _calibrated(model_id: str) -> list[str]:
    model = load_model(model_id, search=[ROOT / "models"])
    return [name for name, meta in model.parameters.items() if meta and meta.calibrated]


CALIBRATED = [(model_id, name) for model_id in MODEL_IDS for name in _calibrated(model_id)]


def test_models_are_registered():
    """Every models/<id>.yaml is found by the registry."""
    assert set(MODEL_IDS) <= set(list_models([ROOT / "models"]))
    assert MODEL_IDS, "no shipped models"


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_metadata_agrees_with_equations(model_id):
    """Values in the YAML equal those in the Antimony file; every parameter is documented."""
    model = load_model(model_id, search=[ROOT / "models"])
    assert model.check() == []
    assert all(meta is not None for meta in model.parameters.values())


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_parameter_has_unit_source_and_range(model_id):
    """Traceable biology: a unit, a DOI/citation or 'assumed', and a plausible range."""
    model = load_model(model_id, search=[ROOT / "models"])
    for name, meta in model.parameters.items():
        assert meta.unit.strip(), name
        assert meta.assumed or "doi" in meta.source.lower() or "seed" in meta.source.lower(), name
        low, high = meta.range
        assert low <= meta.value <= high, name


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_undosed_model_stays_at_rest(model_id, write_scenario):
    """With no inputs the model sits at its steady state: flat for 7 days, nothing negative."""
    path = write_scenario(
        f"model: {ROOT / 'models' / (model_id + '.yaml')}\n"
        "time: {end: 7 day, step: 6 h}\narms: {none: {}}\n"
    )
    result = run_scenario(path)
    for output, rows in result.trajectories.groupby("output"):
        values = rows["value"].to_numpy()
        assert np.all(values >= -1e-12), output
        np.testing.assert_allclose(values, values[0], rtol=1e-6, atol=1e-12, err_msg=output)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_validate_and_run(path):
    """Every scenario in scenarios/ loads and runs to completion with finite values."""
    scenario = load_scenario(path)
    result = run_scenario(scenario)
    assert result.completed
    assert np.isfinite(result.trajectories["value"]).all()
    assert set(result.arms) == set(scenario.arms)


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweeps_run_without_failures(path, tmp_path):
    """Every example sweep in scenarios/ loads and runs on 2 workers with no failed point."""
    from secretome_sim.sweep import run_sweep

    result = run_sweep(path, out=tmp_path / "sweep", workers=2, progress="none", plots=False)
    table = result.table
    assert result.summary["rows_failed"] == 0
    assert len(table) == result.summary["points"] * len(result.sweep.arms)
    metrics = [c for c in table.columns if "." in c]
    assert np.isfinite(table[metrics].to_numpy()).all()


def test_study_files_are_named_by_kind():
    kinds = ("sweep_", "sensitivity_", "optimize_")
    assert all(p.stem.startswith(kinds) for p in STUDIES), [p.name for p in STUDIES]


@pytest.mark.parametrize("path", SENSITIVITY, ids=[p.stem for p in SENSITIVITY])
def test_shipped_sensitivity_studies(path, tmp_path):
    """Every example study loads (paths, ranges, arms checked); the quick ones run cleanly and
    find at least one influential input per metric."""
    from secretome_sim.sensitivity import run_sensitivity
    from secretome_sim.sensitivity_load import load_sensitivity

    study = load_sensitivity(path)
    assert study.inputs
    if path.stem not in QUICK_STUDIES:
        return
    result = run_sensitivity(study, out=tmp_path / "s", workers=2, progress="none", plots=False)
    assert result.failed == 0 and result.notes == []
    strongest = result.indices.groupby(["arm", "metric"])["influential"].any()
    assert strongest.all(), strongest[~strongest]


def test_flagship_directions():
    """Delivery predictions the flagship illustrates (sources in the scenario and model docs):
    a hydrogel depot (Lee 2004 release kinetics) trades peak for duration. Its VEGFR2 occupancy
    peak is lower than after the same dose as a bolus, but at day 7 occupancy and exosome cargo
    are still present while the bolus has long been cleared (VEGF half-life ~34 min, Eppler
    2002). The hypoxic product (more VEGF, seed 004 section 3.2) raises occupancy further."""
    result = run_scenario(ROOT / "scenarios" / "delivery_hydrogel_vs_bolus.yaml")
    occupancy = "vegfr2_occupancy"
    assert result.metric("hydrogel", occupancy, "max") < result.metric("bolus", occupancy, "max")
    assert result.metric("bolus", occupancy, "final") < 1e-12
    assert result.metric("hydrogel", occupancy, "final") > 1e-6
    gel_cargo = result.metric("hydrogel", "exosome_cargo", "final")
    assert gel_cargo > 3 * result.metric("bolus", "exosome_cargo", "final")
    assert result.metric("hydrogel_hypoxic", occupancy, "auc") > 2 * result.metric(
        "hydrogel", occupancy, "auc"
    )
    assert result.metric("untreated", "repair_signal", "max") == 0.0


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_model_doc_lists_every_parameter_with_its_value(model_id):
    """Docs move with the code: models/<id>.md has a table row per parameter whose value
    equals the metadata's (rows look like '| name | value | unit | ...', name may be quoted)."""
    doc = (ROOT / "models" / f"{model_id}.md").read_text(encoding="utf-8")
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3:
            rows.setdefault(cells[0], cells[1])
    model = load_model(model_id, search=[ROOT / "models"])
    for name, meta in model.parameters.items():
        assert name in rows, f"{model_id}.md has no table row for parameter '{name}'"
        assert float(rows[name]) == pytest.approx(meta.value, rel=1e-9), name


@pytest.mark.parametrize("model_id", [m for m in MODEL_IDS if _calibrated(m)])
def test_every_calibrated_parameter_has_a_checkable_claim(model_id):
    """A parameter recorded as calibrated names a claim this repo can check: the claims are code
    in models/notes/<id>_calibration.py (CLAIMS), one per calibrated parameter."""
    assert set(_calibrated(model_id)) == set(notes_module(f"{model_id}_calibration").CLAIMS)


@pytest.mark.parametrize(("model_id", "parameter"), CALIBRATED, ids=[p for _, p in CALIBRATED])
def test_calibrated_claim_holds_across_recorded_interval(model_id, parameter):
    """The recorded holds_for interval is honest: the claim holds at the value and at both
    recorded ends (holds_for rounds them inwards)."""
    meta = load_model(model_id, search=[ROOT / "models"]).parameters[parameter]
    claim = notes_module(f"{model_id}_calibration").CLAIMS[parameter]
    for value in (meta.calibrated.holds_for[0], meta.value, meta.calibrated.holds_for[1]):
        assert claim({parameter: value}), (parameter, value)
