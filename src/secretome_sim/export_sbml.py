"""One arm of a scenario -> a self-contained SBML model that any SBML simulator can run.

The engine never edits the model to dose it (``simulate.py`` changes the state between
integration segments). For export, every group of same-time events becomes one SBML event
``time >= t`` with ``initialValue = false``: it fires exactly at t, also at t = start, and SBML
simulators report an output point at t after it, as the engine does (a simulator must start at
t = start; libRoadRunner evaluates triggers at load, at t = 0, so with another start time it
misses doses). Dose events have priority -1 and the model's own events 0, so at a shared time
the model's event acts first, as in the engine. Within a group the
engine's order (medium change, parameter, addition, rate) is folded into one assignment per
target, so SBML's simultaneous assignment gives the engine's sequential result. Helper
species, parameters and reactions (infusion rates, depots, output expressions) are the ones
``simulate.compile_model`` adds, written with the same rate laws. With pre-equilibration the
engine's steady state becomes the initial state (and replaces initial assignments of states).
Parameter provenance (value, unit, source, range, calibration) travels as notes, and DOIs as
``bqbiol:isDescribedBy`` annotations.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from . import __version__
from .dosing import ArmPlan, DoseEvent
from .errors import ModelError
from .models import ModelDefinition, OutputInfo, ParameterMeta
from .results import DISCLAIMER
from .simulate import (
    CompiledModel,
    SteadyState,
    depot_rate_law,
    event_groups,
    event_tolerance,
    infusion_rate_law,
    state_values,
)

XHTML = "http://www.w3.org/1999/xhtml"
DOI_PATTERN = re.compile(r"\b(10\.\d{4,9}/[^\s;,)\]]+)")


@dataclass(frozen=True)
class ArmModel:
    """An arm as SBML, with what the SED-ML and the cross-check need to read it."""

    arm: str
    model_id: str
    sbml: str
    outputs: list[OutputInfo]  # their selections name ids of this SBML
    targets: dict[str, str]  # output name -> XPath of the SBML element it reads (SED-ML)
    start: float  # model time
    end: float
    initial_state: str  # how the state at t = start was made (a sentence)


def arm_model_id(scenario_id: str, arm: str) -> str:
    """An SBML SId for the arm's model: letters, digits and underscores."""
    text = re.sub(r"\W", "_", f"{scenario_id}__{arm}")
    return text if re.match(r"[A-Za-z_]", text) else f"_{text}"


def export_arm(
    *,
    scenario_id: str,
    scenario_file: str | None,
    model: ModelDefinition,
    compiled: CompiledModel,
    plan: ArmPlan,
    outputs: list[OutputInfo],
    start: float,
    end: float,
    steady: SteadyState | None,
) -> ArmModel:
    """Build the arm's SBML. The compiled model must hold the arm's state at t = start
    (``simulate.prepare_arm`` puts it there); with pre-equilibration that state is written
    as the initial state."""
    import libsbml

    document = libsbml.readSBMLFromString(model.sbml)
    older = (document.getLevel(), document.getVersion()) < (3, 2)
    if older and not document.setLevelAndVersion(3, 2, False):
        raise ModelError(f"{model.path}: libSBML could not convert the model to SBML L3V2")
    sbml = document.getModel()
    model_id = arm_model_id(scenario_id, plan.name)
    sbml.setId(model_id)
    sbml.setName(f"{scenario_id}: arm {plan.name}")
    _set_parameters(sbml, plan, model)
    _add_helpers(sbml, plan, outputs)
    if steady is not None:
        _write_initial_state(sbml, {**_fixed_values(compiled), **state_values(compiled)})
        found = (
            "the model's own initial state already is"
            if steady.method == "initial state"
            else f"found by secretome-sim's {steady.method}"
        )
        how = (
            f"steady state of the arm's parameters with no inputs ({found}; largest relative "
            f"rate of change {steady.max_rate:.2g} per time unit)"
        )
        if not steady.found:
            how += f"; NOT converged: {steady.message}"
    else:
        how = "the model's own initial values and initial assignments, with the arm's parameters"
    _add_dose_events(sbml, plan, start, end)
    _annotate_parameters(sbml, model)
    _set_model_notes(sbml, model, scenario_id, scenario_file, plan, how, start, end)
    targets = {output.name: _xpath_target(sbml, output) for output in outputs}
    text = libsbml.writeSBMLToString(document)
    return ArmModel(plan.name, model_id, text, outputs, targets, start, end, how)


def _xpath_target(sbml: Any, output: OutputInfo) -> str:
    """The SBML element an output reads: ``[S]`` is species S (its level: SBML simulators
    report a species that is not an amount species as its concentration); any other selection
    is an amount species, a parameter (output expressions included) or a compartment."""
    sid = output.selection.strip("[]")
    for kind, find in (
        ("species", sbml.getSpecies),
        ("parameter", sbml.getParameter),
        ("compartment", sbml.getCompartment),
    ):
        if find(sid) is not None:
            plural = "listOfSpecies" if kind == "species" else f"listOf{kind.title()}s"
            return f"/sbml:sbml/sbml:model/sbml:{plural}/sbml:{kind}[@id='{sid}']"
    raise ModelError(f"output '{output.name}' reads '{sid}', which the exported model lacks")


