"""Pure: an arm's doses and perturbations -> a sorted list of events in model units.

Nothing here touches the solver. Repeats, infusions (start and stop), depots and product doses
are expanded into events; ``simulate.py`` then integrates between event times and applies each
event exactly at its time. Events at the same time apply in a fixed order: medium changes
(``set``), then parameter changes, then additions (boluses, depot fills), then infusion rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import pint

from .errors import SecretomeError
from .models import InputInfo, ModelDefinition
from .scenario import (
    PRODUCT,
    Arm,
    Block,
    Bolus,
    Depot,
    Infusion,
    Inhibitor,
    MediumChange,
    ScaleParameter,
    Scenario,
    SetParameter,
)
from .units import UnitError, convert, to_time

Action = Literal["set", "parameter", "add", "rate"]
_ORDER: dict[str, int] = {"set": 0, "parameter": 1, "add": 2, "rate": 3}
TIME_TOLERANCE = 1e-9  # relative: event times closer than this are the same time


@dataclass(frozen=True)
class DoseEvent:
    """At ``time`` (model units), do ``action`` on model id ``target`` with ``value``."""

    time: float
    action: Action
    target: str
    value: float
    label: str  # starts with "_" for bookkeeping events (infusion stops, perturbations)

    @property
    def is_dose(self) -> bool:
        return not self.label.startswith("_")

    @property
    def order(self) -> int:
        return _ORDER[self.action]


@dataclass(frozen=True)
class InfusionSlot:
    """A helper rate parameter feeding a species (added to the model before compiling)."""

    parameter: str
    species: str
    compartment: str
    amount: bool = False  # the species is an amount: the rate is amount per time


@dataclass(frozen=True)
class DepotSlot:
    """A helper depot species releasing first-order into a species.

    Slots are numbered per target (the k-th depot dose of an arm into that species), and the
    release rate is an arm parameter, not part of the slot. So a sweep over a half-life reuses
    one compiled model, with the same state layout (and so the same numbers) at every point.
    """

    depot: str
    species: str
    compartment: str
    rate_parameter: str
    amount: bool = False  # the target is an amount species, and so is its depot


@dataclass
class ArmPlan:
    """Everything the simulator needs for one arm, in model units."""

    name: str
    parameters: dict[str, float]
    events: list[DoseEvent]
    infusions: set[InfusionSlot] = field(default_factory=set)
    depots: set[DepotSlot] = field(default_factory=set)


class PlanError(SecretomeError):
    """A dose plan that cannot be built (checks reject these first; this guards the API)."""


def resolved_arms(scenario: Scenario) -> dict[str, Arm]:
    """Arms with ``extends`` applied: parent's doses and perturbations first, parameters merged.

    The scenario's own ``parameters`` apply to every arm; an arm's (or its parent's) win."""
    result: dict[str, Arm] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Arm:
        if name in result:
            return result[name]
        arm = scenario.arms[name]
        if arm.extends is None:
            parameters = {**scenario.parameters, **arm.parameters}
            merged = arm.model_copy(update={"parameters": parameters})
            result[name] = merged
            return merged
        if arm.extends in chain or arm.extends not in scenario.arms:
            raise PlanError(f"arm '{name}' extends '{arm.extends}', which cannot be resolved")
        parent = resolve(arm.extends, (*chain, name))
        merged = arm.model_copy(
            update={
                "extends": None,
                "doses": [*parent.doses, *arm.doses],
                "perturbations": [*parent.perturbations, *arm.perturbations],
                "parameters": {**parent.parameters, **arm.parameters},
                "description": arm.description or parent.description,
            }
        )
        result[name] = merged
        return merged

    for arm_name in scenario.arms:
        resolve(arm_name, ())
    return {name: result[name] for name in scenario.arms}


def model_time(quantity: pint.Quantity, model: ModelDefinition) -> float:
    return to_time(quantity, model.time_unit)


MAX_DOSES = 1_000_000


def repeat_count(first: float, every: float | None, count: int | None, until: float | None) -> int:
    """How many times a dose repeats (``until`` is inclusive, robust to float drift)."""
    if every is None:
        return 1
    if count is not None:
        return count
    assert until is not None
    return math.floor((until - first) / every * (1 + TIME_TOLERANCE) + TIME_TOLERANCE) + 1


def repeat_times(
    dose: Bolus | Infusion | Depot | MediumChange, model: ModelDefinition, start: float
) -> list[float]:
    """All start times of a (possibly repeated) dose, in model time; ``time`` defaults to start."""
    first = model_time(dose.time, model) if dose.time is not None else start
    every = model_time(dose.every, model) if dose.every is not None else None
    until = model_time(dose.until, model) if dose.until is not None else None
    count = repeat_count(first, every, dose.count, until)
    if count < 1:
        raise PlanError(f"'until' ({until:g}) is before the dose time ({first:g}): no dose at all")
    if count > MAX_DOSES:
        raise PlanError(f"a repeated dose expands to {count} doses; at most {MAX_DOSES:,} allowed")
    return [first + i * (every or 0.0) for i in range(count)]


def dose_quantities(
    dose: Bolus | Infusion | Depot | MediumChange, scenario: Scenario, model: ModelDefinition
) -> Iterator[tuple[InputInfo, pint.Quantity, str]]:
    """(input, quantity, label) per delivered input: one for a plain dose, one per factor for a
    product dose (factor concentration x variant scale x the dose's amount, rate or value)."""
    amount = _dose_magnitude(dose)
    if dose.target != PRODUCT:
        yield model.inputs[dose.target], amount, f"{dose.type} {dose.target}"
        return
    if scenario.product is None:
        raise PlanError("a dose targets the product but the scenario defines none")
    variant = scenario.product.variants[dose.variant] if dose.variant else None
    label = f"{dose.type} {scenario.product.name}" + (f" ({dose.variant})" if dose.variant else "")
    for factor_name, factor in scenario.product.factors.items():
        scale = variant.scale.get(factor_name, 1.0) if variant else 1.0
        input_name = factor.input or factor_name
        yield model.inputs[input_name], factor.concentration * scale * amount, label


def _dose_magnitude(dose: Bolus | Infusion | Depot | MediumChange) -> pint.Quantity:
    if isinstance(dose, Infusion):
        return dose.rate
    if isinstance(dose, MediumChange):
        return dose.value
    return dose.amount


def to_input_units(
    quantity: pint.Quantity, item: InputInfo, model: ModelDefinition, *, per_time: bool = False
) -> float:
    """A dose quantity in the input's model unit (per model time unit for rates)."""
    if item.unit is None:  # a model without metadata: plain numbers in the model's own units
        if not quantity.dimensionless:
            raise PlanError(
                f"input '{item.name}' has no unit metadata; give a plain number in the model's "
                f"units, got {quantity:~P}"
            )
        return float(quantity.magnitude)
    unit = f"({item.unit}) / ({model.time_unit})" if per_time else item.unit
    return convert(quantity, unit, molecular_weight=item.molecular_weight, volume=item.volume)


def depot_slot(item: InputInfo, plan: ArmPlan, half_life: float) -> DepotSlot:
    """A new depot for ``item.target`` (one per depot dose of the arm, so the compiled model's
    layout does not depend on the half-lives); its release rate ln 2 / half-life goes into the
    arm's parameters."""
    ordinal = sum(s.species == item.target for s in plan.depots)
    name = f"_depot_{item.target}_{ordinal}"
    slot = DepotSlot(name, item.target, item.compartment or "", f"_krel{name}", item.amount)
    plan.depots.add(slot)
    plan.parameters[slot.rate_parameter] = math.log(2) / half_life
    return slot


def plan_arm(name: str, arm: Arm, scenario: Scenario, model: ModelDefinition) -> ArmPlan:
    """Expand a resolved arm into events. ``arm`` must already have ``extends`` applied."""
    parameters = {pid: parameter_value(pid, value, model) for pid, value in arm.parameters.items()}
    plan = ArmPlan(name=name, parameters=parameters, events=[])
    intervals: list[tuple[str, float, float, float, str]] = []
    for dose in arm.doses:
        _plan_dose(dose, scenario, model, plan, intervals)
    plan.events.extend(_perturbation_events(arm, scenario, model, parameters))
    plan.events.extend(_infusion_rate_events(intervals))
    plan.events.sort(key=lambda e: (e.time, e.order))
    return plan


def parameter_value(pid: str, value: pint.Quantity, model: ModelDefinition) -> float:
    unit = model.parameter_unit(pid)
    if unit is None:
        if not value.dimensionless:
            raise PlanError(f"parameter '{pid}' has no unit metadata; give a plain number")
        return float(value.magnitude)
    return convert(value, unit)


def delivered_values(
    dose: Bolus | Infusion | Depot | MediumChange,
    scenario: Scenario,
    model: ModelDefinition,
) -> list[tuple[InputInfo, float, str]]:
    """(input, value in model units, label) per input. Product factors feeding the same input
    add up, so a product medium change sets the input to the sum, not to the last factor."""
    per_input: dict[str, tuple[InputInfo, float, str]] = {}
    per_time = isinstance(dose, Infusion)
    for item, quantity, label in dose_quantities(dose, scenario, model):
        value = to_input_units(quantity, item, model, per_time=per_time)
        previous = per_input.get(item.name)
        per_input[item.name] = (item, value + (previous[1] if previous else 0.0), label)
        if isinstance(dose, Infusion | Depot) and item.kind != "species":
            raise PlanError(
                f"input '{item.name}' sets the parameter '{item.target}'; a {dose.type} needs a "
                "species target (use a bolus, medium_change or set_level)"
            )
    return list(per_input.values())


def _plan_dose(
    dose,
    scenario: Scenario,
    model: ModelDefinition,
    plan: ArmPlan,
    intervals: list[tuple[str, float, float, float, str]],
) -> None:
    starts = repeat_times(dose, model, model_time(scenario.time.start, model))
    for item, value, label in delivered_values(dose, scenario, model):
        if isinstance(dose, Infusion):
            duration = model_time(dose.duration, model)
            infusion = InfusionSlot(
                f"_infusion_{item.target}", item.target, item.compartment or "", item.amount
            )
            plan.infusions.add(infusion)
            intervals += [(infusion.parameter, t, t + duration, value, label) for t in starts]
        elif isinstance(dose, MediumChange):
            action: Action = "set" if item.kind == "species" else "parameter"
            plan.events += [DoseEvent(t, action, item.target, value, label) for t in starts]
        elif isinstance(dose, Depot):
            slot = depot_slot(item, plan, model_time(dose.half_life, model))
            burst = value * dose.burst_fraction
            for t in starts:
                plan.events.append(DoseEvent(t, "add", slot.depot, value - burst, label))
                if burst > 0:
                    plan.events.append(DoseEvent(t, "add", item.target, burst, "_burst"))
        else:
            plan.events += [DoseEvent(t, "add", item.target, value, label) for t in starts]


def _infusion_rate_events(
    intervals: list[tuple[str, float, float, float, str]],
) -> list[DoseEvent]:
    """Absolute infusion rates at every start and stop (one sweep over sorted change points);
    when no infusion is active the rate is exactly zero, whatever the rounding of the sums."""
    events = []
    for parameter in sorted({i[0] for i in intervals}):
        changes: dict[float, list[tuple[float, str]]] = {}
        for _, begin, end, rate, label in (i for i in intervals if i[0] == parameter):
            changes.setdefault(begin, []).append((rate, label))
            changes.setdefault(end, []).append((-rate, "_infusion stop"))
        total, active = 0.0, 0
        for time in sorted(changes):
            for rate, _ in changes[time]:
                total += rate
                active += 1 if rate > 0 else -1
            total = total if active > 0 else 0.0
            starting = [label for rate, label in changes[time] if rate > 0]
            label = starting[0] if starting else "_infusion stop"
            events.append(DoseEvent(time, "rate", parameter, total, label))
    return events


def _perturbation_events(
    arm: Arm, scenario: Scenario, model: ModelDefinition, overrides: dict[str, float]
) -> list[DoseEvent]:
    """Absolute parameter values at every time a perturbation starts or stops."""
    start = model_time(scenario.time.start, model)
    windows = []
    for item in arm.perturbations:
        begin = model_time(item.time, model) if item.time is not None else start
        end = model_time(item.until, model) if item.until is not None else math.inf
        windows.append((item, begin, end))
    events = []
    for parameter in sorted({w[0].parameter for w in windows}):
        mine = [w for w in windows if w[0].parameter == parameter]
        base = overrides.get(parameter, model.base.model[parameter])
        times = sorted({t for _, b, e in mine for t in (b, e) if math.isfinite(t)})
        for time in times:
            value = base
            active = [w for w in mine if _le(w[1], time) and not _le(w[2], time)]
            for item, _, _ in sorted(active, key=lambda w: w[1]):
                if isinstance(item, SetParameter):
                    value = parameter_value(parameter, item.value, model)
            for item, _, _ in active:
                value *= _factor(item, model)
            label = "_" + ", ".join(f"{w[0].type} {parameter}" for w in active)
            events.append(DoseEvent(time, "parameter", parameter, value, label))
    return events


def _factor(item, model: ModelDefinition) -> float:
    if isinstance(item, Block):
        return 1.0 - item.fraction
    if isinstance(item, ScaleParameter):
        return item.factor
    if isinstance(item, Inhibitor):
        ratio = float((item.concentration / item.ic50).to("dimensionless").magnitude)
        return 1.0 / (1.0 + ratio**item.hill)
    return 1.0


def _le(a: float, b: float) -> bool:
    return a <= b + TIME_TOLERANCE * max(1.0, abs(b))


@dataclass(frozen=True)
class DoseTotal:
    """What an arm's doses give one target: dose events and the total amount delivered."""

    target: str  # a model input, or 'product'
    events: int  # every repeat of every dose entry (level-setting doses included)
    amount: pint.Quantity | None  # None when the target only gets level-setting doses


def dose_totals(arm: Arm, scenario: Scenario, model: ModelDefinition) -> dict[str, DoseTotal]:
    """Per target of a resolved arm (``extends`` applied): how many dose events it gets and
    the total amount delivered, without simulating. Schedule budgets ("at most 800 ug",
    "at most 6 injections") are checked with this at every point an optimiser tries.

    A bolus or depot adds ``amount`` per repeat, an infusion ``rate`` x ``duration`` per
    repeat; a medium change or set_level counts as an event but delivers no amount (it sets a
    level). Amounts in different units are summed in the first one's unit, through the input's
    molecular weight and volume where needed. Raises PlanError if they cannot be summed.
    """
    start = model_time(scenario.time.start, model)
    events: dict[str, int] = {}
    amounts: dict[str, pint.Quantity] = {}
    for dose in arm.doses:
        repeats = len(repeat_times(dose, model, start))
        events[dose.target] = events.get(dose.target, 0) + repeats
        if isinstance(dose, MediumChange):
            continue
        each = dose.rate * dose.duration if isinstance(dose, Infusion) else dose.amount
        total = each * repeats
        previous = amounts.get(dose.target)
        amounts[dose.target] = total if previous is None else _add(previous, total, dose, model)
    return {
        target: DoseTotal(target, count, amounts.get(target)) for target, count in events.items()
    }


def _add(
    total: pint.Quantity,
    more: pint.Quantity,
    dose: Bolus | Infusion | Depot,
    model: ModelDefinition,
) -> pint.Quantity:
    if more.is_compatible_with(total):
        return total + more.to(total.units)
    item = model.inputs.get(dose.target)
    if item is None:  # product doses: fractions and volumes do not add up
        raise PlanError(
            f"doses of '{dose.target}' are given in incompatible units ({total.units:~} and "
            f"{more.units:~}): their total amount is undefined"
        )
    unit = f"{total.units:~}"
    try:
        value = convert(more, unit, molecular_weight=item.molecular_weight, volume=item.volume)
    except UnitError as exc:
        raise PlanError(f"cannot add the amounts of doses to '{dose.target}': {exc}") from None
    return total + value * total.units
