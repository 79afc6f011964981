"""Print a registered model's resting steady state (no inputs) as Antimony initial values.

Model authors paste the output into the model's "resting steady state" block so that an undosed
run starts at rest (tests/test_shipped.py checks that it stays flat). Usage:

    python tools/resting_state.py cardiomyocyte [--hours 20000]
"""

from __future__ import annotations

import argparse

import numpy as np

from secretome_sim.models import load_model, load_roadrunner


def resting_state(model_id: str, duration: float) -> dict[str, float]:
    """Integrate the undosed model for ``duration`` model time units; return its species."""
    model = load_model(model_id)
    rr = load_roadrunner(model.sbml, model_id)
    rr.integrator.stiff = True
    rr.integrator.relative_tolerance = 1e-12
    rr.integrator.absolute_tolerance = 1e-16
    rr.simulate(0.0, duration, 2)
    values = rr.model.getFloatingSpeciesConcentrations()
    rates = np.abs(rr.model.getFloatingSpeciesConcentrationRates())
    worst = float(np.max(rates / np.maximum(np.abs(values), 1e-12)))
    print(f"// largest relative rate of change at rest: {worst:.2e} per time unit")
    ids = rr.model.getFloatingSpeciesIds()
    return {name: float(v) if abs(v) > 1e-150 else 0.0 for name, v in zip(ids, values, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_id")
    parser.add_argument("--hours", type=float, default=20000.0, help="model time to integrate")
    args = parser.parse_args()
    state = resting_state(args.model_id, args.hours)
    items = [f"{name} = {value!r};" for name, value in state.items()]  # exact round trip
    for start in range(0, len(items), 4):
        print("  " + "  ".join(items[start : start + 4]))


if __name__ == "__main__":
    main()
