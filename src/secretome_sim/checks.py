"""Semantic checks of a scenario against its model: one small function per rule.

Each check reads the raw YAML data (so it runs even where another part failed the schema, and
all problems are reported at once) and yields Issues with exact key paths. The schema has already
reported malformed values; checks skip what they cannot read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import Issue, KeyPath, did_you_mean
from .models import ModelDefinition
from .scenario import PRODUCT
from .units import UnitError, convert, parse_quantity
from .yaml_source import Positions, position_of


@dataclass(frozen=True)
class CheckContext:
    raw: dict[str, Any]
    positions: Positions
    filename: str
    model: ModelDefinition

    def issue(self, path: KeyPath, message: str, hint: str | None = None) -> Issue:
        line, column = position_of(self.positions, path)
        return Issue(self.filename, line, column, path, message, hint)


Check = Callable[[CheckContext], Iterator[Issue]]


# --------------------------------------------------------------------------- tolerant readers
def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _quantity(value: Any) -> Any:
    if value is None:
        return None
    try:
        return parse_quantity(value)
    except UnitError:
        return None


def _arms(ctx: CheckContext) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, arm in _mapping(ctx.raw.get("arms")).items():
        if isinstance(arm, dict):
            yield name, arm


def _items(ctx: CheckContext, key: str) -> Iterator[tuple[KeyPath, dict[str, Any]]]:
    for name, arm in _arms(ctx):
        items = arm.get(key)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    yield ("arms", name, key, index), item


def _model_time(ctx: CheckContext, quantity: Any) -> float | None:
    if quantity is None or not quantity.check("[time]"):
        return None
    return convert(quantity, ctx.model.time_unit)


def _span(ctx: CheckContext) -> tuple[float, float] | None:
    time = _mapping(ctx.raw.get("time"))
    start = _model_time(ctx, _quantity(time.get("start", "0 h")))
    end = _model_time(ctx, _quantity(time.get("end")))
    if start is None or end is None or end <= start:
        return None
    return start, end


def _product(ctx: CheckContext) -> dict[str, Any]:
    return _mapping(ctx.raw.get("product"))


# --------------------------------------------------------------------------- the checks
def check_dose_targets(ctx: CheckContext) -> Iterator[Issue]:
    """Every dose names a model input (or the product), and depots/infusions need a species."""
    inputs = ctx.model.inputs
    for path, dose in _items(ctx, "doses"):
        target = dose.get("target")
        if not isinstance(target, str):
            continue
        if target == PRODUCT:
            product = _product(ctx)
            if not product:
                yield ctx.issue((*path, "target"), "the scenario has no 'product' to dose")
            variant = dose.get("variant")
            variants = _mapping(product.get("variants"))
            if isinstance(variant, str) and variant not in variants:
                yield ctx.issue(
                    (*path, "variant"),
                    f"unknown product variant '{variant}' (variants: "
                    f"{', '.join(variants) or 'none defined'})",
                    did_you_mean(variant, variants),
                )
            continue
        if target not in inputs:
            yield ctx.issue(
                (*path, "target"),
                f"unknown input '{target}' of model '{ctx.model.id}' (inputs: "
                f"{', '.join(sorted(inputs)) or 'none'}; or '{PRODUCT}')",
                did_you_mean(target, [*inputs, PRODUCT]),
            )
        elif dose.get("type") in ("infusion", "depot") and inputs[target].kind != "species":
            yield ctx.issue(
                (*path, "type"),
                f"a {dose.get('type')} needs a species target, but input '{target}' sets the "
                f"parameter '{inputs[target].target}'; use a bolus or medium_change",
            )


def check_dose_units(ctx: CheckContext) -> Iterator[Issue]:
    """Dose quantities convert to their input's unit (rates to unit per time)."""
    inputs = ctx.model.inputs
    product = _product(ctx)
    factors = _mapping(product.get("factors"))
    for path, dose in _items(ctx, "doses"):
        kind = dose.get("type")
        key = {"infusion": "rate", "medium_change": "value"}.get(kind, "amount")
        quantity = _quantity(dose.get(key, 0 if kind == "medium_change" else None))
        if quantity is None or not math.isfinite(quantity.magnitude) or quantity.magnitude < 0:
            continue  # unreadable, negative or infinite: the schema has reported it
        target = dose.get("target")
        if target == PRODUCT:
            for name, factor in factors.items():
                concentration = _quantity(_mapping(factor).get("concentration"))
                item = inputs.get(_mapping(factor).get("input") or name)
                if concentration is not None and item is not None:
                    message = _unit_problem(ctx, concentration * quantity, item, kind == "infusion")
                    if message:
                        yield ctx.issue(
                            (*path, key),
                            f"for product factor '{name}': {message} (the dose {key} multiplies "
                            "the factor's concentration: use a fraction of the medium, e.g. 0.5, "
                            "or a product volume, e.g. '100 uL')",
                        )
        elif target in inputs:
            message = _unit_problem(ctx, quantity, inputs[target], kind == "infusion")
            if message:
                yield ctx.issue((*path, key), message)


