"""Which points each method needs, and the indices it computes from their results.

local: central differences around the nominal point (normalised, S = d ln y / d ln p).
    Chosen over libRoadRunner's forward sensitivities because our doses change the state between
    integration segments (which its sensitivity solver does not follow), dose factors (amounts,
    intervals, times) are not model parameters, and metrics (AUC, time above) are computed after
    the simulation; differences through the same engine cover all of them, and run on the sweep
    executors. Each input costs 4 simulations per arm: p(1 +- h) gives S, p(1 +- 2h) a second
    estimate whose difference bounds the truncation error (Richardson).
morris: elementary effects on a Morris grid (SALib; Campolongo et al. 2007 mu*, doi:10.1016/
    j.envsoft.2006.10.004), effects measured in the unit box (log10 box for log-scaled inputs),
    so mu* compares inputs with different units.
sobol: first-order and total indices with bootstrap confidence intervals (SALib; Saltelli 2002
    doi:10.1016/S0010-4655(02)00280-1, Jansen 1999 estimators) on a scrambled Sobol sequence.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .sensitivity_load import Sensitivity, SensitivityInput


# --------------------------------------------------------------------------- points
def sensitivity_design(study: Sensitivity) -> pd.DataFrame:
    """Every point the method needs, one column per input (in the input's unit)."""
    names = [i.name for i in study.inputs]
    if study.method == "local":
        values = _local_points(study.inputs, study.spec.local.relative_step)
    else:
        unit_values = _salib_sample(study)
        values = _from_problem_space(study.inputs, unit_values)
    return pd.DataFrame(values, columns=names)


def _local_points(inputs: list[SensitivityInput], step: float) -> np.ndarray:
    """Row 0 the nominal point; then per input p(1+h), p(1-h), p(1+2h), p(1-2h)."""
    nominal = np.array([float(i.nominal) for i in inputs])
    rows = [nominal]
    for k in range(len(inputs)):
        for factor in (1 + step, 1 - step, 1 + 2 * step, 1 - 2 * step):
            row = nominal.copy()
            row[k] = nominal[k] * factor
            rows.append(row)
    return np.array(rows)


def salib_problem(inputs: list[SensitivityInput]) -> dict[str, Any]:
    """The SALib problem: bounds in log10 for log-scaled inputs (sampled log-uniformly)."""
    bounds = [
        [np.log10(i.low), np.log10(i.high)] if i.log else [float(i.low), float(i.high)]
        for i in inputs
    ]
    return {"num_vars": len(inputs), "names": [i.name for i in inputs], "bounds": bounds}


def _salib_sample(study: Sensitivity) -> np.ndarray:
    problem = salib_problem(study.inputs)
    if study.method == "morris":
        from SALib.sample import morris

        options = study.spec.morris
        return morris.sample(
            problem, N=options.trajectories, num_levels=options.levels, seed=study.spec.seed
        )
    from SALib.sample import sobol

    return sobol.sample(
        problem, study.spec.sobol.samples, calc_second_order=False, seed=study.spec.seed
    )


def _from_problem_space(inputs: list[SensitivityInput], x: np.ndarray) -> np.ndarray:
    values = np.array(x, dtype=float, copy=True)
    for k, item in enumerate(inputs):
        if item.log:
            values[:, k] = 10.0 ** values[:, k]
            values[:, k] = np.clip(values[:, k], item.low, item.high)  # 10**log10 round-off
    return values


def point_count(study: Sensitivity) -> int:
    k = len(study.inputs)
    if study.method == "local":
        return 1 + 4 * k
    if study.method == "morris":
        return study.spec.morris.trajectories * (k + 1)
    return study.spec.sobol.samples * (k + 2)


# --------------------------------------------------------------------------- indices
def compute_indices(
    study: Sensitivity, design: pd.DataFrame, table: pd.DataFrame, metric_columns: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """One row per arm x metric column x input with the method's indices; and notes on what
    could not be computed (failed points, a metric that does not vary, ...)."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for arm in study.sweep.arms:
        part = table[table["arm"] == arm].sort_values("point")
        failed = part["status"] != "ok"
        for column in metric_columns:
            y = part[column].to_numpy(dtype=float)
            y = np.where(failed.to_numpy(), np.nan, y)
            found, note = _indices_for(study, design, y)
            if note:
                notes.append(f"arm '{arm}', {column}: {note}")
            for item, values in zip(study.inputs, found, strict=True):
                rows.append({"arm": arm, "metric": column, "input": item.name, **values})
    return pd.DataFrame(rows), notes


def _indices_for(
    study: Sensitivity, design: pd.DataFrame, y: np.ndarray
) -> tuple[list[dict[str, float]], str]:
    if study.method == "local":
        return _local_indices(study, y)
    empty = _empty(study)
    x = design[[i.name for i in study.inputs]].to_numpy(dtype=float, copy=True)
    for k, item in enumerate(study.inputs):
        if item.log:
            x[:, k] = np.log10(x[:, k])
    bad = int(np.isnan(y).sum())
    dropped = ""
    if bad and study.method == "morris":
        # elementary effects come in trajectories of k + 1 points: drop the broken ones
        width = len(study.inputs) + 1
        whole = ~np.isnan(y).reshape(-1, width).any(axis=1)
        if whole.sum() < 2:
            return empty, f"{bad} of {len(y)} points failed, fewer than 2 whole trajectories left"
        keep = np.repeat(whole, width)
        x, y = x[keep], y[keep]
        dropped = (
            f"{int((~whole).sum())} of {len(whole)} trajectories dropped ({bad} points failed); "
            f"indices from the other {int(whole.sum())}"
        )
    elif bad:
        return empty, f"{bad} of {len(y)} points have no value; Sobol indices need every point"
    if np.ptp(y) <= 1e-12 * float(np.max(np.abs(y))):  # relative: small metrics vary too
        return _zeros(study), "does not vary over the sampled ranges: every index is 0"
    problem = salib_problem(study.inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if study.method == "morris":
            result = _morris(study, problem, x, y)
        else:
            result = _sobol(study, problem, y)
    note = "; ".join([dropped] * bool(dropped) + sorted({str(w.message) for w in caught}))
    return result, note


def _local_indices(study: Sensitivity, y: np.ndarray) -> tuple[list[dict[str, float]], str]:
    h = study.spec.local.relative_step
    y0 = y[0]
    if not np.isfinite(y0) or y0 == 0:
        why = "the nominal point failed" if not np.isfinite(y0) else "the metric is 0 there"
        return _empty(study), f"no normalised sensitivity: {why}"
    found = []
    for k in range(len(study.inputs)):
        up, down, up2, down2 = y[1 + 4 * k : 5 + 4 * k]
        s = (up - down) / (2 * h * y0)
        s2 = (up2 - down2) / (4 * h * y0)
        found.append(
            {
                "S": s,
                "S_error": abs(s - s2) / 3,  # Richardson: the O(h^2) error of S
                "absolute": (up - down) / (2 * h * float(study.inputs[k].nominal)),
            }
        )
    notes = []
    failed = int(np.isnan(y).sum())
    if failed:
        notes.append(f"{failed} perturbed points have no value (their inputs get NaN)")
    floor = 0.01 * study.spec.influential.local  # errors far below what counts: noise
    rough = [
        item.name
        for item, values in zip(study.inputs, found, strict=True)
        if values["S_error"] > max(0.1 * abs(values["S"]), floor)
    ]
    if rough:
        notes.append(
            f"S unreliable (S_error > 10 % of |S| and > {floor:g}: the metric jumps or bends "
            f"within +-2h, e.g. a dose crossing an output time): {', '.join(rough)}"
        )
    return found, "; ".join(notes)


def _morris(study, problem, x, y) -> list[dict[str, float]]:
    from SALib.analyze import morris

    options = study.spec.morris
    result = morris.analyze(
        problem,
        x,
        y,
        num_resamples=options.resamples,
        conf_level=study.spec.confidence,
        num_levels=options.levels,
        seed=study.spec.seed,
    )
    top = float(np.nanmax(result["mu_star"])) or 1.0
    return [
        {
            "mu": float(result["mu"][k]),
            "mu_star": float(result["mu_star"][k]),
            "mu_star_conf": float(result["mu_star_conf"][k]),
            "sigma": float(result["sigma"][k]),
            "mu_star_relative": float(result["mu_star"][k]) / top,
        }
        for k in range(len(study.inputs))
    ]


def _sobol(study, problem, y) -> list[dict[str, float]]:
    from SALib.analyze import sobol

    result = sobol.analyze(
        problem,
        y,
        calc_second_order=False,
        num_resamples=study.spec.sobol.resamples,
        conf_level=study.spec.confidence,
        seed=study.spec.seed,
    )
    return [
        {
            "S1": float(result["S1"][k]),
            "S1_conf": float(result["S1_conf"][k]),
            "ST": float(result["ST"][k]),
            "ST_conf": float(result["ST_conf"][k]),
        }
        for k in range(len(study.inputs))
    ]


INDEX_COLUMNS = {
    "local": ["S", "S_error", "absolute"],
    "morris": ["mu", "mu_star", "mu_star_conf", "sigma", "mu_star_relative"],
    "sobol": ["S1", "S1_conf", "ST", "ST_conf"],
}


def _empty(study: Sensitivity) -> list[dict[str, float]]:
    return [dict.fromkeys(INDEX_COLUMNS[study.method], np.nan) for _ in study.inputs]


def _zeros(study: Sensitivity) -> list[dict[str, float]]:
    return [dict.fromkeys(INDEX_COLUMNS[study.method], 0.0) for _ in study.inputs]


def influence(study: Sensitivity, row: pd.Series) -> float:
    """The number compared with the study's threshold: |S|, relative mu*, or ST."""
    if study.method == "local":
        return abs(row["S"])
    if study.method == "morris":
        return row["mu_star_relative"]
    return row["ST"]


def threshold(study: Sensitivity) -> float:
    return float(getattr(study.spec.influential, study.method))


def local_over_time(
    study: Sensitivity, trajectories: np.ndarray, outputs: list[str], times: np.ndarray
) -> pd.DataFrame:
    """S(t) = (y+(t) - y-(t)) / (2 h y0(t)) per arm, output and input; NaN where y0(t) is 0 (or
    below 1e-12 of the output's largest magnitude in that arm)."""
    h = study.spec.local.relative_step
    y0 = trajectories[0]  # (arms, times, outputs)
    with np.errstate(invalid="ignore"):
        peak = np.nanmax(np.abs(y0), axis=1, keepdims=True)  # per arm and output
    safe = np.where(np.abs(y0) > 1e-12 * np.nan_to_num(peak), y0, np.nan)
    up, down = trajectories[1::4], trajectories[2::4]  # (inputs, arms, times, outputs)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (up - down) / (2 * h * safe[None])
    inputs = [i.name for i in study.inputs]
    index = pd.MultiIndex.from_product(
        [inputs, study.sweep.arms, times, outputs], names=["input", "arm", "time", "output"]
    )
    frame = pd.DataFrame({"S": s.reshape(-1)}, index=index).reset_index()
    return frame[["arm", "output", "input", "time", "S"]]
