"""Sweep factors: find each factor's path in the scenario, check its values, apply them fast.

A path names a quantity the way the scenario file writes it: ``parameters.k_deg``,
``arms.dox.doses[0].amount``, ``arms.cm.perturbations[1].concentration``,
``product.factors.VEGF.concentration``, ``product.variants.hypoxic.scale.VEGF``. At load time
each path is resolved against the validated scenario (unknown names are located errors with a
"did you mean"), and each value a design can produce at its extremes is written into a copy of the
scenario file's data and checked by the same schema and semantic checks as a scenario file, so a
value that makes the scenario invalid is reported before anything runs. At run time a point's
values are set with shallow copies of the frozen scenario objects: no YAML, no re-validation.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
from dataclasses import dataclass
from typing import Any

import pint
from pydantic import BaseModel

from .checks import CheckContext, run_checks
from .errors import Issue, KeyPath, SecretomeError, did_you_mean, format_key_path
from .models import ModelDefinition
from .scenario import STUDY_SECTIONS, Scenario
from .sweep_spec import FactorSpec
from .units import UnitError, format_quantity, parse_quantity, registry
from .validation import validate_document
from .yaml_source import load_yaml

# field name -> (kind, domain). Kinds: quantity (with a unit), int, float, name (a variant).
FIELDS: dict[str, tuple[str, str]] = {
    "amount": ("quantity", "positive"),
    "rate": ("quantity", "positive"),
    "duration": ("quantity", "positive"),
    "half_life": ("quantity", "positive"),
    "every": ("quantity", "positive"),
    "ic50": ("quantity", "positive"),
    "value": ("quantity", "non-negative"),
    "concentration": ("quantity", "non-negative"),
    "time": ("quantity", "any"),
    "until": ("quantity", "any"),
    "count": ("int", "positive"),
    "fraction": ("float", "fraction"),
    "burst_fraction": ("float", "fraction"),
    "factor": ("float", "non-negative"),
    "hill": ("float", "positive"),
    "variant": ("name", "any"),
}
_TIME_FIELDS = {"time", "until", "every", "duration", "half_life"}
_INDEX = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")


class FactorValueError(SecretomeError):
    """A point's value is outside what its path accepts (recorded as a failed point)."""


@dataclass(frozen=True)
class Target:
    """One place in the scenario a factor sets."""

    text: str  # the path as written
    path: KeyPath
    kind: str
    domain: str
    native_unit: str  # the unit at the path ('' for dimensionless, ints, floats and names)
    choices: tuple[str, ...] = ()  # variant names, for kind 'name'


@dataclass(frozen=True)
class Factor:
    """A resolved factor: its targets, and values (grid levels) or a distribution to draw from."""

    name: str
    spec: FactorSpec
    targets: tuple[Target, ...]
    kind: str
    unit: str  # the unit of this factor's numbers in designs and tables

    @property
    def label(self) -> str:
        if self.spec.label:
            return self.spec.label
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @property
    def log_scale(self) -> bool:
        spec = self.spec
        if spec.range is not None:
            return spec.range.scale == "log"
        return spec.distribution is not None and spec.distribution.type == "loguniform"

    def magnitude(self, quantity: Any) -> float | str:
        """A value as this factor's number (quantities converted to ``unit``)."""
        if self.kind == "name":
            return str(quantity)
        q = parse_quantity(quantity)
        if q.units == registry().dimensionless:  # a plain number is in the factor's unit
            # (not q.unitless: pint calls '50 %' unitless, and it is 0.5)
            return float(q.magnitude)
        if not q.dimensionless and not self.unit:
            raise UnitError(f"expected a plain number, got {format_quantity(q)}")
        return float(q.to(self.unit or "dimensionless").magnitude)  # '50 %' -> 0.5

    def levels(self) -> list[float | str]:
        """The values of a grid design, in this factor's unit (or names)."""
        spec = self.spec
        if spec.values is not None:
            return [self.magnitude(value) for value in spec.values]
        assert spec.range is not None and spec.range.count is not None
        low, high = self.magnitude(spec.range.low), self.magnitude(spec.range.high)
        import numpy as np

        spacing = np.geomspace if spec.range.scale == "log" else np.linspace
        values = [float(v) for v in spacing(low, high, spec.range.count)]
        if self.kind == "int":
            values = [float(round(v)) for v in values]
        return values

    def object_value(self, value: float | str) -> Any:
        """A design value as the scenario object the path holds (a Quantity, int, float, name)."""
        if self.kind == "name":
            return str(value)
        number = float(value)
        if not math.isfinite(number):
            raise FactorValueError(f"factor '{self.name}' is not finite ({value!r})")
        for target in self.targets:
            domain = target.domain
            bad = (
                (domain == "positive" and not number > 0)
                or (domain == "non-negative" and number < 0)
                or (domain == "fraction" and not 0 <= number <= 1)
            )
            if bad:
                raise FactorValueError(
                    f"factor '{self.name}' = {number:g} {self.unit}".rstrip()
                    + f": {target.text} must be {_DOMAIN_TEXT[domain]}"
                )
        if self.kind == "int":
            return round(number)
        if self.kind == "float":
            return number
        return registry().Quantity(number, self.unit)


