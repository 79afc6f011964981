"""Benchmark: sweep throughput against a plain libRoadRunner loop, and sweep memory at scale.

1. Throughput. The same grid of points of the cardiomyocyte flagship (cardio_doxorubicin_cm:
   factor ``dox`` = ``arms.dox.doses[0].amount``, log range 0.01-3 uM; factor ``cm`` =
   ``arms.dox_cm.doses[0].value``, 0-1; arms dox and dox_cm; apoptotic and senescent fraction;
   metrics final and auc) is computed three ways:

   (a) plain libRoadRunner: one RoadRunner reused; per arm run ``reset()``, the arm's parameters
       with ``model.setGlobalParameterValues(int32 indices, values)`` (skipped when no arm sets
       one), ``simulate`` segment by segment between the dose times with the state changed at
       each dose, ``timeCourseSelections`` set once to the kept outputs, then final and auc with
       numpy. The dose events of every point come from the package's own planning
       (``apply_point``, ``resolved_arms``, ``plan_arm``), run once up front and not timed.
       Pre-equilibration: the engine's fast path for a model shipped at rest keeps the state
       that ``reset()`` restores, so after checking once that the model is at rest, nothing is
       done per run. Its numbers are checked against the sweep's table.
   (b) ``run_sweep(workers=1)``: the whole sweep in this process (design, per-point planning,
       integration, metrics, chunk files, consolidation), wall clock of the call.
   (c) ``run_sweep(workers=2)``: the same on two forked worker processes.

   The first serial sweep of the process is reported on its own ("cold": it compiles the model
   and pays one-off imports); then the three ways run in interleaved rounds and the median and
   best of the rounds are printed. Ratios are throughputs (points/s): serial / plain (target
   >= 0.85) and 2 workers / serial (target >= 1.7). ``cpu/wall`` is the CPU time of this
   process and its workers over the wall time: ~1.0 serial and ~2.0 with two workers when the
   machine is otherwise idle; well below that means other processes took the cores and the
   figures are not trustworthy (the load average before and after is printed too).

2. Memory. An LHS sweep of the cheap delivery scenario (delivery_hydrogel_vs_bolus: the dose
   amount of the bolus arm and the parameter k_clear_vegf, seed 1, bolus arm only) at two sizes
   10x apart (10,000 and 100,000 points; --quick: 1,000 and 10,000), each in a fresh subprocess
   with two workers. Peak RSS of the main process (VmHWM: Linux carries ``ru_maxrss`` over
   execve, so RUSAGE_SELF would include this benchmark's own peak; both are printed) and of the
   largest worker (RUSAGE_CHILDREN ``ru_maxrss``) should stay about the same at 10x the points,
   while the wall time grows ~10x.

Defaults: 200 points (dox 20 x cm 10), 5 rounds; --quick: 40 points, 2 rounds. About 2.5 minutes
on 2 idle cores (the 100,000-point sweep is most of it).
Usage: python benchmarks/bench_sweep.py [--points N] [--repeats R] [--quick]
       [--skip-throughput] [--skip-memory] [--memory-sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from secretome_sim import load_scenario
from secretome_sim.dosing import TIME_TOLERANCE, ArmPlan, plan_arm, resolved_arms
from secretome_sim.run import output_grid, reported_outputs
from secretome_sim.scenario import Scenario
from secretome_sim.sweep import run_sweep
from secretome_sim.sweep_design import design_table
from secretome_sim.sweep_factors import apply_point
from secretome_sim.sweep_load import Sweep, build_sweep
from secretome_sim.sweep_worker import output_specs
from secretome_sim.units import to_time

ROOT = Path(__file__).resolve().parents[1]
CARDIO = ROOT / "scenarios" / "cardio_doxorubicin_cm.yaml"
DELIVERY = ROOT / "scenarios" / "delivery_hydrogel_vs_bolus.yaml"
CARDIO_OUTPUTS = ["apoptotic_fraction", "senescent_fraction"]
CARDIO_METRICS = ["final", "auc"]
CHECK_RTOL = 1e-6
DELIVERY_ARM = "bolus"  # the cheapest dosed arm: one dose time, no depot species


# --------------------------------------------------------------------------- throughput
def cardio_sweep(scenario: Scenario, points: int) -> Sweep:
    """A dox x cm grid of about ``points`` points (cm at most 10 levels)."""
    cm_levels = max(2, min(10, round(math.sqrt(points / 2))))
    dox_levels = max(2, round(points / cm_levels))
    spec = {
        "factors": {
            "dox": {
                "path": "arms.dox.doses[0].amount",
                "range": {"low": "0.01 uM", "high": "3 uM", "count": dox_levels, "scale": "log"},
            },
            "cm": {
                "path": "arms.dox_cm.doses[0].value",
                "range": {"low": 0, "high": 1, "count": cm_levels},
            },
        },
        "arms": ["dox", "dox_cm"],
        "outputs": CARDIO_OUTPUTS,
        "metrics": CARDIO_METRICS,
    }
    return build_sweep(scenario, spec)


@dataclass
class Segment:
    """Changes to apply at ``times[0]``, then one ``simulate(times)``; result rows
    ``skip : skip + rows.stop - rows.start`` fill grid rows ``rows``."""

    ops: list[tuple[bool, str, np.ndarray, float]]  # (is species, action, index, value)
    times: np.ndarray
    rows: slice
    skip: int


@dataclass
class Run:
    """One arm of one point, ready for the plain loop."""

    parameters: np.ndarray  # values for the indices the loop sets (may be empty)
    segments: list[Segment]


def plain_runs(
    plans: list[ArmPlan],
    grid: np.ndarray,
    species: dict[str, int],
    parameters: dict[str, int],
    changed: list[str],
    defaults: np.ndarray,
) -> list[Run]:
    """Event lists -> segments, grouped the way the engine groups event times."""
    start, end = float(grid[0]), float(grid[-1])
    tolerance = TIME_TOLERANCE * (end - start)
    runs = []
    for plan in plans:
        groups: dict[float, list] = {}
        anchor = None
        for event in sorted(plan.events, key=lambda e: e.time):
            if event.time < start - tolerance or event.time > end + tolerance:
                continue
            at = min(max(event.time, start), end)
            if anchor is None or at - anchor > tolerance:
                anchor = at
            groups.setdefault(anchor, []).append(event)
        if any(abs(t - end) <= tolerance for t in groups):
            raise SystemExit("a dose at the end time is not supported by this benchmark's loop")
        breakpoints = sorted({start, end, *groups})
        segments = []
        for begin, stop in itertools.pairwise(breakpoints):
            last = stop == end
            upper = grid <= stop + tolerance if last else grid < stop - tolerance
            inside = np.flatnonzero((grid >= begin - tolerance) & upper)
            interior = grid[inside][(grid[inside] > begin + tolerance)]
            if last:
                interior = interior[interior < stop - tolerance]
            times = np.array([begin, *interior, stop])
            ops = []
            for event in sorted(groups.get(begin, []), key=lambda e: e.order):
                if event.target in species:
                    index = np.array([species[event.target]], dtype=np.int32)
                    ops.append((True, event.action, index, event.value))
                else:
                    index = np.array([parameters[event.target]], dtype=np.int32)
                    ops.append((False, event.action, index, event.value))
            first_here = len(inside) > 0 and grid[inside[0]] <= begin + tolerance
            rows = slice(int(inside[0]), int(inside[-1]) + 1) if len(inside) else slice(0, 0)
            segments.append(Segment(ops, times, rows, 0 if first_here else 1))
        values = defaults.copy()
        for name, value in plan.parameters.items():
            values[changed.index(name)] = value
        runs.append(Run(values, segments))
    return runs


def plain_loop(rr: Any, runs: list[Run], param_index: np.ndarray, out: np.ndarray) -> None:
    """The timed loop: libRoadRunner calls and numpy only. ``out[k]`` is run k's trajectory."""
    model = rr.model
    set_parameters = param_index.size > 0
    for k, run in enumerate(runs):
        if set_parameters:
            model.setGlobalParameterValues(param_index, run.parameters)
        rr.reset()
        values = out[k]
        for segment in run.segments:
            for is_species, action, index, value in segment.ops:
                if is_species:
                    if action == "set":
                        model.setFloatingSpeciesConcentrations(index, [value])
                    else:
                        current = model.getFloatingSpeciesConcentrations(index)[0]
                        model.setFloatingSpeciesConcentrations(index, [current + value])
                elif action == "add":
                    current = model.getGlobalParameterValues(index)[0]
                    model.setGlobalParameterValues(index, [current + value])
                else:
                    model.setGlobalParameterValues(index, [value])
            result = rr.simulate(times=segment.times)
            rows = segment.rows
            values[rows] = result[segment.skip : segment.skip + rows.stop - rows.start]


