"""Exported arms -> one SED-ML (Level 1 Version 4) description of the scenario's simulation.

One model and one task per arm, all sharing one uniform time course on the scenario's output
grid (model time units) and the scenario's CVODE settings as KiSAO terms. Each output is a
data generator per arm, scaled from the model's unit to the unit the scenario reports; a
report per arm lists time and every output, and a plot per output overlays the arms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SecretomeError
from .export_sbml import ArmModel
from .results import OutputColumn
from .scenario import Solver

SBML_L3V2 = "urn:sedml:language:sbml.level-3.version-2"
SBML_NAMESPACE = "http://www.sbml.org/sbml/level3/version2/core"
KISAO_CVODE = "KISAO:0000019"
KISAO_RELATIVE_TOLERANCE = "KISAO:0000209"
KISAO_ABSOLUTE_TOLERANCE = "KISAO:0000211"
KISAO_MAXIMUM_STEPS = "KISAO:0000415"
KISAO_MAXIMUM_STEP_SIZE = "KISAO:0000467"
TIME_SYMBOL = "urn:sedml:symbol:time"


class ExportError(SecretomeError):
    """A scenario that cannot be written in a standard format as it is."""


@dataclass(frozen=True)
class Grid:
    """The output grid in model time, as SED-ML's uniform time course states it."""

    start: float
    end: float
    steps: int
    uniform: bool  # False: the scenario's last step is shorter (SED-ML cannot say that)
    max_step: float | None = None  # the solver's largest step, model time


def uniform_grid(times: np.ndarray, max_step: float | None = None) -> Grid:
    steps = len(times) - 1
    spacing = np.diff(times)
    uniform = bool(np.allclose(spacing, spacing[0], rtol=1e-9, atol=0.0))
    if not uniform:  # e.g. 0..10 step 3: 0, 3, 6, 9, 10; SED-ML gets 4 equal steps
        steps = int(np.ceil((times[-1] - times[0]) / spacing[0] - 1e-9))
    return Grid(float(times[0]), float(times[-1]), steps, uniform, max_step)


@dataclass(frozen=True)
class TimeAxis:
    """How reports show time: model time times ``factor``, in ``unit`` (the scenario's)."""

    factor: float
    unit: str


def sedml_document(
    arms: Sequence[ArmModel],
    keys: dict[str, str],
    columns: list[OutputColumn],
    grid: Grid,
    solver: Solver,
    time_axis: TimeAxis,
    title: str,
) -> str:
    """SED-ML text for ``arms``. ``keys`` gives each arm a unique SId, also the stem of its
    SBML file (``<key>.xml``, beside the SED-ML)."""
    import libsedml

    document = libsedml.SedDocument(1, 4)
    # the targets below are XPaths with the sbml: prefix; consumers resolve it from here
    document.getNamespaces().add(SBML_NAMESPACE, "sbml")
    simulation = document.createUniformTimeCourse()
    simulation.setId("timecourse")
    simulation.setName(title)
    simulation.setInitialTime(grid.start)
    simulation.setOutputStartTime(grid.start)
    simulation.setOutputEndTime(grid.end)
    simulation.setNumberOfSteps(grid.steps)
    algorithm = simulation.createAlgorithm()
    algorithm.setKisaoID(KISAO_CVODE)
    settings: list[tuple[str, float]] = [
        (KISAO_RELATIVE_TOLERANCE, solver.rtol),
        (KISAO_ABSOLUTE_TOLERANCE, solver.atol),
        (KISAO_MAXIMUM_STEPS, solver.max_steps),
    ]
    if grid.max_step is not None:
        settings.append((KISAO_MAXIMUM_STEP_SIZE, grid.max_step))
    for kisao, value in settings:
        parameter = algorithm.createAlgorithmParameter()
        parameter.setKisaoID(kisao)
        parameter.setValue(repr(value))
    curves: dict[str, list[tuple[str, str, str]]] = {}
    time_label = f"time ({time_axis.unit})"
    for arm in arms:
        key = keys[arm.arm]
        model = document.createModel()
        model.setId(f"model_{key}")
        model.setName(arm.arm)
        model.setLanguage(SBML_L3V2)
        model.setSource(f"{key}.xml")
        task = document.createTask()
        task.setId(f"task_{key}")
        task.setModelReference(model.getId())
        task.setSimulationReference(simulation.getId())
        time_id = _data_generator(
            document, f"time_{key}", time_label, task.getId(), None, time_axis.factor
        )
        report = document.createReport()
        report.setId(f"report_{key}")
        report.setName(f"arm {arm.arm}")
        _data_set(report, time_label, time_id)
        for output, column in zip(arm.outputs, columns, strict=True):
            label = f"{column.name} ({column.unit})" if column.unit else column.name
            generator = _data_generator(
                document,
                f"{key}__{_sid(column.name)}",
                label,
                task.getId(),
                arm.targets[output.name],
                column.factor,
            )
            _data_set(report, column.name, generator)
            curves.setdefault(column.name, []).append((arm.arm, time_id, generator))
    for name, items in curves.items():
        plot = document.createPlot2D()
        plot.setId(f"plot_{_sid(name)}")
        plot.setName(name)
        for index, (arm_name, x, y) in enumerate(items):
            curve = plot.createCurve()
            curve.setId(f"curve_{_sid(name)}_{index}")
            curve.setName(arm_name)
            curve.setXDataReference(x)
            curve.setYDataReference(y)
            curve.setLogX(False)
            curve.setLogY(False)
    text = libsedml.writeSedMLToString(document)
    errors = _errors(libsedml.readSedMLFromString(text))
    if errors:
        raise ExportError("the SED-ML written is not valid: " + "; ".join(errors))
    return text


def _data_generator(
    document: Any,
    gid: str,
    name: str,
    task: str,
    target: str | None,
    factor: float,
) -> str:
    import libsedml

    generator = document.createDataGenerator()
    generator.setId(gid)
    generator.setName(name)
    variable = generator.createVariable()
    variable.setId(f"{gid}_var")
    variable.setTaskReference(task)
    if target is None:
        variable.setSymbol(TIME_SYMBOL)
    else:
        variable.setTarget(target)
    formula = variable.getId() if factor == 1.0 else f"{factor!r} * {variable.getId()}"
    generator.setMath(libsedml.parseL3Formula(formula))
    return gid


def _data_set(report: Any, label: str, generator: str) -> None:
    data_set = report.createDataSet()
    data_set.setId(f"{report.getId()}_{_sid(label)}")
    data_set.setLabel(label)
    data_set.setDataReference(generator)


def _sid(text: str) -> str:
    sid = re.sub(r"\W", "_", text)
    return sid if re.match(r"[A-Za-z_]", sid) else f"_{sid}"


def _errors(document: Any) -> list[str]:
    import libsedml

    log = document.getErrorLog()
    return [
        log.getError(i).getMessage().strip()
        for i in range(log.getNumErrors())
        if log.getError(i).getSeverity() >= libsedml.LIBSEDML_SEV_ERROR
    ]
