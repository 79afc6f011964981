"""The dose-scenario schema: frozen objects, unknown keys forbidden, quantities carry units.

Shape checks live here; checks that need the model (input names, unit dimensions, times inside
the span) live in ``checks.py``. See the README for an annotated example.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pint
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    model_validator,
)

from .units import UnitError, format_quantity, parse_quantity

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
PRODUCT = "product"  # the dose target that means "every factor of the scenario's product"


def _quantity(sign: str) -> Any:
    def parse(value: Any) -> pint.Quantity:
        try:
            quantity = parse_quantity(value)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        magnitude = quantity.magnitude
        if math.isinf(magnitude):
            raise ValueError(f"expected a finite number, got {value!r}")
        if sign == "positive" and not magnitude > 0:
            raise ValueError(f"expected a number > 0, got {value!r}")
        if sign == "non-negative" and magnitude < 0:
            raise ValueError(f"expected a number >= 0, got {value!r}")
        return quantity

    return parse


def _time(sign: str) -> Any:
    check = _quantity(sign)

    def parse(value: Any) -> pint.Quantity:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value == 0:
                return parse_quantity("0 h")  # a bare zero is zero in any unit
            raise ValueError(
                f"expected a time with a unit such as '24 h' or '2 day', got {value!r}"
            )
        quantity = check(value)
        if not quantity.check("[time]"):
            raise ValueError(f"expected a time such as '24 h' or '2 day', got {value!r}")
        return quantity

    return parse


_serialize = PlainSerializer(format_quantity, return_type=str)
AnyQuantity = Annotated[pint.Quantity, BeforeValidator(_quantity("any")), _serialize]
PositiveQuantity = Annotated[pint.Quantity, BeforeValidator(_quantity("positive")), _serialize]
NonNegativeQuantity = Annotated[
    pint.Quantity, BeforeValidator(_quantity("non-negative")), _serialize
]
Time = Annotated[pint.Quantity, BeforeValidator(_time("any")), _serialize]
PositiveTime = Annotated[pint.Quantity, BeforeValidator(_time("positive")), _serialize]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class Strict(BaseModel):
    """Base for every schema object: immutable, and a misspelt key is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


# --------------------------------------------------------------------------- time and model
class TimeSpan(Strict):
    """Simulated interval and output grid (``step`` or ``points``, not both)."""

    start: Time = Field(default_factory=lambda: parse_quantity("0 h"))
    end: Time
    step: PositiveTime | None = None
    points: Annotated[int, Field(ge=2, le=1_000_000)] | None = None

    @model_validator(mode="after")
    def _grid(self) -> TimeSpan:
        if self.step is not None and self.points is not None:
            raise ValueError("give either 'step' or 'points' for the output grid, not both")
        if self.end.to(self.start.units).magnitude <= self.start.magnitude:
            raise ValueError(
                f"'end' ({format_quantity(self.end)}) must be after 'start' "
                f"({format_quantity(self.start)})"
            )
        return self


def _time_unit(value: Any) -> str:
    try:
        quantity = parse_quantity(f"1 {value}") if isinstance(value, str) else None
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    if quantity is None or not quantity.check("[time]"):
        raise ValueError(f"expected a time unit such as 'hour' or 'minute', got {value!r}")
    return value


class ModelFile(Strict):
    """A model given by path, with the facts a bare Antimony/SBML file lacks."""

    file: str
    time_unit: Annotated[str, BeforeValidator(_time_unit)]


# --------------------------------------------------------------------------- product
class Factor(Strict):
    """One secreted factor of a product and the model input it feeds."""

    concentration: NonNegativeQuantity
    input: str | None = None  # the model input this factor feeds; default: the factor's name
    description: str = ""
    source: str = ""


class Variant(Strict):
    """A named version of the product (e.g. hypoxic preconditioning) scaling its factors."""

    description: str = ""
    scale: dict[str, Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] = {}
    source: str = ""


class Product(Strict):
    """A secretome product: named factors with concentrations, and variants that scale them."""

    name: str
    description: str = ""
    factors: Annotated[dict[str, Factor], Field(min_length=1)]
    variants: dict[str, Variant] = {}


# --------------------------------------------------------------------------- doses
class _Timing(Strict):
    """When a dose happens: once at ``time``, or ``every`` interval for ``count`` / ``until``."""

    target: str
    variant: str | None = None  # only with target: product
    time: Time | None = None  # default: the start of the simulation
    every: PositiveTime | None = None
    count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    until: Time | None = None

    @model_validator(mode="after")
    def _repeat(self) -> _Timing:
        if self.every is None and (self.count is not None or self.until is not None):
            raise ValueError("'count' and 'until' need 'every' (the interval between doses)")
        if self.every is not None and self.count is None and self.until is None:
            raise ValueError("'every' needs 'count' or 'until' to say when the repeats stop")
        if self.count is not None and self.until is not None:
            raise ValueError("give either 'count' or 'until', not both")
        if self.variant is not None and self.target != PRODUCT:
            raise ValueError(f"'variant' applies only to doses with target: {PRODUCT}")
        return self


class Bolus(_Timing):
    """Add ``amount`` to the target instantly."""

    type: Literal["bolus"]
    amount: PositiveQuantity


class Infusion(_Timing):
    """Zero-order input at ``rate`` for ``duration``."""

    type: Literal["infusion"]
    rate: PositiveQuantity
    duration: PositiveTime


class Depot(_Timing):
    """Sustained release: ``amount`` placed in a depot that releases first-order into the target."""

    type: Literal["depot"]
    amount: PositiveQuantity
    half_life: PositiveTime
    burst_fraction: Fraction = 0.0  # released at once, the rest first-order


