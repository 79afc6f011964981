"""RunResult: trajectories and metrics as tables, and the run folder written atomically.

Column names are defined here once. A run folder appears whole or not at all: everything is
written into a hidden sibling folder that is renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from . import metrics as metric_functions
from .errors import SecretomeError
from .scenario import Scenario, TimeAbove

TRAJECTORY_COLUMNS = ["arm", "time", "output", "value", "unit"]
METRIC_COLUMNS = [
    "arm",
    "output",
    "metric",
    "value",
    "unit",
    "reference_value",
    "change",
    "percent_change",
]
DOSE_COLUMNS = ["arm", "time", "model_time", "action", "target", "value", "label", "is_dose"]
DISCLAIMER = (
    "Predictions of a simplified mechanistic model, not measurements. Parameters marked "
    "'assumed' in the model metadata are not from data; check them before relying on a result."
)


@dataclass
class OutputColumn:
    """One reported output: its name, display unit and the factor from model units."""

    name: str
    unit: str
    factor: float


@dataclass
class RunResult:
    """What a scenario run produced. Tables are tidy pandas DataFrames."""

    scenario: Scenario
    trajectories: pd.DataFrame
    metrics: pd.DataFrame
    doses: pd.DataFrame
    manifest: dict[str, Any]
    time_unit: str
    warnings: list[str] = field(default_factory=list)

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(self.trajectories["arm"]))

    @property
    def outputs(self) -> list[str]:
        return list(dict.fromkeys(self.trajectories["output"]))

    @property
    def completed(self) -> bool:
        return self.manifest.get("status") == "complete"

    def wide(self, arm: str) -> pd.DataFrame:
        """One arm as a table indexed by time with one column per output."""
        table = self.trajectories[self.trajectories["arm"] == arm]
        return table.pivot(index="time", columns="output", values="value")[self.outputs]

    def metric(self, arm: str, output: str, metric: str) -> float:
        """A single metric value, e.g. ``result.metric('hydrogel', 'vegf_free', 'auc')``."""
        table = self.metrics
        row = table[(table.arm == arm) & (table.output == output) & (table.metric == metric)]
        if row.empty:
            raise KeyError(f"no metric {metric!r} for arm {arm!r}, output {output!r}")
        return float(row["value"].iloc[0])

    def plot(self, outputs: list[str] | None = None):
        """A matplotlib Figure: one panel per output, arms as lines, dose times marked."""
        from .plotting import plot_trajectories

        return plot_trajectories(self, outputs)

    def save(self, directory: str | Path | None = None, *, plot: bool = True) -> Path:
        """Write the run folder (default ``results/<scenario-id>/<timestamp>/``) atomically."""
        return write_run_folder(self, directory, plot=plot)


def build_tables(
    scenario: Scenario,
    arm_values: dict[str, np.ndarray],
    times: np.ndarray,
    columns: list[OutputColumn],
    time_unit: str,
    threshold_values: dict[tuple[int, str], float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy trajectories and the metrics table (with changes versus the reference arm)."""
    frames = []
    for arm, values in arm_values.items():
        for k, column in enumerate(columns):
            frames.append(
                pd.DataFrame(
                    {
                        "arm": arm,
                        "time": times,
                        "output": column.name,
                        "value": values[:, k] * column.factor,
                        "unit": column.unit,
                    }
                )
            )
    trajectories = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TRAJECTORY_COLUMNS)
    )
    rows = []
    for arm, values in arm_values.items():
        finite = ~np.isnan(values).any(axis=1)
        for k, column in enumerate(columns):
            series, grid = values[finite, k] * column.factor, times[finite]
            if len(series) == 0:
                continue
            for name, unit, compute in metric_plan(
                scenario.metrics, column, time_unit, threshold_values
            ):
                rows.append(
                    {
                        "arm": arm,
                        "output": column.name,
                        "metric": name,
                        "value": compute(grid, series),
                        "unit": unit,
                    }
                )
    table = pd.DataFrame(rows, columns=["arm", "output", "metric", "value", "unit"])
    reference = scenario.reference_arm
    if reference is not None and reference in arm_values and not table.empty:
        base = table[table.arm == reference].set_index(["output", "metric"])["value"]
        keys = list(zip(table.output, table.metric, strict=True))
        table["reference_value"] = [base.get(key, np.nan) for key in keys]
        table["change"] = table["value"] - table["reference_value"]
        table["percent_change"] = [
            metric_functions.percent_change(v, r)
            for v, r in zip(table["value"], table["reference_value"], strict=True)
        ]
    else:
        table["reference_value"] = np.nan
        table["change"] = np.nan
        table["percent_change"] = np.nan
    return trajectories, table[METRIC_COLUMNS]


