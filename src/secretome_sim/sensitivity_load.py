"""Sensitivity file -> a checked ``Sensitivity``: what is varied, over what, with which evidence.

Inputs are model parameters (ranges from the model metadata unless the file gives them) and dose
or product factors by path. They become the factors of an ordinary sweep, so the points run on
the sweep executors (serial, processes, Dask) and resume like any sweep; the method only decides
which points (``sensitivity_methods.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import Issue, KeyPath, ScenarioError, did_you_mean
from .scenario import Scenario
from .sensitivity_spec import Method, SensitivityFile, SensitivitySpec
from .study_file import read_study
from .sweep_load import Sweep, build_sweep
from .units import format_quantity, parse_quantity, registry
from .validation import validate_document
from .yaml_source import Positions, position_of

MAX_INPUTS = 500


@dataclass(frozen=True)
class SensitivityInput:
    """One varied quantity: a model parameter or a factor by path."""

    name: str
    kind: str  # 'parameter' or 'factor'
    paths: tuple[str, ...]
    unit: str
    nominal: float | None  # the scenario's value (local method), in ``unit``
    low: float | None  # the sampled range (global methods), in ``unit``
    high: float | None
    log: bool
    source: str  # DOI / citation / 'assumed' / where a factor's value comes from
    evidence: str  # 'assumed', 'calibrated', 'sourced', 'dose' or 'unknown'


@dataclass(frozen=True)
class Sensitivity:
    """A validated sensitivity study, ready to run."""

    scenario: Scenario
    spec: SensitivitySpec
    method: Method
    inputs: list[SensitivityInput]
    skipped: list[tuple[str, str]]  # (name, why it is not varied)
    sweep: Sweep  # the factors, arms, outputs and metrics, as a sweep
    source: Path | None

    @property
    def study_id(self) -> str:
        return self.sweep.sweep_id


def load_sensitivity(
    path: str | Path, *, method: Method | None = None, models_dir: str | Path | None = None
) -> Sensitivity:
    """Read a scenario (its ``sensitivity:`` section, or the defaults when it has none) or a
    sensitivity file with ``scenario:``. ``method`` overrides the file's."""
    source = read_study(
        path, "sensitivity", SensitivityFile, SensitivitySpec, "sensitivity file", models_dir
    )
    spec = source.spec or SensitivitySpec()  # a plain scenario: the documented defaults
    return build_sensitivity(source.scenario, spec, method, source.where, source.path)


def build_sensitivity(
    scenario: Scenario,
    spec: SensitivitySpec | dict[str, Any] | None = None,
    method: Method | None = None,
    where: tuple[str, KeyPath, Positions] | None = None,
    source: Path | None = None,
) -> Sensitivity:
    """Check a sensitivity spec against a loaded scenario (the API entry for studies built in
    code). Every problem is reported at once."""
    filename, base, positions = where or ("<sensitivity>", (), {})
    if spec is None:
        spec = SensitivitySpec()
    elif isinstance(spec, dict):
        checked, issues = validate_document(SensitivitySpec, spec, positions, filename)
        if issues:
            raise ScenarioError(issues, "sensitivity spec")
        assert checked is not None
        spec = checked
    method = method or spec.method
    issues: list[Issue] = []

    def issue(key: KeyPath, message: str, hint: str | None = None) -> None:
        line, column = position_of(positions, (*base, *key))
        issues.append(Issue(filename, line, column, (*base, *key), message, hint))

    arms = list(spec.arms or scenario.arms)
    for index, arm in enumerate(arms):
        if arm not in scenario.arms:
            issue(
                ("arms", index), f"no arm '{arm}' in the scenario", did_you_mean(arm, scenario.arms)
            )
        elif arm in arms[:index]:
            issue(("arms", index), f"arm '{arm}' is listed twice")
    arms = list(dict.fromkeys(a for a in arms if a in scenario.arms))
    inputs, skipped = _parameter_inputs(scenario, spec, method, arms, issue)
    varied = {i.name for i in inputs}
    for name in spec.factors:
        if name in varied:
            issue(
                ("factors", name),
                f"factor '{name}' has the name of a varied model parameter; rename the factor",
            )
    inputs += [i for i in _factor_inputs(scenario, spec, method, issue) if i.name not in varied]
    if method == "local":
        skipped += [(i.name, _NO_NOMINAL) for i in inputs if _is_zero(i.nominal)]
        inputs = [i for i in inputs if not _is_zero(i.nominal)]
    if not inputs and not issues:
        issue((), "nothing to vary: no parameter or factor is left (see 'parameters', 'exclude')")
    if len(inputs) > MAX_INPUTS:
        issue(("parameters",), f"{len(inputs)} inputs; at most {MAX_INPUTS} (use 'exclude')")
    if issues:
        raise ScenarioError(issues, "sensitivity study")
    sweep = _as_sweep(scenario, spec, method, inputs, arms, (filename, base, positions), source)
    inputs = [_in_factor_units(item, sweep) for item in inputs]
    return Sensitivity(scenario, spec, method, inputs, skipped, sweep, source)


