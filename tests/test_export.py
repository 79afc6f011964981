"""Export (issue 8): every arm of every shipped scenario, as SBML + SED-ML, reproduced by COPASI.

COPASI (through basico, ``copasi-basico`` on PyPI; pinned in pyproject's test extra) is an
independent simulator: its own SBML reader, its own event handling, LSODA instead of CVODE.
The test reads the SED-ML we write (time course, data generator targets and scale factors),
drives COPASI with it, and compares every output at every time with the engine's result:
|COPASI - engine| <= 1e-4 |engine| + floor, the floor being 1e-9 of the output's largest value
in that arm plus 1e-15 (values that have decayed to integrator dust). Both simulators run
at rtol 1e-10 and atol 1e-14: at the scenarios' default rtol 1e-8 the engine's own error in
a value that has decayed ten-thousandfold reaches 1e-3, which would be the integrators'
disagreement, not the export's.
"""

from __future__ import annotations

import locale
import math
import re
import zipfile

import numpy as np
import pytest
from conftest import ONE_COMPARTMENT
from test_shipped import ROOT, SCENARIOS

from secretome_sim import ScenarioError, load_scenario, run_scenario
from secretome_sim.export import ExportError, build_export, export_scenario
from secretome_sim.run import output_grid
from secretome_sim.scenario import Solver

_CTYPE = locale.setlocale(locale.LC_CTYPE)
basico = pytest.importorskip("basico")
COPASI = pytest.importorskip("COPASI")
# COPASI sets the C locale when it loads, which makes Python's default text encoding ASCII
# for every later test in this process; give the character-type locale back.
locale.setlocale(locale.LC_CTYPE, _CTYPE)
libsedml = pytest.importorskip("libsedml")
libsbml = pytest.importorskip("libsbml")
libcombine = pytest.importorskip("libcombine")

TIGHT = Solver(rtol=1e-10, atol=1e-14, max_steps=1_000_000)
RELATIVE = 1e-4
FLOOR = 1e-9  # of the output's largest value in the arm
# in the output's reported unit, below any meaningful level: an output that never leaves zero
# (VEGFR2 activity in an arm without VEGF) is 1e-27 in one simulator and 0 in the other
ABSOLUTE = 1e-15


def read_sedml(text: str) -> dict:
    """What COPASI needs from our SED-ML: the time course and, per arm, each output's SBML id
    and scale factor (from the data generator's math)."""
    document = libsedml.readSedMLFromString(text)
    assert document.getErrorLog().getNumFailsWithSeverity(libsedml.LIBSEDML_SEV_ERROR) == 0
    simulation = document.getSimulation(0)
    tasks = {t.getId(): t for t in document.getListOfTasks()}
    models = {m.getId(): m for m in document.getListOfModels()}
    arms: dict[str, dict[str, tuple[str, float]]] = {}
    for generator in document.getListOfDataGenerators():
        variable = generator.getVariable(0)
        if variable.isSetSymbol():
            continue
        arm = models[tasks[variable.getTaskReference()].getModelReference()].getName()
        sid = re.search(r"@id='([^']+)'", variable.getTarget()).group(1)
        formula = libsedml.formulaToL3String(generator.getMath())
        factor = float(formula.split("*")[0]) if "*" in formula else 1.0
        arms.setdefault(arm, {})[generator.getName().split(" (")[0]] = (sid, factor)
    return {
        "start": simulation.getInitialTime(),
        "end": simulation.getOutputEndTime(),
        "steps": simulation.getNumberOfSteps(),
        "arms": arms,
        "sources": {m.getName(): m.getSource() for m in models.values()},
    }


def copasi_run(sbml: str, targets: dict[str, tuple[str, float]], times: np.ndarray) -> dict:
    """Load the SBML in COPASI, simulate from times[0] and return each output (scaled)."""
    model = basico.load_model_from_string(sbml)
    amounts = amount_species_volumes(sbml)
    try:
        copasi_model = model.getModel()
        copasi_model.setInitialTime(float(times[0]))
        copasi_model.updateInitialValues(COPASI.CCore.Framework_Concentration)
        names: dict[str, str] = {}
        for table, pattern in (
            (basico.get_species(model=model), "[{}]"),
            (basico.get_parameters(model=model), "Values[{}]"),
            (basico.get_compartments(model=model), "Compartments[{}].Volume"),
        ):
            for name, row in (table if table is not None else {}).iterrows():
                names.setdefault(row["sbml_id"], pattern.format(name))
        selection = [names[sid] for sid, _ in targets.values()]
        frame = basico.run_time_course_with_output(
            ["Time", *selection],
            values=[float(t) for t in times],
            model=model,
            r_tol=TIGHT.rtol,
            a_tol=TIGHT.atol,
            max_steps=TIGHT.max_steps,
            use_initial_values=True,
        )
    finally:
        basico.remove_datamodel(model)
    np.testing.assert_allclose(frame["Time"].to_numpy(), times, rtol=1e-12, atol=1e-12)
    return {  # COPASI reports every species as a concentration; ours may be amounts
        name: frame.iloc[:, 1 + index].to_numpy() * factor * amounts.get(sid, 1.0)
        for index, (name, (sid, factor)) in enumerate(targets.items())
    }


