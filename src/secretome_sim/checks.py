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

from .dosing import (
    MAX_DOSES,
    TIME_TOLERANCE,
    PlanError,
    parameter_value,
    repeat_count,
    to_input_units,
)
from .errors import Issue, KeyPath, did_you_mean, valid_names
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
    if quantity is not None and quantity.dimensionless and quantity.magnitude == 0:
        return 0.0
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


_FILE_IDS = {
    "inputs": "species and settable parameters",
    "outputs": "species and rule variables",
    "parameters": "settable parameters",
}


def _valid(ctx: CheckContext, word: str, choices: Any, noun: str, also: str | None = None) -> str:
    """The valid names to show for an unknown ``word``: all of them if few, else the nearest
    and where to see the rest (a model file's own ids are its species and parameters)."""
    model = ctx.model
    if model.meta_path is not None:
        shown = model.id if ctx.raw.get("model") == model.id else str(model.meta_path)
        listed_by = f"`secretome-sim models show {shown}` lists them"
    else:
        listed_by = f"they are the {_FILE_IDS[noun]} of {model.path.name}"
    return valid_names(word, choices, noun, listed_by, also)


# --------------------------------------------------------------------------- the checks
def check_dose_targets(ctx: CheckContext) -> Iterator[Issue]:
    """Every dose names a model input (or the product), and depots/infusions need a species."""
    inputs = ctx.model.inputs
    for path, dose in _items(ctx, "doses"):
        target, kind = dose.get("target"), dose.get("type")
        if not isinstance(target, str) or not isinstance(kind, str):
            continue  # the schema reports it
        if target == PRODUCT:
            product = _product(ctx)
            if not product:
                yield ctx.issue((*path, "target"), "the scenario has no 'product' to dose")
            for factor, item in _factor_inputs(ctx):
                if kind in ("infusion", "depot") and item.kind != "species":
                    yield ctx.issue(
                        (*path, "type"),
                        f"a {kind} needs species targets, but product factor '{factor}' feeds "
                        f"input '{item.name}', which sets the parameter '{item.target}'",
                    )
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
                f"unknown input '{target}' of model '{ctx.model.id}'"
                + _valid(ctx, target, inputs, "inputs", f"'{PRODUCT}'"),
                did_you_mean(target, [*inputs, PRODUCT]),
            )
        elif kind in ("infusion", "depot") and inputs[target].kind != "species":
            yield ctx.issue(
                (*path, "type"),
                f"a {kind} needs a species target, but input '{target}' sets the "
                f"parameter '{inputs[target].target}'; use a bolus, medium_change or set_level",
            )


def _factor_inputs(ctx: CheckContext) -> Iterator[tuple[str, Any]]:
    """(factor name, InputInfo) for every product factor that feeds a known input."""
    for name, factor in _mapping(_product(ctx).get("factors")).items():
        target = _mapping(factor).get("input") or name
        if isinstance(target, str) and target in ctx.model.inputs:
            yield name, ctx.model.inputs[target]


def check_dose_units(ctx: CheckContext) -> Iterator[Issue]:
    """Dose quantities convert to their input's unit (rates to unit per time)."""
    inputs = ctx.model.inputs
    product = _product(ctx)
    factors = _mapping(product.get("factors"))
    for path, dose in _items(ctx, "doses"):
        kind, target = dose.get("type"), dose.get("target")
        if not isinstance(kind, str) or not isinstance(target, str):
            continue  # the schema reports it
        sets_level = kind in ("medium_change", "set_level")
        key = "rate" if kind == "infusion" else "value" if sets_level else "amount"
        quantity = _quantity(dose.get(key, 0 if sets_level else None))
        if quantity is None or not math.isfinite(quantity.magnitude) or quantity.magnitude < 0:
            continue  # unreadable, negative or infinite: the schema has reported it
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
    """The conversion dosing will do, tried now: its error message, or None if it converts."""
    try:
        to_input_units(quantity, item, ctx.model, per_time=per_time)
    except (UnitError, PlanError) as exc:
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
                f"'{ctx.model.id}'{_valid(ctx, target, inputs, 'inputs')}; set 'input:'",
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
    for pid, value in _mapping(ctx.raw.get("parameters")).items():
        yield from _parameter_issues(ctx, ("parameters", pid), pid, _quantity(value), known)
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
            f"unknown parameter '{pid}' of model '{ctx.model.id}'"
            + _valid(ctx, pid, known, "parameters"),
            did_you_mean(pid, known),
        )
        return
    if value is None:
        return
    try:
        parameter_value(pid, value, ctx.model)  # the conversion the run will do
    except (UnitError, PlanError) as exc:
        yield ctx.issue(value_path or path, str(exc))


def check_outputs(ctx: CheckContext) -> Iterator[Issue]:
    """Reported outputs exist, once each; display units convert."""
    outputs = ctx.model.outputs
    requested = ctx.raw.get("outputs")
    seen: set[str] = set()
    for index, item in enumerate(requested if isinstance(requested, list) else []):
        name = item if isinstance(item, str) else _mapping(item).get("name")
        if not isinstance(name, str):
            continue  # the schema reports it
        path: KeyPath = ("outputs", index) if isinstance(item, str) else ("outputs", index, "name")
        if name in seen:
            yield ctx.issue(path, f"output '{name}' is listed twice")
        seen.add(name)
        if name not in outputs:
            yield ctx.issue(
                path,
                f"unknown output '{name}' of model '{ctx.model.id}'"
                + _valid(ctx, name, outputs, "outputs"),
                did_you_mean(name, outputs),
            )
        elif isinstance(item, dict) and isinstance(item.get("unit"), str):
            message = _output_unit_problem(ctx, name, f"1 {outputs[name].unit}", item["unit"])
            if message:
                yield ctx.issue(("outputs", index, "unit"), message)