class MediumChange(_Timing):
    """Set the target to ``value`` (default 0: fresh medium without the factor).

    ``set_level`` is the same action under the name in vivo scenarios need: set an input to a
    level at a time (a diabetic glucose level, a maintained drug exposure). It stays there only
    if the model gives the input no loss.
    """

    type: Literal["medium_change", "set_level"]
    value: NonNegativeQuantity = Field(default_factory=lambda: parse_quantity(0))


Dose = Annotated[Bolus | Infusion | Depot | MediumChange, Field(discriminator="type")]


# --------------------------------------------------------------------------- perturbations
class _Window(Strict):
    parameter: str
    time: Time | None = None  # default: the start of the simulation
    until: Time | None = None


class Block(_Window):
    """Inhibit a parameter by a fraction: value * (1 - fraction)."""

    type: Literal["block"]
    fraction: Fraction


class Inhibitor(_Window):
    """A drug at a concentration acting through an IC50: value / (1 + (C/IC50)^hill)."""

    type: Literal["inhibitor"]
    concentration: NonNegativeQuantity
    ic50: PositiveQuantity
    hill: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0


class SetParameter(_Window):
    """Set a parameter to a value (with units) from ``time``."""

    type: Literal["set"]
    value: AnyQuantity


class ScaleParameter(_Window):
    """Multiply a parameter by ``factor`` from ``time``."""

    type: Literal["scale"]
    factor: Annotated[float, Field(ge=0, allow_inf_nan=False)]


Perturbation = Annotated[
    Block | Inhibitor | SetParameter | ScaleParameter, Field(discriminator="type")
]


# --------------------------------------------------------------------------- arms
class Arm(Strict):
    """One experimental arm. ``extends`` inherits another arm's doses, perturbations, parameters."""

    description: str = ""
    extends: str | None = None
    doses: list[Dose] = []
    perturbations: list[Perturbation] = []
    parameters: dict[str, AnyQuantity] = {}


# --------------------------------------------------------------------------- reporting
class OutputSpec(Strict):
    """An output to report, optionally in another unit than the model's."""

    name: str
    unit: str | None = None


MetricName = Literal["final", "max", "time_of_max", "min", "auc", "mean"]
DEFAULT_METRICS: tuple[str, ...] = ("final", "max", "time_of_max", "min", "auc")


class TimeAbove(Strict):
    """Total time an output spends above a threshold (in the output's reported unit)."""

    type: Literal["time_above"]
    threshold: AnyQuantity
    outputs: list[str] | None = None


Metric = MetricName | TimeAbove


class Preequilibration(Strict):
    """Bring each arm to its steady state, with no inputs, before t = start."""

    enabled: bool = True
    max_time: PositiveTime = Field(default_factory=lambda: parse_quantity("10000 h"))
    tolerance: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1e-9
    on_failure: Literal["error", "warn"] = "error"


class Solver(Strict):
    """CVODE (BDF, stiff) settings passed to libRoadRunner."""

    rtol: Annotated[float, Field(gt=0, lt=1)] = 1e-8
    atol: Annotated[float, Field(gt=0, lt=1)] = 1e-12
    max_steps: Annotated[int, Field(ge=100)] = 100_000
    max_step: PositiveTime | None = None


class Scenario(Strict):
    """A dose scenario: a model, a product, arms with doses, and what to report."""

    id: Identifier | None = None
    name: str = ""
    description: str = ""
    model: str | ModelFile
    time: TimeSpan
    product: Product | None = None
    parameters: dict[str, AnyQuantity] = {}  # model parameters for every arm (arms may override)
    arms: Annotated[dict[str, Arm], Field(min_length=1)]
    outputs: list[str | OutputSpec] | None = None
    metrics: list[Metric] = list(DEFAULT_METRICS)
    reference_arm: str | None = None
    preequilibrate: bool | Preequilibration = False
    solver: Solver = Solver()
    # Study sections: each used by its own command; `run` runs the nominal arms.
    sweep: SweepSpec | None = None  # `secretome-sim sweep`
    sensitivity: SensitivitySpec | None = None  # `secretome-sim sensitivity`
    optimize: OptimizeSpec | None = None  # `secretome-sim optimize`

    _source: Path | None = PrivateAttr(default=None)
    _text: str | None = PrivateAttr(default=None)
    _model: Any = PrivateAttr(default=None)

    @property
    def model_definition(self) -> Any:
        """The resolved ``ModelDefinition`` (set by ``load_scenario``)."""
        if self._model is None:
            raise RuntimeError("scenario has no resolved model; build it with load_scenario()")
        return self._model

    @property
    def source(self) -> Path | None:
        """The file this scenario was read from (None if built in code)."""
        return self._source

    @property
    def scenario_id(self) -> str:
        """``id`` if given, else the file stem."""
        if self.id:
            return self.id
        return self._source.stem if self._source else "scenario"

    @property
    def preequilibration(self) -> Preequilibration | None:
        if isinstance(self.preequilibrate, Preequilibration):
            return self.preequilibrate if self.preequilibrate.enabled else None
        return Preequilibration() if self.preequilibrate else None


STUDY_SECTIONS = ("sweep", "sensitivity", "optimize")  # not part of what a run computes

# The study schemas build on the types above; Scenario refers to them by name.
from .optimize_spec import OptimizeSpec  # noqa: E402
from .sensitivity_spec import SensitivitySpec  # noqa: E402
from .sweep_spec import SweepSpec  # noqa: E402

Scenario.model_rebuild()
