"""run_sensitivity: study -> the method's points -> a sweep on the executors -> indices, flags.

The Python face of ``secretome-sim sensitivity``. The points run as a sweep (``points/`` in the
study folder), so they parallelise on processes or Dask and an interrupted study resumes with
``resume=True``; the indices are computed afterwards from the sweep's table (cheap).

The evidence flag: an input counts as influential when its index passes the study's threshold
(``influential:``); an influential model parameter whose metadata source is 'assumed' is
flagged, so users see which unsourced numbers drive a prediction.
"""

from __future__ import annotations

import json
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .models import engine_versions
from .results import DISCLAIMER
from .sensitivity_load import Sensitivity, load_sensitivity
from .sensitivity_methods import (
    INDEX_COLUMNS,
    compute_indices,
    influence,
    local_over_time,
    point_count,
    sensitivity_design,
    threshold,
)
from .sensitivity_spec import Method
from .sweep import Progress, run_sweep
from .sweep_store import SweepFolderError, write_atomically

FLAG = "influential, source assumed"


@dataclass
class SensitivityResult:
    """Indices per arm x metric x input, with evidence and flags; where they were written."""

    folder: Path
    study: Sensitivity
    indices: pd.DataFrame
    notes: list[str]
    summary: dict[str, Any]
    over_time: pd.DataFrame | None = None
    plots: list[Path] = field(default_factory=list)

    @property
    def flagged(self) -> pd.DataFrame:
        """Rows where an influential input's source is 'assumed'."""
        return self.indices[self.indices["flag"] != ""]

    @property
    def failed(self) -> int:
        return int(self.summary["rows_failed"])

    def report(self, top: int = 5) -> str:
        """A short text report: the top inputs per arm and metric, then the flagged ones."""
        return format_report(self, top)


def run_sensitivity(
    study: Sensitivity | str | Path,
    *,
    method: Method | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress = "auto",
    plots: bool = True,
    command: str | None = None,
    models_dir: str | Path | None = None,
) -> SensitivityResult:
    """Run a sensitivity study (a scenario, a scenario with ``sensitivity:``, or a sensitivity
    file) and write ``indices.csv``, ``report.md``, ``summary.json`` and plots to its folder."""
    if not isinstance(study, Sensitivity):
        study = load_sensitivity(study, method=method, models_dir=models_dir)
    elif method is not None and method != study.method:
        raise ValueError(f"the study was built for method {study.method!r}, not {method!r}")
    started = datetime.now(UTC)
    tick = clock.perf_counter()
    folder = Path(out) if out is not None else default_folder(study)
    if not resume and folder.exists() and any(folder.iterdir()):
        raise SweepFolderError(f"{folder} already exists and is not empty; pass --resume")
    design = sensitivity_design(study)
    over_time = study.method == "local" and study.spec.local.over_time
    started_with = folder / "points" / "sweep.json"
    if resume and started_with.exists():
        kept = bool(json.loads(started_with.read_text(encoding="utf-8"))["save_trajectories"])
        if kept != over_time:
            raise SweepFolderError(
                f"{folder} was started with local.over_time: {str(kept).lower()}; resume with "
                "the same setting or start a new --out folder"
            )
    points = run_sweep(
        study.sweep,
        out=folder / "points",
        workers=workers,
        scheduler=scheduler,
        resume=resume and (folder / "points").exists(),
        save_trajectories=over_time,
        progress=progress,
        plots=False,
        command=command,
        design=design,
    )
    table = points.table
    summary = json.loads((points.folder / "sweep.json").read_text(encoding="utf-8"))
    metric_columns = list(summary["metric_columns"])
    indices, notes = compute_indices(study, design, table, metric_columns)
    indices = annotate(study, indices)
    time_table = _over_time(study, points) if over_time else None
    summary = _summary(study, points, indices, notes, started, tick, command)
    result = SensitivityResult(folder, study, indices, notes, summary, time_table)
    write_atomically(folder / "indices.csv", lambda p: indices.to_csv(p, index=False))
    if time_table is not None:
        write_atomically(
            folder / "over_time.parquet", lambda p: time_table.to_parquet(p, index=False)
        )
    if plots:
        from .sensitivity_plots import sensitivity_plots

        result.plots = sensitivity_plots(result)
        summary["plots"] = [str(p.relative_to(folder)) for p in result.plots]
    text = format_report(result, top=10)
    write_atomically(folder / "report.md", lambda p: p.write_text(text, encoding="utf-8"))
    body = json.dumps(summary, indent=2, default=str) + "\n"
    write_atomically(folder / "summary.json", lambda p: p.write_text(body, encoding="utf-8"))
    return result


def default_folder(study: Sensitivity, root: str | Path = "results") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(root) / study.study_id / f"sensitivity-{study.method}-{stamp}"


def annotate(study: Sensitivity, indices: pd.DataFrame) -> pd.DataFrame:
    """Add each input's kind, unit, values, source and evidence; influence, influential, flag."""
    info = pd.DataFrame(
        [
            {
                "input": i.name,
                "kind": i.kind,
                "path": " ".join(i.paths),
                "unit": i.unit,
                "nominal": i.nominal,
                "low": i.low,
                "high": i.high,
                "scale": "log" if i.log else "lin",
                "source": i.source,
                "evidence": i.evidence,
            }
            for i in study.inputs
        ]
    )
    table = indices.merge(info, on="input", how="left")
    limit = threshold(study)
    table["influence"] = [influence(study, row) for _, row in table.iterrows()]
    table["influential"] = table["influence"].fillna(0.0) >= limit
    assumed = (table["evidence"] == "assumed") & table["influential"]
    table["flag"] = [FLAG if a else "" for a in assumed]
    order = ["arm", "metric", "input", *INDEX_COLUMNS[study.method], "influence", "influential"]
    rest = [c for c in table.columns if c not in order]
    return table[order + rest]


