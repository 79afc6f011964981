"""The sensitivity schema: which parameters and dose factors, which method, what to report.

A sensitivity study lives in a scenario's ``sensitivity:`` section, in its own file that names a
scenario (``scenario: path.yaml`` plus the same keys), or nowhere: a plain scenario gets the
defaults (every model parameter with a metadata range, the scenario's arms, outputs, metrics).
Whether paths exist and ranges make a valid scenario is checked in ``sensitivity_load.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .errors import LocatedValueError
from .scenario import ID_PATTERN, AnyQuantity, Metric, Strict
from .sweep_spec import ValueRange

Method = Literal["local", "morris", "sobol"]
METHODS: tuple[Method, ...] = ("local", "morris", "sobol")


class ParameterRange(Strict):
    """Where a global method samples a parameter: ``low`` to ``high`` (plain numbers are in
    the parameter's model unit); ``scale: auto`` is log when low > 0 and high/low >= 10."""

    low: AnyQuantity
    high: AnyQuantity
    scale: Literal["auto", "lin", "log"] = "auto"


class SensitivityFactor(Strict):
    """A dose or product quantity by path (as in sweeps). The local method perturbs the
    scenario's own value; global methods sample ``range``."""

    path: str | Annotated[list[str], Field(min_length=1)]
    range: ValueRange | None = None
    unit: str | None = None  # unit of plain numbers; default: the unit at the path
    label: str = ""

    @model_validator(mode="after")
    def _no_count(self) -> SensitivityFactor:
        if self.range is not None and self.range.count is not None:
            raise LocatedValueError(
                ("range", "count"), "'count' does not apply here (the method decides the points)"
            )
        return self


class LocalOptions(Strict):
    """Central differences at the nominal point: p(1 +- h), and p(1 +- 2h) for an error
    estimate (Richardson)."""

    relative_step: Annotated[float, Field(gt=0, le=0.1)] = 1e-3
    over_time: bool = True  # also sensitivities of each output at every output time


class MorrisOptions(Strict):
    """Morris elementary effects (SALib): ``trajectories`` x (k + 1) points."""

    trajectories: Annotated[int, Field(ge=2, le=10_000)] = 20
    levels: Annotated[int, Field(ge=2, le=100)] = 4
    resamples: Annotated[int, Field(ge=10, le=100_000)] = 1000

    @model_validator(mode="after")
    def _even(self) -> MorrisOptions:
        if self.levels % 2:
            raise LocatedValueError(
                ("levels",), f"'levels' must be even (SALib's Morris grid), got {self.levels}"
            )
        return self


class SobolOptions(Strict):
    """Sobol first-order and total indices (SALib, Saltelli/Jansen estimators): ``samples``
    x (k + 2) points; ``samples`` a power of 2 (the Sobol sequence's balance needs it)."""

    samples: Annotated[int, Field(ge=16, le=1_048_576)] = 512
    resamples: Annotated[int, Field(ge=10, le=100_000)] = 500

    @model_validator(mode="after")
    def _power_of_two(self) -> SobolOptions:
        n = self.samples
        if n & (n - 1):
            lower = 1 << (n.bit_length() - 1)
            raise LocatedValueError(
                ("samples",),
                f"'samples' must be a power of 2, got {n}; try {lower} or {lower * 2}",
            )
        return self


class Influence(Strict):
    """When a parameter counts as influential (and, if its source is 'assumed', is flagged):
    local |S| >= ``local``; Morris mu* >= ``morris`` x the largest mu* of that metric; Sobol
    total index ST >= ``sobol``."""

    local: Annotated[float, Field(gt=0)] = 0.1
    morris: Annotated[float, Field(gt=0, le=1)] = 0.1
    sobol: Annotated[float, Field(gt=0, le=1)] = 0.05


class SensitivitySpec(Strict):
    """A sensitivity study of a scenario."""

    description: str = ""
    method: Method = "local"
    # 'all': every model parameter with metadata; or names; or names -> range (or null: the
    # metadata range)
    parameters: Literal["all"] | list[str] | dict[str, ParameterRange | None] = "all"
    exclude: list[str] = []
    factors: dict[Annotated[str, Field(pattern=ID_PATTERN)], SensitivityFactor] = {}
    arms: Annotated[list[str], Field(min_length=1)] | None = None  # default: every arm
    outputs: Annotated[list[str], Field(min_length=1)] | None = None  # default: scenario's
    metrics: Annotated[list[Metric], Field(min_length=1)] | None = None  # default: scenario's
    seed: int = 1
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    local: LocalOptions = LocalOptions()
    morris: MorrisOptions = MorrisOptions()
    sobol: SobolOptions = SobolOptions()
    influential: Influence = Influence()
    chunk_size: Annotated[int, Field(ge=1, le=100_000)] | None = None  # default: automatic

    @model_validator(mode="after")
    def _names(self) -> SensitivitySpec:
        named = self.parameters if isinstance(self.parameters, list | dict) else []
        clash = sorted(set(named) & set(self.factors))
        if clash:
            raise LocatedValueError(
                ("factors", clash[0]),
                f"factor '{clash[0]}' has the name of a parameter; rename the factor",
            )
        return self


class SensitivityFile(SensitivitySpec):
    """A sensitivity study in its own file: the scenario it studies (relative to this file)."""

    scenario: str
