"""Plots from results only (never from the solver). matplotlib lives here and nowhere else."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import RunResult


def plot_trajectories(result: RunResult, outputs: list[str] | None = None) -> Figure:
    """One panel per output, one line per arm, dose times as ticks along each panel's top."""
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .results import DISCLAIMER

    outputs = outputs or result.outputs
    arms = result.arms
    columns = min(3, len(outputs))
    rows = math.ceil(len(outputs) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 3.2 * rows + 0.6), squeeze=False
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    table = result.trajectories
    doses = result.doses[result.doses["is_dose"]]
    dose_times = {arm: sorted(set(doses[doses.arm == arm]["time"])) for arm in arms}
    for panel, output in enumerate(outputs):
        ax = axes[panel // columns][panel % columns]
        unit = ""
        for k, arm in enumerate(arms):
            rows_ = table[(table.arm == arm) & (table.output == output)]
            unit = rows_["unit"].iloc[0] if len(rows_) else unit
            color = colors[k % len(colors)]
            ax.plot(rows_["time"], rows_["value"], color=color, label=arm, lw=1.6)
            if dose_times[arm]:
                # ticks stacked per arm just inside the top edge: dose times per arm
                y = 1.0 - 0.035 * (k + 1)
                ax.plot(
                    dose_times[arm],
                    [y] * len(dose_times[arm]),
                    "v",
                    color=color,
                    ms=4,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                )
        ax.set_title(output, fontsize=10)
        ax.set_xlabel(f"time [{result.time_unit}]")
        ax.set_ylabel(f"{output} [{unit}]" if unit else output)
        ax.grid(alpha=0.3)
    for panel in range(len(outputs), rows * columns):
        axes[panel // columns][panel % columns].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=min(len(arms), 5), frameon=False)
    name = result.scenario.name or result.scenario.scenario_id
    figure.text(0.01, 0.005, f"{name} · ▼ dose times · {DISCLAIMER}", fontsize=6, wrap=True)
    figure.tight_layout(rect=(0, 0.04, 1, 0.93))
    return figure
