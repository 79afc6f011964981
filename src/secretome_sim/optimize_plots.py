"""The optimisation figure (matplotlib only; reads the result tables, never RoadRunner).

``plots/optimized_vs_baseline.png``: one panel per output, the scenario as written dashed and
the best schedule solid (one colour per arm), dose times as ticks along the top (hollow: as
written, filled: best), and each metric constraint that bounds the plotted curve itself (a
max, min or final) as a dotted line at its limit.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pandas as pd

CURVE_METRICS = ("max", "min", "final")  # constraints on these are levels of the curve


def optimized_vs_baseline(result: Any, doses: pd.DataFrame, folder: Path) -> Path:
    """Draw the comparison figure for an OptimizationResult into ``folder``; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table: pd.DataFrame = result.trajectories
    outputs = list(dict.fromkeys(table["output"]))
    arms = list(dict.fromkeys(table["arm"]))
    columns = min(3, len(outputs))
    rows = math.ceil(len(outputs) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 3.2 * rows + 0.9), squeeze=False
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    flat = list(itertools.chain(*axes))
    for axis, output in zip(flat, outputs, strict=False):
        unit = ""
        for k, arm in enumerate(arms):
            colour = colours[k % len(colours)]
            for schedule, style in (("baseline", "--"), ("best", "-")):
                part = table[
                    (table["schedule"] == schedule)
                    & (table["arm"] == arm)
                    & (table["output"] == output)
                ]
                if part.empty:
                    continue
                unit = str(part["unit"].iloc[0])
                label = f"{arm} ({'as written' if schedule == 'baseline' else 'best'})"
                axis.plot(part["time"], part["value"], style, color=colour, lw=1.5, label=label)
            _dose_ticks(axis, doses, arm, colour, k)
        for limit, text in _limits(result, output):
            axis.axhline(limit, color="crimson", ls=":", lw=1.2)
            axis.annotate(
                text,
                (0.99, limit),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize=7,
                color="crimson",
            )
        axis.set_title(output, fontsize=10)
        axis.set_xlabel(f"time [{_time_unit(result)}]")
        axis.set_ylabel(f"{output} [{unit}]" if unit else output)
        axis.grid(alpha=0.3)
    for axis in flat[len(outputs) :]:
        axis.set_visible(False)
    handles, labels = flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4), frameon=False)
    opt = result.optimization
    status = "best schedule found" if result.feasible else "no feasible schedule (least violated)"
    figure.text(
        0.01,
        0.005,
        f"{opt.optimization_id}: {opt.sense} {opt.objective.name} ({status}) · dashed: as "
        "written, solid: best · ▽▼ dose times · dotted: constraint limits · model "
        "predictions, not measurements",
        fontsize=6.5,
        wrap=True,
    )
    figure.tight_layout(rect=(0, 0.04, 1, 0.92))
    path = folder / "optimized_vs_baseline.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _time_unit(result: Any) -> str:
    return f"{result.optimization.scenario.time.end.units:~}"


def _limits(result: Any, output: str) -> list[tuple[float, str]]:
    """(value, label) of each metric constraint that is a level of this output's curve."""
    found = []
    for bound in result.optimization.constraints:
        measure = bound.measure
        curve = measure.kind == "metric" and measure.metric in CURVE_METRICS
        if curve and measure.output == output:
            found.append((bound.limit, f"{measure.arm}: {bound.name}"))
    return found


def _dose_ticks(axis: Any, doses: pd.DataFrame, arm: str, colour: str, k: int) -> None:
    if doses.empty:
        return
    for schedule, marker, row in (("baseline", "v", 1), ("best", "v", 2)):
        times = sorted(set(doses[(doses["schedule"] == schedule) & (doses["arm"] == arm)]["time"]))
        if not times:
            continue
        y = 1.0 - 0.035 * (2 * k + row)
        face = "none" if schedule == "baseline" else colour
        axis.plot(
            times,
            [y] * len(times),
            marker,
            ms=4,
            color=colour,
            markerfacecolor=face,
            ls="none",
            transform=axis.get_xaxis_transform(),
            clip_on=False,
        )