def amount_species_volumes(sbml: str) -> dict[str, float]:
    """Amount species (hasOnlySubstanceUnits) and the size of their compartments."""
    model = libsbml.readSBMLFromString(sbml).getModel()
    return {
        species.getId(): model.getCompartment(species.getCompartment()).getSize()
        for species in model.getListOfSpecies()
        if species.getHasOnlySubstanceUnits()
    }


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_copasi_reproduces_every_arm_of_every_shipped_scenario(path):
    assert_copasi_reproduces(load_scenario(path), path.stem)


def assert_copasi_reproduces(scenario, name: str) -> None:
    scenario = scenario.model_copy(update={"solver": TIGHT})
    export = build_export(scenario)
    engine = run_scenario(scenario)
    sedml = read_sedml(export.sedml())
    _, times = output_grid(scenario, scenario.model_definition)
    assert (sedml["start"], sedml["end"]) == pytest.approx((times[0], times[-1]))
    assert sedml["steps"] == len(times) - 1 or not export.grid.uniform
    assert set(sedml["arms"]) == set(scenario.arms)
    for arm in export.arms:
        assert sedml["sources"][arm.arm] == export.file_name(arm.arm)
        copasi = copasi_run(arm.sbml, sedml["arms"][arm.arm], times)
        table = engine.wide(arm.arm)
        for output, values in copasi.items():
            expected = table[output].to_numpy()
            floor = FLOOR * np.abs(expected).max() + ABSOLUTE
            error = np.abs(values - expected)
            worst = int(np.argmax(error - RELATIVE * np.abs(expected)))
            assert np.all(error <= RELATIVE * np.abs(expected) + floor), (
                f"{name} arm {arm.arm} output {output} at t = {times[worst]:g}: "
                f"COPASI {values[worst]:.8g}, engine {expected[worst]:.8g}"
            )


# A model with what the shipped ones lack: an amount species in a compartment of volume 2.5,
# two compartments, a parameter computed by an initial assignment from a species, rate rules
# (one on a species),
# an assignment rule, and an event of its own at the time of a dose.
TRICKY = """
model tricky()
  compartment cell = 2.5;
  compartment blood = 0.5;
  substanceOnly species A in cell = 0;
  species X in cell = 1;
  species S in blood = 0;
  source: -> X; cell * 0.1;
  uptake: A -> X; k1 * A;
  loss: X -> ; cell * k2 * X;
  make: -> S; blood * ptot;
  clear: S -> ; blood * k4 * S;
  ptot = 0.1 * X;
  k1 = 0.3; k2 = 0.2; k4 = 0.5;
  z = 0;
  z' = k2 * X - 0.1 * z;
  total := A / cell + X;
  species R in cell = 1;
  R' = 0.05 - 0.2 * R;
  reset_S: at time >= 2: S = 0;
end
"""


@pytest.mark.parametrize(
    "time",
    ["{start: -1 h, end: 6 h, step: 0.25 h}", "{end: 0.25 d, step: 0.0125 d}"],
    ids=["negative-start-hours", "days"],
)
def test_copasi_reproduces_a_user_model_with_amounts_rules_and_its_own_events(
    time, tmp_path, write_scenario
):
    """Everything the engine does beyond the shipped models, through export and COPASI:
    doses into an amount species (bolus, infusion) and a depot into a concentration species;
    a bolus on S at t = 2 h, when the model's own event sets S = 0 (the engine applies the
    model's event, then the dose: S = 1 just after); pre-equilibration with a parameter whose
    initial assignment reads a species (ptot keeps the value from the model's initial X); a
    start time before 0; a display unit (days) other than the model's (hours)."""
    from secretome_sim.models import antimony_to_sbml

    (tmp_path / "tricky.xml").write_text(antimony_to_sbml(TRICKY, "tricky"), encoding="utf-8")
    path = write_scenario(
        f"""
        model: {{file: tricky.xml, time_unit: hour}}
        time: {time}
        preequilibrate: true
        outputs: [A, X, S, z, total, R]
        arms:
          rest: {{}}
          dosed:
            doses:
              - {{type: bolus, target: A, amount: 5, time: 0 h}}
              - {{type: infusion, target: A, rate: 2, duration: 2 h, time: 1 h}}
              - {{type: depot, target: X, amount: 3, half_life: 1 h, time: 0.5 h}}
              - {{type: bolus, target: S, amount: 1, time: 2 h}}
        """
    )
    scenario = load_scenario(path)
    assert_copasi_reproduces(scenario, "tricky")
    result = run_scenario(scenario.model_copy(update={"solver": TIGHT}))
    table = result.wide("dosed")
    hours = table.index.to_numpy() * (24 if "d" in time.split("end")[1] else 1)
    at_two = np.flatnonzero(np.isclose(hours, 2.0))
    if at_two.size:  # the model's event, then the dose
        assert table["S"].iloc[at_two[0]] == pytest.approx(1.0, rel=1e-6)
    rest = result.wide("rest")
    assert rest["X"].iloc[0] == pytest.approx(0.5, rel=1e-6)  # steady state 0.1 / k2
    assert rest["R"].iloc[0] == pytest.approx(0.25, rel=1e-6)  # 0.05 / 0.2, a level


