"""run_sweep: sweep -> design -> chunks on a backend -> sweep folder -> table, fits, plots.

The Python face of ``secretome-sim sweep``. Points are grouped in chunks; each finished chunk
is written at once (see ``sweep_store.py``), so an interrupted sweep resumes where it stopped
and memory stays bounded however many points there are.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import time as clock
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import __version__
from .models import engine_versions
from .results import DISCLAIMER
from .sweep_design import design_table
from .sweep_executors import Task, default_workers, run_dask, run_processes, run_serial
from .sweep_load import Sweep, load_sweep
from .sweep_store import SweepStore
from .sweep_worker import SweepJob, metric_columns

Progress = Literal["auto", "bar", "plain", "none"]
DOSE_FIELDS = {"amount", "rate", "value", "concentration"}
MAX_CHUNK = 50


@dataclass
class SweepResult:
    """What a sweep produced: its folder, the summary, dose-response fits and (lazily) the
    results table and trajectories."""

    folder: Path
    sweep: Sweep
    summary: dict[str, Any]
    fits: pd.DataFrame | None = None
    plots: list[Path] = field(default_factory=list)

    @property
    def table(self) -> pd.DataFrame:
        """One row per point and arm: factor values, arm, status, message, metric columns."""
        return pd.read_parquet(self.folder / "results.parquet")

    def trajectories(self) -> Any:
        """The saved trajectories as an xarray Dataset (dims point, arm, time, output)."""
        return load_trajectories(self.folder)

    @property
    def failed(self) -> int:
        return int(self.summary["rows_failed"])


def load_trajectories(folder: str | Path) -> Any:
    """Open a sweep folder's ``trajectories.zarr`` with xarray (lazily, without Dask)."""
    import xarray as xr

    path = Path(folder) / "trajectories.zarr"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the sweep with --save-trajectories")
    return xr.open_zarr(path, consolidated=False, chunks=None)


