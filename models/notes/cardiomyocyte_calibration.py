"""Calibration claims of the cardiomyocyte model and the ranges over which they hold.

Some parameters of models/cardiomyocyte.yaml were tuned so that a published direction holds.
Each carries a ``calibrated`` record: the claim, and ``holds_for``, the interval of that
parameter (all others at their values) over which the claim still holds. This module states
each claim as code and recomputes the intervals:

    python models/notes/cardiomyocyte_calibration.py

tests/test_cardiomyocyte.py imports the claims and checks them at both ends of every recorded
interval, so the records cannot silently go stale when the model changes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from secretome_sim import RunResult, load_scenario, run_scenario, with_parameters
from secretome_sim.calibration import claim_intervals

ROOT = Path(__file__).resolve().parents[2]


@cache
def _scenario(name: str):
    return load_scenario(ROOT / "scenarios" / f"{name}.yaml")


def dose_split_holds(values: dict[str, float]) -> bool:
    """Spallarossa 2009 (doi:10.1152/ajpheart.00068.2009): a 0.1 uM 3 h pulse gives more
    senescence than apoptosis, a 1 uM pulse the reverse (fractions at the end of the run)."""
    result = run_scenario(
        _only_arms(
            with_parameters(_scenario("cardio_doxorubicin_dose"), values), "low_dox", "high_dox"
        )
    )
    low_apoptotic = result.metric("low_dox", "apoptotic_fraction", "final")
    low_senescent = result.metric("low_dox", "senescent_fraction", "final")
    high_apoptotic = result.metric("high_dox", "apoptotic_fraction", "final")
    high_senescent = result.metric("high_dox", "senescent_fraction", "final")
    return low_senescent > low_apoptotic and high_apoptotic > high_senescent


def accumulation_ratio(result: RunResult, arm: str = "dox") -> float:
    """Intracellular over extracellular doxorubicin at the end of a constant exposure."""
    inside = result.metric(arm, "dox_intracellular", "final")
    return inside / result.metric(arm, "dox_extracellular", "final")


def accumulation_holds(values: dict[str, float]) -> bool:
    """Cells concentrate doxorubicin 100-500x over the medium at steady exposure (median 230x,
    Cells 2021, doi:10.3390/cells10071717)."""
    scenario = _only_arms(with_parameters(_scenario("cardio_dox_accumulation"), values), "dox")
    return 100.0 <= accumulation_ratio(run_scenario(scenario)) <= 500.0


def _only_arms(scenario, *names: str):
    arms = {name: scenario.arms[name] for name in names}
    return scenario.model_copy(update={"arms": arms, "reference_arm": None})


# Which claim each calibrated parameter was tuned for (the yaml names the claim in words).
CLAIMS: dict[str, Callable[[dict[str, float]], bool]] = {
    "dox_kd_dna": accumulation_holds,
    "k_damage": dose_split_holds,
    "K_bax": dose_split_holds,
}


def main() -> None:
    model = _scenario("cardio_doxorubicin_dose").model_definition
    for parameter, (low, high) in claim_intervals(model, CLAIMS).items():
        meta = model.parameters[parameter]
        recorded = meta.calibrated.holds_for if meta.calibrated else None
        print(f"{parameter}: value {meta.value}, holds for [{low}, {high}] (recorded {recorded})")


if __name__ == "__main__":
    main()
