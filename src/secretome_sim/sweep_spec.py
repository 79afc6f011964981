"""The sweep schema: which scenario quantities vary, over what values, in which design.

A sweep lives in a scenario's ``sweep:`` section or in its own file that names a scenario
(``scenario: path.yaml`` plus the same keys). Shape checks live here; whether a factor's path
exists in the scenario, and whether its values make a valid scenario, is checked in
``sweep_factors.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .errors import LocatedValueError
from .scenario import ID_PATTERN, AnyQuantity, Metric, Strict
from .units import format_quantity

RESERVED_COLUMNS = ("point", "arm", "status", "message")


class ValueRange(Strict):
    """``count`` evenly spaced values from ``low`` to ``high`` (grid designs), or the interval
    a sampled design draws from uniformly (``scale: lin``) or log-uniformly (``scale: log``)."""

    low: AnyQuantity
    high: AnyQuantity
    count: Annotated[int, Field(ge=2, le=100_000)] | None = None
    scale: Literal["lin", "log"] = "lin"

    @model_validator(mode="after")
    def _order(self) -> ValueRange:
        if not self.low.is_compatible_with(self.high):
            raise ValueError(
                f"'low' ({format_quantity(self.low)}) and 'high' ({format_quantity(self.high)}) "
                "have different dimensions"
            )
        if self.high.to(self.low.units).magnitude <= self.low.magnitude:
            raise ValueError(
                f"'high' ({format_quantity(self.high)}) must be above 'low' "
                f"({format_quantity(self.low)})"
            )
        if self.scale == "log" and self.low.magnitude <= 0:
            raise ValueError(f"a log range needs low > 0, got {format_quantity(self.low)}")
        return self


class Distribution(Strict):
    """What a sampled design (lhs, sobol) draws a factor from.

    uniform / loguniform: between ``low`` and ``high``. normal: ``mean`` and ``sd``, truncated to
    [``low``, ``high``] when given (keep a positive quantity positive with ``low``).
    """

    type: Literal["uniform", "loguniform", "normal"]
    low: AnyQuantity | None = None
    high: AnyQuantity | None = None
    mean: AnyQuantity | None = None
    sd: AnyQuantity | None = None

    @model_validator(mode="after")
    def _parameters(self) -> Distribution:
        given = [q for q in (self.low, self.high, self.mean, self.sd) if q is not None]
        if any(not given[0].is_compatible_with(q) for q in given[1:]):
            raise ValueError("low, high, mean and sd must all have the same dimension")
        if self.type in ("uniform", "loguniform"):
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} distribution needs 'low' and 'high'")
            if self.mean is not None or self.sd is not None:
                raise ValueError(f"a {self.type} distribution takes 'low' and 'high' only")
            if self.type == "loguniform" and self.low.magnitude <= 0:
                raise ValueError(f"a loguniform distribution needs low > 0, got {self.low:~P}")
        else:
            if self.mean is None or self.sd is None:
                raise ValueError("a normal distribution needs 'mean' and 'sd'")
            if self.sd.magnitude <= 0:
                raise ValueError(f"'sd' must be > 0, got {format_quantity(self.sd)}")
        bounded = self.low is not None and self.high is not None
        if bounded and self.high.to(self.low.units).magnitude <= self.low.magnitude:
            raise ValueError(
                f"'high' ({format_quantity(self.high)}) must be above 'low' "
                f"({format_quantity(self.low)})"
            )
        return self


class FactorSpec(Strict):
    """One varied quantity: where it is (``path``, or several paths set to the same value) and
    which values it takes (exactly one of ``values``, ``range``, ``distribution``)."""

    path: str | Annotated[list[str], Field(min_length=1)]
    values: Annotated[list[Any], Field(min_length=1)] | None = None
    range: ValueRange | None = None
    distribution: Distribution | None = None
    unit: str | None = None  # unit of plain numbers; default: the unit at the path
    label: str = ""  # axis label for plots; default: the factor name and unit

    @model_validator(mode="after")
    def _one_source(self) -> FactorSpec:
        given = [k for k in ("values", "range", "distribution") if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"give exactly one of 'values', 'range' or 'distribution' (found: {found})"
            )
        return self

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class DoseResponse(Strict):
    """Fit a Hill/Emax curve of every kept metric against one factor (per arm and per level of
    the other factors); report EC50, Emax, Hill coefficient and the doses for ``percent`` %."""

    factor: str
    percent: Annotated[list[Annotated[float, Field(gt=0, lt=100)]], Field(min_length=1)] = [
        50.0,
        90.0,
    ]


class SweepSpec(Strict):
    """A sweep over a scenario: factors, design, what to keep."""

    description: str = ""
    design: Literal["grid", "lhs", "sobol"] = "grid"
    samples: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    seed: int | None = None
    factors: Annotated[
        dict[Annotated[str, Field(pattern=ID_PATTERN)], FactorSpec], Field(min_length=1)
    ]
    arms: Annotated[list[str], Field(min_length=1)] | None = None  # default: every arm
    outputs: Annotated[list[str], Field(min_length=1)] | None = None  # default: scenario's
    metrics: Annotated[list[Metric], Field(min_length=1)] | None = None  # default: scenario's
    dose_response: DoseResponse | None = None
    save_trajectories: bool = False
    chunk_size: Annotated[int, Field(ge=1, le=100_000)] | None = None  # default: automatic

    @model_validator(mode="after")
    def _design(self) -> SweepSpec:
        reserved = sorted(set(self.factors) & set(RESERVED_COLUMNS))
        if reserved:
            raise LocatedValueError(
                ("factors", reserved[0]),
                f"factor name {reserved[0]!r} is reserved for a table column "
                f"({', '.join(RESERVED_COLUMNS)}); rename the factor",
            )
        if self.design == "grid":
            if self.samples is not None:
                raise LocatedValueError(
                    ("samples",),
                    "'samples' applies to lhs and sobol designs; a grid runs every combination",
                )
            for name, factor in self.factors.items():
                if factor.distribution is not None:
                    raise LocatedValueError(
                        ("factors", name, "distribution"),
                        f"factor '{name}' has a distribution, which needs design lhs or sobol; "
                        "for a grid give 'values' or a 'range' with a 'count'",
                    )
                if factor.range is not None and factor.range.count is None:
                    raise LocatedValueError(
                        ("factors", name, "range"),
                        f"factor '{name}': a grid range needs 'count' (how many values)",
                    )
        else:
            if self.samples is None:
                raise LocatedValueError(
                    ("design",), f"a {self.design} design needs 'samples' (how many points)"
                )
            if self.seed is None:
                raise LocatedValueError(
                    ("design",),
                    f"a {self.design} design needs 'seed' (an integer) so that the same points "
                    "can be drawn again",
                )
            if self.design == "sobol" and self.samples & (self.samples - 1):
                lower = 1 << (self.samples.bit_length() - 1)
                raise LocatedValueError(
                    ("samples",),
                    f"a sobol design needs a power of 2 for 'samples' (its balance properties "
                    f"hold only then), got {self.samples}; try {lower} or {lower * 2}",
                )
            for name, factor in self.factors.items():
                if factor.range is not None and factor.range.count is not None:
                    raise LocatedValueError(
                        ("factors", name, "range", "count"),
                        f"factor '{name}': 'count' applies to grid designs; a {self.design} "
                        "design draws from the range (drop 'count')",
                    )
        if self.dose_response is not None and self.dose_response.factor not in self.factors:
            raise LocatedValueError(
                ("dose_response", "factor"),
                f"dose_response.factor {self.dose_response.factor!r} is not a factor "
                f"(factors: {', '.join(self.factors)})",
            )
        return self


class SweepFile(SweepSpec):
    """A sweep in its own file: the scenario it varies (path relative to this file)."""

    scenario: str
