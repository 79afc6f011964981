"""The only libRoadRunner user: compile once, then integrate each arm between its event times.

Doses are not SBML events. Each arm is integrated segment by segment, and at every event time
the state (or a parameter) is changed directly before integration resumes. So a dose acts at
exactly its time: at t = 0, between output points, at the last time point, or many at once,
whatever the output grid (SBML events can miss all of these; see the README).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dosing import TIME_TOLERANCE, ArmPlan, DepotSlot, DoseEvent, InfusionSlot
from .errors import SimulationError
from .models import ModelDefinition, OutputInfo, load_roadrunner
from .scenario import Preequilibration, Solver
from .units import to_time

# States smaller than this in magnitude are numerical dust (see _flush_dust).
DUST = 1e-30


@dataclass
class SteadyState:
    """How an arm was brought to steady state before t = start."""

    found: bool
    method: str
    max_rate: float
    message: str = ""


@dataclass
class ArmTrajectory:
    """Output values on the grid (rows: times, columns: outputs), in model units."""

    arm: str
    values: np.ndarray
    completed: bool = True
    error: str | None = None
    steady_state: SteadyState | None = None


@dataclass
class CompiledModel:
    """A RoadRunner with the scenario's helper species and parameters, compiled once."""

    rr: Any
    outputs: list[OutputInfo]
    species_index: dict[str, int]
    parameter_index: dict[str, int]
    settable: np.ndarray  # indices of parameters we reset before every arm
    base_values: np.ndarray
    time_unit: str
    has_rate_rules: bool = False  # rate-rule variables are not covered by the species rates
    amount_species: frozenset[int] = frozenset()  # species indices whose doses add amounts
    _steady_states: dict[tuple, tuple[np.ndarray, SteadyState]] = field(default_factory=dict)
    _settable_position: dict[str, int] | None = None
    _initial: np.ndarray | None = None  # the settable parameters' initial values, as last set
    _initial_keys: list[str] = field(default_factory=list)

    def parameter_vector(self, overrides: dict[str, float]) -> np.ndarray:
        """Every settable parameter's value for an arm: defaults, then the arm's overrides."""
        values = self.base_values.copy()
        for name, value in overrides.items():
            values[self.settable_position[name]] = value
        return values

    def set_initial_parameters(self, overrides: dict[str, float]) -> None:
        """Make the arm's values the parameters' initial values, so that reset() starts from
        them: initial assignments derived from them (``p2 = 2 * p1``) and events firing at
        t = 0 then see the arm's values. Only values that changed since the last arm are set
        (``ExecutableModel.setValue("init(p)")`` costs ~0.5 us; the vector setter for initial
        values is unusable from Python in libRoadRunner 2.10)."""
        wanted = self.parameter_vector(overrides)
        if self._initial is None:
            self._initial = self.base_values.copy()
            self._initial_keys = [f"init({p})" for p in self.settable_position]
        model = self.rr.model
        for k in np.flatnonzero(wanted != self._initial):
            model.setValue(self._initial_keys[k], float(wanted[k]))
        self._initial = wanted

    @property
    def settable_position(self) -> dict[str, int]:
        if self._settable_position is None:
            ids = list(self.parameter_index)
            self._settable_position = {ids[int(i)]: k for k, i in enumerate(self.settable)}
        return self._settable_position


