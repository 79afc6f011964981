"""Benchmark: the flagship scenario through secretome-sim versus plain libRoadRunner.

Both sides run the same arms on the same compiled model in the same process: the baseline
resets, sets the same parameters, applies the doses at the start time and calls ``simulate``
once per arm over the same output grid (it cannot apply later doses exactly; it only measures
the floor). Neither side pre-equilibrates; the full run_scenario line includes it.
Prints median wall times and the ratio. Usage: python benchmarks/bench_flagship.py [--repeats N]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import numpy as np

from secretome_sim import load_scenario, run_scenario
from secretome_sim.dosing import plan_arm, resolved_arms
from secretome_sim.run import output_grid, reported_outputs
from secretome_sim.simulate import compile_model, simulate_arm

FLAGSHIP = Path(__file__).resolve().parents[1] / "scenarios" / "cardio_doxorubicin_cm.yaml"


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--scenario", type=Path, default=FLAGSHIP)
    args = parser.parse_args()

    scenario = load_scenario(args.scenario)
    model = scenario.model_definition
    outputs, _ = reported_outputs(scenario, model)
    plans = [plan_arm(n, a, scenario, model) for n, a in resolved_arms(scenario).items()]
    _, grid = output_grid(scenario, model)
    compiled = compile_model(model, plans, outputs, scenario.solver)
    rr = compiled.rr

    def plain_roadrunner() -> None:
        for plan in plans:
            rr.model.setGlobalParameterValues(
                compiled.settable, compiled.parameter_vector(plan.parameters)
            )
            rr.reset()
            for event in plan.events:
                if event.time == grid[0] and event.action == "add":
                    index = [compiled.species_index[event.target]]
                    value = rr.model.getFloatingSpeciesConcentrations(index)[0] + event.value
                    rr.model.setFloatingSpeciesConcentrations(index, [value])
            rr.simulate(times=grid)

    def hand_segmented() -> None:
        """What a user would write with libRoadRunner alone: apply each event with setValue
        and simulate between event times (same events, same grid, no engine bookkeeping)."""
        for plan in plans:
            rr.model.setGlobalParameterValues(
                compiled.settable, compiled.parameter_vector(plan.parameters)
            )
            rr.reset()
            times = sorted({float(grid[0]), float(grid[-1])} | {e.time for e in plan.events})
            for begin, end in itertools.pairwise(times):
                for event in (e for e in plan.events if e.time == begin):
                    key = (
                        f"[{event.target}]"
                        if event.target in compiled.species_index
                        else event.target
                    )
                    current = rr.getValue(key)
                    rr.setValue(
                        key,
                        event.value
                        if event.action in ("set", "parameter", "rate")
                        else current + event.value,
                    )
                inside = grid[(grid > begin) & (grid < end)]
                rr.simulate(times=[begin, *inside, end])

    def engine_arms() -> None:
        for plan in plans:
            simulate_arm(compiled, plan, grid, None)

    def engine_full() -> None:
        run_scenario(scenario)

    plain = median_seconds(plain_roadrunner, args.repeats)
    hand = median_seconds(hand_segmented, args.repeats)
    arms = median_seconds(engine_arms, args.repeats)
    full = median_seconds(engine_full, max(3, args.repeats // 4))
    events = sum(len(p.events) for p in plans)
    print(
        f"scenario: {scenario.scenario_id}  arms: {len(plans)}  dose events: {events}  "
        f"output points: {len(grid)}  repeats: {args.repeats}"
    )
    print(f"plain libRoadRunner, one simulate per arm     {plain * 1e3:8.2f} ms   1.00x")
    print(
        f"libRoadRunner by hand, segmented dosing       {hand * 1e3:8.2f} ms {hand / plain:6.2f}x"
    )
    print(
        f"secretome-sim simulate_arm (exact dosing)     {arms * 1e3:8.2f} ms {arms / plain:6.2f}x"
    )
    print(
        f"secretome-sim run_scenario (compile+tables)   {full * 1e3:8.2f} ms {full / plain:6.2f}x"
    )
    assert np.isfinite(plain) and np.isfinite(arms)


if __name__ == "__main__":
    main()
