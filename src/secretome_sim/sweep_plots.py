"""Sweep figures (matplotlib only; reads the sweep folder, never RoadRunner).

- response curves: each metric against the dose factor (or the only factor), one line per arm
  and level of the other factors, with the fitted Hill curve where a fit exists;
- heatmaps: each metric over a two-factor grid, one panel per arm;
- uncertainty bands: for sampled designs with saved trajectories, each output's median and
  5-95 % band over time per arm (quantiles read in blocks of time: bounded memory).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MAX_FIGURES = 24  # per kind; choose outputs and metrics in the sweep to see others
MAX_LINES = 12


def sweep_plots(result: Any, layout: dict[str, Any]) -> list[Path]:
    """Write every figure that fits the sweep's design into ``plots/``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    folder = result.folder / "plots"
    folder.mkdir(exist_ok=True)
    sweep = result.sweep
    written: list[Path] = []
    numeric = [f for f in sweep.factors if f.kind != "name"]
    x_name = result.summary.get("dose_response", {}).get("factor")
    if x_name is None and len(sweep.factors) == 1 and numeric:
        x_name = numeric[0].name
    if x_name is not None:
        written += response_curves(result, x_name, layout, folder)
    if sweep.spec.design == "grid" and len(sweep.factors) == 2 and len(numeric) == 2:
        written += heatmaps(result, layout, folder)
    if sweep.spec.design != "grid" and (result.folder / "trajectories.zarr").exists():
        written += uncertainty_bands(result, layout, folder)
    return written


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def response_curves(result: Any, x_name: str, layout: dict, folder: Path) -> list[Path]:
    """One figure per output: a panel per metric, the response against ``x_name``."""
    import matplotlib.pyplot as plt

    sweep = result.sweep
    factor = next(f for f in sweep.factors if f.name == x_name)
    others = (
        [f.name for f in sweep.factors if f.name != x_name] if sweep.spec.design == "grid" else []
    )
    table = result.table
    table = table[table["status"] == "ok"]
    units = dict(layout["metric_columns"])
    fits = result.fits
    paths = []
    for output in layout["outputs"][:MAX_FIGURES]:
        metrics = [c for c in units if c.startswith(f"{output}.")]
        figure, axes = plt.subplots(
            1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False
        )
        for axis, column in zip(axes[0], metrics, strict=True):
            groups = list(table.groupby(["arm", *others], sort=False))[:MAX_LINES]
            for key, group in groups:
                key = key if isinstance(key, tuple) else (key,)
                label = ", ".join(
                    [str(key[0])]
                    + [f"{n}={_text(v)}" for n, v in zip(others, key[1:], strict=True)]
                )
                group = group.sort_values(x_name)
                line = axis.plot(group[x_name], group[column], "o", ms=3.5, label=label)[0]
                fit = _fit_row(fits, column, ["arm", *others], key)
                if fit is not None and np.isfinite(fit["ec50"]):
                    x = _curve_grid(group[x_name].to_numpy(), factor.log_scale)
                    y = fit["e0"] + fit["emax"] * _hill(x, fit["ec50"], fit["hill"])
                    axis.plot(x, y, "-", color=line.get_color(), lw=1.2)
            if factor.log_scale or _spans_decades(table[x_name]):
                axis.set_xscale("log")
            axis.set_xlabel(factor.label)
            metric = column.split(".", 1)[1]
            axis.set_title(f"{metric} ({units[column]})" if units[column] else metric, fontsize=9)
        axes[0][0].set_ylabel(output)
        axes[0][-1].legend(fontsize=7, frameon=False)
        figure.suptitle(
            f"{sweep.sweep_id}: {output} against {x_name} (points: simulations; lines: Hill "
            "fits)\nmodel predictions, not measurements",
            fontsize=9,
        )
        figure.tight_layout()
        paths.append(_save(figure, folder / f"response_{_safe(output)}.png"))
    return paths


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


def _hill(x: np.ndarray, ec50: float, hill: float) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return 1.0 / (1.0 + (ec50 / np.maximum(x, 1e-300)) ** hill)


def _curve_grid(x: np.ndarray, log: bool) -> np.ndarray:
    positive = x[x > 0]
    if (log or _spans_decades(pd.Series(x))) and len(positive):
        return np.geomspace(positive.min(), positive.max(), 200)
    return np.linspace(x.min(), x.max(), 200)


