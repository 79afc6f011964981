"""run_scenario: validated scenario -> dose plans -> one compiled model -> arms -> RunResult."""

from __future__ import annotations

import hashlib
import math
import platform
import sys
import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .dosing import ArmPlan, plan_arm, resolved_arms
from .errors import SimulationError
from .loader import load_scenario
from .models import ModelDefinition, OutputInfo, engine_versions
from .results import DISCLAIMER, DOSE_COLUMNS, OutputColumn, RunResult, build_tables
from .scenario import OutputSpec, Scenario, TimeAbove
from .simulate import ArmTrajectory, compile_model, event_tolerance, simulate_arm
from .units import convert, parse_quantity


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    command: str | None = None,
    models_dir: str | Path | None = None,
) -> RunResult:
    """Run every arm of a scenario and return trajectories, metrics and provenance.

    Accepts a path or a loaded Scenario. The model is compiled once for all arms. On a solver
    failure raises SimulationError whose ``partial`` is a RunResult of what completed.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, models_dir=models_dir)
    started = datetime.now(UTC)
    tick = clock.perf_counter()
    model: ModelDefinition = scenario.model_definition
    outputs, columns = reported_outputs(scenario, model)
    display_unit = f"{scenario.time.end.units:~}"
    display_times, model_times = output_grid(scenario, model)
    arms = resolved_arms(scenario)
    plans = [plan_arm(name, arm, scenario, model) for name, arm in arms.items()]
    compiled = compile_model(model, plans, outputs, scenario.solver)
    trajectories: dict[str, ArmTrajectory] = {}
    warnings: list[str] = []
    failure: SimulationError | None = None
    for plan in plans:
        try:
            trajectory = simulate_arm(compiled, plan, model_times, scenario.preequilibration)
        except SimulationError as exc:
            failure = exc
            trajectories[plan.name] = exc.partial
            break
        steady = trajectory.steady_state
        if steady is not None and not steady.found:
            message = f"arm '{plan.name}': {steady.message}"
            if scenario.preequilibration and scenario.preequilibration.on_failure == "error":
                failure = SimulationError(
                    message + " (set preequilibrate.on_failure: warn to continue anyway)",
                    arm=plan.name,
                    time=float(model_times[0]),
                )
                trajectory.completed = False
                trajectory.error = message
                trajectories[plan.name] = trajectory
                break
            warnings.append(message)
        trajectories[plan.name] = trajectory
    layout = _RunLayout(scenario, model, plans, columns, display_times, model_times, display_unit)
    result = _assemble(
        layout, trajectories, warnings, started, clock.perf_counter() - tick, command, failure
    )
    if failure is not None:
        failure.partial = result
        raise failure
    return result


def output_grid(scenario: Scenario, model: ModelDefinition) -> tuple[np.ndarray, np.ndarray]:
    """Output times in the display unit (the unit of ``time.end``) and in model time."""
    span = scenario.time
    unit = f"{span.end.units:~}"
    start = convert(span.start, unit)
    end = float(span.end.magnitude)
    if span.step is not None:
        step = convert(span.step, unit)
        count = math.floor((end - start) / step * (1 + 1e-12) + 1e-9)
        grid = start + step * np.arange(count + 1)
        if not math.isclose(grid[-1], end, rel_tol=1e-9, abs_tol=1e-12):
            grid = np.append(grid, end)
        grid[-1] = end
    else:
        grid = np.linspace(start, end, span.points or 201)
    factor = convert(parse_quantity(f"1 {unit}"), model.time_unit)
    return grid, grid * factor


def reported_outputs(
    scenario: Scenario, model: ModelDefinition
) -> tuple[list[OutputInfo], list[OutputColumn]]:
    requested = scenario.outputs or list(model.outputs)
    outputs, columns = [], []
    for item in requested:
        name, unit = (item.name, item.unit) if isinstance(item, OutputSpec) else (item, None)
        info = model.outputs[name]
        factor = 1.0
        if unit is not None and info.unit is not None:
            factor = convert(
                parse_quantity(f"1 {info.unit}"), unit, molecular_weight=info.molecular_weight
            )
        outputs.append(info)
        columns.append(OutputColumn(name, unit or info.unit or "", factor))
    return outputs, columns


def thresholds(scenario: Scenario, columns: list[OutputColumn], model: ModelDefinition) -> dict:
    values = {}
    for index, metric in enumerate(scenario.metrics):
        if not isinstance(metric, TimeAbove):
            continue
        for column in columns:
            if metric.outputs is not None and column.name not in metric.outputs:
                continue
            if metric.threshold.dimensionless and not column.unit:
                values[(index, column.name)] = float(metric.threshold.magnitude)
            else:
                values[(index, column.name)] = convert(
                    metric.threshold,
                    column.unit,
                    molecular_weight=model.outputs[column.name].molecular_weight,
                )
    return values


@dataclass(frozen=True)
class _RunLayout:
    """What a run's tables are built from, fixed before any arm runs."""

    scenario: Scenario
    model: ModelDefinition
    plans: list[ArmPlan]
    columns: list[OutputColumn]
    display_times: np.ndarray
    model_times: np.ndarray
    display_unit: str


