"""Schedule optimisation: the best dose schedule of one arm for an objective, under constraints.

The Python face of ``secretome-sim optimize``. Decision variables are sweep factors (the same
paths), plus whole-item ``choices`` (bolus versus depot). Every combination of the enumerated
variables (integers, variants, choices) is searched separately: integer variables are never
rounded from a continuous search. Within a combination the continuous variables are searched
by ``scipy.optimize.minimize`` (COBYQA by default: derivative-free, bounds and nonlinear
constraints) in a normalised box (log-scaled variables in log space), from ``starts`` seeded
Latin-hypercube points. Objective and constraints are divided by a fixed scale (the baseline
objective's magnitude, each limit's magnitude, the span's length), so tolerances are relative.

The hot path neither reads YAML nor recompiles: one ``PointEvaluator`` (one compiled model),
points applied as shallow copies of the frozen scenario, evaluations memoised by the variable
vector within a search. Totals, dose counts and "every dose inside the span" are computed from
the schedule without simulating. A point whose simulation fails is recorded as failed
(infeasible) and the search goes on.

The answer is the best feasible evaluated point over all searches, re-checked with
``FEASIBILITY_TOLERANCE``; if none is feasible, the least violated point is reported with the
constraints it breaks. Same seed, same answer; ``workers`` > 1 runs searches on forked local
processes with identical results.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time as clock
import typing
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pint
import yaml
from pydantic import BaseModel

from . import __version__
from .checks import CheckContext, run_checks
from .dosing import PlanError, dose_totals, model_time, repeat_times, resolved_arms
from .errors import Issue, KeyPath, ScenarioError, SimulationError, did_you_mean, format_key_path
from .metrics import SIMPLE_METRICS
from .models import engine_versions
from .optimize_spec import Constraint, Objective, OptimizeFile, OptimizeSpec, Variable
from .results import DISCLAIMER, check_run_folder
from .run import reported_outputs, run_scenario, thresholds
from .scenario import (
    PRODUCT,
    STUDY_SECTIONS,
    Block,
    Bolus,
    Depot,
    Infusion,
    Inhibitor,
    MediumChange,
    ScaleParameter,
    Scenario,
    SetParameter,
    TimeAbove,
    TimeSpan,
)
from .simulate import simulate_arm
from .study_file import no_section, read_study
from .sweep_factors import Factor, apply_point, parse_path, resolve_factors
from .sweep_spec import FactorSpec, ValueRange
from .sweep_worker import PointEvaluator, SweepJob, metric_columns
from .units import UnitError, convert, parse_quantity
from .validation import validate_document
from .yaml_source import Positions, position_of

MAX_COMBINATIONS = 10_000  # of the enumerated variables; each gets `starts` local searches
FEASIBILITY_TOLERANCE = 1e-6  # a constraint may be violated by this fraction of its scale
_WIDEN = 1e6  # load-time checks see a span this many times longer (see _widened)
Progress = Literal["auto", "plain", "none"]
TIMING_FIELDS = ("time", "every", "count", "until")  # fields that move doses in time


# =========================================================================== what is optimised
@dataclass(frozen=True)
class DecisionVariable:
    """A resolved decision variable.

    continuous: ``low``..``high`` in ``unit`` (searched in log space if ``log``); discrete:
    ``levels`` (numbers in ``unit``, integers, or variant names), enumerated; choice:
    ``items`` (name -> the dose or perturbation that replaces the one at ``item_path``).
    """

    name: str
    kind: Literal["continuous", "discrete", "choice"]
    spec: Variable
    factor: Factor | None = None
    levels: tuple[Any, ...] = ()
    low: float = math.nan
    high: float = math.nan
    log: bool = False
    unit: str = ""
    item_path: KeyPath = ()
    items: dict[str, BaseModel] = field(default_factory=dict)
    moves: bool = False  # a choice whose alternatives change the item's timing
    written: str = ""  # a choice: the alternative equal to the item as written, or its type

    @property
    def paths(self) -> list[str]:
        return self.spec.paths

    def value(self, u: float) -> float:
        """The value at ``u`` in [0, 1] of the normalised box."""
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def text(self, value: Any) -> str:
        """A value as written in a scenario: '1.81 nM', '3', 'hypoxic'."""
        if value is None:
            return "-"
        if isinstance(value, str):
            return value
        if self.factor is not None and self.factor.kind == "int":
            return str(round(value))
        return f"{value:.6g} {self.unit}".strip()


@dataclass(frozen=True)
class Measure:
    """A number a schedule produces: a metric of an arm's output (simulated), the total
    amount or number of the arm's doses, or how far every dose stays inside the span."""

    kind: Literal["metric", "total_amount", "doses", "span"]
    arm: str
    unit: str
    output: str | None = None
    metric: str | None = None
    target: str | None = None
    items: tuple[
        tuple[str, str, int], ...
    ] = ()  # span: the (arm, doses|perturbations, i) that move

    @property
    def column(self) -> str:
        """The metric column of a sweep table ('<output>.<metric>')."""
        return f"{self.output}.{self.metric}"

    @property
    def name(self) -> str:
        if self.kind == "metric":
            return self.column
        if self.kind == "span":
            return "doses inside the span"
        return self.kind + (f"[{self.target}]" if self.target else "")


@dataclass(frozen=True)
class Bound:
    """A constraint ``measure <= limit`` (max) or ``measure >= limit`` (min), in the
    measure's unit; ``scale`` turns the slack into a relative number for the optimiser."""

    measure: Measure
    sense: Literal["max", "min"]
    limit: float
    scale: float
    key: KeyPath  # where it is written (empty for the automatic span constraint)

    @property
    def name(self) -> str:
        if self.measure.kind == "span":
            return self.measure.name
        sign = "<=" if self.sense == "max" else ">="
        return f"{self.measure.name} {sign} {self.limit:g} {unit_text(self.measure.unit)}".strip()

    def slack(self, value: float) -> float:
        """How far inside the bound a value is, in the measure's unit (negative: violated)."""
        return self.limit - value if self.sense == "max" else value - self.limit


@dataclass(frozen=True)
class Combination:
    """One combination of the enumerated variables, and which continuous ones it searches
    (a variable on a field the chosen item does not have is inactive)."""

    index: int
    levels: dict[str, Any]
    continuous: tuple[int, ...]  # indexes into Optimization.variables

    @property
    def label(self) -> str:
        shown = (
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.levels.items()
        )
        return ", ".join(shown) or "-"


@dataclass(frozen=True)
class Optimization:
    """A validated optimisation, ready to run."""

    scenario: Scenario
    spec: OptimizeSpec
    variables: list[DecisionVariable]
    objective: Measure
    constraints: list[Bound]  # the spec's (a max and a min count twice), then the span
    combinations: list[Combination]
    source: Path | None  # the file the optimize section came from
    text: str | None

    @property
    def optimization_id(self) -> str:
        if self.source is not None and self.source != self.scenario.source:
            return self.source.stem
        return self.scenario.scenario_id

    @property
    def factors(self) -> list[Factor]:
        """The decision variables that are sweep factors (all but whole-item choices)."""
        return [v.factor for v in self.variables if v.factor is not None]

    @property
    def sense(self) -> Literal["minimize", "maximize"]:
        return self.spec.objective.sense

    @property
    def measures(self) -> list[Measure]:
        return [self.objective, *(b.measure for b in self.constraints)]


# =========================================================================== loading
def load_optimization(path: str | Path, *, models_dir: str | Path | None = None) -> Optimization:
    """Read a scenario with an ``optimize:`` section, or an optimisation file with
    ``scenario:``; every problem is reported at once, located in the file that has it."""
    source = read_study(path, "optimize", OptimizeFile, OptimizeSpec, "optimization", models_dir)
    if source.spec is None:
        raise no_section(path, "optimize", "optimisation")
    return build_optimization(source.scenario, source.spec, source.where, source.path, source.text)