# --------------------------------------------------------------------------- parameters
def _set_parameters(sbml: Any, plan: ArmPlan, model: ModelDefinition) -> None:
    """The arm's parameter values (a depot's release rate is a helper, made below)."""
    for pid, value in plan.parameters.items():
        parameter = sbml.getParameter(pid)
        if parameter is not None:
            parameter.setValue(float(value))


def _add_helpers(sbml: Any, plan: ArmPlan, outputs: list[OutputInfo]) -> None:
    for slot in sorted(plan.infusions, key=lambda s: s.parameter):
        _parameter(sbml, slot.parameter, 0.0, constant=False)
        _reaction(sbml, f"_J{slot.parameter}", None, slot.species, infusion_rate_law(slot))
    for slot in sorted(plan.depots, key=lambda s: s.depot):
        species = sbml.createSpecies()
        species.setId(slot.depot)
        species.setName(f"depot {slot.depot.split('_')[-1]} releasing into {slot.species}")
        species.setCompartment(slot.compartment)
        if slot.amount:
            species.setInitialAmount(0.0)
        else:
            species.setInitialConcentration(0.0)
        species.setHasOnlySubstanceUnits(slot.amount)
        species.setBoundaryCondition(False)
        species.setConstant(False)
        _parameter(sbml, slot.rate_parameter, plan.parameters[slot.rate_parameter], constant=True)
        _reaction(sbml, f"_J{slot.depot}", slot.depot, slot.species, depot_rate_law(slot))
    for output in outputs:
        if output.expression is None:
            continue
        _parameter(sbml, output.selection, 0.0, constant=False)
        rule = sbml.createAssignmentRule()
        rule.setVariable(output.selection)
        rule.setMath(_formula(output.expression))


def _parameter(sbml: Any, pid: str, value: float, *, constant: bool) -> None:
    parameter = sbml.createParameter()
    parameter.setId(pid)
    parameter.setValue(float(value))
    parameter.setConstant(constant)


def _reaction(sbml: Any, rid: str, reactant: str | None, product: str, law: str) -> None:
    reaction = sbml.createReaction()
    reaction.setId(rid)
    reaction.setReversible(False)
    for species, add in ((reactant, reaction.createReactant), (product, reaction.createProduct)):
        if species is None:
            continue
        reference = add()
        reference.setSpecies(species)
        reference.setStoichiometry(1.0)
        reference.setConstant(True)
    reaction.createKineticLaw().setMath(_formula(law))


def _formula(text: str) -> Any:
    import libsbml

    math = libsbml.parseL3Formula(text)
    if math is None:
        raise ModelError(f"libSBML could not parse '{text}': {libsbml.getLastParseL3Error()}")
    return math


# --------------------------------------------------------------------------- initial state
def _fixed_values(compiled: CompiledModel) -> dict[str, float]:
    """Parameters and compartments as the engine holds them at t = start. Initial assignments
    computed them from the model's initial state; from the steady state written as the
    initial state they would come out differently (``ptot = 2 * S``)."""
    model = compiled.rr.model
    ruled = set(compiled.rr.getAssignmentRuleIds()) | set(compiled.rr.getRateRuleIds())
    values = dict(zip(model.getGlobalParameterIds(), model.getGlobalParameterValues(), strict=True))
    values.update(zip(model.getCompartmentIds(), model.getCompartmentVolumes(), strict=True))
    return {name: float(value) for name, value in values.items() if name not in ruled}


def _write_initial_state(sbml: Any, values: dict[str, float]) -> None:
    """Every state's, parameter's and compartment's value at t = start, replacing initial
    assignments to them (they would otherwise recompute the model's own starting point)."""
    for name, value in values.items():
        assignment = sbml.getInitialAssignmentBySymbol(name)
        if assignment is not None:
            sbml.removeInitialAssignment(name)
        species = sbml.getSpecies(name)
        if species is not None:
            if species.getHasOnlySubstanceUnits():
                species.unsetInitialConcentration()
                species.setInitialAmount(value)
            else:
                species.unsetInitialAmount()
                species.setInitialConcentration(value)
            continue
        parameter = sbml.getParameter(name)
        if parameter is not None:
            parameter.setValue(value)
        compartment = sbml.getCompartment(name)
        if compartment is not None:
            compartment.setSize(value)


# --------------------------------------------------------------------------- doses
DOSE_PRIORITY = -1.0  # below the model's own events, which get 0 where they have none


