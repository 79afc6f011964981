"""Find, read and compile models. The only module that talks to Antimony.

A registered model is ``models/<id>.ant`` (equations) plus ``models/<id>.yaml`` (interface and
parameter provenance). A scenario may instead name an Antimony or SBML file by path; then the
model's own species and parameter ids are its inputs and outputs.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .errors import Issue, ModelError, ScenarioError, did_you_mean
from .scenario import AnyQuantity, Strict
from .units import UnitError, parse_unit
from .validation import validate_document
from .yaml_source import load_yaml_file

MODEL_SUFFIXES = (".ant", ".txt")
SBML_SUFFIXES = (".xml", ".sbml")
MODELS_ENV = "SECRETOME_SIM_MODELS"


# --------------------------------------------------------------------------- metadata schema
class InputMeta(Strict):
    target: str
    unit: str
    description: str = ""
    molecular_weight: AnyQuantity | None = None
    volume: AnyQuantity | None = None


class OutputMeta(Strict):
    id: str | None = None
    expression: str | None = None
    unit: str
    description: str = ""
    molecular_weight: AnyQuantity | None = None  # lets a scenario report mass units

    @model_validator(mode="after")
    def _one_of(self) -> OutputMeta:
        if (self.id is None) == (self.expression is None):
            raise ValueError("give exactly one of 'id' (a model id) or 'expression'")
        return self


class Calibration(Strict):
    """A value tuned so that a published direction holds: which claim, and where it still holds."""

    claim: str
    holds_for: tuple[float, float]
    method: str = ""


class ParameterMeta(Strict):
    value: float
    unit: str
    source: str  # a DOI/citation, or the word 'assumed'
    range: tuple[float, float]
    description: str = ""
    calibrated: Calibration | None = None

    @model_validator(mode="after")
    def _range(self) -> ParameterMeta:
        low, high = self.range
        if not (low <= self.value <= high) or low > high:
            raise ValueError(f"value {self.value} must lie inside range [{low}, {high}]")
        if not self.source.strip():
            raise ValueError("source must be a DOI/citation or the word 'assumed'")
        return self

    @property
    def assumed(self) -> bool:
        return self.source.strip().lower().startswith("assumed")


class Reference(Strict):
    key: str
    citation: str
    doi: str | None = None


class ModelMeta(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    title: str
    description: str
    time_unit: str
    antimony: str | None = None
    sbml: str | None = None
    inputs: dict[str, InputMeta]
    outputs: dict[str, OutputMeta]
    parameters: dict[str, ParameterMeta]
    references: list[Reference] = []
    simplifications: list[str] = []
    status: Literal["prediction", "demonstration"] = "prediction"


# --------------------------------------------------------------------------- runtime view
@dataclass(frozen=True)
class InputInfo:
    """A named dose target, resolved against the compiled model."""

    name: str
    target: str
    kind: Literal["species", "parameter"]
    unit: str | None
    description: str = ""
    molecular_weight: Any = None
    volume: Any = None
    compartment: str | None = None
    amount: bool = False  # a species with only substance units: doses add amounts, not levels


@dataclass(frozen=True)
class OutputInfo:
    """A named observable: a model id, or an expression added as an assignment rule."""

    name: str
    selection: str
    unit: str | None
    description: str = ""
    expression: str | None = None
    molecular_weight: Any = None


@dataclass
class ModelDefinition:
    """A model as data: equations, interface and provenance. Compiles lazily, once."""

    id: str
    path: Path
    text: str
    format: Literal["antimony", "sbml"]
    time_unit: str
    meta: ModelMeta | None = None
    meta_path: Path | None = None

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @cached_property
    def sbml(self) -> str:
        if self.format == "sbml":
            return self.text
        return antimony_to_sbml(self.text, str(self.path))

    @cached_property
    def base(self) -> Any:
        """A RoadRunner of the unmodified model, used to read ids and defaults."""
        return load_roadrunner(self.sbml, str(self.path))

    @cached_property
    def species_ids(self) -> list[str]:
        return list(self.base.model.getFloatingSpeciesIds())

    @cached_property
    def derived_ids(self) -> frozenset[str]:
        """Ids the model computes: by assignment or rate rules, or by initial assignments
        (``p2 = 2 * p1`` follows an arm's value of p1, so p2 itself is not settable)."""
        base = self.base
        return frozenset(
            [*base.getAssignmentRuleIds(), *base.getRateRuleIds(), *base.getInitialAssignmentIds()]
        )

    @cached_property
    def parameter_ids(self) -> list[str]:
        """Global parameters a scenario may set: not computed by rules or initial assignments."""
        return [p for p in self.base.model.getGlobalParameterIds() if p not in self.derived_ids]

    @cached_property
    def rule_ids(self) -> list[str]:
        """Ids computed by rules: assignment rules, then rate rules (states of their own)."""
        return list(self.base.getAssignmentRuleIds()) + list(self.base.getRateRuleIds())

    @cached_property
    def amount_species(self) -> frozenset[str]:
        """Species with only substance units: their symbol means an amount, not a level, so
        a dose adds an amount and an output reports one (SBML's hasOnlySubstanceUnits)."""
        # read from the XML: importing libSBML costs ~50 MB in every sweep process
        from xml.etree import ElementTree

        root = ElementTree.fromstring(self.sbml.encode())
        return frozenset(
            element.get("id", "")
            for element in root.iter()
            if element.tag.rsplit("}", 1)[-1] == "species"
            and element.get("hasOnlySubstanceUnits", "false").strip().lower() in ("true", "1")
        )

    @cached_property
    def inputs(self) -> dict[str, InputInfo]:
        if self.meta is None:
            return {
                **{s: self._input(s, s, None) for s in self.species_ids},
                **{p: self._input(p, p, None) for p in self.parameter_ids},
            }
        return {
            name: self._input(name, item.target, item.unit, item)
            for name, item in self.meta.inputs.items()
        }

    @cached_property
    def outputs(self) -> dict[str, OutputInfo]:
        if self.meta is None:
            names = self.species_ids + self.rule_ids
            return {n: OutputInfo(n, self._selection(n), None) for n in names}
        result = {}
        for name, item in self.meta.outputs.items():
            if item.expression is not None:
                selection = f"_out_{name}"
            else:
                selection = self._selection(item.id or name)
            result[name] = OutputInfo(
                name,
                selection,
                item.unit,
                item.description,
                item.expression,
                item.molecular_weight,
            )
        return result

    @cached_property
    def parameters(self) -> dict[str, ParameterMeta | None]:
        """Every settable parameter, with its metadata where the model has some."""
        known = self.meta.parameters if self.meta else {}
        return {p: known.get(p) for p in self.parameter_ids}

    def parameter_unit(self, name: str) -> str | None:
        meta = self.parameters.get(name)
        return meta.unit if meta else None

    def _selection(self, model_id: str) -> str:
        """libRoadRunner's selection for an id: a species' level (``[S]``) unless it is
        measured as an amount, whose own value (``S``) is what the model means by it."""
        if model_id in self.species_ids and model_id not in self.amount_species:
            return f"[{model_id}]"
        return model_id

    def _input(self, name: str, target: str, unit: str | None, meta: Any = None) -> InputInfo:
        kind: Literal["species", "parameter"] = (
            "species" if target in self.species_ids else "parameter"
        )
        compartment = None
        if kind == "species":
            model = self.base.model
            index = model.getCompartmentIndexForFloatingSpecies(self.species_ids.index(target))
            compartment = model.getCompartmentIds()[index]
        return InputInfo(
            name=name,
            target=target,
            kind=kind,
            unit=unit,
            description=getattr(meta, "description", ""),
            molecular_weight=getattr(meta, "molecular_weight", None),
            volume=getattr(meta, "volume", None),
            compartment=compartment,
            amount=target in self.amount_species,
        )

    def check(self) -> list[str]:
        """Disagreements between the metadata and the equations (empty if they agree)."""
        problems = []
        try:
            if not parse_unit(self.time_unit).check("[time]"):
                problems.append(f"time_unit: '{self.time_unit}' is not a unit of time")
        except UnitError as exc:
            problems.append(f"time_unit: {exc}")
        if self.meta is None:
            return problems
        model_params = set(self.parameter_ids)
        values = dict(
            zip(
                self.base.model.getGlobalParameterIds(),
                self.base.model.getGlobalParameterValues(),
                strict=True,
            )
        )
        for name, item in self.meta.parameters.items():
            if name not in model_params:
                hint = did_you_mean(name, model_params)
                problems.append(
                    f"parameter '{name}' is in the metadata but not a settable parameter of "
                    f"the model" + (f"; did you mean '{hint}'?" if hint else "")
                )
            elif not math.isclose(values[name], item.value, rel_tol=1e-9, abs_tol=1e-300):
                problems.append(
                    f"parameter '{name}': metadata value {item.value} differs from the model's "
                    f"{values[name]}"
                )
            try:
                parse_unit(item.unit)
            except UnitError as exc:
                problems.append(f"parameter '{name}': {exc}")
        for name in sorted(model_params - set(self.meta.parameters)):
            if not name.startswith("_"):
                problems.append(
                    f"parameter '{name}' has no metadata entry (value, unit, source, range)"
                )
        ids = set(self.species_ids) | model_params
        for name, item in self.meta.inputs.items():
            if item.target not in ids:
                problems.append(
                    f"input '{name}' targets '{item.target}', which is neither a species nor a "
                    "settable parameter of the model"
                )
            try:
                parse_unit(item.unit)
            except UnitError as exc:
                problems.append(f"input '{name}': {exc}")
        all_ids = ids | set(self.rule_ids) | set(self.base.model.getCompartmentIds())
        for name, item in self.meta.outputs.items():
            if item.id is not None and item.id not in all_ids:
                problems.append(f"output '{name}' refers to unknown id '{item.id}'")
        return problems


# --------------------------------------------------------------------------- compile
def antimony_to_sbml(text: str, origin: str) -> str:
    """Compile Antimony to SBML. Antimony keeps global state; we clear it on every call."""
    import antimony

    antimony.clearPreviousLoads()
    if antimony.loadAntimonyString(text) < 0:
        raise ModelError(f"{origin}: Antimony could not read the model: {antimony.getLastError()}")
    module = antimony.getMainModuleName()
    sbml = antimony.getSBMLString(module)
    if not sbml:
        raise ModelError(f"{origin}: Antimony produced no SBML: {antimony.getLastError()}")
    return sbml


def load_roadrunner(sbml: str, origin: str) -> Any:
    """Compile SBML with libRoadRunner (the JIT compile is the expensive step: do it once)."""
    import roadrunner

    try:
        return roadrunner.RoadRunner(sbml)
    except Exception as exc:  # libRoadRunner raises RuntimeError with the SBML problem
        raise ModelError(f"{origin}: libRoadRunner could not load the model: {exc}") from None


def engine_versions() -> dict[str, str]:
    import antimony
    import roadrunner

    return {
        "libroadrunner": roadrunner.__version__,
        "antimony": getattr(antimony, "__version__", None) or antimony.getVersionStr(),
    }


# --------------------------------------------------------------------------- discovery
def model_search_path(extra: list[Path] | None = None) -> list[Path]:
    """Where registered models are looked up, first match wins."""
    dirs: list[Path] = list(extra or [])
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path.cwd() / "models")
    here = Path(__file__).resolve().parent
    dirs.append(here.parents[1] / "models")  # a source checkout (editable install)
    dirs.append(here / "bundled_models")  # a wheel install
    seen, unique = set(), []
    for d in dirs:
        key = d.resolve() if d.exists() else d
        if key not in seen and d.is_dir():
            seen.add(key)
            unique.append(d)
    return unique


