"""The optimisation schema: which arm, what to minimise or maximise, over which decision
variables, under which constraints, and how to search.

An optimisation lives in a scenario's ``optimize:`` section or in its own file that names the
scenario (``scenario: path.yaml`` plus the same keys). Shape checks live here; whether paths,
outputs, metrics and units exist in the scenario is checked in ``optimize.py`` (located in the
file, like every other error).

Decision variables are sweep factors (the same paths, ``sweep_factors.resolve_target``):
``low``/``high`` make a continuous variable (or, on an integer path such as ``count``, every
integer between them), ``values`` a list that is enumerated, and ``choices`` whole-item
alternatives for one dose or perturbation (bolus versus depot), also enumerated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .errors import LocatedValueError
from .scenario import ID_PATTERN, AnyQuantity, Strict
from .units import format_quantity

# Columns of evaluations.csv and searches.csv that a variable may not be named after.
RESERVED_NAMES = (
    "evaluation",
    "search",
    "combination",
    "start",
    "status",
    "message",
    "objective",
    "feasible",
    "max_violation",
    "simulated",
)
SCHEDULE_QUANTITIES = ("total_amount", "doses")  # computed from the doses, without simulating
QUANTITY_HELP = "'<output>.<metric>' (e.g. conc.auc), 'total_amount' or 'doses'"
Name = Annotated[str, Field(pattern=ID_PATTERN)]


def metric_name_problem(text: str) -> str | None:
    """Why ``text`` cannot name a metric of an output ('<output>.<metric>'), or None."""
    output, dot, metric = text.partition(".")
    if not dot or not output or not metric:
        return f"expected '<output>.<metric>' such as 'conc.auc', got {text!r}"
    return None


class Variable(Strict):
    """One decision variable: where it is (``path``, or several paths set to one value) and
    what it may take: ``low``/``high`` (continuous; every integer between them for an
    integer path), ``values`` (enumerated) or ``choices`` (whole-item alternatives of the dose
    or perturbation at ``path``, enumerated)."""

    path: str | Annotated[list[str], Field(min_length=1)]
    low: AnyQuantity | None = None
    high: AnyQuantity | None = None
    scale: Literal["lin", "log"] = "lin"
    values: Annotated[list[Any], Field(min_length=1)] | None = None
    choices: Annotated[dict[Name, dict[str, Any]], Field(min_length=1)] | None = None
    unit: str | None = None  # unit of plain numbers; default: the unit at the path
    label: str = ""

    @model_validator(mode="after")
    def _one_domain(self) -> Variable:
        ranged = self.low is not None or self.high is not None
        options = {
            "low/high": ranged,
            "values": self.values is not None,
            "choices": self.choices is not None,
        }
        given = [key for key, on in options.items() if on]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"give exactly one of 'low'/'high', 'values' or 'choices' (found: {found})"
            )
        if self.scale == "log" and not ranged:
            raise LocatedValueError(("scale",), "'scale' applies to a 'low'/'high' range")
        if ranged:
            self._check_range()
        if self.choices is not None:
            if not isinstance(self.path, str):
                raise LocatedValueError(
                    ("path",), "'choices' replace one dose or perturbation: give one path"
                )
            if self.unit is not None:
                raise LocatedValueError(("unit",), "'unit' does not apply to 'choices'")
            for name, choice in self.choices.items():
                if "type" not in choice:
                    raise LocatedValueError(
                        ("choices", name),
                        f"choice '{name}' needs a 'type' (e.g. bolus, depot, infusion); its "
                        "other keys replace those of the item at the path",
                    )
        return self

    def _check_range(self) -> None:
        if self.low is None or self.high is None:
            missing = "low" if self.low is None else "high"
            present = "high" if missing == "low" else "low"
            raise LocatedValueError(
                (present,), f"a range needs both 'low' and 'high' ('{missing}' is missing)"
            )
        if not self.low.is_compatible_with(self.high):
            raise LocatedValueError(
                ("high",),
                f"'low' ({format_quantity(self.low)}) and 'high' ({format_quantity(self.high)}) "
                "have different dimensions",
            )
        if self.high.to(self.low.units).magnitude <= self.low.magnitude:
            raise LocatedValueError(
                ("high",),
                f"'high' ({format_quantity(self.high)}) must be above 'low' "
                f"({format_quantity(self.low)})",
            )
        if self.scale == "log" and self.low.magnitude <= 0:
            raise LocatedValueError(
                ("low",), f"a log scale needs low > 0, got {format_quantity(self.low)}"
            )

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class Objective(Strict):
    """What to minimise or maximise: a metric of an arm's output ('<output>.<metric>'), the
    total amount of its doses ('total_amount', the least product) or their number ('doses')."""

    minimize: str | None = None
    maximize: str | None = None
    arm: str | None = None  # default: the optimised arm
    target: str | None = None  # total_amount / doses: 'product' or a model input
    unit: str | None = None  # total_amount: the unit to report it in

    @model_validator(mode="after")
    def _one_direction(self) -> Objective:
        if (self.minimize is None) == (self.maximize is None):
            raise ValueError(f"give exactly one of 'minimize' or 'maximize' ({QUANTITY_HELP})")
        key = "minimize" if self.minimize is not None else "maximize"
        quantity = self.quantity
        if quantity not in SCHEDULE_QUANTITIES:
            problem = metric_name_problem(quantity)
            if problem:
                raise LocatedValueError((key,), f"{problem} ({QUANTITY_HELP})")
            for extra in ("target", "unit"):
                if getattr(self, extra) is not None:
                    raise LocatedValueError(
                        (extra,), f"'{extra}' applies to total_amount and doses, not to metrics"
                    )
        if quantity == "doses" and self.unit is not None:
            raise LocatedValueError(("unit",), "'unit' applies to total_amount (doses are counted)")
        return self

    @property
    def quantity(self) -> str:
        return str(self.minimize if self.minimize is not None else self.maximize)

    @property
    def sense(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.minimize is not None else "maximize"


class AmountBound(Strict):
    """Bounds on the total amount an arm's doses deliver to ``target``."""

    max: AnyQuantity | None = None
    min: AnyQuantity | None = None
    target: str | None = None  # 'product' or a model input; default: the arm's only target
    arm: str | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> AmountBound:
        if self.max is None and self.min is None:
            raise ValueError("give 'max' and/or 'min'")
        return self


