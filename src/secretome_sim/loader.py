"""Scenario file -> validated Scenario with its model resolved, or every problem at once."""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from .checks import CheckContext, run_checks
from .errors import Issue, ModelError, ScenarioError, did_you_mean
from .models import ModelDefinition, load_model
from .scenario import Scenario
from .units import UnitError, parse_unit
from .validation import validate_document
from .yaml_source import load_yaml_file, position_of


def load_scenario(path: str | Path, *, models_dir: str | Path | None = None) -> Scenario:
    """Read, validate and check a scenario file against its model.

    Raises ScenarioError listing every problem (file:line:column, key path, expected and found);
    ModelError if the model itself cannot be trusted (metadata disagreeing with equations).
    """
    path = Path(path)
    data, positions, text = load_yaml_file(path)
    filename = str(path)
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ScenarioError([Issue(filename, 1, 1, (), f"expected a mapping of keys, got {found}")])
    scenario, issues = validate_document(Scenario, data, positions, filename)
    model = _resolve_model(data, positions, path, models_dir, issues)
    if model is not None:
        issues += run_checks(CheckContext(data, positions, filename, model))
    if issues:
        raise ScenarioError(issues)
    assert scenario is not None and model is not None
    scenario._source = path
    scenario._text = text
    scenario._model = model
    return scenario


def _resolve_model(
    data: dict,
    positions: dict,
    path: Path,
    models_dir: str | Path | None,
    issues: list[Issue],
) -> ModelDefinition | None:
    reference = data.get("model")
    time_unit = None
    if isinstance(reference, dict):
        time_unit = reference.get("time_unit")
        reference = reference.get("file")
    if not isinstance(reference, str) or not isinstance(time_unit, str | None):
        return None  # the schema reports the malformed 'model' entry
    if time_unit is not None and not _is_time_unit(time_unit):
        return None  # the schema reports the bad time unit
    search = [Path(models_dir)] if models_dir else []
    search.append(path.parent.parent / "models")
    key = ("model", "file") if isinstance(data.get("model"), dict) else ("model",)
    try:
        model = load_model(reference, base_dir=path.parent, time_unit=time_unit, search=search)
        problems = model.check()
    except ModelError as exc:
        line, column = position_of(positions, key)
        message = str(exc)
        issues.append(Issue(str(path), line, column, key, message))
        return None
    if problems:
        raise ModelError(
            f"model '{model.id}' ({model.meta_path or model.path}) disagrees with its equations:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return model


def _is_time_unit(text: str) -> bool:
    try:
        return parse_unit(text).check("[time]")
    except UnitError:
        return False


def with_parameters(scenario: Scenario, values: dict[str, float | str]) -> Scenario:
    """A copy of ``scenario`` with model parameters overridden in every arm.

    A number is in the parameter's own unit (from the model metadata); a string such as
    ``"2 1/hour"`` is converted. These win over the file's own arm-level values. Raises
    ScenarioError for unknown parameters or incompatible units, like a file would.
    """
    from .dosing import PlanError, parameter_value
    from .units import parse_quantity

    model: ModelDefinition = scenario.model_definition
    origin = str(scenario.source or "<with_parameters>")
    issues, quantities = [], {}
    for name, value in values.items():
        path = ("parameters", name)
        if name not in model.parameters:
            hint = did_you_mean(name, model.parameters)
            message = f"'{name}' is not a settable parameter of model '{model.id}'"
            issues.append(Issue(origin, None, None, path, message, hint))
            continue
        if isinstance(value, str):
            text = value.strip()
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            text = f"{float(value)!r} {model.parameter_unit(name) or ''}".strip()
        else:
            found = f"{value!r} ({type(value).__name__})"
            message = f"expected a number or a quantity string such as '2 1/hour', got {found}"
            issues.append(Issue(origin, None, None, path, message))
            continue
        try:
            quantity = parse_quantity(text)
            converted = parameter_value(name, quantity, model)
        except (UnitError, PlanError) as exc:
            issues.append(Issue(origin, None, None, path, str(exc)))
            continue
        meta = model.parameters[name]
        if not math.isfinite(converted):
            issues.append(Issue(origin, None, None, path, f"expected a finite number, got {text}"))
        elif meta is not None and converted < 0 <= meta.range[0]:
            message = f"expected a value >= 0 (documented range {list(meta.range)}), got {text}"
            issues.append(Issue(origin, None, None, path, message))
        else:
            quantities[name] = quantity
    if issues:
        raise ScenarioError(issues)
    arms = {
        name: arm.model_copy(update={"parameters": {**arm.parameters, **quantities}})
        for name, arm in scenario.arms.items()
    }
    return scenario.model_copy(update={"arms": arms})  # keeps the resolved model and source
