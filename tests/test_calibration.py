"""holds_for: the interval of one parameter over which a claim holds (calibration records)."""

from __future__ import annotations

import pytest

from secretome_sim import holds_for


def test_interval_of_a_known_claim_on_a_log_scale():
    """x^2 < 4 holds on (0, 2) inside bounds [0.1, 10]: the upper edge is found to ~1 % and
    rounded inwards; the lower bound is returned as is because the claim holds there."""
    low, high = holds_for(lambda x: x * x < 4, 1.0, (0.1, 10.0))
    assert low == 0.1
    assert 1.97 <= high < 2.0


def test_interval_with_a_zero_bound_uses_linear_bisection():
    """Bounds that include 0 (a gain that switches a link off) are searched linearly."""
    low, high = holds_for(lambda x: 0.25 < x < 0.6, 0.5, (0.0, 1.0))
    assert 0.25 < low <= 0.26 and 0.59 <= high < 0.6


def test_rounding_never_steps_outside_the_claim():
    """Three significant figures, rounded towards the nominal value: the claim holds at both
    returned ends even when plain rounding would cross the edge."""
    edge = 1.2391  # plain rounding of the found edge gives 1.24, past the edge
    low, high = holds_for(lambda x: x <= edge, 1.0, (0.5, 2.0), resolution=1e-6)
    assert high == 1.23
    assert low == 0.5


def test_claim_must_hold_at_the_nominal_value():
    with pytest.raises(ValueError, match="fails at the nominal value"):
        holds_for(lambda x: x > 2, 1.0, (0.1, 10.0))
    with pytest.raises(ValueError, match="outside the bounds"):
        holds_for(lambda x: True, 20.0, (0.1, 10.0))


def test_claim_intervals_uses_each_parameters_documented_range():
    """claim_intervals searches every claimed parameter over its own metadata range."""
    from types import SimpleNamespace

    from secretome_sim.calibration import claim_intervals

    model = SimpleNamespace(
        parameters={
            "k": SimpleNamespace(value=1.0, range=(0.1, 10.0)),
            "w": SimpleNamespace(value=0.5, range=(0.0, 1.0)),
        }
    )
    claims = {"k": lambda p: p["k"] < 3.0, "w": lambda p: p["w"] > 0.2}
    intervals = claim_intervals(model, claims)
    assert intervals["k"][0] == 0.1 and 2.9 < intervals["k"][1] < 3.0
    assert 0.2 < intervals["w"][0] < 0.21 and intervals["w"][1] == 1.0