class CountBound(Strict):
    """Bounds on the number of dose events (every repeat) of an arm, optionally of one target."""

    max: Annotated[int, Field(ge=0)] | None = None
    min: Annotated[int, Field(ge=0)] | None = None
    target: str | None = None
    arm: str | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> CountBound:
        if self.max is None and self.min is None:
            raise ValueError("give 'max' and/or 'min'")
        return self


class Constraint(Strict):
    """One constraint: ``{metric: <output>.<metric>, max/min: ...}`` on a simulated metric
    (optionally of another ``arm``), ``{total_amount: {max: ..., target: ...}}`` or
    ``{doses: {max: N}}`` on the schedule itself (no simulation needed)."""

    metric: str | None = None
    max: AnyQuantity | None = None
    min: AnyQuantity | None = None
    arm: str | None = None
    total_amount: AmountBound | None = None
    doses: CountBound | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Constraint:
        kinds = [k for k in ("metric", "total_amount", "doses") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            raise ValueError(
                "give exactly one of 'metric' (with max/min), 'total_amount' or 'doses' "
                f"(found: {found})"
            )
        if self.metric is not None:
            problem = metric_name_problem(self.metric)
            if problem:
                raise LocatedValueError(("metric",), problem)
            if self.max is None and self.min is None:
                raise LocatedValueError(("metric",), "a metric constraint needs 'max' and/or 'min'")
        else:
            for key in ("max", "min", "arm"):
                if getattr(self, key) is not None:
                    raise LocatedValueError(
                        (key,),
                        f"'{key}' goes inside '{kinds[0]}', e.g. {{{kinds[0]}: {{{key}: ...}}}}",
                    )
        return self

    @property
    def kind(self) -> str:
        return (
            "metric"
            if self.metric is not None
            else ("total_amount" if self.total_amount else "doses")
        )


class OptimizeSpec(Strict):
    """An ``optimize:`` section: the arm whose schedule is optimised, the objective, decision
    variables, constraints, and the search (``starts`` local searches per combination of the
    enumerated variables, from seeded Latin-hypercube points)."""

    description: str = ""
    arm: str
    objective: Objective
    variables: dict[Name, Variable]
    constraints: list[Constraint] = []
    starts: Annotated[int, Field(ge=1, le=1000)] = 4
    seed: Annotated[int, Field(ge=0)] = 0  # seeds the Latin-hypercube starts
    # scipy.optimize.minimize: cobyqa and cobyla are derivative-free; slsqp differentiates by
    # finite differences, which metrics taken on the output grid (min, max) make unreliable
    method: Literal["cobyqa", "cobyla", "slsqp"] = "cobyqa"
    max_evaluations: Annotated[int, Field(ge=5, le=1_000_000)] = 200  # per local search

    @model_validator(mode="after")
    def _names(self) -> OptimizeSpec:
        if not self.variables:
            raise LocatedValueError(
                ("variables",),
                "give at least one decision variable, e.g. "
                "amount: {path: arms.<arm>.doses.0.amount, low: 10 ug, high: 400 ug}",
            )
        reserved = sorted(set(self.variables) & set(RESERVED_NAMES))
        if reserved:
            raise LocatedValueError(
                ("variables", reserved[0]),
                f"variable name {reserved[0]!r} is reserved for a table column "
                f"({', '.join(RESERVED_NAMES)}); rename the variable",
            )
        return self


class OptimizeFile(OptimizeSpec):
    """An optimisation in its own file: the scenario it optimises (path relative to this file)."""

    scenario: str
