"""One worker's side of a sweep: compile the model once, then run chunks of points on it.

Each worker process (or the main process, when serial) builds one ``PointEvaluator`` per sweep
and keeps it for every chunk it receives, so a model is compiled once per worker, never per
point. A point's failure (a solver error, a value its path rejects) becomes a row with status
``failed`` and the message; the other points of the chunk go on.
"""

from __future__ import annotations

import pickle
import time as clock
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .dosing import ArmPlan, plan_arm, resolved_arms
from .errors import SimulationError
from .results import OutputColumn, metric_plan
from .run import output_grid, reported_outputs, thresholds
from .scenario import Metric, OutputSpec, Scenario
from .simulate import CompiledModel, compile_model, simulate_arm
from .sweep_factors import Factor, apply_point


@dataclass
class SweepJob:
    """Everything a worker needs, picklable: the scenario, factors, and what to keep."""

    key: str  # the sweep's fingerprint and settings: a worker's evaluator is reused only for it
    scenario: Scenario
    factors: list[Factor]
    arms: list[str]
    outputs: list[str]
    metrics: list[Metric]
    save_trajectories: bool


@dataclass
class ChunkResult:
    """A chunk's rows (one per point and arm) and, if kept, its trajectories."""

    chunk: int
    table: pd.DataFrame
    trajectories: np.ndarray | None  # (points, arms, times, outputs), display units
    seconds: float
    worker: str = ""


class PointEvaluator:
    """A compiled model and the sweep's fixed layout (grid, outputs, metric columns)."""

    def __init__(self, job: SweepJob):
        self.job = job
        scenario = job.scenario.model_copy(
            update={"outputs": output_specs(job.scenario, job.outputs), "metrics": job.metrics}
        )
        self.scenario = scenario
        model = scenario.model_definition
        self.model = model
        outputs, self.columns = reported_outputs(scenario, model)
        self.display_times, self.model_times = output_grid(scenario, model)
        self.time_unit = f"{scenario.time.end.units:~}"
        self.thresholds = thresholds(scenario, self.columns, model)
        self.plans_template = self.plans_for(scenario)
        self.compiled: CompiledModel = compile_model(
            model, self.plans_template, outputs, scenario.solver
        )
        self._outputs_info = outputs
        self.metric_columns = metric_columns(
            scenario.metrics, self.columns, self.time_unit, self.thresholds
        )

    def plans_for(self, scenario: Scenario) -> list[ArmPlan]:
        """The dose plans of the job's arms in a (changed) scenario, in job order."""
        arms = resolved_arms(scenario)
        return [plan_arm(name, arms[name], scenario, self.model) for name in self.job.arms]

    def ensure_slots(self, plans: list[ArmPlan]) -> None:
        """Recompile (rarely) when a point needs an infusion or depot helper the model lacks."""
        have_parameters = set(self.compiled.parameter_index)
        needed = [p for p in plans for s in p.infusions if s.parameter not in have_parameters]
        have = set(self.compiled.species_index)
        needed += [p for p in plans for s in p.depots if s.depot not in have]
        if needed:
            self.plans_template = [*self.plans_template, *plans]
            self.compiled = compile_model(
                self.model, self.plans_template, self._outputs_info, self.scenario.solver
            )

    def run_chunk(self, chunk: int, points: np.ndarray, values: list[list[Any]]) -> ChunkResult:
        """Simulate every point of a chunk; one row per point and arm."""
        tick = clock.perf_counter()
        arms, columns = self.job.arms, self.metric_columns
        n_rows = len(points) * len(arms)
        metric_values = np.full((n_rows, len(columns)), np.nan)
        status = ["ok"] * n_rows
        messages = [""] * n_rows
        shape = (len(points), len(arms), len(self.model_times), len(self.columns))
        keep = np.full(shape, np.nan) if self.job.save_trajectories else None
        preeq = self.scenario.preequilibration
        for p, point_values in enumerate(values):
            try:
                scenario = apply_point(self.scenario, self.job.factors, point_values)
                plans = self.plans_for(scenario)
                self.ensure_slots(plans)
            except Exception as exc:  # any failure is this point's, recorded; the sweep goes on
                for a in range(len(arms)):
                    row = p * len(arms) + a
                    status[row], messages[row] = "failed", _one_line(exc)
                continue
            for a, plan in enumerate(plans):
                row = p * len(arms) + a
                try:
                    trajectory = simulate_arm(self.compiled, plan, self.model_times, preeq)
                    values_out = trajectory.values
                    steady = trajectory.steady_state
                    if steady is not None and not steady.found:
                        if preeq is not None and preeq.on_failure == "error":
                            raise SimulationError(steady.message, plan.name, 0.0)
                        messages[row] = f"warning: {steady.message}"
                except Exception as exc:  # solver failures and anything unexpected (overflow, ...)
                    status[row], messages[row] = "failed", _one_line(exc)
                    partial = getattr(exc, "partial", None)
                    if keep is not None and partial is not None:
                        keep[p, a] = partial.values * self._factors()
                    continue
                if keep is not None:
                    keep[p, a] = values_out * self._factors()
                metric_values[row] = self.metrics_of(values_out)
        table = self._table(points, values, metric_values, status, messages)
        seconds = clock.perf_counter() - tick
        return ChunkResult(chunk, table, keep, seconds, _worker_name())

    def _factors(self) -> np.ndarray:
        return np.array([c.factor for c in self.columns])

    def metrics_of(self, values: np.ndarray) -> list[float]:
        """One arm's metric values (``metric_columns`` order) from its model-unit trajectory."""
        row = []
        finite = ~np.isnan(values).any(axis=1)
        grid = self.display_times[finite]
        for k, column in enumerate(self.columns):
            series = values[finite, k] * column.factor
            for _, _, compute in self._plan_for(column):
                row.append(compute(grid, series) if len(series) else np.nan)
        return row

    def _plan_for(self, column: OutputColumn):
        cache = self.__dict__.setdefault("_metric_plans", {})
        if column.name not in cache:
            cache[column.name] = metric_plan(
                self.scenario.metrics, column, self.time_unit, self.thresholds
            )
        return cache[column.name]

    def _table(self, points, values, metric_values, status, messages) -> pd.DataFrame:
        arms = self.job.arms
        data: dict[str, Any] = {"point": np.repeat(np.asarray(points, dtype=np.int64), len(arms))}
        for k, factor in enumerate(self.job.factors):
            column = [v[k] for v in values for _ in arms]
            data[factor.name] = column if factor.kind == "name" else np.asarray(column, float)
            if factor.kind == "int":
                data[factor.name] = data[factor.name].astype(np.int64)
        data["arm"] = list(arms) * len(points)
        data["status"] = status
        data["message"] = messages
        for j, (name, _unit) in enumerate(self.metric_columns):
            data[name] = metric_values[:, j]
        return pd.DataFrame(data)