def build_optimization(
    scenario: Scenario,
    spec: OptimizeSpec | dict[str, Any],
    where: tuple[str, KeyPath, Positions] | None = None,
    source: Path | None = None,
    text: str | None = None,
) -> Optimization:
    """Check an optimisation spec against a loaded scenario (the API entry for optimisations
    built in code). Raises ScenarioError listing every problem."""
    filename, base, positions = where or ("<optimization>", (), {})
    if isinstance(spec, dict):
        checked, issues = validate_document(OptimizeSpec, spec, positions, filename)
        if issues:
            raise ScenarioError(issues, "optimization")
        assert checked is not None
        spec = checked
    issues: list[Issue] = []

    def issue(key: KeyPath, message: str, hint: str | None = None) -> None:
        path = (*base, *key)
        line, column = position_of(positions, path)
        issues.append(Issue(filename, line, column, path, message, hint))

    if spec.arm not in scenario.arms:
        issue(
            ("arm",),
            f"no arm '{spec.arm}' (arms: {', '.join(scenario.arms)})",
            did_you_mean(spec.arm, scenario.arms),
        )
    variables = _resolve_variables(spec, scenario, (filename, (*base, "variables"), positions))
    issues += variables[1]
    checker = _MeasureChecker(scenario, spec, issue)
    objective = checker.objective(spec.objective)
    bounds = [b for i, c in enumerate(spec.constraints) for b in checker.bounds(c, i)]
    movable = _movable_items(variables[0])
    if movable:
        bounds.append(_span_bound(scenario, spec.arm, movable))
    combinations: list[Combination] = []
    if len(variables[0]) == len(spec.variables):
        size = math.prod(len(v.levels) or len(v.items) or 1 for v in variables[0])
        if size > MAX_COMBINATIONS:
            issue(
                ("variables",),
                f"the enumerated variables (values, integer ranges, choices) make {size:,} "
                f"combinations; at most {MAX_COMBINATIONS:,} are allowed (give fewer values, "
                "or make a numeric variable continuous with 'low' and 'high')",
            )
        else:
            combinations = _combinations(variables[0])
    if issues:
        raise ScenarioError(issues, "optimization")
    assert objective is not None
    return Optimization(scenario, spec, variables[0], objective, bounds, combinations, source, text)


# --------------------------------------------------------------------------- variables
def _widened(scenario: Scenario) -> Scenario:
    """The scenario with a span reaching far past its end, for load-time checks of variable
    values: doses that one variable's extreme pushes past the end are not a load error (with
    the other variables at other values they may fit), but the optimiser's automatic "every
    dose inside the span" constraint."""
    span = scenario.time
    end = span.end + (span.end - span.start.to(span.end.units)) * _WIDEN
    wide = scenario.model_copy(update={"time": TimeSpan(start=span.start, end=end, points=2)})
    wide._text = None  # load-time checks then read the objects, not the file's text
    wide._model = scenario._model
    wide._source = scenario._source
    return wide


def _resolve_variables(
    spec: OptimizeSpec, scenario: Scenario, where: tuple[str, KeyPath, Positions]
) -> tuple[list[DecisionVariable], list[Issue]]:
    filename, base, positions = where
    wide = _widened(scenario)
    factor_specs = {}
    for name, variable in spec.variables.items():
        if variable.choices is None:
            ranged = variable.low is not None
            factor_specs[name] = FactorSpec(
                path=variable.path,
                values=variable.values,
                range=ValueRange(low=variable.low, high=variable.high, scale=variable.scale)
                if ranged
                else None,
                unit=variable.unit,
                label=variable.label,
            )
    factors, found = resolve_factors(factor_specs, wide, where)
    issues = [_relocate(i, len(base) + 1, positions) for i in found]
    by_name = {f.name: f for f in factors}
    resolved: list[DecisionVariable] = []
    raw = wide.model_dump(mode="json", exclude=set(STUDY_SECTIONS))
    for name, variable in spec.variables.items():
        here = (*base, name)
        if variable.choices is not None:
            choice = _resolve_choice(name, variable, wide, raw, (filename, here, positions), issues)
            if choice is not None:
                resolved.append(choice)
        elif name in by_name:
            made = _field_variable(name, variable, by_name[name], (filename, here, positions))
            if isinstance(made, Issue):
                issues.append(made)
            else:
                resolved.append(made)
    _check_choice_overlap(resolved, base, filename, positions, issues)
    return resolved, issues


def _relocate(issue: Issue, at: int, positions: Positions) -> Issue:
    """resolve_factors says 'range.low'; a decision variable writes 'low' directly."""
    path = list(issue.path)
    if len(path) > at and path[at] == "range":
        del path[at]
    line, column = position_of(positions, tuple(path))
    return Issue(issue.file, line, column, tuple(path), issue.message, issue.hint)


def _field_variable(
    name: str, variable: Variable, factor: Factor, where: tuple[str, KeyPath, Positions]
) -> DecisionVariable | Issue:
    if variable.values is not None:
        levels = factor.levels()
        if factor.kind == "int":
            levels = [round(v) for v in levels]
        return DecisionVariable(name, "discrete", variable, factor, tuple(levels), unit=factor.unit)
    low, high = factor.magnitude(variable.low), factor.magnitude(variable.high)
    if factor.kind == "int":  # integers are enumerated, never rounded from a continuous search
        levels = tuple(range(math.ceil(low), math.floor(high) + 1))
        if not levels:
            filename, here, positions = where
            line, column = position_of(positions, (*here, "low"))
            message = f"no integer lies between {low:g} and {high:g}"
            return Issue(filename, line, column, (*here, "low"), message)
        integer_spec = factor.spec.model_copy(update={"values": list(levels), "range": None})
        factor = replace(factor, spec=integer_spec)
        return DecisionVariable(name, "discrete", variable, factor, levels, unit=factor.unit)
    return DecisionVariable(
        name,
        "continuous",
        variable,
        factor,
        low=low,
        high=high,
        log=variable.scale == "log",
        unit=factor.unit,
    )


_DOSE_TYPES = {
    tag: cls
    for cls in (Bolus, Infusion, Depot, MediumChange)
    for tag in typing.get_args(cls.model_fields["type"].annotation)
}
_PERTURBATION_TYPES = {
    tag: cls
    for cls in (Block, Inhibitor, SetParameter, ScaleParameter)
    for tag in typing.get_args(cls.model_fields["type"].annotation)
}


def _resolve_choice(
    name: str,
    variable: Variable,
    wide: Scenario,
    raw: dict,
    where: tuple[str, KeyPath, Positions],
    issues: list[Issue],
) -> DecisionVariable | None:
    """A whole-item variable: each choice merged onto the written item must make a valid
    scenario (checked now, by the scenario's own schema and checks)."""
    filename, here, positions = where

    def issue(key: KeyPath, message: str, hint: str | None = None) -> None:
        line, column = position_of(positions, (*here, *key))
        issues.append(Issue(filename, line, column, (*here, *key), message, hint))

    text = str(variable.path)
    try:
        path = parse_path(text)
    except ValueError as exc:
        issue(("path",), str(exc))
        return None
    shape_ok = (
        len(path) == 4
        and path[0] == "arms"
        and path[2] in ("doses", "perturbations")
        and isinstance(path[3], int)
    )
    if not shape_ok:
        issue(
            ("path",),
            f"{text}: 'choices' replace a whole dose or perturbation; give its path, e.g. "
            "arms.<arm>.doses.0",
        )
        return None
    arm_name, kind, index = str(path[1]), str(path[2]), int(path[3])
    if arm_name not in wide.arms:
        issue(
            ("path",),
            f"{text}: no arm '{arm_name}' (arms: {', '.join(wide.arms)})",
            did_you_mean(arm_name, wide.arms),
        )
        return None
    own = getattr(wide.arms[arm_name], kind)
    if index >= len(own):
        issue(
            ("path",),
            f"{text}: arm '{arm_name}' has {len(own)} own {kind}; inherited ones are addressed "
            "through the arm that defines them",
        )
        return None
    types = _DOSE_TYPES if kind == "doses" else _PERTURBATION_TYPES
    written = raw["arms"][arm_name][kind][index]
    items: dict[str, BaseModel] = {}
    model = wide.model_definition
    assert variable.choices is not None
    for choice, partial in variable.choices.items():
        merged = _merge(written, partial, types)
        data = copy.deepcopy(raw)
        data["arms"][arm_name][kind][index] = merged
        checked, problems = validate_document(Scenario, data, {}, filename)
        if not problems:
            problems = run_checks(CheckContext(data, {}, filename, model))
        if problems or checked is None:
            shown = "; ".join(f"{format_key_path(p.path)}: {p.message}" for p in problems[:3])
            more = " ..." if len(problems) > 3 else ""
            issue(
                ("choices", choice), f"choice '{choice}' makes the scenario invalid: {shown}{more}"
            )
            continue
        items[choice] = getattr(checked.arms[arm_name], kind)[index]
    if len(items) != len(variable.choices):
        return None
    timing = {_timing(own[index]), *(_timing(item) for item in items.values())}
    same = [choice for choice, item in items.items() if item == own[index]]
    written = same[0] if same else f"{own[index].type} (none of the choices)"
    return DecisionVariable(
        name,
        "choice",
        variable,
        item_path=path,
        items=items,
        moves=len(timing) > 1,
        written=written,
    )