def run_sweep(
    sweep: Sweep | str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    save_trajectories: bool | None = None,
    chunk_size: int | None = None,
    progress: Progress = "auto",
    plots: bool = True,
    command: str | None = None,
    models_dir: str | Path | None = None,
    design: pd.DataFrame | None = None,
) -> SweepResult:
    """Run every point of a sweep (or, with ``resume``, every point not yet saved in ``out``).

    ``workers``: 1 runs in this process; more (default: every usable core) use local processes;
    with ``scheduler`` ('local' or a Dask address) chunks run on Dask instead. Returns a
    SweepResult; ``result.table`` is the DataFrame of every point and arm.

    ``design`` replaces the spec's design with given points (one column per factor, in the
    factor's unit): how sensitivity analyses run their samples through the same executors.
    """
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep, models_dir=models_dir)
    started = datetime.now(UTC)
    tick = clock.perf_counter()
    keep_trajectories = (
        sweep.spec.save_trajectories if save_trajectories is None else bool(save_trajectories)
    )
    folder = Path(out) if out is not None else default_sweep_folder(sweep)
    if resume and (folder / "sweep.json").exists():
        # the folder decides: a resumed sweep keeps trajectories exactly when its start did
        keep_trajectories = (folder / "trajectories.zarr").exists()
    workers = workers or default_workers()
    backend = "dask" if scheduler else ("serial" if workers == 1 else "processes")
    given = None if design is None else given_design(sweep, design)
    design = design_table(sweep.factors, sweep.spec) if given is None else given
    n_points = len(design)
    size = chunk_size or sweep.spec.chunk_size or auto_chunk_size(n_points, workers)
    fingerprint = design_fingerprint(sweep, given)
    job = SweepJob(
        f"{fingerprint}-trajectories{int(keep_trajectories)}",
        sweep.scenario,
        sweep.factors,
        sweep.arms,
        sweep.outputs,
        sweep.metrics,
        keep_trajectories,
    )
    layout = _layout(job)
    manifest = _manifest(sweep, job, layout, n_points, size, command, started)
    manifest["fingerprint"] = fingerprint
    if given is not None:
        manifest["design"] = "given"
    store = SweepStore.open(
        folder,
        manifest,
        design,
        resume=resume,
        trajectory_layout=layout if keep_trajectories else None,
    )
    size = store.chunk_size
    n_chunks = math.ceil(n_points / size)
    done = store.done_chunks()
    remaining = [c for c in range(n_chunks) if c not in done]
    already = n_points - sum(_chunk_length(c, size, n_points) for c in remaining)
    factor_names = [f.name for f in sweep.factors]
    tasks = _tasks(design, factor_names, remaining, size)
    if backend == "serial":
        results = run_serial(job, tasks)
    elif backend == "processes":
        results = run_processes(job, tasks, workers)
    else:
        results = run_dask(job, tasks, str(scheduler), workers)
    bar = ProgressReport(n_points, already, progress, f"sweep {sweep.sweep_id}")
    try:
        for result in results:
            store.write_chunk(result.chunk, result.table, result.trajectories)
            bar.update(len(result.table) // max(1, len(sweep.arms)))
    finally:
        bar.close()
        results.close()  # on an interrupt: stop the workers now, not at garbage collection
    tally = StatusTally()
    store.consolidate(tally)
    summary = _summary(tally, n_points, backend, workers, size, already, tick, started)
    fits, fit_note = _fits(store.folder, sweep, design)
    if fits is not None:
        from .sweep_store import write_atomically

        write_atomically(store.folder / "fits.csv", lambda p: fits.to_csv(p, index=False))
    summary["dose_response"] = fit_note
    result = SweepResult(store.folder, sweep, summary, fits)
    if plots:
        from .sweep_plots import sweep_plots

        result.plots = sweep_plots(result, layout)
        summary["plots"] = [str(p.relative_to(store.folder)) for p in result.plots]
    store.write_json("summary.json", summary)
    return result


def given_design(sweep: Sweep, design: pd.DataFrame) -> pd.DataFrame:
    """A caller's design as a design table: 'point' first, then each factor's column."""
    names = [f.name for f in sweep.factors]
    missing = [n for n in names if n not in design.columns]
    if missing or len(design) == 0:
        raise ValueError(
            f"a given design needs at least one row and a column per factor ({', '.join(names)}); "
            f"missing: {', '.join(missing) or 'rows'}"
        )
    table = design[names].reset_index(drop=True)
    table.insert(0, "point", np.arange(len(table), dtype=np.int64))
    return table


def design_fingerprint(sweep: Sweep, given: pd.DataFrame | None) -> str:
    """The sweep's fingerprint, extended by the points themselves when a design was given (a
    resumed folder must hold exactly these points)."""
    if given is None:
        return sweep.fingerprint()
    digest = hashlib.sha256(pd.util.hash_pandas_object(given, index=False).to_numpy().tobytes())
    return f"{sweep.fingerprint()}-{digest.hexdigest()[:12]}"


def auto_chunk_size(points: int, workers: int) -> int:
    """Chunks of up to 50 points, at least ~8 per worker so that none idles at the end."""
    return max(1, min(MAX_CHUNK, math.ceil(points / (8 * max(1, workers)))))


def default_sweep_folder(sweep: Sweep, root: str | Path = "results") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(root) / sweep.sweep_id / f"sweep-{stamp}"


def _chunk_length(chunk: int, size: int, total: int) -> int:
    return min(size, total - chunk * size)


def _tasks(design: pd.DataFrame, names: list[str], chunks: list[int], size: int) -> Iterator[Task]:
    """Tasks made as the backend asks for them (the design itself is small: a few numbers per
    point)."""
    for chunk in chunks:
        part = design.iloc[chunk * size : (chunk + 1) * size]
        values = [list(row) for row in part[names].itertuples(index=False, name=None)]
        yield Task(chunk, part["point"].to_numpy(), values)


def _layout(job: SweepJob) -> dict[str, Any]:
    """The shape of what a point produces (times, outputs, metric columns), known before any
    point runs; the same calls the workers make."""
    from .run import output_grid, reported_outputs, thresholds
    from .sweep_worker import output_specs

    scenario = job.scenario.model_copy(
        update={"outputs": output_specs(job.scenario, job.outputs), "metrics": job.metrics}
    )
    model = scenario.model_definition
    _, columns = reported_outputs(scenario, model)
    display_times, _ = output_grid(scenario, model)
    time_unit = f"{scenario.time.end.units:~}"
    return {
        "points": 0,
        "arms": list(job.arms),
        "times": display_times.tolist(),
        "outputs": [c.name for c in columns],
        "units": [c.unit for c in columns],
        "time_unit": time_unit,
        "metric_columns": metric_columns(
            scenario.metrics, columns, time_unit, thresholds(scenario, columns, model)
        ),
    }


def _manifest(sweep, job, layout, n_points, size, command, started) -> dict[str, Any]:
    layout["points"] = n_points
    spec = sweep.spec
    return {
        "secretome_sim_version": __version__,
        "fingerprint": sweep.fingerprint(),
        "save_trajectories": job.save_trajectories,
        "command": command or "python API: run_sweep",
        "started": started.isoformat(),
        "scenario": {
            "id": sweep.scenario.scenario_id,
            "file": str(sweep.scenario.source) if sweep.scenario.source else None,
        },
        "sweep_file": str(sweep.source) if sweep.source else None,
        "model": {
            "id": sweep.scenario.model_definition.id,
            "sha256": sweep.scenario.model_definition.sha256,
        },
        "engine": engine_versions(),
        "design": spec.design,
        "samples": spec.samples,
        "seed": spec.seed,
        "points": n_points,
        "chunk_size": size,
        "arms": sweep.arms,
        "factors": {
            f.name: {
                "paths": [t.text for t in f.targets],
                "unit": f.unit,
                "kind": f.kind,
                "spec": f.spec.model_dump(mode="json", exclude_none=True),
            }
            for f in sweep.factors
        },
        "metric_columns": {name: unit for name, unit in layout["metric_columns"]},
        "time_unit": layout["time_unit"],
        "disclaimer": DISCLAIMER,
    }


class StatusTally:
    """Row statuses and failure reasons, counted chunk by chunk during consolidation."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def __call__(self, table: pd.DataFrame) -> None:
        self.statuses.update(table["status"])
        for message in table.loc[table["status"] != "ok", "message"]:
            reason = re.sub(r"[-+]?\d[\d.eE+-]*", "#", str(message))[:200]
            self.reasons[reason] += 1
            self.examples.setdefault(reason, str(message))


def _summary(tally, n_points, backend, workers, size, already, tick, started) -> dict:
    """Counts and failure reasons over every chunk (resumed ones included)."""
    statuses, reasons, examples = tally.statuses, tally.reasons, tally.examples
    elapsed = clock.perf_counter() - tick
    ran = n_points - already
    return {
        "points": n_points,
        "rows": sum(statuses.values()),
        "rows_ok": statuses.get("ok", 0),
        "rows_failed": statuses.get("failed", 0),
        "failure_reasons": [
            {"count": count, "reason": reason, "example": examples[reason]}
            for reason, count in reasons.most_common(10)
        ],
        "resumed_points": already,
        "backend": backend,
        "workers": 1 if backend == "serial" else workers,
        "chunk_size": size,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "elapsed_seconds": round(elapsed, 3),
        "points_per_second": round(ran / elapsed, 2) if elapsed > 0 else None,
        "disclaimer": DISCLAIMER,
    }


def dose_factor(sweep: Sweep) -> tuple[str | None, str]:
    """The factor to fit dose-response curves against, and why (or why none)."""
    spec = sweep.spec
    if spec.dose_response is not None:
        return spec.dose_response.factor, "as set in dose_response"
    if spec.design != "grid":
        return None, "no fit: dose_response not set (automatic fits only for grid designs)"
    doses = [
        f.name
        for f in sweep.factors
        if f.kind == "quantity" and all(str(t.path[-1]) in DOSE_FIELDS for t in f.targets)
    ]
    if len(doses) == 1:
        return doses[0], "automatic: the only dose factor of the grid"
    if not doses:
        return None, "no fit: no factor is a dose (amount, rate, value or concentration)"
    return None, f"no fit: several dose factors ({', '.join(doses)}); set dose_response.factor"


def _fits(folder: Path, sweep: Sweep, design: pd.DataFrame) -> tuple[pd.DataFrame | None, dict]:
    name, why = dose_factor(sweep)
    note: dict[str, Any] = {"factor": name, "why": why}
    if name is None:
        return None, note
    from .dose_response import fit_table  # scipy.optimize costs ~0.5 s to import: only if fitting

    percent = sweep.spec.dose_response.percent if sweep.spec.dose_response else [50.0, 90.0]
    others = (
        [f.name for f in sweep.factors if f.name != name] if sweep.spec.design == "grid" else []
    )
    import pyarrow.parquet as pq

    columns = pq.read_schema(folder / "results.parquet").names
    metrics = [c for c in columns if "." in c]
    table = pd.read_parquet(
        folder / "results.parquet", columns=[name, "arm", "status", *others, *metrics]
    )
    fits = fit_table(table, dose=name, responses=metrics, by=["arm", *others], percent=percent)
    note["percent"] = list(percent)
    note["fits"] = len(fits)
    note["file"] = "fits.csv"
    return fits, note


class ProgressReport:
    """A tqdm bar on a terminal; plain lines every ~10 % when output is not a terminal (CI,
    logs); nothing with ``progress='none'``."""

    def __init__(self, total: int, done: int, mode: Progress, label: str):
        self.total, self.done, self.first, self.label = total, done, done, label
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.bar = None
        self.next_line = done + max(1, total // 10)
        self.started = clock.perf_counter()
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="pt", desc=label, smoothing=0.1)
        elif mode == "plain" and done:
            print(f"{label}: resuming, {done}/{total} points already done", file=sys.stderr)

    def update(self, points: int) -> None:
        self.done += points
        if self.bar is not None:
            self.bar.update(points)
        elif self.mode == "plain" and (self.done >= self.next_line or self.done == self.total):
            elapsed = max(1e-9, clock.perf_counter() - self.started)
            rate = (self.done - self.first) / elapsed
            left = (self.total - self.done) / rate if rate > 0 else math.inf
            print(
                f"{self.label}: {self.done}/{self.total} points "
                f"({100 * self.done / self.total:.0f} %), {rate:.1f} points/s, "
                f"about {left:.0f} s left",
                file=sys.stderr,
                flush=True,
            )
            self.next_line = self.done + max(1, self.total // 10)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = ["SweepResult", "load_sweep", "load_trajectories", "run_sweep"]
