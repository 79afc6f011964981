"""Sensitivity figures (matplotlib only; reads the result's tables, never RoadRunner).

- local: a tornado per metric (normalised sensitivities, largest first), a panel per arm; and,
  per output, S(t) over time for the inputs that matter most;
- morris: mu* against sigma per metric, a panel per arm (sigma high: non-linear or interacting);
- sobol: first-order and total indices with confidence intervals per metric, a panel per arm.
Inputs whose source is 'assumed' are drawn in orange and flagged ones marked with '!'.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TOP = 12  # inputs per panel
LINES = 5  # inputs per panel over time
COLORS = {"assumed": "tab:orange", "dose": "tab:gray", "calibrated": "tab:purple"}
SOURCED = "tab:blue"
MAX_FIGURES = 12  # per kind (choose outputs and metrics in the study to see others)
OVERVIEW_ROWS = 30
OVERVIEW_COLUMNS = 48


def sensitivity_plots(result: Any) -> list[Path]:
    """Write the method's figures into ``plots/``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    folder = result.folder / "plots"
    folder.mkdir(exist_ok=True)
    method = result.study.method
    draw = {"local": _tornado, "morris": _morris, "sobol": _sobol}[method]
    written = [_save(_overview(result), folder / f"{method}_overview.png")]
    for metric, group in list(result.indices.groupby("metric", sort=False))[:MAX_FIGURES]:
        figure = _panels(group, lambda ax, part: draw(ax, part), f"{method}: {metric}")
        written.append(_save(figure, folder / f"{method}_{_safe(metric)}.png"))
    if result.over_time is not None:
        groups = list(result.over_time.groupby("output", sort=False))[:MAX_FIGURES]
        for output, group in groups:
            figure = _panels(group, _over_time, f"local sensitivity of {output} over time")
            written.append(_save(figure, folder / f"local_over_time_{_safe(output)}.png"))
    return written


