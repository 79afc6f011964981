"""Calibration claims of the kidney model and the ranges over which they hold.

Some parameters of models/kidney.yaml were chosen so that a published direction holds. Each
carries a ``calibrated`` record: the claim, and ``holds_for``, the interval of that parameter
(all others at their values) over which the claim still holds. This module states each claim as
code and recomputes the intervals:

    python models/notes/kidney_calibration.py

tests/test_kidney.py imports the claims and checks them at both ends of every recorded
interval, so the records cannot silently go stale when the model changes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from secretome_sim import load_scenario, run_scenario, with_parameters
from secretome_sim.calibration import claim_intervals

ROOT = Path(__file__).resolve().parents[2]


@cache
def _scenario(name: str):
    return load_scenario(ROOT / "scenarios" / f"{name}.yaml")


def _only_arms(scenario, *names: str):
    arms = {name: scenario.arms[name] for name in names}
    return scenario.model_copy(update={"arms": arms, "reference_arm": None})


def partial_abolition_holds(values: dict[str, float]) -> bool:
    """Ebrahim et al. 2018 (doi:10.3390/cells7120226): chloroquine and 3-MA partially abolish
    the exosomes' benefit - with the inhibitors, exosomes still beat untreated DN, but by less
    (fibrosis and renal function at week 12, kidney_diabetic_exosomes)."""
    result = run_scenario(with_parameters(_scenario("kidney_diabetic_exosomes"), values))

    def final(arm: str, output: str) -> float:
        return result.metric(arm, output, "final")

    fibrosis = [final(arm, "fibrosis") for arm in ("dn_exosomes", "dn_inhibitors_exosomes", "dn")]
    function = [
        final(arm, "renal_function") for arm in ("dn", "dn_inhibitors_exosomes", "dn_exosomes")
    ]
    return fibrosis[0] < fibrosis[1] < fibrosis[2] and function[0] < function[1] < function[2]


def lc3_accumulation(values: dict[str, float]) -> float:
    """LC3-II with 24 h of 30 uM chloroquine over LC3-II without (kidney_autophagy_flux_assay)."""
    scenario = _only_arms(
        with_parameters(_scenario("kidney_autophagy_flux_assay"), values),
        "normal_glucose",
        "normal_chloroquine",
    )
    result = run_scenario(scenario)
    blocked = result.metric("normal_chloroquine", "lc3_ii", "final")
    return blocked / result.metric("normal_glucose", "lc3_ii", "final")


def lysosomal_block_fold_holds(values: dict[str, float]) -> bool:
    """Tanida et al. 2005: blocking lysosomal turnover raises LC3-II about 3.5-fold (HEK293) to
    6.7-fold (HeLa)."""
    return 3.5 <= lc3_accumulation(values) <= 6.7


# Which claim each calibrated parameter was chosen for (the yaml names the claim in words).
CLAIMS: dict[str, Callable[[dict[str, float]], bool]] = {
    "w_fibrosis_mtor": partial_abolition_holds,
    "k_fusion": lysosomal_block_fold_holds,
}


def main() -> None:
    model = _scenario("kidney_diabetic_exosomes").model_definition
    for parameter, (low, high) in claim_intervals(model, CLAIMS).items():
        meta = model.parameters[parameter]
        recorded = meta.calibrated.holds_for if meta.calibrated else None
        print(f"{parameter}: value {meta.value}, holds for [{low}, {high}] (recorded {recorded})")


if __name__ == "__main__":
    main()