def _timing(item: BaseModel) -> tuple[Any, ...]:
    return tuple(str(getattr(item, name, None)) for name in TIMING_FIELDS)


def _merge(written: dict, partial: dict, types: dict[str, type[BaseModel]]) -> dict:
    """The written item with the choice's keys; keys the chosen type does not have are
    dropped (a depot's half_life when the choice is a bolus), a null removes a key."""
    chosen = types.get(partial.get("type", written.get("type")))
    kept = {k: v for k, v in written.items() if chosen is None or k in chosen.model_fields}
    kept.update(partial)
    return {k: v for k, v in kept.items() if v is not None}


def _check_choice_overlap(
    variables: list[DecisionVariable],
    base: KeyPath,
    filename: str,
    positions: Positions,
    issues: list[Issue],
) -> None:
    seen: dict[KeyPath, str] = {}
    for variable in variables:
        if variable.kind != "choice":
            continue
        if variable.item_path in seen:
            path = (*base, variable.name, "path")
            line, column = position_of(positions, path)
            message = f"variable '{seen[variable.item_path]}' already chooses this item"
            issues.append(Issue(filename, line, column, path, message))
        seen[variable.item_path] = variable.name


def _active(variable: DecisionVariable, chosen: dict[KeyPath, BaseModel]) -> bool:
    """A field variable is inactive where a choice replaced its item by a type without that
    field (a depot's half_life when the choice is a bolus)."""
    if variable.factor is None:
        return True
    for target in variable.factor.targets:
        item = chosen.get(tuple(target.path[:4]))
        if item is not None and str(target.path[4]) not in type(item).model_fields:
            return False
    return True


def _combinations(variables: list[DecisionVariable]) -> list[Combination]:
    """Every combination of the enumerated variables (duplicates that differ only in an
    inactive variable are dropped), first variable varying slowest."""
    enumerated = [v for v in variables if v.kind != "continuous"]
    options = [list(v.items) if v.kind == "choice" else list(v.levels) for v in enumerated]
    result: list[Combination] = []
    seen: set[tuple] = set()
    for values in itertools.product(*options):
        picked = dict(zip((v.name for v in enumerated), values, strict=True))
        chosen = {v.item_path: v.items[picked[v.name]] for v in enumerated if v.kind == "choice"}
        levels = {n: x for n, x in picked.items() if _active(_named(variables, n), chosen)}
        key = tuple(levels.items())
        if key in seen:
            continue
        seen.add(key)
        continuous = tuple(
            i for i, v in enumerate(variables) if v.kind == "continuous" and _active(v, chosen)
        )
        result.append(Combination(len(result), levels, continuous))
    return result


def _named(variables: list[DecisionVariable], name: str) -> DecisionVariable:
    return next(v for v in variables if v.name == name)


# --------------------------------------------------------------------------- objective, bounds
class _MeasureChecker:
    """Checks the objective and constraints against the scenario; reports located issues."""

    def __init__(self, scenario: Scenario, spec: OptimizeSpec, issue: Callable[..., None]):
        self.scenario = scenario
        self.spec = spec
        self.issue = issue
        self.model = scenario.model_definition
        self.metric_units = metric_units(scenario)
        self.arms = resolved_arms(scenario)

    def objective(self, objective: Objective) -> Measure | None:
        key = ("objective",)
        arm = self._arm(objective.arm, (*key, "arm"))
        quantity = objective.quantity
        if arm is None:
            return None
        if quantity == "total_amount":
            unit = objective.unit
            if unit is not None and not _readable_unit(unit):
                self.issue((*key, "unit"), f"cannot read unit {unit!r}")
                return None
            return self._total(arm, objective.target, key, unit, (*key, "unit"))
        if quantity == "doses":
            return self._doses(arm, objective.target, key)
        return self._metric(arm, quantity, (*key, objective.sense))

    def bounds(self, constraint: Constraint, index: int) -> list[Bound]:
        key: KeyPath = ("constraints", index)
        if constraint.metric is not None:
            arm = self._arm(constraint.arm, (*key, "arm"))
            measure = self._metric(arm, constraint.metric, (*key, "metric")) if arm else None
            limits = {"max": constraint.max, "min": constraint.min}
            return self._bounds(measure, limits, key)
        if constraint.total_amount is not None:
            inner = constraint.total_amount
            key = (*key, "total_amount")
            arm = self._arm(inner.arm, (*key, "arm"))
            limit = inner.max if inner.max is not None else inner.min
            unit = f"{limit.units:~}" if limit is not None and not limit.unitless else None
            measure = self._total(arm, inner.target, key, unit) if arm else None
            return self._bounds(measure, {"max": inner.max, "min": inner.min}, key)
        inner = constraint.doses
        assert inner is not None
        key = (*key, "doses")
        arm = self._arm(inner.arm, (*key, "arm"))
        measure = self._doses(arm, inner.target, key) if arm else None
        limits = {k: v for k, v in (("max", inner.max), ("min", inner.min))}
        return self._bounds(measure, limits, key)

    # -- pieces
    def _arm(self, given: str | None, key: KeyPath) -> str | None:
        arm = given or self.spec.arm
        if arm in self.scenario.arms:
            return arm
        if given is not None:  # the section's own arm is reported once, at 'arm'
            self.issue(
                key,
                f"no arm '{arm}' (arms: {', '.join(self.scenario.arms)})",
                did_you_mean(arm, self.scenario.arms),
            )
        return None

    def _metric(self, arm: str, text: str, key: KeyPath) -> Measure | None:
        output, _, metric = text.partition(".")
        units = self.metric_units
        if output not in units:
            self.issue(
                key,
                f"'{output}' is not among the scenario's outputs ({', '.join(units)})",
                did_you_mean(output, units),
            )
            return None
        if metric not in units[output]:
            self.issue(
                key,
                f"'{metric}' is not a metric of '{output}' (metrics: {', '.join(units[output])})",
                did_you_mean(metric, units[output]),
            )
            return None
        return Measure("metric", arm, units[output][metric], output=output, metric=metric)

    def _target(self, arm: str, target: str | None, key: KeyPath, amounts: bool) -> str | None:
        if target is not None:
            known = [PRODUCT, *self.model.inputs]
            if target not in known:
                self.issue(
                    (*key, "target"),
                    f"unknown target '{target}' (the model's inputs: "
                    f"{', '.join(self.model.inputs)}; or '{PRODUCT}')",
                    did_you_mean(target, known),
                )
                return None
            return target
        if not amounts:
            return None
        try:
            totals = dose_totals(self.arms[arm], self.scenario, self.model)
        except PlanError as exc:
            self.issue(key, str(exc))
            return None
        delivered = [t for t, total in totals.items() if total.amount is not None]
        if len(delivered) == 1:
            return delivered[0]
        if not delivered:
            self.issue(
                key,
                f"arm '{arm}' has no dose that delivers an amount (bolus, depot or "
                "infusion); give 'target'",
            )
        else:
            self.issue(
                key,
                f"arm '{arm}' doses several targets ({', '.join(delivered)}); "
                "give 'target' to say which total is meant",
            )
        return None

    def _total(
        self,
        arm: str,
        target: str | None,
        key: KeyPath,
        preferred: str | None = None,
        unit_key: KeyPath | None = None,
    ) -> Measure | None:
        """The total amount of an arm's doses of a target, in the ``preferred`` unit (the
        objective's 'unit', a budget's unit) where the written doses convert to it, else in
        their own unit (a budget that does not convert is then reported at the budget)."""
        target = self._target(arm, target, key, amounts=True)
        if target is None:
            return None
        try:
            total = dose_totals(self.arms[arm], self.scenario, self.model).get(target)
        except PlanError as exc:
            self.issue(key, str(exc))
            return None
        amount = total.amount if total is not None else None
        if amount is None:
            if preferred is None:
                message = f"arm '{arm}' gives '{target}' no amount as written; give a unit"
                self.issue(key, message + " for its total (e.g. unit: ug)")
                return None
            return Measure("total_amount", arm, preferred, target=target)
        written = "" if amount.unitless else f"{amount.units:~}"
        if preferred is not None:
            try:
                amount_in(amount, preferred, target, self.model)
                return Measure("total_amount", arm, preferred, target=target)
            except UnitError as exc:
                if unit_key is not None:
                    self.issue(
                        unit_key,
                        f"unit '{preferred}' cannot express the total amount of arm '{arm}''s "
                        f"doses of {target} (as written: {amount:~P}): {exc}",
                    )
                    return None
        return Measure("total_amount", arm, written, target=target)

    def _doses(self, arm: str, target: str | None, key: KeyPath) -> Measure | None:
        if target is not None and self._target(arm, target, key, amounts=False) is None:
            return None
        return Measure("doses", arm, "", target=target)

    def _bounds(self, measure: Measure | None, limits: dict[str, Any], key: KeyPath) -> list[Bound]:
        if measure is None:
            return []
        bounds = []
        for sense, limit in limits.items():
            if limit is None:
                continue
            try:
                value = self._limit(measure, limit)
            except UnitError as exc:
                self.issue((*key, sense), f"{exc} (the unit of {measure.name})")
                continue
            scale = abs(value) if value != 0 else 1.0
            bounds.append(Bound(measure, sense, value, scale, (*key, sense)))  # type: ignore[arg-type]
        return bounds

    def _limit(self, measure: Measure, limit: Any) -> float:
        if measure.kind == "doses":
            return float(limit)
        quantity = parse_quantity(limit)
        if measure.kind == "total_amount":
            return amount_in(quantity, measure.unit, str(measure.target), self.model)
        weight = self.model.outputs[str(measure.output)].molecular_weight
        return in_unit(quantity, measure.unit, weight)