def compile_model(
    model: ModelDefinition, plans: Iterable[ArmPlan], outputs: list[OutputInfo], solver: Solver
) -> CompiledModel:
    """Load the model once with every helper any arm needs (infusion rates, depots, outputs)."""
    plans = list(plans)
    rr = load_roadrunner(model.sbml, str(model.path))
    infusions: set[InfusionSlot] = set().union(*(p.infusions for p in plans)) if plans else set()
    depots: set[DepotSlot] = set().union(*(p.depots for p in plans)) if plans else set()
    for slot in sorted(infusions, key=lambda s: s.parameter):
        rr.addParameter(slot.parameter, 0.0, False)
        rr.addReaction(f"_J{slot.parameter}", [], [slot.species], infusion_rate_law(slot), False)
    for slot in sorted(depots, key=lambda s: s.depot):
        rr.addSpecies(
            slot.depot,
            slot.compartment,
            hasOnlySubstanceUnits=slot.amount,
            forceRegenerate=False,
        )
        rr.addParameter(slot.rate_parameter, 0.0, False)  # each arm sets its own rate
        rr.addReaction(f"_J{slot.depot}", [slot.depot], [slot.species], depot_rate_law(slot), False)
    for output in outputs:
        if output.expression is not None:
            rr.addParameter(output.selection, 0.0, False)
            rr.addAssignmentRule(output.selection, output.expression, False)
    if infusions or depots or any(o.expression for o in outputs):
        try:
            rr.regenerateModel()
        except Exception as exc:
            from .errors import ModelError

            raise ModelError(f"{model.path}: could not add dosing helpers: {exc}") from None
    _configure(rr, solver, model)
    rr.timeCourseSelections = ["time", *[o.selection for o in outputs]]
    species = list(rr.model.getFloatingSpeciesIds())
    amounts = model.amount_species | {slot.depot for slot in depots if slot.amount}
    params = list(rr.model.getGlobalParameterIds())
    derived = model.derived_ids | set(rr.getAssignmentRuleIds())  # and the output rules
    settable = np.array([i for i, p in enumerate(params) if p not in derived], dtype=np.int32)
    # initial values, not current ones: loading fires events at t = 0 (``t0=false``)
    all_values = np.array([rr.getValue(f"init({p})") for p in params], dtype=float)
    return CompiledModel(
        rr=rr,
        outputs=outputs,
        species_index={s: i for i, s in enumerate(species)},
        parameter_index={p: i for i, p in enumerate(params)},
        settable=settable,
        base_values=all_values[settable].copy(),
        time_unit=model.time_unit,
        has_rate_rules=bool(rr.getRateRuleIds()),
        amount_species=frozenset(i for i, s in enumerate(species) if s in amounts),
    )


def infusion_rate_law(slot: InfusionSlot) -> str:
    """The helper reaction feeding an infusion: the rate parameter is a level per time for a
    concentration species (times the volume gives amount per time), an amount per time for
    an amount species."""
    return slot.parameter if slot.amount else f"{slot.compartment} * {slot.parameter}"


def depot_rate_law(slot: DepotSlot) -> str:
    """First-order release from a depot species into its target (amount per time)."""
    if slot.amount:
        return f"{slot.rate_parameter} * {slot.depot}"
    return f"{slot.compartment} * {slot.rate_parameter} * {slot.depot}"


def _configure(rr: Any, solver: Solver, model: ModelDefinition) -> None:
    integrator = rr.integrator
    # 'stiff' first: in libRoadRunner 2.10 setting it rebuilds CVODE and drops the step limit
    # set before it (getValue still reports the old number).
    integrator.stiff = True
    integrator.relative_tolerance = solver.rtol
    # A vector, one entry per state: from a scalar, libRoadRunner derives each state's absolute
    # tolerance from its value at the start of every simulate() call (sys-bio/roadrunner#1349),
    # so a state that has decayed to 1e-29 gets a tolerance near 1e-41 when a later dose
    # arrives, and CVODE collapses its step ("t + h = t"). Results would also depend on how a
    # run is split into segments. A fixed vector keeps the tolerance the user asked for.
    integrator.setValue("absolute_tolerance", [solver.atol] * _state_count(rr))
    integrator.maximum_num_steps = solver.max_steps
    if solver.max_step is not None:
        integrator.maximum_time_step = to_time(solver.max_step, model.time_unit)


def _state_count(rr: Any) -> int:
    """CVODE's state vector: floating species, then rate-rule variables (a species with a rate
    rule counts once, as a rate-rule variable)."""
    ruled = set(rr.getRateRuleIds())
    species = sum(s not in ruled for s in rr.model.getFloatingSpeciesIds())
    return species + rr.model.getNumRateRules()