def _reported_unit(ctx: CheckContext, name: str) -> str | None:
    """The unit an output is reported in: the scenario's display unit, else the model's."""
    requested = ctx.raw.get("outputs")
    for item in requested if isinstance(requested, list) else []:
        if (
            isinstance(item, dict)
            and item.get("name") == name
            and isinstance(item.get("unit"), str)
        ):
            return item["unit"]
    return ctx.model.outputs[name].unit


def _output_unit_problem(ctx: CheckContext, name: str, value: Any, unit: str | None) -> str | None:
    quantity = _quantity(value)
    if quantity is None:
        return None
    try:
        if unit is None:
            if quantity.dimensionless:
                return None
            raise UnitError(f"output '{name}' has no unit metadata; give a plain number")
        convert(quantity, unit, molecular_weight=ctx.model.outputs[name].molecular_weight)
    except UnitError as exc:
        return str(exc)
    return None


def check_metrics(ctx: CheckContext) -> Iterator[Issue]:
    """Metrics are listed once; time_above names known outputs and a threshold in their unit."""
    outputs = ctx.model.outputs
    metrics = ctx.raw.get("metrics")
    seen: set[Any] = set()
    requested = ctx.raw.get("outputs")
    reported = (
        [i if isinstance(i, str) else _mapping(i).get("name") for i in requested]
        if isinstance(requested, list)
        else list(outputs)
    )
    for index, metric in enumerate(metrics if isinstance(metrics, list) else []):
        key = metric if isinstance(metric, str) else repr(sorted(_mapping(metric).items()))
        if key in seen:
            yield ctx.issue(("metrics", index), "this metric is listed twice")
        seen.add(key)
        if not isinstance(metric, dict):
            continue
        names = metric.get("outputs")
        targets = names if isinstance(names, list) else reported
        for j, name in enumerate(targets):
            if not isinstance(name, str):
                continue
            if name not in outputs:
                if isinstance(names, list):
                    yield ctx.issue(
                        ("metrics", index, "outputs", j),
                        f"unknown output '{name}' of model '{ctx.model.id}'"
                        + _valid(ctx, name, outputs, "outputs"),
                        did_you_mean(name, outputs),
                    )
                continue
            message = _output_unit_problem(
                ctx, name, metric.get("threshold"), _reported_unit(ctx, name)
            )
            if message:
                yield ctx.issue(("metrics", index, "threshold"), f"for output '{name}': {message}")


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
    """Doses (with every repeat) and perturbations lie inside the span and in order; the output
    grid is not absurdly fine."""
    span = _span(ctx)
    if span is None:
        return
    start, end = span
    unit = ctx.model.time_unit
    slack = TIME_TOLERANCE * max(1.0, abs(end))
    step = _model_time(ctx, _quantity(_mapping(ctx.raw.get("time")).get("step")))
    if step and (end - start) / step > MAX_DOSES:
        yield ctx.issue(
            ("time", "step"),
            f"the output grid would have {(end - start) / step:,.0f} points; at most "
            f"{MAX_DOSES:,} are allowed (use a larger step)",
        )
    for path, dose in _items(ctx, "doses"):
        given = dose.get("time")
        first = _model_time(ctx, _quantity(given)) if given is not None else start
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
        if not every or every <= 0:
            continue
        if isinstance(count, int) and not isinstance(count, bool):
            last = first + (count - 1) * every
            if last > end + slack:
                yield ctx.issue(
                    (*path, "count"),
                    f"the last of {count} doses falls at {last:g} {unit}, after the end of the "
                    f"span ({end:g} {unit}); lower 'count' or extend 'time.end'",
                )
        if until is not None:
            repeats = repeat_count(first, every, None, until)
            if until > end + slack:
                yield ctx.issue(
                    (*path, "until"),
                    f"'until' ({until:g} {unit}) is after the end of the span ({end:g} {unit})",
                )
            elif repeats < 1:
                yield ctx.issue(
                    (*path, "until"),
                    f"'until' ({until:g} {unit}) is before the dose time ({first:g} {unit}): "
                    "the dose would never be given",
                )
            elif repeats > MAX_DOSES:
                yield ctx.issue(
                    (*path, "every"),
                    f"this repeat expands to {repeats:,} doses; at most {MAX_DOSES:,} are allowed",
                )
    for path, item in _items(ctx, "perturbations"):
        times = {}
        for key in ("time", "until"):
            value = _model_time(ctx, _quantity(item.get(key)))
            times[key] = value
            if value is not None and not start - slack <= value <= end + slack:
                yield ctx.issue(
                    (*path, key),
                    f"{key} {value:g} {unit} is outside the simulated span "
                    f"[{start:g}, {end:g}] {unit}",
                )
        begin = times["time"] if times["time"] is not None else start
        if times["until"] is not None and times["until"] <= begin:
            yield ctx.issue(
                (*path, "until"),
                f"'until' ({times['until']:g} {unit}) is not after the start of the "
                f"perturbation ({begin:g} {unit}): it would never act",
            )


CHECKS: tuple[Check, ...] = (
    check_dose_targets,
    check_dose_units,
    check_product,
    check_parameters,
    check_outputs,
    check_metrics,
    check_arm_references,
    check_times,
)


def run_checks(ctx: CheckContext) -> list[Issue]:
    return [issue for check in CHECKS for issue in check(ctx)]