# --------------------------------------------------------------------------- resolving
def parse_path(text: str) -> KeyPath:
    """``arms.dox.doses[0].amount`` (or ``arms.dox.doses.0.amount``, which needs no quotes
    inside YAML braces) -> ``('arms', 'dox', 'doses', 0, 'amount')``."""
    parts: list[str | int] = []
    for piece in text.strip().split("."):
        match = _INDEX.match(piece)
        if not match:
            raise ValueError(
                f"cannot read path {text!r}: write names joined by '.', list items as [index], "
                "e.g. arms.dox.doses[0].amount"
            )
        name = match.group(1)
        parts.append(int(name) if name.isdigit() else name)  # doses.0 == doses[0]
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    return tuple(parts)


class PathProblem(Exception):
    """A path that names nothing in the scenario: what exists there, and a likely fix."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


_PathProblem = PathProblem  # the older private name


def resolve_target(text: str, scenario: Scenario) -> Target:
    """Find what a path names in the scenario; raise PathProblem saying what exists there."""
    try:
        path = parse_path(text)
    except ValueError as exc:
        raise PathProblem(str(exc)) from None
    model: ModelDefinition = scenario.model_definition
    head = path[0]
    if head == "parameters" or (head == "arms" and len(path) > 2 and path[2] == "parameters"):
        if head == "arms":
            _arm(scenario, path)
        prefix = 1 if head == "parameters" else 3
        if len(path) != prefix + 1 or not isinstance(path[prefix], str):
            raise PathProblem(f"expected {format_key_path(path[:prefix])}.<parameter name>")
        name = path[prefix]
        if name not in model.parameters:
            raise PathProblem(
                f"'{name}' is not a settable parameter of model '{model.id}'",
                did_you_mean(name, model.parameters),
            )
        meta = model.parameters[name]
        domain = "non-negative" if meta is not None and meta.range[0] >= 0 else "any"
        return Target(text, path, "quantity", domain, model.parameter_unit(name) or "")
    if head == "arms":
        arm = _arm(scenario, path)
        if len(path) < 3 or path[2] not in ("doses", "perturbations"):
            raise PathProblem(
                "after arms.<arm> expected doses[i], perturbations[i] or parameters.<name>",
                did_you_mean(str(path[2]), ("doses", "perturbations", "parameters"))
                if len(path) > 2
                else None,
            )
        items = getattr(arm, str(path[2]))
        if len(path) < 4 or not isinstance(path[3], int):
            raise PathProblem(f"expected an index after {path[2]}, e.g. {path[2]}[0]")
        if path[3] >= len(items):
            count = len(items)
            raise PathProblem(
                f"arm '{path[1]}' has {count} own {path[2]} "
                + (f"(indexes 0 to {count - 1})" if count else "(none)")
                + "; inherited ones are addressed through the arm that defines them"
            )
        return _field_target(text, path, items[path[3]], 4, scenario)
    if head == "product":
        product = scenario.product
        if product is None:
            raise PathProblem("the scenario has no product")
        if len(path) >= 3 and path[1] == "factors":
            if path[2] not in product.factors:
                raise PathProblem(
                    f"product has no factor '{path[2]}' (factors: {', '.join(product.factors)})",
                    did_you_mean(str(path[2]), product.factors),
                )
            return _field_target(text, path, product.factors[path[2]], 3, scenario)
        if len(path) == 5 and path[1] == "variants" and path[3] == "scale":
            if path[2] not in product.variants:
                raise PathProblem(
                    f"product has no variant '{path[2]}'", did_you_mean(path[2], product.variants)
                )
            if path[4] not in product.factors:
                raise PathProblem(
                    f"product has no factor '{path[4]}' to scale",
                    did_you_mean(str(path[4]), product.factors),
                )
            return Target(text, path, "float", "non-negative", "")
        raise PathProblem(
            "expected product.factors.<factor>.concentration or "
            "product.variants.<variant>.scale.<factor>"
        )
    raise PathProblem(
        "a factor path starts with parameters, arms or product",
        did_you_mean(str(head), ("parameters", "arms", "product")),
    )


def _arm(scenario: Scenario, path: KeyPath) -> Any:
    if len(path) < 2 or path[1] not in scenario.arms:
        name = path[1] if len(path) > 1 else ""
        raise PathProblem(
            f"no arm '{name}' (arms: {', '.join(scenario.arms)})",
            did_you_mean(str(name), scenario.arms),
        )
    return scenario.arms[path[1]]


def _field_target(text: str, path: KeyPath, item: BaseModel, at: int, scenario: Scenario) -> Target:
    allowed = [name for name in type(item).model_fields if name in FIELDS]
    where = format_key_path(path[:at])
    if len(path) != at + 1 or path[at] not in allowed:
        found = path[at] if len(path) > at else None
        raise PathProblem(
            f"{where} has no sweepable field "
            + (f"'{found}'" if found is not None else "named")
            + f" (sweepable here: {', '.join(allowed)})",
            did_you_mean(str(found), allowed) if found is not None else None,
        )
    name = str(path[at])
    kind, domain = FIELDS[name]
    if getattr(item, "type", None) == "set" and name == "value":
        domain = "any"  # a 'set' perturbation may set any value
    current = getattr(item, name)
    unit = ""
    if isinstance(current, pint.Quantity):
        unit = f"{current.units:~}"
    elif name in _TIME_FIELDS:
        unit = f"{scenario.time.end.units:~}"
    choices: tuple[str, ...] = ()
    if kind == "name":
        if getattr(item, "target", None) != "product" or scenario.product is None:
            raise PathProblem("'variant' applies only to doses with target: product")
        choices = tuple(scenario.product.variants)
    return Target(text, path, kind, domain, unit, choices)


def resolve_factors(
    factors: dict[str, FactorSpec],
    scenario: Scenario,
    where: tuple[str, KeyPath, dict],  # (file, key path of the factors mapping, positions)
) -> tuple[list[Factor], list[Issue]]:
    """Resolve every factor; return the factors and every problem, located in the sweep file."""
    filename, base, positions = where
    resolved, issues = [], []

    def issue(path: KeyPath, message: str, hint: str | None = None) -> None:
        from .yaml_source import position_of

        line, column = position_of(positions, path)
        issues.append(Issue(filename, line, column, path, message, hint))

    for name, spec in factors.items():
        here = (*base, name)
        targets = []
        for index, text in enumerate(spec.paths):
            key = (*here, "path") if isinstance(spec.path, str) else (*here, "path", index)
            try:
                targets.append(resolve_target(text, scenario))
            except PathProblem as exc:
                issue(key, f"{text}: {exc}", exc.hint)
        if len(targets) != len(spec.paths):
            continue
        kinds = {t.kind for t in targets}
        if len(kinds) > 1:
            issue((*here, "path"), "all paths of one factor must hold the same kind of value")
            continue
        factor = _with_unit(name, spec, targets, here, issue)
        if factor is None:
            continue
        before = len(issues)
        _check_design_values(factor, scenario, here, issue)
        if len(issues) == before:
            resolved.append(factor)
    return resolved, issues


def _with_unit(name, spec: FactorSpec, targets: list[Target], here, issue) -> Factor | None:
    kind = targets[0].kind
    if kind == "name":
        if spec.values is None or not all(isinstance(v, str) for v in spec.values):
            issue(here, "a variant factor takes 'values': a list of variant names")
            return None
        unknown = [v for v in spec.values if v not in targets[0].choices]
        if unknown:
            issue(
                (*here, "values"),
                f"no variant '{unknown[0]}' (variants: {', '.join(targets[0].choices)})",
                did_you_mean(unknown[0], targets[0].choices),
            )
            return None
        return Factor(name, spec, tuple(targets), kind, "")
    unit = spec.unit
    if unit is None and kind == "quantity":
        written = [q for q in _quantities(spec) if not q.dimensionless]
        unit = f"{written[0].units:~}" if written else targets[0].native_unit
    unit = unit or ""
    if unit:
        try:
            parse_quantity(f"1 {unit}")
        except UnitError as exc:
            issue((*here, "unit"), str(exc))
            return None
    factor = Factor(name, spec, tuple(targets), kind, unit)
    for key, value in _written_values(spec):
        try:
            factor.magnitude(value)
        except (UnitError, pint.DimensionalityError, ValueError) as exc:
            message = f"{value!r} cannot be read in the factor's unit '{unit or '1'}': {exc}"
            issue((*here, *key), message)
            return None
    return factor


def _written_values(spec: FactorSpec) -> list[tuple[KeyPath, Any]]:
    if spec.values is not None:
        return [(("values", i), v) for i, v in enumerate(spec.values)]
    source = spec.range if spec.range is not None else spec.distribution
    kind = "range" if spec.range is not None else "distribution"
    keys = ("low", "high", "mean", "sd")
    return [((kind, k), getattr(source, k)) for k in keys if getattr(source, k, None) is not None]


def _quantities(spec: FactorSpec) -> list[pint.Quantity]:
    found = []
    for _, value in _written_values(spec):
        with contextlib.suppress(UnitError):
            found.append(parse_quantity(value))
    return found


def _extremes(factor: Factor) -> list[tuple[KeyPath, float | str]]:
    """The values to try against the scenario's checks: every listed value, or the ends."""
    spec = factor.spec
    if spec.values is not None:
        return [(("values", i), factor.magnitude(v)) for i, v in enumerate(spec.values)]
    if spec.range is not None:
        return [(("range", k), factor.magnitude(getattr(spec.range, k))) for k in ("low", "high")]
    dist = spec.distribution
    assert dist is not None
    tried = [
        (("distribution", k), factor.magnitude(getattr(dist, k)))
        for k in ("low", "high")
        if getattr(dist, k) is not None
    ]
    if dist.type == "normal":
        tried.append((("distribution", "mean"), factor.magnitude(dist.mean)))
    return tried