def plain_roadrunner(scenario: Scenario, selections: list[str]) -> Any:
    """A RoadRunner of the scenario's model with the engine's integrator settings."""
    import roadrunner

    model = scenario.model_definition
    rr = roadrunner.RoadRunner(model.sbml)
    integrator = rr.integrator
    integrator.stiff = True  # first: it rebuilds CVODE
    integrator.relative_tolerance = scenario.solver.rtol
    ruled = set(rr.getRateRuleIds())
    states = sum(s not in ruled for s in rr.model.getFloatingSpeciesIds())
    states += rr.model.getNumRateRules()
    integrator.setValue("absolute_tolerance", [scenario.solver.atol] * states)
    integrator.maximum_num_steps = scenario.solver.max_steps
    if scenario.solver.max_step is not None:
        integrator.maximum_time_step = to_time(scenario.solver.max_step, model.time_unit)
    rr.timeCourseSelections = selections
    return rr


def max_relative_rate(rr: Any) -> float:
    rates = np.abs(np.asarray(rr.model.getFloatingSpeciesConcentrationRates(), dtype=float))
    values = np.abs(np.asarray(rr.model.getFloatingSpeciesConcentrations(), dtype=float))
    if rates.size == 0:
        return 0.0
    return float(np.max(rates / np.maximum(values, 1e-12 + values.max() * 1e-9)))


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(function: Callable[[], Any]) -> tuple[Timing, Any]:
    """Wall time and CPU time of this process plus its reaped children."""

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    cpu0, wall0 = cpu(), time.perf_counter()
    value = function()
    wall = time.perf_counter() - wall0
    return Timing(wall, cpu() - cpu0), value