_NO_NOMINAL = "nominal value is 0 or unset: a normalised (relative) sensitivity is undefined"


def _is_zero(value: Any) -> bool:
    if value is None:
        return True
    magnitude = getattr(value, "magnitude", value)
    return isinstance(magnitude, int | float) and float(magnitude) == 0.0


# --------------------------------------------------------------------------- parameters
def _parameter_inputs(scenario, spec, method, arms, issue) -> tuple[list, list]:
    model = scenario.model_definition
    metadata = model.parameters
    settable = set(model.parameter_ids)
    requested = spec.parameters
    explicit = requested != "all"
    if requested == "all":
        names = [n for n, meta in metadata.items() if meta is not None and n in settable]
    else:
        names = list(requested)
    for index, name in enumerate(spec.exclude):
        if name not in metadata and name not in settable:
            issue(("exclude", index), f"unknown parameter '{name}'", did_you_mean(name, settable))
    inputs: list[SensitivityInput] = []
    skipped: list[tuple[str, str]] = []
    own_parameters = _arm_parameters(scenario, arms)
    for index, name in enumerate(names):
        key = ("parameters", name if isinstance(requested, dict) else index)
        if name not in settable:
            issue(
                key,
                f"'{name}' is not a settable parameter of model '{model.id}'",
                did_you_mean(name, settable),
            )
            continue
        if name in spec.exclude:
            continue
        overriding = [a for a in arms if name in own_parameters[a]]
        if overriding:
            why = (
                f"arm '{overriding[0]}' sets it itself, so a scenario-level value would not "
                "reach that arm"
            )
            if explicit:
                issue(key, f"'{name}': {why}; exclude it or leave that arm out")
            else:
                skipped.append((name, why))
            continue
        meta = metadata.get(name)
        unit = model.parameter_unit(name) or ""
        nominal = _nominal_parameter(scenario, name, unit)
        given = requested.get(name) if isinstance(requested, dict) else None
        low = high = None
        scale = "auto"
        if method != "local":
            if given is not None:
                try:
                    low = _in_unit(given.low, unit)
                    high = _in_unit(given.high, unit)
                except ValueError as exc:
                    issue(key, str(exc))
                    continue
                scale = given.scale
            elif meta is not None:
                low, high = (float(v) for v in meta.range)
            else:
                issue(
                    key, f"'{name}' has no metadata range; give one: {name}: {{low: .., high: ..}}"
                )
                continue
            if not high > low:
                if given is not None:
                    issue(key, f"'{name}': high must be above low, got [{low:g}, {high:g}]")
                else:
                    skipped.append((name, f"metadata range [{low:g}, {high:g}] has no width"))
                continue
            if scale == "log" and low <= 0:
                issue(key, f"'{name}': a log range needs low > 0, got {low:g}")
                continue
        log = scale == "log" or (
            scale == "auto" and low is not None and low > 0 and high / low >= 10
        )
        source = meta.source.strip() if meta is not None else "no metadata"
        evidence = _evidence(meta)
        inputs.append(
            SensitivityInput(
                name,
                "parameter",
                (f"parameters.{name}",),
                unit,
                nominal,
                low,
                high,
                log,
                source,
                evidence,
            )
        )
    return inputs, skipped


def _arm_parameters(scenario: Scenario, arms: list[str]) -> dict[str, set[str]]:
    """Parameters each arm sets itself or inherits through ``extends`` (not the scenario's)."""
    result = {}
    for arm in arms:
        names: set[str] = set()
        seen: set[str] = set()
        current: str | None = arm
        while current is not None and current not in seen and current in scenario.arms:
            seen.add(current)
            names |= set(scenario.arms[current].parameters)
            current = scenario.arms[current].extends
        result[arm] = names
    return result