def _overview(result: Any) -> Any:
    """Every arm x metric at a glance: the inputs (rows) that matter most somewhere, coloured by
    their influence (signed S for local; relative mu* or ST for global methods)."""
    import matplotlib.pyplot as plt

    table = result.indices
    method = result.study.method
    value = "S" if method == "local" else "influence"
    grid = table.pivot_table(
        index="input", columns=["arm", "metric"], values=value, sort=False, dropna=False
    )
    total = grid.shape[1]
    grid = grid.iloc[:, :OVERVIEW_COLUMNS]
    strongest = grid.abs().max(axis=1).fillna(0).sort_values(ascending=False).index
    grid = grid.loc[strongest[:OVERVIEW_ROWS]]
    if grid.empty:
        figure, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no indices to show (see report.md)", ha="center", va="center")
        ax.set_axis_off()
        return figure
    flagged = set(table.loc[table["flag"] != "", "input"])
    evidence = table.drop_duplicates("input").set_index("input")["evidence"]
    height = 0.28 * len(grid) + 2.8
    figure, ax = plt.subplots(figsize=(max(6.0, 0.32 * grid.shape[1] + 3.5), height))
    if method == "local":  # S spans decades: a symmetric log scale, linear within +-0.1
        from matplotlib.colors import SymLogNorm

        limit = max(1.0, float(np.nanmax(np.abs(grid.to_numpy()))) if grid.size else 1.0)
        norm = SymLogNorm(linthresh=0.1, vmin=-limit, vmax=limit)
        image = ax.imshow(grid.to_numpy(), cmap="RdBu_r", norm=norm, aspect="auto")
    else:
        image = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    labels = [f"{'! ' if name in flagged else ''}{name}" for name in grid.index]
    ax.set_yticks(range(len(grid)), labels, fontsize=7)
    for tick, name in zip(ax.get_yticklabels(), grid.index, strict=True):
        tick.set_color(COLORS.get(evidence.get(name, ""), "black"))
    ax.set_xticks(
        range(grid.shape[1]), [f"{a}: {m}" for a, m in grid.columns], rotation=90, fontsize=7
    )
    names = {"local": "S = d ln y / d ln p", "morris": "mu* / largest mu*", "sobol": "ST"}
    figure.colorbar(image, ax=ax, label=names[method], shrink=0.8)
    shown = (
        f"first {grid.shape[1]} of {total} arm x metric columns; " if total > grid.shape[1] else ""
    )
    ax.set_title(
        f"{method} sensitivity, strongest {len(grid)} inputs ({shown}orange: source assumed; "
        "!: influential and assumed)  (model predictions)",
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def _panels(table: pd.DataFrame, draw: Any, title: str) -> Any:
    """One panel per arm, side by side (wrapping after three)."""
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(table["arm"]))
    columns = min(3, len(arms))
    rows = -(-len(arms) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5.2 * columns, 0.3 * TOP * rows + 1.6), squeeze=False
    )
    for k, arm in enumerate(arms):
        ax = axes[k // columns][k % columns]
        draw(ax, table[table["arm"] == arm])
        ax.set_title(f"arm {arm}", fontsize=10)
    for k in range(len(arms), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    figure.suptitle(title + "  (model predictions)", fontsize=11)
    figure.tight_layout()
    return figure


def _color(row: pd.Series) -> str:
    return COLORS.get(row["evidence"], SOURCED)


def _labels(part: pd.DataFrame) -> list[str]:
    return [
        f"{'! ' if flag else ''}{name}"
        for name, flag in zip(part["input"], part["flag"], strict=True)
    ]


def _ranked(part: pd.DataFrame, key: str) -> pd.DataFrame:
    order = part[key].abs().fillna(-1).sort_values(ascending=False).index
    return part.loc[order].head(TOP).iloc[::-1]  # largest at the top of a barh


def _tornado(ax: Any, part: pd.DataFrame) -> None:
    shown = _ranked(part, "S")
    y = np.arange(len(shown))
    ax.barh(y, shown["S"], xerr=shown["S_error"], color=[_color(r) for _, r in shown.iterrows()])
    ax.set_yticks(y, _labels(shown), fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("normalised sensitivity S = d ln y / d ln p")
    _legend(ax)


def _morris(ax: Any, part: pd.DataFrame) -> None:
    for _, row in part.iterrows():
        ax.errorbar(
            row["mu_star"],
            row["sigma"],
            xerr=row["mu_star_conf"],
            fmt="o",
            color=_color(row),
            markersize=5,
        )
    for _, row in _ranked(part, "mu_star").iloc[::-1].head(8).iterrows():
        label = f"{'! ' if row['flag'] else ''}{row['input']}"
        ax.annotate(
            label,
            (row["mu_star"], row["sigma"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_xlabel("mu* (mean |elementary effect|)")
    ax.set_ylabel("sigma")
    _legend(ax)


def _sobol(ax: Any, part: pd.DataFrame) -> None:
    shown = _ranked(part, "ST")
    y = np.arange(len(shown))
    colors = [_color(r) for _, r in shown.iterrows()]
    ax.barh(y + 0.2, shown["ST"], height=0.4, xerr=shown["ST_conf"], color=colors, label="ST")
    ax.barh(
        y - 0.2,
        shown["S1"],
        height=0.4,
        xerr=shown["S1_conf"],
        color=colors,
        alpha=0.45,
        hatch="//",
        label="S1",
    )
    ax.set_yticks(y, _labels(shown), fontsize=8)
    ax.set_xlabel("Sobol index (ST solid, S1 hatched; bars: confidence interval)")
    ax.set_xlim(left=min(0.0, float(np.nanmin(shown["S1"])) if len(shown) else 0.0))
    _legend(ax)


def _over_time(ax: Any, part: pd.DataFrame) -> None:
    peak = part.groupby("input")["S"].apply(
        lambda s: np.nanmax(np.abs(s)) if s.notna().any() else 0
    )
    for name in peak.sort_values(ascending=False).index[:LINES]:
        rows = part[part["input"] == name]
        ax.plot(rows["time"], rows["S"], label=name)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("time")
    ax.set_ylabel("S(t) = d ln y(t) / d ln p")
    ax.legend(fontsize=7)


def _legend(ax: Any) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(color=SOURCED, label="sourced"),
        Patch(color=COLORS["assumed"], label="assumed (! = influential)"),
        Patch(color=COLORS["calibrated"], label="calibrated"),
        Patch(color=COLORS["dose"], label="dose factor"),
    ]
    ax.legend(handles=handles, fontsize=7, loc="lower right")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