def metric_plan(
    metrics: list,
    column: OutputColumn,
    time_unit: str,
    threshold_values: dict[tuple[int, str], float],
) -> list[tuple[str, str, Callable[[np.ndarray, np.ndarray], float]]]:
    """(name, unit, function of (times, values)) for each metric of one output column; a
    ``time_above`` metric applies only to the outputs it lists. Runs and sweeps share this."""
    plan = []
    for index, metric in enumerate(metrics):
        if isinstance(metric, TimeAbove):
            if metric.outputs is not None and column.name not in metric.outputs:
                continue
            threshold = threshold_values[(index, column.name)]
            function = partial(_time_above, threshold=threshold)
            plan.append((f"time_above_{threshold:g}", time_unit, function))
        else:
            unit = metric_functions.metric_unit(metric, column.unit, time_unit)
            plan.append((metric, unit, metric_functions.SIMPLE_METRICS[metric]))
    return plan


def _time_above(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    return metric_functions.time_above(times, values, threshold)


# --------------------------------------------------------------------------- run folder
def default_run_folder(scenario: Scenario, root: str | Path = "results") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(root) / scenario.scenario_id / stamp


class RunFolderError(SecretomeError):
    """The run folder cannot be created where asked (exists and is not empty)."""


def check_run_folder(directory: str | Path) -> Path:
    """Refuse a destination that exists and is not an empty folder (checked before running)."""
    final = Path(directory)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise RunFolderError(
            f"run folder {final} already exists and is not empty; choose a new --out folder"
        )
    blocking = next((p for p in final.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise RunFolderError(f"cannot create run folder {final}: {blocking} is a file")
    return final


def write_run_folder(result: RunResult, directory: str | Path | None, *, plot: bool = True) -> Path:
    """Write every file into a temporary sibling, then rename it into place in one step."""
    final = check_run_folder(
        directory if directory is not None else default_run_folder(result.scenario)
    )
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; a run folder follows the umask
    try:
        _write_files(result, staging, plot)
        if final.exists():
            final.rmdir()  # empty, checked above
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_files(result: RunResult, folder: Path, plot: bool) -> None:
    scenario = result.scenario
    if scenario._text is not None:
        (folder / "scenario.yaml").write_text(scenario._text, encoding="utf-8")
    resolved = scenario.model_dump(mode="json")
    from .dosing import resolved_arms

    resolved["arms"] = {
        name: arm.model_dump(mode="json") for name, arm in resolved_arms(scenario).items()
    }
    resolved["id"] = scenario.scenario_id
    (folder / "resolved_scenario.yaml").write_text(
        yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    result.trajectories.to_csv(folder / "trajectories.csv", index=False)
    result.metrics.to_csv(folder / "metrics.csv", index=False)
    result.doses.to_csv(folder / "dose_events.csv", index=False)
    (folder / "manifest.json").write_text(
        json.dumps(result.manifest, indent=2, default=str) + "\n", encoding="utf-8"
    )
    if plot and not result.trajectories.empty:
        figure = result.plot()
        figure.savefig(folder / "trajectories.png", dpi=110)
        import matplotlib.pyplot as plt

        plt.close(figure)
