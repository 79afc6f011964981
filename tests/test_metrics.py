"""Metrics are pure functions; checked against closed forms of an exponential decay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from secretome_sim import metrics, run_scenario


def test_time_above_threshold_interpolates_crossings():
    """A straight line from 0 to 10 over 10 h is above 2.5 for 7.5 h."""
    t = np.linspace(0, 10, 3)
    assert metrics.time_above(t, t.copy(), 2.5) == pytest.approx(7.5)


def test_simple_metrics():
    """max, min, time_of_max (first), final, auc and mean on a known series."""
    t = np.array([0.0, 1.0, 2.0, 3.0])
    v = np.array([1.0, 3.0, 3.0, 0.0])
    assert metrics.maximum(t, v) == 3.0 and metrics.minimum(t, v) == 0.0
    assert metrics.time_of_max(t, v) == 1.0 and metrics.final(t, v) == 0.0
    assert metrics.auc(t, v) == pytest.approx(2.0 + 3.0 + 1.5)
    assert metrics.mean(t, v) == pytest.approx(6.5 / 3)


def test_percent_change_against_zero_reference_is_nan():
    """A change relative to zero is undefined, not infinite."""
    assert math.isnan(metrics.percent_change(1.0, 0.0))
    assert metrics.percent_change(15.0, 10.0) == pytest.approx(50.0)
    assert metrics.percent_change(-5.0, -10.0) == pytest.approx(50.0)


def test_scenario_metrics_match_closed_form(pk_scenario):
    """Bolus D, elimination k: AUC(0-T) = D/k (1-e^-kT); time above th = ln(D/th)/k."""
    path = pk_scenario(
        "ref: {doses: [{type: bolus, target: drug, amount: 10 nM}]}\n"
        "double: {doses: [{type: bolus, target: drug, amount: 20 nM}]}",
        time="{end: 48 h, step: 0.01 h}",
        extra="reference_arm: ref\nmetrics: [auc, max, {type: time_above, threshold: 2 nM}]",
    )
    result = run_scenario(path)
    k, d = 0.1, 10.0
    assert result.metric("ref", "conc", "auc") == pytest.approx(d / k * (1 - math.exp(-4.8)), 1e-4)
    assert result.metric("ref", "conc", "time_above_2") == pytest.approx(math.log(5) / k, 1e-4)
    table = result.metrics
    row = table[(table.arm == "double") & (table.metric == "auc")].iloc[0]
    assert row["percent_change"] == pytest.approx(100.0, rel=1e-6)
    assert row["reference_value"] == pytest.approx(result.metric("ref", "conc", "auc"))