def _over_time(study: Sensitivity, points: Any) -> pd.DataFrame:
    data = points.trajectories()
    values = data["value"].transpose("point", "arm", "time", "output").to_numpy()
    outputs = [str(o) for o in data["output"].to_numpy()]
    return local_over_time(study, values, outputs, data["time"].to_numpy())


def _summary(study, points, indices, notes, started, tick, command) -> dict[str, Any]:
    flagged = indices[indices["flag"] != ""]
    return {
        "secretome_sim_version": __version__,
        "engine": engine_versions(),
        "command": command or "python API: run_sensitivity",
        "scenario": {
            "id": study.scenario.scenario_id,
            "file": str(study.scenario.source) if study.scenario.source else None,
        },
        "study_file": str(study.source) if study.source else None,
        "method": study.method,
        "settings": study.spec.model_dump(mode="json"),
        "inputs": len(study.inputs),
        "points": point_count(study),
        "arms": study.sweep.arms,
        "rows_failed": int(points.summary["rows_failed"]),
        "failure_reasons": points.summary["failure_reasons"],
        "skipped_inputs": [{"input": n, "why": why} for n, why in study.skipped],
        "influence_threshold": threshold(study),
        "flagged": sorted(set(flagged["input"])),
        "notes": notes,
        "started": started.isoformat(),
        "elapsed_seconds": round(clock.perf_counter() - tick, 3),
        "disclaimer": DISCLAIMER,
    }


_MEASURE = {"local": "S", "morris": "mu_star", "sobol": "ST"}
_DESCRIBE = {
    "local": "S = d ln(metric) / d ln(input) at the nominal point (central differences)",
    "morris": "mu* = mean |elementary effect| over the ranges (Morris screening)",
    "sobol": "ST = total Sobol index (share of variance incl. interactions), S1 = first order",
}


def format_report(result: SensitivityResult, top: int = 5) -> str:
    """The top inputs per arm and metric, and every influential input whose source is assumed."""
    study = result.study
    table = result.indices
    measure = _MEASURE[study.method]
    lines = [
        f"# {study.method} sensitivity of {study.scenario.scenario_id}",
        "",
        f"{len(study.inputs)} inputs, {point_count(study)} points x {len(study.sweep.arms)} arms, "
        f"{result.failed} rows failed. {_DESCRIBE[study.method]}. Influential: "
        f"{'|S|' if study.method == 'local' else measure} >= {threshold(study):g}"
        + (" x the largest" if study.method == "morris" else "")
        + ".",
        "",
        f"_{DISCLAIMER}_",
        "",
    ]
    for (arm, metric), group in table.groupby(["arm", "metric"], sort=False):
        ranked = group.assign(_key=group["influence"].abs()).sort_values("_key", ascending=False)
        lines.append(f"## arm {arm}: {metric}")
        if group["influence"].isna().all():
            lines.append("- no indices (see the notes below)")
        for _, row in ranked.head(top).iterrows() if group["influence"].notna().any() else ():
            lines.append("- " + _row_text(study.method, row))
        lines.append("")
    flagged = table[table["flag"] != ""]
    lines.append(f"## Influential inputs whose source is 'assumed' ({flagged['input'].nunique()})")
    if flagged.empty and table["influential"].any():
        lines.append("none: every influential input has a source (or is a dose factor)")
    elif flagged.empty:
        lines.append("none (no input passed the influence threshold)")
    for name, group in flagged.groupby("input", sort=False):
        where = ", ".join(f"{a}: {m}" for a, m in zip(group["arm"], group["metric"], strict=True))
        lines.append(f"- {name} ({_span(group.iloc[0])}) drives {where}")
    if study.skipped:
        lines += ["", "## Not varied"]
        lines += [f"- {name}: {why}" for name, why in study.skipped]
    if result.notes:
        lines += ["", "## Notes"]
        lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def _row_text(method: str, row: pd.Series) -> str:
    if method == "local":
        value = f"S = {row['S']:+.3g} (+- {row['S_error']:.1g})"
    elif method == "morris":
        value = f"mu* = {row['mu_star']:.3g} +- {row['mu_star_conf']:.2g}, sigma {row['sigma']:.3g}"
    else:
        value = (
            f"ST = {row['ST']:.3f} +- {row['ST_conf']:.3f}, S1 = {row['S1']:.3f} +- "
            f"{row['S1_conf']:.3f}"
        )
    evidence = row["evidence"] if row["kind"] == "parameter" else f"{row['evidence']} factor"
    flag = "  <- FLAG: influential, source assumed" if row["flag"] else ""
    return f"{row['input']}: {value} [{evidence}]{flag}"


def _span(row: pd.Series) -> str:
    if pd.notna(row["low"]):
        return f"range {row['low']:g}-{row['high']:g} {row['unit']}".strip()
    return f"nominal {row['nominal']:g} {row['unit']}".strip()