def _add_dose_events(sbml: Any, plan: ArmPlan, start: float, end: float) -> None:
    """One event per dose time (times the engine treats as one are one event here too).

    At a time where the model's own event fires too, the engine integrates up to that time
    (libRoadRunner fires the model's event) and then doses; so dose events have the lower
    priority and compute their values when they execute, after the model's event."""
    groups = event_groups(plan.events, start, end, event_tolerance(start, end))
    if groups:
        for existing in sbml.getListOfEvents():
            if not existing.isSetPriority():
                existing.createPriority().setMath(_formula("0"))
    for number, (time, events) in enumerate(sorted(groups.items())):
        event = sbml.createEvent()
        event.setId(f"_dose_{number}")
        labels = sorted({e.label.lstrip("_") for e in events})
        event.setName(f"t = {time:g}: " + "; ".join(labels))
        event.setUseValuesFromTriggerTime(False)
        trigger = event.createTrigger()
        trigger.setInitialValue(False)  # so that a dose at t = start fires at t = start
        trigger.setPersistent(True)
        trigger.setMath(_formula(f"time >= {time!r}"))
        event.createPriority().setMath(_formula(repr(DOSE_PRIORITY)))
        for target, expression in _folded_assignments(events).items():
            _make_variable(sbml, target)
            assignment = event.createEventAssignment()
            assignment.setVariable(target)
            assignment.setMath(_formula(expression))


def _folded_assignments(events: list[DoseEvent]) -> dict[str, str]:
    """The engine applies same-time events one after another (sorted by action order); SBML
    applies an event's assignments at once. Fold each target's sequence into one formula."""
    formulas: dict[str, str] = {}
    for event in events:  # already in the engine's order
        current = formulas.get(event.target, event.target)
        if event.action == "add":
            formulas[event.target] = f"{current} + {event.value!r}"
        else:  # set, parameter, rate: an absolute value
            formulas[event.target] = repr(float(event.value))
    return formulas


def _make_variable(sbml: Any, target: str) -> None:
    """An event may only assign to non-constant symbols; Antimony marks unchanged
    parameters constant."""
    item = sbml.getParameter(target) or sbml.getSpecies(target) or sbml.getCompartment(target)
    if item is not None and item.getConstant():
        item.setConstant(False)


# --------------------------------------------------------------------------- provenance
def _annotate_parameters(sbml: Any, model: ModelDefinition) -> None:
    if model.meta is None:
        return
    for pid, meta in model.meta.parameters.items():
        parameter = sbml.getParameter(pid)
        if parameter is None:
            continue
        parameter.setNotes(_xhtml(_parameter_note(pid, meta)))
        if meta.unit and not parameter.isSetName():
            parameter.setName(f"{pid} [{meta.unit}]")
        for doi in dict.fromkeys(DOI_PATTERN.findall(meta.source)):
            _describe(parameter, f"http://identifiers.org/doi/{doi.rstrip('.')}")


def _parameter_note(pid: str, meta: ParameterMeta) -> list[str]:
    lines = [
        f"{pid} = {meta.value:g} {meta.unit}",
        f"source: {meta.source}",
        f"plausible range: {meta.range[0]:g} to {meta.range[1]:g} {meta.unit}",
    ]
    if meta.description:
        lines.append(meta.description)
    if meta.calibrated is not None:
        low, high = meta.calibrated.holds_for
        lines.append(
            f"calibrated so that this claim holds: {meta.calibrated.claim} "
            f"(holds for {low:g} to {high:g} {meta.unit})"
        )
    return lines


def _describe(element: Any, uri: str) -> None:
    import libsbml

    if not element.isSetMetaId():
        element.setMetaId(f"meta_{element.getId()}")
    term = libsbml.CVTerm(libsbml.BIOLOGICAL_QUALIFIER)
    term.setBiologicalQualifierType(libsbml.BQB_IS_DESCRIBED_BY)
    term.addResource(uri)
    element.addCVTerm(term)


def _set_model_notes(
    sbml: Any,
    model: ModelDefinition,
    scenario_id: str,
    scenario_file: str | None,
    plan: ArmPlan,
    initial_state: str,
    start: float,
    end: float,
) -> None:
    lines = [
        f"Arm '{plan.name}' of scenario '{scenario_id}'"
        + (f" ({scenario_file})" if scenario_file else "")
        + f", exported by secretome-sim {__version__} from model '{model.id}' "
        f"(time unit: {model.time_unit}).",
        f"Simulate from t = {start:g} to t = {end:g} {model.time_unit}: the initial state below "
        f"is the state at t = {start:g}.",
        "Doses and perturbations are the events named _dose_N: each fires once, exactly at its "
        "time (trigger time >= t, initial value false), including at the start time; they have "
        "priority -1, after the model's own events at the same time.",
        "Helpers added by secretome-sim: _infusion_* (infusion rates), _depot_* (depot "
        "species) with _krel_* (their release rates), _out_* (output expressions).",
        f"Initial state: {initial_state}.",
        DISCLAIMER,
    ]
    if model.meta is not None:
        lines.insert(1, f"{model.meta.title} (status: {model.meta.status}).")
        for reference in model.meta.references:
            if reference.doi:
                _describe(sbml, f"http://identifiers.org/doi/{reference.doi}")
    sbml.setNotes(_xhtml(lines))


def _xhtml(lines: list[str]) -> str:
    body = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
    return f'<body xmlns="{XHTML}">{body}</body>'
