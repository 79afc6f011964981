"""Calibration claims of the angiogenesis model and the ranges over which they hold.

Two signalling weights of models/angiogenesis.yaml were chosen so that Yoshida et al. 1996
(Growth Factors 13:57) holds: VEGF is the stronger chemoattractant and FGF-2 the stronger mitogen
for endothelial cells. Each carries a ``calibrated`` record: the claim and ``holds_for``, the
interval of that parameter (all others at their values) over which the claim still holds. This
module states each claim as code and recomputes the intervals:

    python models/notes/angiogenesis_calibration.py

tests/test_angiogenesis.py checks every claim at both ends of its recorded interval.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from secretome_sim import load_scenario, run_scenario, with_parameters
from secretome_sim.calibration import claim_intervals

ROOT = Path(__file__).resolve().parents[2]
DOSE_RESPONSE = ROOT / "scenarios" / "angio_vegf_fgf2_dose_response.yaml"


@cache
def _scenario():
    return load_scenario(DOSE_RESPONSE)


def _top_doses(values: dict[str, float]):
    scenario = with_parameters(_scenario(), values)
    arms = {name: scenario.arms[name] for name in ("basal", "vegf_100", "fgf2_100")}
    return run_scenario(scenario.model_copy(update={"arms": arms, "reference_arm": None}))


def migration_gain_ratio(values: dict[str, float]) -> float:
    """Peak migration gain over basal at 100 ng/mL VEGF divided by that at 100 ng/mL FGF-2."""
    result = _top_doses(values)
    basal = result.metric("basal", "migration", "max")
    vegf = result.metric("vegf_100", "migration", "max") - basal
    return vegf / (result.metric("fgf2_100", "migration", "max") - basal)


def proliferation_gain_ratio(values: dict[str, float]) -> float:
    """Growth over 72 h at 100 ng/mL FGF-2 divided by that at 100 ng/mL VEGF."""
    result = _top_doses(values)
    basal = result.metric("basal", "endothelial_cells", "final")
    fgf2 = result.metric("fgf2_100", "endothelial_cells", "final") - basal
    return fgf2 / (result.metric("vegf_100", "endothelial_cells", "final") - basal)


def vegf_stronger_chemoattractant(values: dict[str, float]) -> bool:
    """Yoshida 1996: VEGF's maximal migration response is about 2-fold that of FGF-2 (claim:
    at least 1.5-fold)."""
    return migration_gain_ratio(values) >= 1.5


def fgf2_stronger_mitogen(values: dict[str, float]) -> bool:
    """Yoshida 1996: FGF-2 is about 4-fold more effective than VEGF at proliferation (claim: at
    least 2-fold the growth)."""
    return proliferation_gain_ratio(values) >= 2.0


CLAIMS: dict[str, Callable[[dict[str, float]], bool]] = {
    "w_akt_fgfr1": vegf_stronger_chemoattractant,
    "w_erk_vegfr2": fgf2_stronger_mitogen,
}


def main() -> None:
    model = _scenario().model_definition
    for parameter, (low, high) in claim_intervals(model, CLAIMS).items():
        meta = model.parameters[parameter]
        print(
            f"{parameter}: value {meta.value} {meta.unit}; claim holds for [{low:.3g}, {high:.3g}]"
        )


if __name__ == "__main__":
    main()