def _movable_items(variables: list[DecisionVariable]) -> tuple[tuple[str, str, int], ...]:
    """The doses and perturbations whose times a variable moves (a timing field, or a whole
    item chosen): only they can leave the span. The start side needs no constraint, since
    every variable's extremes were checked against it at load time."""
    items: list[tuple[str, str, int]] = []
    for variable in variables:
        paths = [variable.item_path] if variable.moves else []
        if variable.factor is not None:
            paths = [t.path for t in variable.factor.targets if t.path[-1] in TIMING_FIELDS]
        for path in paths:
            if path[0] == "arms" and len(path) >= 4:
                items.append((str(path[1]), str(path[2]), int(path[3])))
    return tuple(dict.fromkeys(items))


def _span_bound(scenario: Scenario, arm: str, items: tuple[tuple[str, str, int], ...]) -> Bound:
    """The automatic constraint: every dose (each repeat) and perturbation that a variable
    moves lies before the end of the span (otherwise the schedule is not valid)."""
    unit = f"{scenario.time.end.units:~}"
    length = float((scenario.time.end - scenario.time.start).to(unit).magnitude)
    return Bound(Measure("span", arm, unit, items=items), "min", 0.0, length, ())


def metric_units(scenario: Scenario) -> dict[str, dict[str, str]]:
    """output -> {metric -> unit}: every simple metric of every reported output, and the
    scenario's own time_above metrics (named as in metrics tables: 'time_above_<threshold>')."""
    model = scenario.model_definition
    extra = [m for m in scenario.metrics if isinstance(m, TimeAbove)]
    probe = scenario.model_copy(update={"metrics": [*SIMPLE_METRICS, *extra]})
    _, columns = reported_outputs(probe, model)
    time_unit = f"{scenario.time.end.units:~}"
    found = thresholds(probe, columns, model)
    table: dict[str, dict[str, str]] = {}
    for name, unit in metric_columns(probe.metrics, columns, time_unit, found):
        output, _, metric = name.partition(".")
        table.setdefault(output, {})[metric] = unit
    return table


def in_unit(
    quantity: pint.Quantity, unit: str, molecular_weight: Any = None, volume: Any = None
) -> float:
    """A limit in a metric's (or a total's) unit; a plain number only where that unit is
    dimensionless (the project's rule: quantities carry units)."""
    if not unit or parse_quantity(f"1 {unit}").dimensionless:
        if not quantity.dimensionless:
            raise UnitError(f"expected a plain number, got {quantity:~P}")
        return convert(quantity, unit or "dimensionless")
    if quantity.units == parse_quantity(1).units:
        raise UnitError(f"expected a quantity convertible to {unit}, got {quantity.magnitude:g}")
    return convert(quantity, unit, molecular_weight=molecular_weight, volume=volume)


def amount_in(quantity: pint.Quantity, unit: str, target: str, model: Any) -> float:
    """A total amount in ``unit``, through the input's molecular weight and volume."""
    item = model.inputs.get(target)
    if item is None or not unit or parse_quantity(f"1 {unit}").dimensionless:
        return in_unit(quantity, unit)  # product doses: fractions or volumes, as written
    return in_unit(quantity, unit, item.molecular_weight, item.volume)


def _readable_unit(unit: str) -> bool:
    try:
        parse_quantity(f"1 {unit}")
    except UnitError:
        return False
    return True


# =========================================================================== evaluating
@dataclass
class Evaluation:
    """One simulated (or schedule-only) point: objective and constraint values in their units,
    and each constraint's slack divided by its scale (>= -FEASIBILITY_TOLERANCE: satisfied)."""

    objective: float
    values: list[float]
    slacks: list[float]
    status: str = "ok"
    message: str = ""
    simulated: bool = False

    @property
    def violation(self) -> float:
        """The largest relative violation (0 if every constraint holds; inf if unknown)."""
        worst = 0.0
        for slack in self.slacks:
            if not math.isfinite(slack):
                return math.inf
            worst = max(worst, -slack)
        return worst

    @property
    def feasible(self) -> bool:
        return (
            self.status == "ok"
            and math.isfinite(self.objective)
            and self.violation <= FEASIBILITY_TOLERANCE
        )