def simulate_arm(
    compiled: CompiledModel,
    plan: ArmPlan,
    grid: np.ndarray,
    preequilibration: Preequilibration | None,
) -> ArmTrajectory:
    """Integrate one arm over ``grid`` (model time), applying each event exactly at its time.

    Grid points that coincide with an event time report the state just after the event.
    Raises SimulationError naming the arm and time; its ``partial`` is the rows done so far.
    """
    rr = compiled.rr
    steady = prepare_arm(compiled, plan, preequilibration)
    values = np.full((len(grid), len(compiled.outputs)), np.nan)
    start, end = float(grid[0]), float(grid[-1])
    tolerance = event_tolerance(start, end)
    groups = event_groups(plan.events, start, end, tolerance)
    breakpoints = sorted({start, end, *groups})
    for index, time in enumerate(breakpoints):
        for event in groups.get(time, []):
            _apply(compiled, event)
        if time == end:
            at_end = np.abs(grid - end) <= tolerance
            values[at_end] = np.asarray(rr.getSelectedValues())[1:]
            break
        following = breakpoints[index + 1]
        inside = np.flatnonzero((grid >= time - tolerance) & (grid < following - tolerance))
        interior = [grid[i] for i in inside if grid[i] > time + tolerance]
        _flush_dust(rr.model)
        try:
            result = np.asarray(rr.simulate(times=[time, *interior, following]))
        except RuntimeError as exc:  # CVODE failures (too many steps, convergence) surface here
            partial = ArmTrajectory(plan.name, values, False, str(exc), steady)
            failed_at = float(rr.model.getTime())
            raise SimulationError(
                f"arm '{plan.name}': the solver failed near t = {failed_at:g} "
                f"{compiled.time_unit} (integrating from {time:g} to {following:g}): "
                f"{_first_line(exc)}",
                arm=plan.name,
                time=failed_at,
                partial=partial,
            ) from None
        if len(inside):
            first_is_here = grid[inside[0]] <= time + tolerance
            rows = result[: len(inside)] if first_is_here else result[1 : len(inside) + 1]
            values[inside] = rows[:, 1:]
    return ArmTrajectory(plan.name, values, True, None, steady)


def prepare_arm(
    compiled: CompiledModel, plan: ArmPlan, preequilibration: Preequilibration | None
) -> SteadyState | None:
    """Put the model in the arm's state at t = start, before any dose: the arm's parameters,
    initial assignments computed from them, then the steady state if asked for."""
    compiled.set_initial_parameters(plan.parameters)
    compiled.rr.reset(_reset_flags())
    if preequilibration is None:
        return None
    return _preequilibrate(compiled, plan, preequilibration)


def state_values(compiled: CompiledModel) -> dict[str, float]:
    """The current value of every state in the model's own terms: a species' level, or its
    amount if it is an amount species; rate-rule variables' values."""
    rr = compiled.rr
    model = rr.model
    levels = model.getFloatingSpeciesConcentrations()
    amounts = model.getFloatingSpeciesAmounts()
    values = {
        name: float(amounts[i] if i in compiled.amount_species else levels[i])
        for name, i in compiled.species_index.items()
    }
    ruled = [name for name in rr.getRateRuleIds() if name not in compiled.species_index]
    values.update({name: float(model.getValue(name)) for name in ruled})
    return values


def _reset_flags() -> int:
    """What reset() restores: time, rates, species, compartments and global parameters, all
    from their initial values (the arm's, for parameters) and initial assignments. Plain
    reset() keeps compartment sizes and parameters, so a compartment or parameter derived
    from a parameter (``c = volume``, ``p2 = 2 * p1``) would ignore the arm's value of it."""
    from roadrunner import SelectionRecord as Select

    flags = Select.TIME | Select.RATE | Select.FLOATING | Select.COMPARTMENT
    return int(flags | Select.GLOBAL_PARAMETER)