def _unit_problem(ctx: CheckContext, quantity: Any, item: Any, per_time: bool) -> str | None:
    if item.unit is None:
        if quantity.dimensionless:
            return None
        return f"input '{item.name}' has no unit metadata; give a plain number in model units"
    unit = f"({item.unit}) / ({ctx.model.time_unit})" if per_time else item.unit
    try:
        convert(quantity, unit, molecular_weight=item.molecular_weight, volume=item.volume)
    except UnitError as exc:
        message = str(exc)
        if per_time and _unit_problem(ctx, quantity, item, False) is None:
            message += "; a rate needs a per-time unit, e.g. '1 ng/mL/h'"
        return message
    return None


def check_product(ctx: CheckContext) -> Iterator[Issue]:
    """Product factors feed model inputs; variants scale existing factors."""
    product = _product(ctx)
    factors = _mapping(product.get("factors"))
    inputs = ctx.model.inputs
    for name, factor in factors.items():
        target = _mapping(factor).get("input") or name
        if isinstance(target, str) and target not in inputs:
            key = ("product", "factors", name) + (("input",) if "input" in _mapping(factor) else ())
            yield ctx.issue(
                key,
                f"factor '{name}' feeds '{target}', which is not an input of model "
                f"'{ctx.model.id}' (inputs: {', '.join(sorted(inputs))}); set 'input:'",
                did_you_mean(target, inputs),
            )
    for variant, spec in _mapping(product.get("variants")).items():
        for factor in _mapping(_mapping(spec).get("scale")):
            if factor not in factors:
                yield ctx.issue(
                    ("product", "variants", variant, "scale", factor),
                    f"unknown factor '{factor}' (factors: {', '.join(factors)})",
                    did_you_mean(factor, factors),
                )


def check_parameters(ctx: CheckContext) -> Iterator[Issue]:
    """Overridden and perturbed parameters exist and their values have the right unit."""
    known = ctx.model.parameters
    for name, arm in _arms(ctx):
        for pid, value in _mapping(arm.get("parameters")).items():
            path = ("arms", name, "parameters", pid)
            yield from _parameter_issues(ctx, path, pid, _quantity(value), known)
    for path, item in _items(ctx, "perturbations"):
        pid = item.get("parameter")
        if not isinstance(pid, str):
            continue
        value = _quantity(item.get("value")) if item.get("type") == "set" else None
        yield from _parameter_issues(ctx, (*path, "parameter"), pid, value, known, (*path, "value"))
        if item.get("type") == "inhibitor":
            concentration, ic50 = _quantity(item.get("concentration")), _quantity(item.get("ic50"))
            if (
                concentration is not None
                and ic50 is not None
                and concentration.dimensionality != ic50.dimensionality
            ):
                yield ctx.issue(
                    (*path, "concentration"),
                    f"concentration ({concentration:~P}) and ic50 ({ic50:~P}) must have the "
                    "same dimension",
                )


def _parameter_issues(
    ctx: CheckContext,
    path: KeyPath,
    pid: str,
    value: Any,
    known: dict[str, Any],
    value_path: KeyPath | None = None,
) -> Iterator[Issue]:
    if pid not in known:
        yield ctx.issue(
            path,
            f"unknown parameter '{pid}' of model '{ctx.model.id}'",
            did_you_mean(pid, known),
        )
        return
    if value is None:
        return
    unit = ctx.model.parameter_unit(pid)
    try:
        if unit is None:
            if not value.dimensionless:
                raise UnitError(f"parameter '{pid}' has no unit metadata; give a plain number")
        else:
            convert(value, unit)
    except UnitError as exc:
        yield ctx.issue(value_path or path, str(exc))