def _nominal_parameter(scenario: Scenario, name: str, unit: str) -> float:
    """The value every arm starts from: the scenario's own, else the model's default."""
    if name in scenario.parameters:
        return _in_unit(scenario.parameters[name], unit)
    meta = scenario.model_definition.parameters.get(name)
    if meta is not None:
        return float(meta.value)
    return float(scenario.model_definition.base[name])


def _in_unit(value: Any, unit: str) -> float:
    quantity = parse_quantity(value)
    if quantity.units == registry().dimensionless:
        return float(quantity.magnitude)  # a plain number is in the parameter's unit
    try:
        return float(quantity.to(unit or "dimensionless").magnitude)
    except Exception:
        raise ValueError(
            f"expected a value in {unit or 'plain numbers'}, got {format_quantity(quantity)}"
        ) from None


def _evidence(meta: Any) -> str:
    if meta is None:
        return "unknown"
    if meta.calibrated is not None:
        return "calibrated"
    return "assumed" if meta.assumed else "sourced"


# --------------------------------------------------------------------------- factors
def _factor_inputs(scenario, spec, method, issue) -> list[SensitivityInput]:
    """Dose and product factors. Units and ranges are resolved by the sweep machinery later;
    here: what the scenario holds at the path (the local method's nominal) and the evidence."""
    from .sweep_factors import PathProblem, resolve_target

    inputs = []
    for name, factor in spec.factors.items():
        paths = (factor.path,) if isinstance(factor.path, str) else tuple(factor.path)
        broken = False
        for index, text in enumerate(paths):
            try:
                resolve_target(text, scenario)
            except PathProblem as exc:
                key = ("factors", name, "path") + ((index,) if len(paths) > 1 else ())
                issue(key, str(exc), exc.hint)
                broken = True
        if broken:
            continue
        if method != "local" and factor.range is None:
            issue(
                ("factors", name),
                f"factor '{name}': {method} samples a range; give range: {{low, high}}",
            )
            continue
        targets = [resolve_target(text, scenario) for text in paths]
        if any("parameters" in t.path[:3] for t in targets):
            issue(
                ("factors", name, "path"),
                "model parameters are listed under 'parameters' (their source and range come "
                "from the model metadata), not as factors",
            )
            continue
        if any(t.kind in ("int", "name") for t in targets):
            issue(
                ("factors", name, "path"),
                f"factor '{name}' is a {'count' if targets[0].kind == 'int' else 'variant'}; "
                "sensitivities need a continuous quantity (sweep counts and variants instead)",
            )
            continue
        held = _value_at(scenario, paths[0])
        if method == "local" and any(_value_at(scenario, t) != held for t in paths[1:]):
            issue(
                ("factors", name, "path"),
                f"factor '{name}': its paths hold different values; the local method perturbs "
                "one nominal value, so give paths that hold the same value (or one factor each)",
            )
            continue
        step = 2 * spec.local.relative_step
        magnitude = getattr(held, "magnitude", held)
        at_bound = isinstance(magnitude, int | float) and magnitude * (1 + step) > 1
        if method == "local" and at_bound and any(t.domain == "fraction" for t in targets):
            issue(
                ("factors", name),
                f"factor '{name}' = {magnitude:g} is a fraction at or near 1: p(1 + 2h) would "
                "leave [0, 1]; leave it out of a local study (or use morris/sobol with a range)",
            )
            continue
        source, evidence = _factor_evidence(scenario, paths[0])
        scale = factor.range.scale if factor.range is not None else "lin"
        inputs.append(
            SensitivityInput(
                name, "factor", paths, "", held, None, None, scale == "log", source, evidence
            )
        )
    return inputs


def _value_at(scenario: Scenario, text: str) -> Any:
    """What the scenario holds at a path (a Quantity, number or None), read without changing it;
    a bad path is reported later by the sweep's own path resolution."""
    from .sweep_factors import parse_path

    try:
        path = parse_path(text)
    except ValueError:
        return None
    node: Any = scenario
    for key in path:
        if isinstance(node, BaseModel):
            node = getattr(node, str(key), None)
        elif isinstance(node, dict):
            node = node.get(key, 1.0 if path[0] == "product" and path[1] == "variants" else None)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return None
    return node