# --------------------------------------------------------------------------- the documents
FLAGSHIP = ROOT / "scenarios" / "cardio_doxorubicin_cm.yaml"
DELIVERY = ROOT / "scenarios" / "delivery_hydrogel_vs_bolus.yaml"


def test_sbml_is_valid_and_carries_doses_as_events_and_provenance_as_notes():
    """libSBML's consistency checks pass; a t = 0 dose is an event with initialValue false
    (so it fires at the start); parameter sources travel as notes and DOIs as annotations;
    pre-equilibration became the initial state (no initial assignments left on states)."""
    export = build_export(FLAGSHIP, arms=["dox_cm"])
    document = libsbml.readSBMLFromString(export.arms[0].sbml)
    document.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, False)
    document.checkConsistency()
    errors = [
        document.getError(i).getMessage()
        for i in range(document.getNumErrors())
        if document.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    assert errors == []
    model = document.getModel()
    assert (document.getLevel(), document.getVersion()) == (3, 2)
    at_zero = [
        e
        for e in model.getListOfEvents()
        if libsbml.formulaToL3String(e.getTrigger().getMath()) == "time >= 0"
    ]
    assert len(at_zero) == 1 and at_zero[0].getTrigger().getInitialValue() is False
    assigned = {a.getVariable() for a in at_zero[0].getListOfEventAssignments()}
    definition = load_scenario(FLAGSHIP).model_definition
    assert definition.inputs["doxorubicin"].target in assigned
    meta = definition.meta
    sourced = next(p for p, m in meta.parameters.items() if "10." in m.source)
    parameter = model.getParameter(sourced)
    assert meta.parameters[sourced].source.split()[0] in parameter.getNotesString()
    assert "identifiers.org/doi/10." in parameter.getAnnotationString()
    assumed = next(p for p, m in meta.parameters.items() if m.assumed)
    assert "assumed" in model.getParameter(assumed).getNotesString()
    states = {s.getId() for s in model.getListOfSpecies()}
    assert not any(a.getSymbol() in states for a in model.getListOfInitialAssignments())
    assert "steady state" in model.getNotesString()


def test_events_fold_same_time_actions_in_the_engines_order(tmp_path, write_scenario):
    """A medium change and a bolus on the same species at the same time: the engine sets,
    then adds; the one SBML event must assign set + add, not either alone."""
    path = write_scenario(
        f"""
        model: {ONE_COMPARTMENT}
        time: {{end: 4 h, step: 1 h}}
        arms:
          a:
            doses:
              - {{type: medium_change, target: drug, value: 2 nM, time: 1 h}}
              - {{type: bolus, target: drug, amount: 3 nM, time: 1 h}}
        """
    )
    export = build_export(path)
    model = libsbml.readSBMLFromString(export.arms[0].sbml).getModel()
    (event,) = [e for e in model.getListOfEvents() if e.getId().startswith("_dose_")]
    (assignment,) = list(event.getListOfEventAssignments())
    assert libsbml.formulaToL3String(assignment.getMath()) == "2 + 3"


def test_omex_archive_holds_sedml_master_sbml_and_sources(tmp_path):
    result = export_scenario(DELIVERY, format="omex", out=tmp_path)
    (path,) = result.paths
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest = archive.read("manifest.xml").decode()
    arms = load_scenario(DELIVERY).arms
    assert {f"{arm}.xml" for arm in arms} <= names
    assert {"delivery_hydrogel_vs_bolus.sedml", "metadata.rdf", "manifest.xml"} <= names
    assert {"source/secretome_delivery.ant", "source/secretome_delivery.yaml"} <= names
    assert re.search(r'location="\./delivery_hydrogel_vs_bolus\.sedml"[^>]*master="true"', manifest)
    assert re.search(r'location="\."\s+format="[^"]*combine.specifications/omex"', manifest)
    reread = libcombine.CombineArchive()
    assert reread.initializeFromArchive(str(path))
    assert reread.getMasterFile().getLocation() == "./delivery_hydrogel_vs_bolus.sedml"
    reread.cleanUp()
    assert not list(tmp_path.glob("*.partial"))


def test_sbml_and_sedml_formats_write_files_that_refer_to_each_other(tmp_path):
    result = export_scenario(FLAGSHIP, format="sedml", arms=["dox", "dox_cm"], out=tmp_path)
    assert sorted(p.name for p in result.paths) == [
        "cardio_doxorubicin_cm.sedml",
        "dox.xml",
        "dox_cm.xml",
    ]
    sedml = read_sedml((tmp_path / "cardio_doxorubicin_cm.sedml").read_text())
    assert sedml["sources"] == {"dox": "dox.xml", "dox_cm": "dox_cm.xml"}
    only = export_scenario(FLAGSHIP, format="sbml", arms=["dox"], out=tmp_path / "s")
    assert [p.name for p in only.paths] == ["dox.xml"]


def test_unknown_arm_and_format_are_refused_with_the_valid_ones():
    with pytest.raises(ExportError, match=r"unknown arm 'dox-cm'.*did you mean 'dox_cm'"):
        build_export(FLAGSHIP, arms=["dox-cm"])
    with pytest.raises(ExportError, match=r"unknown format 'xml' \(formats: sbml, sedml, omex\)"):
        export_scenario(FLAGSHIP, format="xml")  # type: ignore[arg-type]


def test_a_non_uniform_grid_is_reported(write_scenario):
    """0 to 10 h in steps of 3 h ends with a 1 h step; SED-ML cannot state that grid."""
    path = write_scenario(
        f"""
        model: {ONE_COMPARTMENT}
        time: {{end: 10 h, step: 3 h}}
        arms: {{a: {{doses: [{{type: bolus, target: drug, amount: 1 nM}}]}}}}
        """
    )
    export = build_export(path)
    assert not export.grid.uniform and export.grid.steps == 4
    assert any("uniform grid" in w for w in export.warnings)
    assert math.isclose(export.grid.end, 10.0)


def test_a_study_file_is_not_a_scenario():
    with pytest.raises(ScenarioError):
        build_export(ROOT / "scenarios" / "sweep_kidney_exosome_dose_interval.yaml")


def test_cli_export_writes_files_and_refuses_bad_input(tmp_path, capsys):
    from secretome_sim.cli import main

    code = main(
        ["export", str(FLAGSHIP), "--format", "sbml", "--arm", "dox", "--out", str(tmp_path)]
    )
    printed = capsys.readouterr()
    assert code == 0 and (tmp_path / "dox.xml").exists()
    assert "arm dox: initial state: steady state" in printed.out
    assert f"wrote {tmp_path / 'dox.xml'}" in printed.out
    code = main(["export", str(FLAGSHIP), "--arm", "nope", "--out", str(tmp_path)])
    assert code == 2 and "unknown arm 'nope' (arms: control, cm," in capsys.readouterr().err


def test_arm_names_that_clash_get_unique_ids_and_files(tmp_path, write_scenario):
    """'high-dose' and 'high_dose' would both be high_dose; an arm named 'manifest' would write
    a second manifest.xml into the archive. Each gets its own SId and file; the archive reads."""
    path = write_scenario(
        f"""
        model: {ONE_COMPARTMENT}
        time: {{end: 2 d, step: 6 h}}
        arms:
          high-dose: {{doses: [{{type: bolus, target: drug, amount: 2 nM}}]}}
          high_dose: {{doses: [{{type: bolus, target: drug, amount: 1 nM}}]}}
          manifest: {{}}
        """
    )
    export = build_export(path)
    assert export.keys == {
        "high-dose": "high_dose",
        "high_dose": "high_dose_2",
        "manifest": "manifest_2",
    }
    sedml = export.sedml()
    document = libsedml.readSedMLFromString(sedml)
    ids = [m.getId() for m in document.getListOfModels()]
    assert len(ids) == len(set(ids)) == 3
    assert 'xmlns:sbml="http://www.sbml.org/sbml/level3/version2/core"' in sedml
    time_generator = document.getDataGenerator("time_high_dose")
    assert time_generator.getName() == "time (d)"  # reported in the scenario's unit, not hours
    assert libsedml.formulaToL3String(time_generator.getMath()).startswith("0.041666")
    (archive_path,) = export_scenario(path, format="omex", out=tmp_path).paths
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
    assert names.count("manifest.xml") == 1 and "manifest_2.xml" in names


def test_an_unusable_destination_is_an_error_not_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match=r"cannot export into .*file/sub"):
        export_scenario(FLAGSHIP, out=blocker / "sub")