class _Problem:
    """The compiled model and everything a search needs: built once per run (forked workers
    inherit it)."""

    def __init__(self, opt: Optimization):
        self.opt = opt
        self.model = opt.scenario.model_definition
        metrics = [m for m in opt.measures if m.kind == "metric"]
        self.evaluator: PointEvaluator | None = None
        self.base = opt.scenario
        if metrics:
            arms = list(dict.fromkeys(m.arm for m in metrics))
            outputs = list(dict.fromkeys(str(m.output) for m in metrics))
            simple = [str(m.metric) for m in metrics if m.metric in SIMPLE_METRICS]
            extra = [m for m in opt.scenario.metrics if isinstance(m, TimeAbove)]
            key = f"optimize-{_digest(opt)}"
            job = SweepJob(
                key, opt.scenario, [], arms, outputs, [*dict.fromkeys(simple), *extra], False
            )
            self.evaluator = PointEvaluator(job)
            self.base = self.evaluator.scenario
            self._compile_every_slot()
        self.objective_scale = 1.0
        self.choices = [v for v in opt.variables if v.kind == "choice"]

    def _compile_every_slot(self) -> None:
        """Compile once with every infusion and depot any combination needs, so that no search
        recompiles mid-way (and every process integrates the same state layout)."""
        assert self.evaluator is not None
        for combination in self.opt.combinations:
            point = {**combination.levels}
            for i in combination.continuous:
                point[self.opt.variables[i].name] = self.opt.variables[i].value(0.5)
            try:
                plans = self.evaluator.plans_for(self.scenario_at(point))
            except Exception:  # an invalid point is found again (and recorded) by the search
                continue
            self.evaluator.ensure_slots(plans)

    def scenario_at(self, point: dict[str, Any], base: Scenario | None = None) -> Scenario:
        """The scenario with each variable at its value: choices first (whole items), then
        field values (shallow copies of the frozen scenario; no YAML, no validation)."""
        scenario = self.base if base is None else base
        for variable in self.choices:
            name = point.get(variable.name)
            if name is not None:
                scenario = _replace(scenario, variable.item_path, variable.items[name])
        factors, values = [], []
        for variable in self.opt.variables:
            if variable.factor is not None and point.get(variable.name) is not None:
                factors.append(variable.factor)
                values.append(point[variable.name])
        return apply_point(scenario, factors, values)

    def evaluate(self, point: dict[str, Any] | None) -> Evaluation:
        """Objective and constraints at a point (None: the scenario as written). Never raises:
        a point that cannot be built or simulated is recorded as failed."""
        measures = self.opt.measures
        values: dict[Measure, float] = {}
        status, message, simulated = "ok", "", False
        try:
            scenario = self.base if point is None else self.scenario_at(point)
            values.update(self._schedule(scenario, measures))
            if self.evaluator is not None:
                simulated = True
                values.update(self._simulate(scenario, measures))
        except Exception as exc:  # any failure is this point's; the search goes on
            status, message = "failed", _one_line(exc)
        objective = values.get(measures[0], math.nan)
        bounds = self.opt.constraints
        constraint_values = [values.get(b.measure, math.nan) for b in bounds]
        slacks = [b.slack(v) / b.scale for b, v in zip(bounds, constraint_values, strict=True)]
        return Evaluation(objective, constraint_values, slacks, status, message, simulated)

    def _schedule(self, scenario: Scenario, measures: list[Measure]) -> dict[Measure, float]:
        arms = resolved_arms(scenario)
        found: dict[Measure, float] = {}
        for measure in measures:
            if measure.kind == "span":
                found[measure] = span_slack(scenario, measure.items, self.model)
            elif measure.kind in ("total_amount", "doses"):
                totals = dose_totals(arms[measure.arm], scenario, self.model)
                found[measure] = _schedule_value(measure, totals, self.model)
        return found

    def _simulate(self, scenario: Scenario, measures: list[Measure]) -> dict[Measure, float]:
        """The metric measures from one simulation of each needed arm on the compiled model."""
        evaluator = self.evaluator
        assert evaluator is not None
        plans = evaluator.plans_for(scenario)
        evaluator.ensure_slots(plans)
        preeq = scenario.preequilibration
        columns: dict[tuple[str, str], float] = {}
        for plan in plans:
            trajectory = simulate_arm(evaluator.compiled, plan, evaluator.model_times, preeq)
            steady = trajectory.steady_state
            if steady is not None and not steady.found and preeq and preeq.on_failure == "error":
                raise SimulationError(f"arm '{plan.name}': {steady.message}", plan.name, 0.0)
            row = evaluator.metrics_of(trajectory.values)
            for (column, _), value in zip(evaluator.metric_columns, row, strict=True):
                columns[(plan.name, column)] = float(value)
        return {m: columns[(m.arm, m.column)] for m in measures if m.kind == "metric"}

    # -- what the optimiser sees
    def scaled_objective(self, evaluation: Evaluation) -> float:
        sign = 1.0 if self.opt.sense == "minimize" else -1.0
        return sign * evaluation.objective / self.objective_scale


def _schedule_value(measure: Measure, totals: dict, model: Any) -> float:
    if measure.kind == "doses":
        if measure.target is None:
            return float(sum(t.events for t in totals.values()))
        total = totals.get(measure.target)
        return float(total.events if total is not None else 0)
    total = totals.get(str(measure.target))
    if total is None or total.amount is None:
        return 0.0
    return amount_in(total.amount, measure.unit, str(measure.target), model)


def span_slack(scenario: Scenario, items: tuple[tuple[str, str, int], ...], model: Any) -> float:
    """How long before the end of the span the last repeat of each given dose (and the end of
    each given perturbation) falls, at the latest, in the unit of ``time.end``; negative when
    one falls after the end."""
    start = model_time(scenario.time.start, model)
    end = model_time(scenario.time.end, model)
    slack = end - start
    for arm, kind, index in items:
        item = getattr(scenario.arms[arm], kind)[index]
        if kind == "doses":
            last = repeat_times(item, model, start)[-1]
        else:
            moments = [model_time(t, model) for t in (item.time, item.until) if t is not None]
            last = max(moments, default=start)
        slack = min(slack, end - last)
    unit = f"{scenario.time.end.units:~}"
    return slack * convert(parse_quantity(f"1 {model.time_unit}"), unit)


def _replace(node: Any, path: KeyPath, value: Any) -> Any:
    """``node`` with the item at ``path`` replaced (shallow copies of frozen objects)."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, BaseModel):
        return node.model_copy(update={str(key): _replace(getattr(node, str(key)), rest, value)})
    if isinstance(node, dict):
        return {**node, key: _replace(node[key], rest, value)}
    items = list(node)
    items[int(key)] = _replace(items[int(key)], rest, value)
    return items


def _digest(opt: Optimization) -> str:
    content = {
        "scenario": opt.scenario.model_dump(mode="json", exclude=set(STUDY_SECTIONS)),
        "spec": opt.spec.model_dump(mode="json"),
        "model": opt.scenario.model_definition.sha256,
    }
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (for YAML, JSON and labels)."""
    return value.item() if isinstance(value, np.generic) else value


# =========================================================================== searching
@dataclass(frozen=True)
class SearchTask:
    """One local search: a combination and a start (None: the combination has no continuous
    variable and is evaluated once)."""

    index: int
    combination: int
    start: int | None
    u0: tuple[float, ...]


@dataclass
class SearchOutcome:
    """What one search evaluated (in order) and what scipy said."""

    task: SearchTask
    points: list[dict[str, Any]]
    evaluations: list[Evaluation]
    success: bool | None
    message: str
    seconds: float = 0.0
    sign: float = 1.0  # +1 to minimise, -1 to maximise

    def best(self) -> int | None:
        """Index of this search's best point: feasible with the best objective, else the
        least violated."""
        return _best_index(self.evaluations, self.sign)


class _Budget(Exception):
    """Raised inside a search when it has used its evaluations."""


def _tasks(opt: Optimization) -> list[SearchTask]:
    """Every search, in a fixed order: combinations in order, starts in order. Start points
    are Latin-hypercube points seeded by (seed, combination): the same file, the same starts."""
    from scipy.stats import qmc

    tasks: list[SearchTask] = []
    for combination in opt.combinations:
        d = len(combination.continuous)
        if d == 0:
            tasks.append(SearchTask(len(tasks), combination.index, None, ()))
            continue
        rng = np.random.default_rng([opt.spec.seed, combination.index])
        cube = qmc.LatinHypercube(d=d, rng=rng).random(opt.spec.starts)
        for start, u0 in enumerate(cube):
            tasks.append(SearchTask(len(tasks), combination.index, start, tuple(map(float, u0))))
    return tasks


def _run_search(problem: _Problem, task: SearchTask) -> SearchOutcome:
    """One local search from ``task.u0`` (or the single evaluation of a discrete combination),
    evaluations memoised by the variable vector."""
    opt = problem.opt
    tick = clock.perf_counter()
    combination = opt.combinations[task.combination]
    variables = [opt.variables[i] for i in combination.continuous]
    memo: dict[tuple[float, ...], Evaluation] = {}
    points: list[dict[str, Any]] = []
    evaluations: list[Evaluation] = []
    budget = opt.spec.max_evaluations

    def at(u: Any) -> Evaluation:
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        key = tuple(float(x) for x in u)
        if key not in memo:
            if len(memo) >= budget:
                raise _Budget
            point = {**combination.levels}
            point.update({v.name: v.value(x) for v, x in zip(variables, key, strict=True)})
            memo[key] = problem.evaluate(point)
            points.append(point)
            evaluations.append(memo[key])
        return memo[key]

    if not variables:
        at([])
        success, message = None, "enumerated (no continuous variable in this combination)"
    else:
        success, message = _minimize(problem, at, task.u0, len(variables))
    sign = 1.0 if opt.sense == "minimize" else -1.0
    seconds = clock.perf_counter() - tick
    return SearchOutcome(task, points, evaluations, success, message, seconds, sign)