def metric_columns(
    metrics: list[Metric],
    columns: list[OutputColumn],
    time_unit: str,
    threshold_values: dict[tuple[int, str], float],
) -> list[tuple[str, str]]:
    """(table column, unit) for every kept output and metric: ``<output>.<metric>``."""
    return [
        (f"{column.name}.{name}", unit)
        for column in columns
        for name, unit, _ in metric_plan(metrics, column, time_unit, threshold_values)
    ]


def output_specs(scenario: Scenario, names: list[str]) -> list[str | OutputSpec]:
    """The scenario's own output entries (with their units) for the kept names, in order."""
    entries = scenario.outputs or list(scenario.model_definition.outputs)
    by_name = {(e.name if isinstance(e, OutputSpec) else e): e for e in entries}
    return [by_name[name] for name in names]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _worker_name() -> str:
    import os

    return f"pid {os.getpid()}"


# --------------------------------------------------------------------------- worker processes
_EVALUATORS: dict[str, PointEvaluator] = {}


def evaluator_for(job: SweepJob) -> PointEvaluator:
    """This process's evaluator for the job, built on first use and then reused."""
    evaluator = _EVALUATORS.get(job.key)
    if evaluator is None:
        _EVALUATORS.clear()  # one sweep per worker at a time: free the previous model
        evaluator = _EVALUATORS[job.key] = PointEvaluator(job)
    return evaluator


def job_from_bytes(payload: bytes) -> SweepJob:
    """Unpickle a job in a fresh process: quantities must land in our unit registry."""
    from .units import registry

    registry()  # makes ours pint's application registry before any Quantity is unpickled
    return pickle.loads(payload)


@dataclass(frozen=True)
class JobRef:
    """A job by key, with its pickled form for processes that must build their own evaluator
    (Dask workers, spawned processes); forked workers inherit the evaluator and need only the
    key, so each task carries a few bytes instead of the whole job."""

    key: str
    payload: bytes | None

    def light(self) -> JobRef:
        return JobRef(self.key, None)


def run_chunk_task(
    job: SweepJob | JobRef, chunk: int, points: np.ndarray, values: list
) -> ChunkResult:
    """The function every backend calls on a worker."""
    if isinstance(job, JobRef):
        evaluator = _EVALUATORS.get(job.key)
        if evaluator is None:
            if job.payload is None:
                raise RuntimeError(f"worker has no evaluator for sweep {job.key}")
            evaluator = evaluator_for(job_from_bytes(job.payload))
    else:
        evaluator = evaluator_for(job)
    return evaluator.run_chunk(chunk, points, values)