def _assemble(
    layout: _RunLayout,
    trajectories: dict[str, ArmTrajectory],
    warnings: list[str],
    started: datetime,
    elapsed: float,
    command: str | None,
    failure: SimulationError | None,
) -> RunResult:
    scenario, model, columns = layout.scenario, layout.model, layout.columns
    display_unit, model_times = layout.display_unit, layout.model_times
    to_display = convert(parse_quantity(f"1 {model.time_unit}"), display_unit)
    arm_values = {name: t.values for name, t in trajectories.items()}
    trajectory_table, metric_table = build_tables(
        scenario,
        arm_values,
        layout.display_times,
        columns,
        display_unit,
        thresholds(scenario, columns, model),
    )
    start, end = model_times[0], model_times[-1]
    slack = event_tolerance(start, end)
    dose_rows = [
        {
            "arm": plan.name,
            "time": event.time * to_display,
            "model_time": event.time,
            "action": event.action,
            "target": event.target,
            "value": event.value,
            "label": event.label.lstrip("_"),
            "is_dose": event.is_dose,
        }
        for plan in layout.plans
        if plan.name in trajectories
        for event in plan.events
        if start - slack <= event.time <= end + slack  # e.g. an infusion stop after the end
    ]
    doses = pd.DataFrame(dose_rows, columns=DOSE_COLUMNS)
    manifest = _manifest(
        scenario, model, trajectories, started, elapsed, command, warnings, failure, display_unit
    )
    return RunResult(
        scenario=scenario,
        trajectories=trajectory_table,
        metrics=metric_table,
        doses=doses,
        manifest=manifest,
        time_unit=display_unit,
        warnings=warnings,
    )


def _sha256(path: Path | None) -> str | None:
    if path is None or not Path(path).exists():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _manifest(
    scenario, model, trajectories, started, elapsed, command, warnings, failure, display_unit
) -> dict[str, Any]:
    return {
        "secretome_sim_version": __version__,
        "status": "complete" if failure is None else "failed",
        "error": str(failure) if failure is not None else None,
        "command": command or "python API: run_scenario",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "elapsed_seconds": round(elapsed, 4),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "engine": engine_versions(),
        "scenario": {
            "id": scenario.scenario_id,
            "file": str(scenario.source) if scenario.source else None,
            "sha256": _sha256(scenario.source),
        },
        "model": {
            "id": model.id,
            "file": str(model.path),
            "sha256": model.sha256,
            "metadata_file": str(model.meta_path) if model.meta_path else None,
            "metadata_sha256": _sha256(model.meta_path),
            "time_unit": model.time_unit,
            "status": model.meta.status if model.meta else "user model",
        },
        "solver": {
            "integrator": "CVODE (BDF, stiff) via libRoadRunner",
            **scenario.solver.model_dump(mode="json"),
            "dosing": "segmented integration; each dose applied exactly at its time",
        },
        "time_unit": display_unit,
        "arms": {
            name: {
                "completed": t.completed,
                "error": t.error,
                "steady_state": None
                if t.steady_state is None
                else {
                    "found": t.steady_state.found,
                    "method": t.steady_state.method,
                    "max_relative_rate": t.steady_state.max_rate,
                    "message": t.steady_state.message,
                },
            }
            for name, t in trajectories.items()
        },
        "warnings": warnings,
        "disclaimer": DISCLAIMER,
    }