def event_groups(
    events: list[DoseEvent], start: float, end: float, tolerance: float
) -> dict[float, list[DoseEvent]]:
    """Events inside [start, end] grouped by time; times within ``tolerance`` are one time.

    Events are sorted, so each joins the group of the previous one or starts a new group.
    """
    groups: dict[float, list[DoseEvent]] = {}
    anchor = None
    for event in sorted(events, key=lambda e: e.time):
        if event.time < start - tolerance or event.time > end + tolerance:
            continue
        time = min(max(event.time, start), end)
        if end - time <= tolerance:  # a hair before the end is the end (round-off in
            time = end  # interval x count), never a zero-length last segment
        elif time - start <= tolerance:
            time = start
        if anchor is None or time - anchor > tolerance:
            anchor = time
        groups.setdefault(anchor, []).append(event)
    for group in groups.values():
        group.sort(key=lambda e: e.order)
    return groups


def event_tolerance(start: float, end: float) -> float:
    """Times closer than this are the same time: relative to the span, so that it stays far
    below the spacing of any allowed output grid (at most 1e6 points)."""
    return TIME_TOLERANCE * (end - start)


def _apply(compiled: CompiledModel, event: DoseEvent) -> None:
    model = compiled.rr.model
    if event.target in compiled.species_index:
        position = compiled.species_index[event.target]
        index = [position]
        if position in compiled.amount_species:  # the value is an amount, like the species
            get, put = model.getFloatingSpeciesAmounts, model.setFloatingSpeciesAmounts
        else:
            get = model.getFloatingSpeciesConcentrations
            put = model.setFloatingSpeciesConcentrations
        current = float(get(index)[0])
        put(index, [event.value if event.action == "set" else current + event.value])
        return
    index = np.array([compiled.parameter_index[event.target]], dtype=np.int32)
    current = float(model.getGlobalParameterValues(index)[0])
    new = current + event.value if event.action == "add" else event.value
    model.setGlobalParameterValues(index, [new])


def _preequilibrate(
    compiled: CompiledModel, plan: ArmPlan, settings: Preequilibration
) -> SteadyState:
    """Steady state with no inputs: libRoadRunner's solver, then a long simulation if needed.

    Results are cached per set of parameter overrides, so arms that share them solve once.
    """
    rr = compiled.rr
    # depots are empty before the start: their release rates do not change the steady state
    key = tuple(sorted((k, v) for k, v in plan.parameters.items() if not k.startswith("_krel")))
    if key in compiled._steady_states:
        state, report = compiled._steady_states[key]
        _restore_state(rr, state)
        return report
    initial = _state(rr)
    # the model's own events may fire while it settles (a long simulation passes their
    # times): they may move states, but the arm's parameters are what the arm starts with
    ruled = set(rr.getRateRuleIds()) | set(rr.getAssignmentRuleIds())
    kept = np.array(
        [i for i, p in enumerate(rr.model.getGlobalParameterIds()) if p not in ruled],
        dtype=np.int32,
    )
    parameters = np.asarray(rr.model.getGlobalParameterValues(kept), dtype=float)
    report = None
    rate = _max_relative_rate(rr)
    if not compiled.has_rate_rules and rate <= settings.tolerance and np.all(initial >= -1e-12):
        # a model shipped at its resting state: nothing to solve (and the solver costs ~0.3 s)
        report = SteadyState(True, "initial state", rate)
        _remember(compiled, key, initial, report)
        return report
    selections = list(rr.timeCourseSelections)
    tolerances = list(rr.integrator.getValue("absolute_tolerance"))
    try:
        rr.steadyState()
        rate = _max_relative_rate(rr)
        state = _state(rr)
        if rate <= settings.tolerance and np.all(state[: _species_count(rr)] >= -1e-12):
            report = SteadyState(True, "steady-state solver", rate)
    except RuntimeError:  # the Newton solver fails on singular Jacobians; fall back below
        pass
    finally:
        # libRoadRunner 2.x's steadyState() silently resets timeCourseSelections to all species,
        # and its moiety analysis replaces the integrator's absolute tolerance vector
        rr.timeCourseSelections = selections
        rr.integrator.setValue("absolute_tolerance", tolerances)
        # ... and it restores every parameter's initial value from the SBML: set the arm's again
        compiled._initial = None
        compiled.set_initial_parameters(plan.parameters)
    if report is None:
        _restore_state(rr, initial)
        max_time = to_time(settings.max_time, compiled.time_unit)
        window, elapsed = max_time / 1024, 0.0
        rate = math.inf
        failure = ""
        while elapsed < max_time:
            _flush_dust(rr.model)
            try:
                rr.simulate(times=[0.0, window])
            except RuntimeError as exc:  # CVODE failure: report it as "no steady state found"
                failure = f"; the solver failed after {elapsed:g} time units: {_first_line(exc)}"
                rate = math.inf
                break
            elapsed += window
            rate = _max_relative_rate(rr)
            if rate <= settings.tolerance:
                break
            window = min(window * 2, max_time - elapsed) or window
        found = rate <= settings.tolerance
        message = (
            ""
            if found
            else (
                f"no steady state within {settings.max_time:~P}: the largest relative rate "
                f"of change is {rate:.3g} per time unit (tolerance {settings.tolerance:g})"
                + failure
            )
        )
        report = SteadyState(found, "simulation", rate, message)
    rr.model.setTime(0.0)
    if len(kept):
        rr.model.setGlobalParameterValues(kept, parameters)
    state = _state(rr)
    _remember(compiled, key, state, report)
    return report