def engine_metrics(table: Any, arms: list[str], columns: list[str]) -> np.ndarray:
    """The sweep table's metric columns as (points, arms, columns)."""
    table = table.sort_values(["point", "arm"])
    parts = [table[table["arm"] == arm].sort_values("point")[columns].to_numpy() for arm in arms]
    return np.stack(parts, axis=1)


def throughput(points: int, repeats: int) -> None:
    scenario = load_scenario(CARDIO)
    sweep = cardio_sweep(scenario, points)
    design = design_table(sweep.factors, sweep.spec)
    names = [f.name for f in sweep.factors]
    n_points = len(design)
    levels = " x ".join(f"{f.name} {design[f.name].nunique()}" for f in sweep.factors)

    # --- planning, once, untimed for the plain loop (the sweep does this per point)
    kept = scenario.model_copy(update={"outputs": output_specs(scenario, sweep.outputs)})
    model = kept.model_definition
    outputs, columns = reported_outputs(kept, model)
    if any(o.expression is not None for o in outputs):
        raise SystemExit("outputs defined by expressions need helper rules; not in this loop")
    display_times, grid = output_grid(kept, model)
    point_values = [list(r) for r in design[names].itertuples(index=False, name=None)]
    tick = time.perf_counter()
    plans = []
    for values in point_values:
        point = apply_point(scenario, sweep.factors, values)
        arms = resolved_arms(point)
        plans += [plan_arm(name, arms[name], point, model) for name in sweep.arms]
    planning = time.perf_counter() - tick
    if any(p.infusions or p.depots for p in plans):
        raise SystemExit("infusion or depot helpers need a recompiled model; not in this loop")

    rr = plain_roadrunner(kept, [o.selection for o in outputs])
    species = {s: i for i, s in enumerate(rr.model.getFloatingSpeciesIds())}
    param_ids = list(rr.model.getGlobalParameterIds())
    parameters = {p: i for i, p in enumerate(param_ids)}
    # parameters an arm overrides or an event changes: reset() keeps them, so set them per run
    changed = sorted(
        {n for p in plans for n in p.parameters}
        | {e.target for p in plans for e in p.events if e.target not in species}
    )
    param_index = np.array([parameters[n] for n in changed], dtype=np.int32)
    defaults = np.asarray(rr.model.getGlobalParameterValues(param_index), dtype=float)
    runs = plain_runs(plans, grid, species, parameters, changed, defaults)

    # --- pre-equilibration: the engine's "initial state" fast path, checked once per
    # distinct parameter set (the engine caches per set too)
    preeq = scenario.preequilibration
    preeq_note = "none in the scenario"
    if preeq is not None:
        worst = 0.0
        for vector in {tuple(r.parameters) for r in runs}:
            if param_index.size:
                rr.model.setGlobalParameterValues(param_index, np.array(vector))
            rr.reset()
            state = np.asarray(rr.model.getFloatingSpeciesConcentrations())
            rate = max_relative_rate(rr)
            if rr.getRateRuleIds() or rate > preeq.tolerance or np.any(state < -1e-12):
                raise SystemExit(
                    "the model is not at rest at its initial state: the plain loop would need "
                    "a steady-state solve per parameter set"
                )
            worst = max(worst, rate)
        preeq_note = (
            f"model at rest at its initial state (max relative rate {worst:.1e} <= "
            f"{preeq.tolerance:g}): the state reset() restores is the steady state, "
            "nothing to do per run"
        )

    trajectories = np.empty((len(runs), len(grid), len(outputs)))
    factors = np.array([c.factor for c in columns])

    def plain() -> np.ndarray:
        plain_loop(rr, runs, param_index, trajectories)
        shaped = trajectories.reshape(n_points, len(sweep.arms), len(grid), len(outputs))
        shaped = shaped * factors
        final = shaped[:, :, -1, :]
        auc = np.trapezoid(shaped, display_times, axis=2)
        # columns in the table's order: <output>.final, <output>.auc per output
        return np.stack([final, auc], axis=-1).reshape(n_points, len(sweep.arms), -1)

    metric_names = [f"{c.name}.{m}" for c in columns for m in CARDIO_METRICS]
    work = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    counter = itertools.count()

    def sweep_run(workers: int) -> Any:
        folder = work / f"run{next(counter)}"
        result = run_sweep(sweep, workers=workers, progress="none", plots=False, out=folder)
        table = result.table
        shutil.rmtree(folder, ignore_errors=True)
        return table

    load_before = os.getloadavg()[0]
    try:
        cold, cold_table = timed(lambda: sweep_run(1))
        times: dict[str, list[Timing]] = {"plain": [], "serial": [], "two": []}
        tables: dict[str, Any] = {}
        plain_values = None
        for _ in range(repeats):
            timing, plain_values = timed(plain)
            times["plain"].append(timing)
            timing, tables["serial"] = timed(lambda: sweep_run(1))
            times["serial"].append(timing)
            timing, tables["two"] = timed(lambda: sweep_run(2))
            times["two"].append(timing)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]

    # --- same numbers?
    differences = {}
    ok = True
    for label, table in (("serial", tables["serial"]), ("2 workers", tables["two"])):
        ok &= bool((table["status"] == "ok").all())
        engine = engine_metrics(table, sweep.arms, metric_names)
        scale = np.maximum(np.abs(engine), 1e-300)
        differences[label] = float(np.max(np.abs(plain_values - engine) / scale))
    engine_cold = engine_metrics(cold_table, sweep.arms, metric_names)
    differences["cold serial"] = float(
        np.max(np.abs(plain_values - engine_cold) / np.maximum(np.abs(engine_cold), 1e-300))
    )

    integrations = sum(len(r.segments) for r in runs)
    print(
        f"1. Throughput: {scenario.scenario_id}, {n_points} points ({levels}), "
        f"arms {', '.join(sweep.arms)}"
    )
    print(
        f"   outputs {', '.join(sweep.outputs)}; metrics {', '.join(CARDIO_METRICS)}; "
        f"output grid {len(grid)} times; {integrations / n_points:g} simulate() calls per point"
    )
    print(f"   pre-equilibration: {preeq_note}")
    print(
        f"   planning the points up front (apply_point + resolved_arms + plan_arm): "
        f"{planning:.3f} s = {planning / n_points * 1e3:.2f} ms/point (not in the plain loop)"
    )
    print(f"   load average (1 min): {load_before:.2f} before, {load_after:.2f} after\n")
    header = f"   {'':38}{'runs':>5}{'median s':>10}{'best s':>9}{'points/s':>10}{'cpu/wall':>10}"
    print(header)

    def row(label: str, timings: list[Timing]) -> tuple[float, float]:
        walls = [t.wall for t in timings]
        median, best = statistics.median(walls), min(walls)
        load = statistics.median(t.cpu / t.wall for t in timings)
        print(
            f"   {label:38}{len(walls):>5}{median:>10.3f}{best:>9.3f}"
            f"{n_points / median:>10.1f}{load:>10.2f}"
        )
        return median, best

    plain_med, plain_best = row("(a) plain libRoadRunner loop", times["plain"])
    row("(b) run_sweep workers=1, cold (1st)", [cold])
    serial_med, serial_best = row("(b) run_sweep workers=1", times["serial"])
    two_med, two_best = row("(c) run_sweep workers=2", times["two"])
    print()
    verdict = "OK" if ok and max(differences.values()) <= CHECK_RTOL else "MISMATCH"
    shown = ", ".join(f"{k} {v:.1e}" for k, v in differences.items())
    print(
        f"   same numbers: max relative difference plain loop vs sweep table "
        f"({len(metric_names)} metric columns x {len(runs)} rows): {shown} "
        f"(rtol {CHECK_RTOL:g}: {verdict})"
    )

    def ratio(label: str, value: float, best: float, target: float) -> None:
        status = "meets" if value >= target else "BELOW"
        print(f"   {label:24}{value:6.2f}  (best runs {best:.2f})   target >= {target:g}: {status}")

    print("   throughput ratios (medians):")
    ratio("serial / plain", plain_med / serial_med, plain_best / serial_best, 0.85)
    ratio("2 workers / serial", serial_med / two_med, serial_best / two_best, 1.7)
    overhead = (serial_med - plain_med) / n_points
    print(
        f"   sweep overhead over the plain loop: {overhead * 1e3:.2f} ms/point "
        f"(plain {plain_med / n_points * 1e3:.2f} ms/point), of which planning a point "
        f"{planning / n_points * 1e3:.2f} ms; cold-start extra: {cold.wall - serial_med:.2f} s"
    )


