"""Pure: resolved factors + design settings -> the table of points (one row per point).

Grid: every combination, in the order the factors are written, the last factor varying fastest
(like nested loops). Latin hypercube and Sobol: points in the unit cube from ``scipy.stats.qmc``
(seeded, so the same seed gives the same points), mapped through each factor's inverse CDF.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from .sweep_factors import Factor
from .sweep_spec import SweepSpec

# Keep u away from 0 and 1 so that unbounded normals stay finite.
_EDGE = 1e-12


def design_table(factors: list[Factor], spec: SweepSpec) -> pd.DataFrame:
    """Columns ``point`` (0..n-1) and one per factor, in the factor's unit (or variant names)."""
    if spec.design == "grid":
        columns = [factor.levels() for factor in factors]
        rows = list(itertools.product(*columns))
        table = pd.DataFrame(rows, columns=[f.name for f in factors])
    else:
        cube = unit_cube(spec.design, len(factors), int(spec.samples or 0), int(spec.seed or 0))
        table = pd.DataFrame(
            {factor.name: from_unit(factor, cube[:, k]) for k, factor in enumerate(factors)}
        )
    for factor in factors:
        if factor.kind == "int":
            table[factor.name] = table[factor.name].astype(np.int64)
    table.insert(0, "point", np.arange(len(table), dtype=np.int64))
    return table


def unit_cube(design: str, dimensions: int, samples: int, seed: int) -> np.ndarray:
    """``samples`` points in [0, 1)^dimensions: scrambled Sobol or Latin hypercube."""
    from scipy.stats import qmc

    if design == "sobol":
        engine = qmc.Sobol(d=dimensions, scramble=True, rng=np.random.default_rng(seed))
        return engine.random_base2(int(math.log2(samples)))
    if design == "lhs":
        engine = qmc.LatinHypercube(d=dimensions, rng=np.random.default_rng(seed))
        return engine.random(samples)
    raise ValueError(f"unknown sampled design {design!r}")


def from_unit(factor: Factor, u: np.ndarray) -> np.ndarray | list[str]:
    """Map uniform numbers in [0, 1) onto the factor's values (its inverse CDF)."""
    spec = factor.spec
    u = np.clip(np.asarray(u, dtype=float), _EDGE, 1 - _EDGE)
    if spec.values is not None:
        levels = factor.levels()
        index = np.minimum((u * len(levels)).astype(int), len(levels) - 1)
        picked = [levels[i] for i in index]
        return picked if factor.kind == "name" else np.asarray(picked, dtype=float)
    if spec.range is not None:
        kind = "loguniform" if spec.range.scale == "log" else "uniform"
        low, high = factor.magnitude(spec.range.low), factor.magnitude(spec.range.high)
        mean = sd = math.nan
    else:
        dist = spec.distribution
        assert dist is not None
        kind = dist.type
        low = factor.magnitude(dist.low) if dist.low is not None else -math.inf
        high = factor.magnitude(dist.high) if dist.high is not None else math.inf
        mean = factor.magnitude(dist.mean) if dist.mean is not None else math.nan
        sd = factor.magnitude(dist.sd) if dist.sd is not None else math.nan
    if factor.kind == "int" and kind == "uniform":
        # each integer from low to high equally likely
        values = np.floor(low + u * (math.floor(high) - math.ceil(low) + 1))
        return np.clip(values, math.ceil(low), math.floor(high))
    if kind == "uniform":
        values = low + u * (high - low)
    elif kind == "loguniform":
        values = np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        from scipy.stats import truncnorm

        a, b = (low - mean) / sd, (high - mean) / sd
        values = truncnorm.ppf(u, a, b, loc=mean, scale=sd)
    return np.round(values) if factor.kind == "int" else values
