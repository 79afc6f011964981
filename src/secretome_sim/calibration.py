"""How far one parameter can move before a published direction stops holding.

A parameter tuned so that a claim holds is recorded with ``holds_for``: the interval of that
parameter, all others fixed, over which the claim still holds. This module finds that interval
for any claim written as a function of the parameter value, so records can be recomputed (and
re-checked by tests) whenever a model changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any


def holds_for(
    claim: Callable[[float], bool],
    nominal: float,
    bounds: tuple[float, float],
    *,
    resolution: float = 0.01,
) -> tuple[float, float]:
    """The interval around ``nominal``, inside ``bounds``, where ``claim(value)`` stays true.

    Each edge is found by bisection between the nominal value (where the claim must hold) and
    the bound: on a log scale when both bounds are positive (to ``resolution`` relative), else
    linearly (to ``resolution`` of the bounds' width). The claim is assumed to hold on one
    connected interval; the result is rounded to 3 significant figures towards the inside.
    """
    low, high = bounds
    if not low <= nominal <= high:
        raise ValueError(f"nominal value {nominal} lies outside the bounds [{low}, {high}]")
    if not claim(nominal):
        raise ValueError(f"the claim fails at the nominal value {nominal}")
    logarithmic = low > 0

    def gap(a: float, b: float) -> float:
        return abs(math.log(b / a)) if logarithmic else abs(b - a) / ((high - low) or 1.0)

    def middle(a: float, b: float) -> float:
        return math.sqrt(a * b) if logarithmic else (a + b) / 2

    def edge(limit: float) -> float:
        if claim(limit):
            return limit
        inside, outside = nominal, limit
        while gap(inside, outside) > resolution:
            point = middle(inside, outside)
            inside, outside = (point, outside) if claim(point) else (inside, point)
        return _round_towards(inside, nominal)

    return edge(low), edge(high)


def claim_intervals(
    model: Any, claims: Mapping[str, Callable[[dict[str, float]], bool]]
) -> dict[str, tuple[float, float]]:
    """``holds_for`` of each claimed parameter of ``model`` (a ModelDefinition) over its
    documented range, all other parameters at their values. A claim takes parameter
    overrides ``{name: value}`` and says whether the published direction still holds."""
    intervals = {}
    for name, claim in claims.items():
        meta = model.parameters[name]
        intervals[name] = holds_for(
            lambda value, name=name, claim=claim: claim({name: value}), meta.value, meta.range
        )
    return intervals


def _round_towards(value: float, nominal: float) -> float:
    """3 significant figures, rounded towards ``nominal`` so the claim still holds there."""
    rounded = float(f"{value:.3g}")
    if (rounded - value) * (value - nominal) <= 0 or rounded == 0:
        return rounded  # rounding moved towards nominal, or not at all
    unit = 10.0 ** (math.floor(math.log10(abs(rounded))) - 2)  # one unit of the third figure
    return float(f"{rounded + math.copysign(unit, nominal - value):.3g}")