def check_outputs(ctx: CheckContext) -> Iterator[Issue]:
    """Reported outputs exist; display units convert; metric outputs exist."""
    outputs = ctx.model.outputs
    requested = ctx.raw.get("outputs")
    for index, item in enumerate(requested if isinstance(requested, list) else []):
        name = item if isinstance(item, str) else _mapping(item).get("name")
        path: KeyPath = ("outputs", index) if isinstance(item, str) else ("outputs", index, "name")
        if isinstance(name, str) and name not in outputs:
            yield ctx.issue(
                path,
                f"unknown output '{name}' of model '{ctx.model.id}' (outputs: "
                f"{', '.join(sorted(outputs))})",
                did_you_mean(name, outputs),
            )
        elif isinstance(item, dict) and isinstance(item.get("unit"), str):
            model_unit = outputs[name].unit
            try:
                if model_unit is None:
                    raise UnitError(f"output '{name}' has no unit metadata to convert from")
                convert(
                    parse_quantity(f"1 {model_unit}"),
                    item["unit"],
                    molecular_weight=outputs[name].molecular_weight,
                )
            except UnitError as exc:
                yield ctx.issue(("outputs", index, "unit"), str(exc))
    metrics = ctx.raw.get("metrics")
    for index, metric in enumerate(metrics if isinstance(metrics, list) else []):
        names = _mapping(metric).get("outputs")
        for j, name in enumerate(names if isinstance(names, list) else []):
            if isinstance(name, str) and name not in outputs:
                yield ctx.issue(
                    ("metrics", index, "outputs", j),
                    f"unknown output '{name}'",
                    did_you_mean(name, outputs),
                )


def check_arm_references(ctx: CheckContext) -> Iterator[Issue]:
    """``reference_arm`` and every ``extends`` name an arm; no arm extends itself in a cycle."""
    arms = dict(_arms(ctx))
    reference = ctx.raw.get("reference_arm")
    if isinstance(reference, str) and reference not in arms:
        yield ctx.issue(
            ("reference_arm",),
            f"unknown arm '{reference}' (arms: {', '.join(arms)})",
            did_you_mean(reference, arms),
        )
    for name, arm in arms.items():
        parent = arm.get("extends")
        if not isinstance(parent, str):
            continue
        if parent not in arms:
            yield ctx.issue(
                ("arms", name, "extends"),
                f"unknown arm '{parent}' (arms: {', '.join(arms)})",
                did_you_mean(parent, arms),
            )
            continue
        seen, current = [name], parent
        while isinstance(current, str) and current in arms:
            if current in seen:
                cycle = " -> ".join([*seen, current])
                yield ctx.issue(
                    ("arms", name, "extends"), f"arms extend each other in a cycle: {cycle}"
                )
                break
            seen.append(current)
            current = arms[current].get("extends")


def check_times(ctx: CheckContext) -> Iterator[Issue]:
    """Every dose (including repeats) and perturbation lies inside the simulated span."""
    span = _span(ctx)
    if span is None:
        return
    start, end = span
    unit = ctx.model.time_unit
    slack = 1e-9 * max(1.0, abs(end))
    for path, dose in _items(ctx, "doses"):
        first = _model_time(ctx, _quantity(dose.get("time", "0 h")))
        if first is None:
            continue
        if not start - slack <= first <= end + slack:
            yield ctx.issue(
                (*path, "time"),
                f"dose time {first:g} {unit} is outside the simulated span "
                f"[{start:g}, {end:g}] {unit}",
            )
            continue
        every = _model_time(ctx, _quantity(dose.get("every")))
        count = dose.get("count")
        until = _model_time(ctx, _quantity(dose.get("until")))
        if every and isinstance(count, int) and not isinstance(count, bool):
            last = first + (count - 1) * every
            if last > end + slack:
                yield ctx.issue(
                    (*path, "count"),
                    f"the last of {count} doses falls at {last:g} {unit}, after the end of the "
                    f"span ({end:g} {unit}); lower 'count' or extend 'time.end'",
                )
        if until is not None and until > end + slack:
            yield ctx.issue(
                (*path, "until"),
                f"'until' ({until:g} {unit}) is after the end of the span ({end:g} {unit})",
            )
    for path, item in _items(ctx, "perturbations"):
        for key in ("time", "until"):
            value = _model_time(ctx, _quantity(item.get(key)))
            if value is not None and not start - slack <= value <= end + slack:
                yield ctx.issue(
                    (*path, key),
                    f"{key} {value:g} {unit} is outside the simulated span "
                    f"[{start:g}, {end:g}] {unit}",
                )


CHECKS: tuple[Check, ...] = (
    check_dose_targets,
    check_dose_units,
    check_product,
    check_parameters,
    check_outputs,
    check_arm_references,
    check_times,
)


def run_checks(ctx: CheckContext) -> list[Issue]:
    return [issue for check in CHECKS for issue in check(ctx)]
