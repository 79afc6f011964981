"""Pure summary metrics of one trajectory, and the metrics table with changes versus a reference.

AUC and time above a threshold use the output grid (trapezoid rule, linear interpolation of
crossings): refine the grid (``time.step``) when they matter. Values do not depend on the grid
otherwise, because the simulator integrates between doses, not between output points.
"""

from __future__ import annotations

import numpy as np


def final(times: np.ndarray, values: np.ndarray) -> float:
    return float(values[-1])


def maximum(times: np.ndarray, values: np.ndarray) -> float:
    return float(np.max(values))


def minimum(times: np.ndarray, values: np.ndarray) -> float:
    return float(np.min(values))


def time_of_max(times: np.ndarray, values: np.ndarray) -> float:
    """Time of the first maximum."""
    return float(times[int(np.argmax(values))])


def auc(times: np.ndarray, values: np.ndarray) -> float:
    """Area under the curve by the trapezoid rule on the output grid."""
    return float(np.trapezoid(values, times))


def mean(times: np.ndarray, values: np.ndarray) -> float:
    """Time-averaged value (AUC divided by the duration)."""
    duration = float(times[-1] - times[0])
    return auc(times, values) / duration if duration > 0 else float(values[0])


def time_above(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """Total time strictly above ``threshold``, crossings located by linear interpolation."""
    total = 0.0
    for i in range(len(times) - 1):
        t0, t1, v0, v1 = times[i], times[i + 1], values[i] - threshold, values[i + 1] - threshold
        if v0 > 0 and v1 > 0:
            total += t1 - t0
        elif v0 > 0 or v1 > 0:  # one end above: the crossing splits the interval
            fraction = v0 / (v0 - v1) if v0 > 0 else v1 / (v1 - v0)
            total += (t1 - t0) * fraction
    return float(total)


SIMPLE_METRICS = {
    "final": final,
    "max": maximum,
    "min": minimum,
    "time_of_max": time_of_max,
    "auc": auc,
    "mean": mean,
}


def metric_unit(metric: str, value_unit: str, time_unit: str) -> str:
    """The unit a metric's value is in, for the metrics table."""
    if metric in ("time_of_max", "time_above") or metric.startswith("time_above"):
        return time_unit
    if metric == "auc":
        return f"{value_unit}*{time_unit}" if value_unit else time_unit
    return value_unit


def percent_change(value: float, reference: float) -> float:
    """100 * (value - reference) / |reference|; NaN when the reference is zero."""
    if reference == 0 or not np.isfinite(reference):
        return float("nan")
    return 100.0 * (value - reference) / abs(reference)