STEADY_STATE_CACHE = 64  # parameter sets remembered per compiled model (a sweep has many)


def _remember(compiled: CompiledModel, key: tuple, state: np.ndarray, report: SteadyState) -> None:
    """Cache a steady state; the oldest entry goes once the cache is full, so that a sweep over
    100,000 parameter sets keeps a fixed memory footprint."""
    cache = compiled._steady_states
    cache[key] = (state, report)
    while len(cache) > STEADY_STATE_CACHE:
        del cache[next(iter(cache))]


def _flush_dust(model: Any) -> None:
    """Set states below DUST (1e-30) in magnitude to exactly zero before a segment starts.

    Long decays leave values such as 1e-60 or -1e-305; restarted on them, CVODE's first-step
    heuristics pick steps below machine precision ("t + h = t" warnings) or fail with
    CV_TOO_MUCH_ACC. 1e-30 is far below any meaningful amount in any unit the models use (a
    1e-30 uM solution holds one molecule per 1e6 litres), so results are not changed.
    """
    state = np.asarray(model.getFloatingSpeciesConcentrations(), dtype=float)
    dust = (state != 0.0) & (np.abs(state) < DUST)
    if dust.any():
        model.setFloatingSpeciesConcentrations(np.where(dust, 0.0, state))


def _state(rr: Any) -> np.ndarray:
    """What pre-equilibration finds and caches: species levels, then rate-rule variables."""
    levels = np.asarray(rr.model.getFloatingSpeciesConcentrations(), dtype=float)
    rules = [rr.model.getValue(i) for i in rr.getRateRuleIds()]
    return np.concatenate([levels, np.asarray(rules, dtype=float)]) if rules else levels


def _restore_state(rr: Any, state: np.ndarray) -> None:
    count = _species_count(rr)
    rr.model.setFloatingSpeciesConcentrations(state[:count])
    for name, value in zip(rr.getRateRuleIds(), state[count:], strict=True):
        rr.model.setValue(name, float(value))


def _species_count(rr: Any) -> int:
    return int(rr.model.getNumFloatingSpecies())


def _max_relative_rate(rr: Any) -> float:
    """The largest |rate of change| relative to the value, over every state (a state near
    zero is measured against the largest value)."""
    if rr.model.getNumRateRules():  # rate-rule variables are states too: rates of all states
        named = rr.getRatesOfChangeNamedArray()
        names = [name.rstrip("'") for name in named.colnames]
        rates = np.abs(np.asarray(named, dtype=float).ravel())
        values = np.abs(np.asarray([rr.getValue(name) for name in names], dtype=float))
    else:
        rates = np.abs(np.asarray(rr.model.getFloatingSpeciesConcentrationRates(), dtype=float))
        values = np.abs(np.asarray(rr.model.getFloatingSpeciesConcentrations(), dtype=float))
    if rates.size == 0:
        return 0.0
    return float(np.max(rates / np.maximum(values, 1e-12 + values.max() * 1e-9)))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