def list_models(search: list[Path] | None = None) -> dict[str, Path]:
    """Registered model ids and their metadata files."""
    found: dict[str, Path] = {}
    for directory in model_search_path(search):
        for meta in sorted(directory.glob("*.yaml")):
            found.setdefault(meta.stem, meta)
    return found


def load_model(
    reference: str,
    *,
    base_dir: Path | None = None,
    time_unit: str | None = None,
    search: list[Path] | None = None,
) -> ModelDefinition:
    """Resolve a model id or file path to a ModelDefinition (metadata validated, not compiled)."""
    candidate = Path(reference)
    if base_dir is not None and not candidate.is_absolute():
        candidate = base_dir / candidate
    is_path = candidate.suffix.lower() in MODEL_SUFFIXES + SBML_SUFFIXES + (".yaml",)
    if is_path:
        if not candidate.exists():
            raise ModelError(f"model file not found: {candidate}")
        if candidate.suffix == ".yaml":
            return _from_metadata(candidate)
        sidecar = candidate.with_suffix(".yaml")
        if sidecar.exists():
            definition = _from_metadata(sidecar)
            if time_unit is not None and parse_unit(time_unit) != parse_unit(definition.time_unit):
                raise ModelError(
                    f"{candidate}: time_unit '{time_unit}' contradicts the model's metadata "
                    f"({sidecar.name} says '{definition.time_unit}'); drop time_unit"
                )
            return definition
        if time_unit is None:
            raise ModelError(
                f"{candidate}: a model file without metadata needs its time unit; write "
                f"model: {{file: {reference}, time_unit: hour}}"
            )
        fmt = "sbml" if candidate.suffix.lower() in SBML_SUFFIXES else "antimony"
        return ModelDefinition(
            id=candidate.stem,
            path=candidate,
            text=candidate.read_text(encoding="utf-8"),
            format=fmt,
            time_unit=time_unit,
        )
    registered = list_models(search)
    if reference not in registered:
        hint = did_you_mean(reference, registered)
        known = ", ".join(sorted(registered)) or "none found"
        raise ModelError(
            f"unknown model '{reference}'"
            + (f"; did you mean '{hint}'?" if hint else "")
            + f" (registered models: {known})"
        )
    return _from_metadata(registered[reference])


def _from_metadata(meta_path: Path) -> ModelDefinition:
    data, positions, _ = load_yaml_file(meta_path)
    meta, issues = validate_document(ModelMeta, data, positions, str(meta_path))
    if meta is None:
        raise ScenarioError(issues)
    if meta.id != meta_path.stem:
        raise ScenarioError(
            [
                Issue(
                    str(meta_path),
                    *positions.get(("id",), (None, None)),
                    ("id",),
                    f"model id must equal the file name '{meta_path.stem}', got '{meta.id}'",
                )
            ]
        )
    if meta.sbml:
        model_path, fmt = meta_path.parent / meta.sbml, "sbml"
    else:
        model_path, fmt = meta_path.parent / (meta.antimony or f"{meta.id}.ant"), "antimony"
    if not model_path.exists():
        raise ModelError(f"{meta_path}: model equations not found at {model_path}")
    return ModelDefinition(
        id=meta.id,
        path=model_path,
        text=model_path.read_text(encoding="utf-8"),
        format=fmt,  # type: ignore[arg-type]
        time_unit=meta.time_unit,
        meta=meta,
        meta_path=meta_path,
    )