def _minimize(
    problem: _Problem, at: Callable[[Any], Evaluation], u0: tuple[float, ...], d: int
) -> tuple[bool, str]:
    """scipy.optimize.minimize on the normalised box; returns (success, message)."""
    from scipy.optimize import Bounds, NonlinearConstraint, minimize

    spec = problem.opt.spec
    tolerant = spec.method == "cobyqa"  # COBYQA puts an extreme barrier on NaN; others cannot
    worst = [1.0]

    def objective(u: Any) -> float:
        value = problem.scaled_objective(at(u))
        if math.isfinite(value):
            worst[0] = max(worst[0], abs(value))
            return value
        return math.nan if tolerant else worst[0] + 1.0

    def slacks(u: Any) -> np.ndarray:
        values = np.asarray(at(u).slacks, dtype=float)
        return values if tolerant else np.nan_to_num(values, nan=-1.0, neginf=-1.0)

    constraints = [NonlinearConstraint(slacks, 0.0, np.inf)] if problem.opt.constraints else []
    options: dict[str, Any] = {
        "cobyqa": {
            "maxfev": spec.max_evaluations,
            "initial_tr_radius": 0.25,
            "final_tr_radius": 1e-6,
        },
        "cobyla": {"maxiter": spec.max_evaluations, "rhobeg": 0.25, "tol": 1e-6},
        # SLSQP's finite-difference step, in the normalised box: large enough to see a metric
        # taken on the output grid (min, max) move when a dose time moves
        "slsqp": {"maxiter": max(1, spec.max_evaluations // (d + 2)), "ftol": 1e-9, "eps": 1e-3},
    }[spec.method]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = minimize(
                objective,
                np.asarray(u0),
                method=spec.method,
                bounds=Bounds(np.zeros(d), np.ones(d)),
                constraints=constraints,
                options=options,
            )
            success, message = bool(result.success), str(result.message)
        except _Budget:
            success, message = False, f"stopped after max_evaluations ({spec.max_evaluations})"
    notes = list(dict.fromkeys(str(w.message).split("\n")[0] for w in caught))
    if notes:
        message += " (warnings: " + "; ".join(notes) + ")"
    return success, message


def _best_index(evaluations: list[Evaluation], sign: float) -> int | None:
    """Best feasible (ties: the first), else the least violated; None if empty."""
    if not evaluations:
        return None
    feasible = [i for i, e in enumerate(evaluations) if e.feasible]
    if feasible:
        return min(feasible, key=lambda i: (sign * evaluations[i].objective, i))

    def badness(i: int) -> tuple[float, float, int]:
        e = evaluations[i]
        objective = sign * e.objective if math.isfinite(e.objective) else math.inf
        return (e.violation, objective, i)

    return min(range(len(evaluations)), key=badness)


_ACTIVE: _Problem | None = None  # the problem forked workers inherit


def _search_in_worker(task: SearchTask) -> SearchOutcome:
    assert _ACTIVE is not None, "worker has no optimisation problem"
    return _run_search(_ACTIVE, task)


def _run_tasks(
    problem: _Problem,
    tasks: list[SearchTask],
    workers: int,
    report: Callable[[SearchOutcome], None],
) -> list[SearchOutcome]:
    """Every search, serially or on forked local processes; outcomes in task order, so the
    answer does not depend on which process finished first."""
    global _ACTIVE
    forking = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or len(tasks) <= 1 or not forking:
        outcomes = []
        for task in tasks:
            outcomes.append(_run_search(problem, task))
            report(outcomes[-1])
        return outcomes
    _ACTIVE = problem  # inherited by the forked workers with the compiled model
    try:
        context = multiprocessing.get_context("fork")
        found: dict[int, SearchOutcome] = {}
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_search_in_worker, task) for task in tasks]
            for future in as_completed(futures):
                outcome = future.result()
                found[outcome.task.index] = outcome
                report(outcome)
        return [found[task.index] for task in tasks]
    finally:
        _ACTIVE = None