def _check_design_values(factor: Factor, scenario: Scenario, here: KeyPath, issue) -> None:
    """Every value a design can reach at its ends must make a valid scenario."""
    dist = factor.spec.distribution
    domain = factor.targets[0].domain
    normal = dist is not None and dist.type == "normal" and domain != "any"
    if normal and (dist.low is None or (domain == "fraction" and dist.high is None)):
        need = "'low' and 'high'" if domain == "fraction" else "'low'"
        issue(
            (*here, "distribution"),
            f"a normal distribution for {factor.targets[0].text} (which must be "
            f"{_DOMAIN_TEXT[domain]}) needs {need} to truncate it",
        )
        return
    raw = _scenario_data(scenario)
    for key, value in _extremes(factor):
        try:
            factor.object_value(value)
        except FactorValueError as exc:
            issue((*here, *key), str(exc))
            continue
        problems = _problems_with(raw, factor, value, scenario)
        if problems:
            shown = "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
            issue(
                (*here, *key),
                f"the value {_show(value, factor.unit)} makes the scenario invalid: {shown}",
            )


_DOMAIN_TEXT = {"positive": "> 0", "non-negative": ">= 0", "fraction": "in [0, 1]"}


def _show(value: float | str, unit: str) -> str:
    return value if isinstance(value, str) else f"{value:g} {unit}".rstrip()