# --------------------------------------------------------------------------- memory
def delivery_spec(samples: int) -> dict[str, Any]:
    return {
        "design": "lhs",
        "samples": samples,
        "seed": 1,
        "factors": {
            "amount": {
                "path": f"arms.{DELIVERY_ARM}.doses[0].amount",
                "distribution": {"type": "loguniform", "low": "10 uL", "high": "1000 uL"},
            },
            "k_clear_vegf": {  # model range [0.46, 2.5] 1/h; does not move the rest state
                "path": "parameters.k_clear_vegf",
                "distribution": {"type": "uniform", "low": "0.46 1/h", "high": "2.5 1/h"},
            },
        },
        "arms": [DELIVERY_ARM],
        "outputs": ["vegfr2_occupancy", "repair_signal"],
        "metrics": ["final", "max", "auc"],
    }


def peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kB on Linux


def own_peak_mb() -> float:
    """This process image's peak RSS (VmHWM). Linux keeps ru_maxrss across execve, so a child
    started by a big parent would report at least the parent's peak in RUSAGE_SELF."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mb(resource.RUSAGE_SELF)


def memory_child(samples: int, workers: int) -> None:
    """Run one delivery sweep and print one JSON line of figures."""
    scenario = load_scenario(DELIVERY)
    sweep = build_sweep(scenario, delivery_spec(samples))
    before = own_peak_mb()
    with tempfile.TemporaryDirectory(prefix="bench_sweep_mem_") as folder:
        tick = time.perf_counter()
        result = run_sweep(
            sweep, workers=workers, progress="none", plots=False, out=Path(folder) / "s"
        )
        wall = time.perf_counter() - tick
        size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    figures = {
        "points": samples,
        "workers": workers,
        "wall": wall,
        "points_per_second": samples / wall,
        "rss_before_mb": before,
        "rss_main_mb": own_peak_mb(),
        "maxrss_self_mb": peak_mb(resource.RUSAGE_SELF),
        "rss_workers_mb": peak_mb(resource.RUSAGE_CHILDREN),
        "chunk_size": result.summary["chunk_size"],
        "rows_failed": result.summary["rows_failed"],
        "folder_mb": size / 2**20,
        "grid_times": len(output_grid(scenario, scenario.model_definition)[0]),
    }
    print(json.dumps(figures))


def memory(sizes: list[int], workers: int) -> None:
    print(
        f"2. Memory: {DELIVERY.stem}, LHS (seed 1) over arms.{DELIVERY_ARM}.doses[0].amount "
        "(10-1000 uL, log-uniform) and parameters.k_clear_vegf (0.46-2.5 1/h)"
    )
    print(
        f"   arm {DELIVERY_ARM} only (the cheapest dosed arm: one dose time, no depot); outputs "
        f"vegfr2_occupancy, repair_signal; metrics final, max, auc; workers={workers}; "
        "each size in a fresh process"
    )
    results = []
    for samples in sizes:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-child",
            str(samples),
            "--workers",
            str(workers),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"   {samples} points: the child failed ({done.returncode}):\n{done.stderr}")
            return
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"   output grid {results[0]['grid_times']} times per arm\n")
    labels = [f"{r['points']:,} points" for r in results]
    print(f"   {'':34}" + "".join(f"{label:>16}" for label in labels) + f"{'last/first':>12}")
    rows = [
        ("wall time, s", "wall", "{:.1f}"),
        ("points/s", "points_per_second", "{:.0f}"),
        ("peak RSS main process, MB (VmHWM)", "rss_main_mb", "{:.0f}"),
        ("  peak before run_sweep, MB", "rss_before_mb", "{:.0f}"),
        ("  ru_maxrss RUSAGE_SELF, MB (*)", "maxrss_self_mb", "{:.0f}"),
        ("peak RSS largest worker, MB (**)", "rss_workers_mb", "{:.0f}"),
        ("chunk size", "chunk_size", "{}"),
        ("sweep folder on disk, MB", "folder_mb", "{:.1f}"),
        ("failed rows", "rows_failed", "{}"),
    ]
    for label, key, form in rows:
        cells = "".join(f"{form.format(r[key]):>16}" for r in results)
        first, last = results[0][key], results[-1][key]
        change = f"{last / first:.2f}x" if first else "-"
        print(f"   {label:34}{cells}{change:>12}")
    print(
        "   (*) Linux keeps ru_maxrss across execve: it includes the peak of this benchmark "
        "process\n       that started the child, so VmHWM is the main process's own figure.\n"
        "   (**) RUSAGE_CHILDREN ru_maxrss: the largest reaped worker; forked workers share the "
        "main\n       process's pages at fork, which count in their RSS."
    )
    growth = results[-1]["points"] / results[0]["points"]
    peak_growth = max(
        results[-1]["rss_main_mb"] / results[0]["rss_main_mb"],
        results[-1]["rss_workers_mb"] / results[0]["rss_workers_mb"],
    )
    verdict = "bounded" if peak_growth < 1.5 else "GROWS WITH THE POINTS"
    print(f"   {growth:.0f}x the points -> peak RSS x{peak_growth:.2f}: {verdict}")


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=None, help="throughput points (200)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per way (5)")
    parser.add_argument("--quick", action="store_true", help="40 points, 2 rounds, 1k/10k")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--memory-sizes", type=str, default=None, help="e.g. 10000,100000")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.workers)
        return
    points = args.points or (40 if args.quick else 200)
    repeats = max(2, args.repeats or (2 if args.quick else 5))
    default_sizes = "1000,10000" if args.quick else "10000,100000"
    sizes = [int(s) for s in (args.memory_sizes or default_sizes).split(",")]

    import roadrunner

    started = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    print(
        f"secretome-sim sweep benchmark: libRoadRunner {roadrunner.__version__}, "
        f"{cores} usable cores, Python {sys.version.split()[0]}"
    )
    print("(run nothing else meanwhile: every figure assumes the cores are ours)\n")
    if not args.skip_throughput:
        throughput(points, repeats)
        print()
    if not args.skip_memory:
        memory(sizes, 2)
        print()
    print(f"benchmark wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