def _factor_evidence(scenario: Scenario, text: str) -> tuple[str, str]:
    parts = text.replace("[", ".").replace("]", "").split(".")
    product = scenario.product
    if product is not None and len(parts) >= 3 and parts[0] == "product":
        item = None
        if parts[1] == "factors":
            item = product.factors.get(parts[2])
        elif parts[1] == "variants":
            item = product.variants.get(parts[2])
        source = (item.source if item is not None else "").strip()
        if not source:
            return "not given in the scenario", "unknown"
        return source, "assumed" if source.lower().startswith("assumed") else "sourced"
    return "the scenario's dose schedule", "dose"


# --------------------------------------------------------------------------- as a sweep
def _as_sweep(scenario, spec, method, inputs, arms, where, source) -> Sweep:
    """The inputs as sweep factors: ranges for global methods, the nominal value for local."""
    factors: dict[str, Any] = {}
    for item in inputs:
        entry: dict[str, Any] = {"path": list(item.paths)}
        if item.kind == "factor":
            spec_factor = spec.factors[item.name]
            if spec_factor.unit:
                entry["unit"] = spec_factor.unit
            if spec_factor.label:
                entry["label"] = spec_factor.label
        if method == "local":
            value = item.nominal
            entry["values"] = [format_quantity(value) if hasattr(value, "units") else value]
        elif item.kind == "factor":
            entry["range"] = spec.factors[item.name].range.model_dump(
                mode="json", exclude_none=True
            )
        else:
            entry["range"] = {
                "low": item.low,
                "high": item.high,
                "scale": "log" if item.log else "lin",
            }
        factors[item.name] = entry
    sweep_spec = {
        "description": f"{method} sensitivity: {spec.description}".strip(),
        "design": "lhs",  # points are given by the method; the design only marks them sampled
        "samples": 1,
        "seed": spec.seed,
        "factors": factors,
        "arms": arms,
        "outputs": spec.outputs,
        "metrics": [m if isinstance(m, str) else m.model_dump(mode="json") for m in spec.metrics]
        if spec.metrics
        else None,
        "chunk_size": spec.chunk_size,
    }
    sweep_spec = {k: v for k, v in sweep_spec.items() if v is not None}
    filename, base, positions = where
    try:
        sweep = build_sweep(scenario, sweep_spec, (filename, base, positions), source)
    except ScenarioError as exc:
        raise ScenarioError(
            [_relocate(i, inputs, base, positions) for i in exc.issues], "sensitivity study"
        ) from None
    return sweep


def _in_factor_units(item: SensitivityInput, sweep: Sweep) -> SensitivityInput:
    """A factor input with the unit its sweep factor settled on, and its numbers in it."""
    if item.kind != "factor":
        return item
    factor = next(f for f in sweep.factors if f.name == item.name)
    nominal = None if item.nominal is None else float(factor.magnitude(item.nominal))
    low = high = None
    if factor.spec.range is not None:
        low = float(factor.magnitude(factor.spec.range.low))
        high = float(factor.magnitude(factor.spec.range.high))
    return replace(item, unit=factor.unit, nominal=nominal, low=low, high=high)


def _relocate(
    item: Issue, inputs: list[SensitivityInput], base: KeyPath, positions: Positions
) -> Issue:
    """A sweep issue about a parameter's range points at the file's 'parameters' entry, or
    says that the range came from the model metadata."""
    path = item.path[len(base) :]
    if len(path) >= 2 and path[0] == "factors":
        name = path[1]
        match = next((i for i in inputs if i.name == name), None)
        if match is not None and match.kind == "parameter":
            key = (*base, "parameters", name)
            line, column = position_of(positions, key)
            where = (
                ""
                if line is not None
                else f" (range from the model metadata: [{match.low:g}, {match.high:g}])"
            )
            message = item.message.replace(f"factor '{name}'", f"parameter '{name}'") + where
            return Issue(item.file, line, column, key, message, item.hint)
        if match is not None and len(path) >= 3 and path[2] == "values":
            key = (*base, "factors", name)
            line, column = position_of(positions, key)
            return Issue(item.file, line, column, key, item.message, item.hint)
    return item


def describe_inputs(study: Sensitivity) -> str:
    """One line per input (for --help-like listings and the report)."""
    lines = []
    for item in study.inputs:
        span = f"[{item.low:g}, {item.high:g}]" if item.low is not None else ""
        lines.append(f"{item.name} ({item.kind}, {item.unit or '-'}) {span} {item.evidence}")
    return "\n".join(lines)