def _scenario_data(scenario: Scenario) -> dict:
    if scenario._text is None:
        return scenario.model_dump(mode="json", exclude=set(STUDY_SECTIONS))
    data, _ = load_yaml(scenario._text, str(scenario.source))
    data = dict(data)
    for section in STUDY_SECTIONS:
        data.pop(section, None)
    return data


def _problems_with(raw: dict, factor: Factor, value: float | str, scenario: Scenario) -> list[str]:
    data = copy.deepcopy(raw)
    written: Any
    if factor.kind == "quantity":
        written = f"{float(value)!r} {factor.unit}".strip()
    elif factor.kind == "int":
        written = round(float(value))
    else:
        written = value if factor.kind == "name" else float(value)
    for target in factor.targets:
        _set_raw(data, target.path, written)
    filename = str(scenario.source or "<scenario>")
    _, issues = validate_document(Scenario, data, {}, filename)
    if not issues:
        issues = run_checks(CheckContext(data, {}, filename, scenario.model_definition))
    return [f"{format_key_path(i.path)}: {i.message}" for i in issues]


def _set_raw(data: Any, path: KeyPath, value: Any) -> None:
    node = data
    for key in path[:-1]:
        if isinstance(node, dict) and node.get(key) is None:
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


# --------------------------------------------------------------------------- applying
def apply_point(scenario: Scenario, factors: list[Factor], values: list[Any]) -> Scenario:
    """The scenario with each factor's path set to the point's value (shallow copies only)."""
    for factor, value in zip(factors, values, strict=True):
        item = factor.object_value(value)
        for target in factor.targets:
            scenario = _set_path(scenario, target.path, item)
    return scenario


def _set_path(node: Any, path: KeyPath, value: Any) -> Any:
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, BaseModel):
        return node.model_copy(update={key: _set_path(getattr(node, str(key)), rest, value)})
    if isinstance(node, dict):
        return {**node, key: _set_path(node.get(key), rest, value)}
    if isinstance(node, list):
        items = list(node)
        items[key] = _set_path(node[key], rest, value)
        return items
    raise FactorValueError(f"cannot set {format_key_path(path)} inside a {type(node).__name__}")