class _Progress:
    """One line per ~10 % of the searches on stderr ('plain'; 'auto' is plain), or nothing."""

    def __init__(self, total: int, mode: Progress, label: str):
        self.total, self.done, self.label = total, 0, label
        self.mode = "plain" if mode == "auto" else mode
        self.next = max(1, total // 10)
        self.started = clock.perf_counter()

    def __call__(self, outcome: SearchOutcome) -> None:
        self.done += 1
        if self.mode != "plain" or (self.done < self.next and self.done != self.total):
            return
        self.next = self.done + max(1, self.total // 10)
        elapsed = clock.perf_counter() - self.started
        print(
            f"{self.label}: {self.done}/{self.total} searches ({elapsed:.1f} s)",
            file=sys.stderr,
            flush=True,
        )


# =========================================================================== the result
@dataclass
class OptimizationResult:
    """The best schedule found, the baseline (the scenario as written), how they compare,
    every search and evaluation, and the folder they were written to."""

    optimization: Optimization
    folder: Path
    feasible: bool
    best: dict[str, Any]  # variable -> value in its unit (an int, or a variant/choice name)
    objective: float  # at the best point, in objective_unit
    objective_unit: str
    baseline: Evaluation
    best_evaluation: Evaluation
    best_scenario: Scenario
    comparison: pd.DataFrame
    searches: pd.DataFrame
    evaluations: pd.DataFrame
    trajectories: pd.DataFrame
    simulations: int
    seconds: float
    violated: list[str] = field(default_factory=list)  # constraints the answer breaks

    def value_text(self, name: str) -> str:
        """A variable's best value as written in a scenario ('1.81 nM', 'hypoxic')."""
        variable = _named(self.optimization.variables, name)
        return variable.text(self.best.get(name))

    def report(self) -> str:
        """A short human-readable summary (what the CLI prints)."""
        opt = self.optimization
        objective = opt.objective
        lines = [
            f"optimize {opt.optimization_id}: {opt.sense} {objective.name} of arm "
            f"'{objective.arm}' by the schedule of arm '{opt.spec.arm}'",
        ]
        if self.feasible:
            lines.append("best schedule found (every constraint holds):")
        else:
            lines.append(
                "no feasible schedule found; the least violated point breaks: "
                + ", ".join(self.violated)
            )
        baseline_values = baseline_point(opt)
        width = max(len(v.name) for v in opt.variables)
        for variable in opt.variables:
            written = baseline_values.get(variable.name)
            lines.append(
                f"  {variable.name:<{width}} = {variable.text(self.best.get(variable.name))}"
                f"   (as written: {_written_text(variable, written)})"
            )
        unit = f" {unit_text(self.objective_unit)}".rstrip()
        change = _percent(self.objective, self.baseline.objective)
        lines.append(
            f"objective {objective.name}: {self.objective:.6g}{unit} "
            f"(as written: {self.baseline.objective:.6g}{unit}{change})"
        )
        for bound, best, written in zip(
            opt.constraints, self.best_evaluation.values, self.baseline.values, strict=True
        ):
            if bound.measure.kind == "span":
                lines.append(f"  {bound.name}: {_mark(bound, best)}")
                continue
            unit = f" {unit_text(bound.measure.unit)}".rstrip()
            lines.append(
                f"  {bound.name}: {best:.6g}{unit} ({_mark(bound, best)}; as written "
                f"{written:.6g}{unit}, {_mark(bound, written)})"
            )
        if not self.baseline.feasible:
            lines.append("  (the scenario as written does not meet every constraint)")
        searches = len(self.searches)
        lines.append(
            f"{searches} searches over {len(opt.combinations)} combinations, "
            f"{self.simulations:,} simulations, {self.seconds:.1f} s; results in {self.folder}"
        )
        lines.append(DISCLAIMER)
        return "\n".join(lines)


def _mark(bound: Bound, value: float) -> str:
    return "ok" if bound.slack(value) / bound.scale >= -FEASIBILITY_TOLERANCE else "VIOLATED"


def unit_text(unit: str) -> str:
    """A unit for people: '' for dimensionless, 'week' for 'dimensionless*week'."""
    if unit == "dimensionless":
        return ""
    return unit.removeprefix("dimensionless*")


def _percent(value: float, reference: float) -> str:
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return ""
    return f"; {100 * (value - reference) / abs(reference):+.1f} %"


def baseline_point(opt: Optimization) -> dict[str, Any]:
    """Each variable's value in the scenario as written (None where the path holds nothing,
    e.g. a parameter left at the model's value; 'as written' for a choice)."""
    values: dict[str, Any] = {}
    for variable in opt.variables:
        if variable.factor is None:
            values[variable.name] = variable.written
            continue
        node: Any = opt.scenario
        for key in variable.factor.targets[0].path:
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list):
                node = node[int(key)] if int(key) < len(node) else None
            else:
                node = getattr(node, str(key), None)
            if node is None:
                break
        if isinstance(node, pint.Quantity):
            node = variable.factor.magnitude(node)
        values[variable.name] = node
    return values


def _written_text(variable: DecisionVariable, value: Any) -> str:
    if value is None:
        return "not set"
    return variable.text(value)


# =========================================================================== running
def run_optimization(
    optimization: Optimization | str | Path,
    *,
    out: str | Path | None = None,
    workers: int = 1,
    progress: Progress = "auto",
    plots: bool = True,
    command: str | None = None,
    models_dir: str | Path | None = None,
) -> OptimizationResult:
    """Search the best schedule and write the result folder (default
    ``results/<id>/optimize-<UTC stamp>/``): optimization.json, searches.csv,
    evaluations.csv, best.yaml, comparison.csv, trajectories.csv and
    plots/optimized_vs_baseline.png. ``workers`` > 1 runs the searches on forked local
    processes (same answer as serial)."""
    if not isinstance(optimization, Optimization):
        optimization = load_optimization(optimization, models_dir=models_dir)
    opt = optimization
    folder = check_run_folder(out if out is not None else default_optimization_folder(opt))
    started = datetime.now(UTC)
    tick = clock.perf_counter()
    problem = _Problem(opt)
    baseline = problem.evaluate(None)
    scale = abs(baseline.objective)
    problem.objective_scale = scale if math.isfinite(scale) and scale > 0 else 1.0
    tasks = _tasks(opt)
    label = f"optimize {opt.optimization_id}"
    outcomes = _run_tasks(
        problem, tasks, max(1, int(workers)), _Progress(len(tasks), progress, label)
    )
    sign = 1.0 if opt.sense == "minimize" else -1.0
    flat = [(o, p, e) for o in outcomes for p, e in zip(o.points, o.evaluations, strict=True)]
    if not flat:
        raise RuntimeError("the optimisation evaluated no point")  # combinations always exist
    index = _best_index([e for _, _, e in flat], sign)
    assert index is not None
    _, best_point, best_evaluation = flat[index]
    best_scenario = problem.scenario_at(best_point, base=opt.scenario)
    simulations = sum(e.simulated for _, _, e in flat) + int(baseline.simulated)
    trajectories, doses = _trajectories(opt, best_scenario)
    seconds = clock.perf_counter() - tick
    violated = [
        b.name
        for b, s in zip(opt.constraints, best_evaluation.slacks, strict=True)
        if not s >= -FEASIBILITY_TOLERANCE
    ]
    if best_evaluation.status != "ok":
        violated.append(f"simulation failed ({best_evaluation.message})")
    result = OptimizationResult(
        optimization=opt,
        folder=folder,
        feasible=best_evaluation.feasible,
        best={v.name: best_point.get(v.name) for v in opt.variables},
        objective=best_evaluation.objective,
        objective_unit=opt.objective.unit,
        baseline=baseline,
        best_evaluation=best_evaluation,
        best_scenario=best_scenario,
        comparison=_comparison(opt, baseline, best_point, best_evaluation),
        searches=_search_table(opt, outcomes),
        evaluations=_evaluation_table(opt, flat),
        trajectories=trajectories,
        simulations=simulations,
        seconds=seconds,
        violated=violated,
    )
    manifest = _manifest(result, started, command, workers, len(tasks))
    _write_folder(result, manifest, doses, plots)
    return result


def default_optimization_folder(opt: Optimization, root: str | Path = "results") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(root) / opt.optimization_id / f"optimize-{stamp}"


def _trajectories(opt: Optimization, best: Scenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline and best trajectories (every output of the scenario) of the optimised arm and
    the arms the objective and constraints name, in one long table, and their dose events."""
    arms = list(dict.fromkeys([opt.spec.arm, *(m.arm for m in opt.measures)]))
    frames, dose_frames = [], []
    for schedule, scenario in (("baseline", opt.scenario), ("best", best)):
        reduced = _only_arms(scenario, arms)
        try:
            run = run_scenario(reduced, command="secretome-sim optimize")
        except SimulationError as exc:  # keep what completed; the tables say so
            run = exc.partial
            if run is None:
                continue
        table = run.trajectories.copy()
        table.insert(0, "schedule", schedule)
        frames.append(table)
        events = run.doses[run.doses["is_dose"]].copy()
        events.insert(0, "schedule", schedule)
        dose_frames.append(events)
    trajectories = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    doses = pd.concat(dose_frames, ignore_index=True) if dose_frames else pd.DataFrame()
    return trajectories, doses


def _only_arms(scenario: Scenario, arms: list[str]) -> Scenario:
    resolved = resolved_arms(scenario)
    return scenario.model_copy(
        update={"arms": {a: resolved[a] for a in arms}, "reference_arm": None}
    )


# --------------------------------------------------------------------------- tables
def _comparison(
    opt: Optimization, baseline: Evaluation, best_point: dict[str, Any], best: Evaluation
) -> pd.DataFrame:
    """Variables, objective and constraints: as written versus the best point."""
    rows = []
    written = baseline_point(opt)
    for variable in opt.variables:
        rows.append(
            {
                "role": "variable",
                "name": variable.name,
                "arm": "",
                "unit": variable.unit,
                "sense": "",
                "limit": np.nan,
                "baseline": _plain(written.get(variable.name)),
                "best": _plain(best_point.get(variable.name)),
            }
        )
    rows.append(
        {
            "role": "objective",
            "name": opt.objective.name,
            "arm": opt.objective.arm,
            "unit": opt.objective.unit,
            "sense": opt.sense,
            "limit": np.nan,
            "baseline": baseline.objective,
            "best": best.objective,
        }
    )
    for bound, before, after in zip(opt.constraints, baseline.values, best.values, strict=True):
        rows.append(
            {
                "role": "constraint",
                "name": bound.name,
                "arm": bound.measure.arm,
                "unit": bound.measure.unit,
                "sense": bound.sense,
                "limit": bound.limit,
                "baseline": before,
                "best": after,
                "baseline_slack": bound.slack(before),
                "best_slack": bound.slack(after),
                "baseline_satisfied": bound.slack(before) / bound.scale >= -FEASIBILITY_TOLERANCE,
                "best_satisfied": bound.slack(after) / bound.scale >= -FEASIBILITY_TOLERANCE,
            }
        )
    table = pd.DataFrame(rows)
    for column in ("baseline", "best"):  # integers stay integers next to floats and names
        table[column] = pd.Series([row[column] for row in rows], dtype=object)
    return table


def _search_table(opt: Optimization, outcomes: list[SearchOutcome]) -> pd.DataFrame:
    rows = []
    for outcome in outcomes:
        task = outcome.task
        combination = opt.combinations[task.combination]
        row: dict[str, Any] = {
            "search": task.index,
            "combination": combination.label,
            "start": task.start if task.start is not None else "",
        }
        for i, u in zip(combination.continuous, task.u0, strict=True):
            variable = opt.variables[i]
            row[f"start.{variable.name}"] = variable.value(u)
        best = outcome.best()
        evaluation = outcome.evaluations[best] if best is not None else None
        row.update(
            {
                "success": "" if outcome.success is None else outcome.success,
                "message": outcome.message,
                "evaluations": len(outcome.evaluations),
                "objective": evaluation.objective if evaluation else np.nan,
                "feasible": evaluation.feasible if evaluation else False,
                "max_violation": evaluation.violation if evaluation else np.nan,
            }
        )
        point = outcome.points[best] if best is not None else {}
        for variable in opt.variables:
            row[variable.name] = _plain(point.get(variable.name))
        row["seconds"] = round(outcome.seconds, 4)
        rows.append(row)
    return pd.DataFrame(rows)


def _evaluation_table(
    opt: Optimization, flat: list[tuple[SearchOutcome, dict[str, Any], Evaluation]]
) -> pd.DataFrame:
    names = constraint_columns(opt)
    rows = []
    for number, (outcome, point, evaluation) in enumerate(flat):
        combination = opt.combinations[outcome.task.combination]
        row: dict[str, Any] = {
            "evaluation": number,
            "search": outcome.task.index,
            "combination": combination.label,
        }
        for variable in opt.variables:
            row[variable.name] = _plain(point.get(variable.name))
        row["objective"] = evaluation.objective
        for name, value in zip(names, evaluation.values, strict=True):
            row[name] = value
        row.update(
            {
                "max_violation": evaluation.violation,
                "feasible": evaluation.feasible,
                "simulated": evaluation.simulated,
                "status": evaluation.status,
                "message": evaluation.message,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def constraint_columns(opt: Optimization) -> list[str]:
    """One readable, unique column name per constraint: 'conc.max <= 3 nM'."""
    names: list[str] = []
    for bound in opt.constraints:
        name = bound.name
        if bound.measure.arm != opt.spec.arm:
            name += f" [{bound.measure.arm}]"
        while name in names:
            name += "'"
        names.append(name)
    return names


# --------------------------------------------------------------------------- the folder
def _manifest(
    result: OptimizationResult, started: datetime, command: str | None, workers: int, n: int
) -> dict[str, Any]:
    import scipy

    opt = result.optimization
    model = opt.scenario.model_definition
    return {
        "secretome_sim_version": __version__,
        "command": command or "python API: run_optimization",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "elapsed_seconds": round(result.seconds, 3),
        "status": "feasible" if result.feasible else "no feasible schedule found",
        "scenario": {
            "id": opt.scenario.scenario_id,
            "file": str(opt.scenario.source) if opt.scenario.source else None,
        },
        "optimization_file": str(opt.source) if opt.source else None,
        "model": {"id": model.id, "sha256": model.sha256},
        "engine": engine_versions(),
        "scipy": scipy.__version__,
        "spec": opt.spec.model_dump(mode="json"),
        "objective": {
            "sense": opt.sense,
            "measure": opt.objective.name,
            "arm": opt.objective.arm,
            "unit": opt.objective.unit,
            "scale": abs(result.baseline.objective)
            if math.isfinite(result.baseline.objective) and result.baseline.objective != 0
            else 1.0,
        },
        "variables": {
            v.name: {
                "paths": v.paths,
                "kind": v.kind,
                "unit": v.unit,
                "low": v.low if v.kind == "continuous" else None,
                "high": v.high if v.kind == "continuous" else None,
                "scale": ("log" if v.log else "lin") if v.kind == "continuous" else None,
                "levels": [_plain(x) for x in v.levels] or list(v.items) or None,
            }
            for v in opt.variables
        },
        "constraints": [
            {
                "name": b.name,
                "measure": b.measure.name,
                "arm": b.measure.arm,
                "sense": b.sense,
                "limit": b.limit,
                "unit": b.measure.unit,
                "scale": b.scale,
                "automatic": b.measure.kind == "span",
            }
            for b in opt.constraints
        ],
        "feasibility_tolerance": FEASIBILITY_TOLERANCE,
        "feasibility_rule": (
            "a point is feasible when it simulated without error and every constraint's slack "
            "divided by its scale (the limit's magnitude, or the span's length) is >= "
            f"-{FEASIBILITY_TOLERANCE:g}"
        ),
        "combinations": len(opt.combinations),
        "searches": n,
        "evaluations": len(result.evaluations),
        "simulations": result.simulations,
        "workers": workers,
        "best": {
            "feasible": result.feasible,
            "values": {k: _plain(v) for k, v in result.best.items()},
            "objective": result.objective,
            "violated": result.violated,
        },
        "baseline": {
            "objective": result.baseline.objective,
            "status": result.baseline.status,
            "message": result.baseline.message,
        },
        "disclaimer": DISCLAIMER,
    }


def best_yaml(result: OptimizationResult) -> str:
    """best.yaml: each variable's best value by path (with its unit), and the changed parts of
    the scenario as they would be written (paste them over the scenario's)."""
    opt = result.optimization
    values: dict[str, Any] = {}
    for variable in opt.variables:
        value = result.best.get(variable.name)
        if variable.kind == "choice":  # the chosen item as it ends up, other variables set
            values[str(variable.spec.path)] = _written(_item_at(result.best_scenario, variable))
            continue
        for path in variable.paths:
            values[path] = _yaml_value(variable, value)
    changed: dict[str, Any] = {}
    best = result.best_scenario
    heads = {_head(p) for v in opt.variables for p in v.paths}
    for head, arm in sorted(heads):
        if head == "arms" and arm is not None:
            dumped = _written(best.arms[arm])
            for kind in ("doses", "perturbations"):
                if kind in dumped:
                    dumped[kind] = [_written(item) for item in getattr(best.arms[arm], kind)]
            changed.setdefault("arms", {})[arm] = dumped
        elif head == "parameters":
            changed["parameters"] = best.model_dump(mode="json")["parameters"]
        elif head == "product" and best.product is not None:
            changed["product"] = best.product.model_dump(mode="json", exclude_defaults=True)
    status = "every constraint holds" if result.feasible else "NO feasible schedule was found"
    header = (
        f"# Best schedule found by secretome-sim optimize for '{opt.optimization_id}' "
        f"({status}).\n"
        f"# {opt.sense} {opt.objective.name} of arm '{opt.objective.arm}': "
        f"{result.objective:.6g} {unit_text(opt.objective.unit)}".rstrip()
        + "\n# A prediction of a simplified model, not a measurement.\n"
        "# 'values': each decision variable by path; 'scenario': the changed parts, as a "
        "scenario writes them.\n"
    )
    document: dict[str, Any] = {"values": values}
    chosen = {v.name: result.best.get(v.name) for v in opt.variables if v.kind == "choice"}
    if chosen:
        document["chosen"] = chosen  # which alternative each 'choices' variable picked
    document["scenario"] = changed
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return header + body


def _item_at(scenario: Scenario, variable: DecisionVariable) -> BaseModel:
    _, arm, kind, index = variable.item_path
    return getattr(scenario.arms[str(arm)], str(kind))[int(index)]


def _written(item: BaseModel) -> dict[str, Any]:
    """An object as a scenario writes it: defaults left out, 'type' first."""
    dumped = item.model_dump(mode="json", exclude_defaults=True)
    return {"type": dumped.pop("type"), **dumped} if "type" in dumped else dumped


def _head(path: str) -> tuple[str, str | None]:
    parts = parse_path(path)
    return (str(parts[0]), str(parts[1]) if parts[0] == "arms" else None)


def _yaml_value(variable: DecisionVariable, value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if variable.factor is not None and variable.factor.kind == "int":
        return round(value)
    if variable.unit:
        return f"{value:.6g} {variable.unit}"
    return float(f"{value:.6g}")


def _write_folder(
    result: OptimizationResult, manifest: dict[str, Any], doses: pd.DataFrame, plots: bool
) -> None:
    """Write every file into a hidden sibling, then rename it into place: the folder appears
    whole or not at all."""
    final = check_run_folder(result.folder)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    mask = os.umask(0)
    os.umask(mask)
    staging.chmod(0o777 & ~mask)
    try:
        if plots and not result.trajectories.empty:
            from .optimize_plots import optimized_vs_baseline

            (staging / "plots").mkdir()
            path = optimized_vs_baseline(result, doses, staging / "plots")
            manifest["plots"] = [str(Path("plots") / path.name)]
        (staging / "optimization.json").write_text(
            json.dumps(_finite(manifest), indent=2, default=str) + "\n", encoding="utf-8"
        )
        result.searches.to_csv(staging / "searches.csv", index=False)
        result.evaluations.to_csv(staging / "evaluations.csv", index=False)
        result.comparison.to_csv(staging / "comparison.csv", index=False)
        result.trajectories.to_csv(staging / "trajectories.csv", index=False)
        (staging / "best.yaml").write_text(best_yaml(result), encoding="utf-8")
        opt = result.optimization
        if opt.text is not None and opt.source is not None:
            (staging / opt.source.name).write_text(opt.text, encoding="utf-8")
        if final.exists():
            final.rmdir()  # empty, checked above
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: null instead (numpy scalars as Python numbers)."""
    value = _plain(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


__all__ = [
    "FEASIBILITY_TOLERANCE",
    "MAX_COMBINATIONS",
    "Optimization",
    "OptimizationResult",
    "build_optimization",
    "load_optimization",
    "run_optimization",
]