def _spans_decades(values: pd.Series) -> bool:
    positive = values[values > 0]
    return len(positive) > 1 and positive.max() / positive.min() >= 100


def _fit_row(fits: pd.DataFrame | None, column: str, by: list[str], key: tuple) -> Any:
    if fits is None or fits.empty:
        return None
    mask = fits["response"] == column
    for name, value in zip(by, key, strict=True):
        mask &= fits[name] == value
    rows = fits[mask]
    return None if rows.empty else rows.iloc[0]


def heatmaps(result: Any, layout: dict, folder: Path) -> list[Path]:
    """Each metric over the two-factor grid, a panel per arm."""
    import matplotlib.pyplot as plt

    sweep = result.sweep
    x_factor, y_factor = sweep.factors
    table = result.table
    arms = sweep.arms
    paths = []
    for column, unit in list(layout["metric_columns"])[:MAX_FIGURES]:
        figure, axes = plt.subplots(1, len(arms), figsize=(4 * len(arms), 3.4), squeeze=False)
        for axis, arm in zip(axes[0], arms, strict=True):
            part = table[table["arm"] == arm]
            grid = part.pivot_table(index=y_factor.name, columns=x_factor.name, values=column)
            image = axis.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis")
            axis.set_xticks(range(grid.shape[1]), [f"{v:.3g}" for v in grid.columns], fontsize=7)
            axis.set_yticks(range(grid.shape[0]), [f"{v:.3g}" for v in grid.index], fontsize=7)
            axis.set_xlabel(x_factor.label)
            axis.set_ylabel(y_factor.label)
            axis.set_title(arm, fontsize=9)
            figure.colorbar(image, ax=axis, label=unit)
        figure.suptitle(
            f"{sweep.sweep_id}: {column} (blank: failed points)\nmodel predictions, "
            "not measurements",
            fontsize=9,
        )
        figure.tight_layout()
        paths.append(_save(figure, folder / f"heatmap_{_safe(column)}.png"))
    return paths


def band_quantiles(
    folder: Path, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95), block: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles over points of the saved trajectories: shape (quantiles, arms, times,
    outputs), read ``block`` time points at a time so memory stays bounded; NaNs (failed
    points) are left out."""
    import zarr

    array = zarr.open_array(folder / "trajectories.zarr" / "value", mode="r")
    times = zarr.open_array(folder / "trajectories.zarr" / "time", mode="r")[:]
    _, arms, n_times, outputs = array.shape
    out = np.full((len(quantiles), arms, n_times, outputs), np.nan)
    for start in range(0, n_times, block):
        values = array[:, :, start : start + block, :]
        finite = np.isfinite(values).any(axis=0)
        if finite.any():
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices stay NaN
                    out[:, :, start : start + block, :] = np.nanquantile(values, quantiles, axis=0)
    return np.asarray(times), out


def uncertainty_bands(result: Any, layout: dict, folder: Path) -> list[Path]:
    """Median and 5-95 % band over time of each output, per arm."""
    import matplotlib.pyplot as plt

    times, bands = band_quantiles(result.folder)
    outputs, arms = layout["outputs"], layout["arms"]
    columns = min(3, len(outputs))
    rows = int(np.ceil(len(outputs) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 3.2 * rows), squeeze=False)
    for k, (axis, output) in enumerate(zip(itertools.chain(*axes), outputs, strict=False)):
        for a, arm in enumerate(arms):
            line = axis.plot(times, bands[1, a, :, k], lw=1.4, label=f"{arm} median")[0]
            axis.fill_between(
                times, bands[0, a, :, k], bands[2, a, :, k], color=line.get_color(), alpha=0.25
            )
        unit = layout["units"][k]
        axis.set_title(f"{output} ({unit})" if unit else output, fontsize=9)
        axis.set_xlabel(f"time ({layout['time_unit']})")
    for axis in list(itertools.chain(*axes))[len(outputs) :]:
        axis.set_visible(False)
    axes[0][0].legend(fontsize=7, frameon=False)
    n = result.summary.get("rows_ok", 0) // max(1, len(arms))
    figure.suptitle(
        f"{result.sweep.sweep_id}: median and 5-95 % band over {n} sampled points\n"
        "model predictions with parameter uncertainty, not measurements",
        fontsize=9,
    )
    figure.tight_layout()
    return [_save(figure, folder / "bands.png")]
