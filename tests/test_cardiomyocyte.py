"""The cardiomyocyte model tells the story of Lazzarini et al. 2016 (Sci Rep 6:29994,
doi:10.1038/srep29994; seed 004 section 4.1) and keeps the dynamics of its NF-kB source model
(Lipniacki et al. 2004, doi:10.1016/j.jtbi.2004.01.001). Each test names its source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.signal import find_peaks

from secretome_sim import load_scenario, run_scenario, with_parameters

ROOT = Path(__file__).resolve().parents[1]
FLAGSHIP = ROOT / "scenarios" / "cardio_doxorubicin_cm.yaml"
DOSE = ROOT / "scenarios" / "cardio_doxorubicin_dose.yaml"
PROTECTION = ["dox_intracellular", "dna_damage", "apoptotic_fraction", "senescent_fraction"]
PATHWAY = ["akt_active", "nfkb_nuclear", "il6", "cxcl1", "abcb1b"]


@pytest.fixture(scope="module")
def flagship():
    scenario = load_scenario(FLAGSHIP)
    # every model output, not only the ones the flagship reports
    return run_scenario(scenario.model_copy(update={"outputs": None}))


@pytest.fixture(scope="module")
def dose():
    return run_scenario(DOSE)


@pytest.mark.parametrize("output", PATHWAY)
def test_cm_alone_activates_the_pathway(flagship, output):
    """Lazzarini 2016: CM strongly activates PI3K/Akt, drives NF-kB into the nucleus and raises
    Il6, Cxcl1 and Abcb1b. At 72 h and over the run, by at least half again over control."""
    for metric in ("final", "auc"):
        treated = flagship.metric("cm", output, metric)
        assert treated > 1.5 * flagship.metric("control", output, metric), metric


@pytest.mark.parametrize("output", PROTECTION)
def test_cm_protects_against_doxorubicin(flagship, output):
    """Lazzarini 2016: with CM, cells extrude more Dox and show less DNA damage, senescence and
    apoptosis. Checked at 72 h after the pulse and as the AUC."""
    for metric in ("final", "auc"):
        protected = flagship.metric("dox_cm", output, metric)
        assert protected < flagship.metric("dox", output, metric), metric


@pytest.mark.parametrize("output", PROTECTION)
def test_pi3k_inhibitor_abolishes_protection(flagship, output):
    """Lazzarini 2016: a PI3K inhibitor given before CM abolishes the protection: Dox + CM +
    LY294002 stays within 20 % of the CM effect of the Dox-alone value."""
    for metric in ("final", "auc"):
        dox = flagship.metric("dox", output, metric)
        effect = flagship.metric("dox_cm", output, metric) - dox
        residual = flagship.metric("dox_cm_pi3k_inhibitor", output, metric) - dox
        assert abs(residual) <= 0.2 * abs(effect), metric


@pytest.mark.parametrize("output", ["nfkb_nuclear", "il6", "cxcl1", "abcb1b"])
def test_pi3k_inhibitor_prevents_nfkb_response(flagship, output):
    """Lazzarini 2016: the inhibitor abolishes NF-kB nuclear accumulation and the Il6, Cxcl1
    and Abcb1b changes (here: less than 20 % of the CM rise over control remains)."""
    control = flagship.metric("control", output, "auc")
    cm_rise = flagship.metric("dox_cm", output, "auc") - control
    blocked_rise = flagship.metric("dox_cm_pi3k_inhibitor", output, "auc") - control
    assert blocked_rise < 0.2 * cm_rise


def test_doxorubicin_dose_splits_cell_fate(dose):
    """Spallarossa 2009 (doi:10.1152/ajpheart.00068.2009): a low Dox pulse drives senescence, a
    high pulse early apoptosis. Maejima 2008: 0.1 uM gives no apoptosis (here under 5 %)."""
    low_apoptotic = dose.metric("low_dox", "apoptotic_fraction", "final")
    low_senescent = dose.metric("low_dox", "senescent_fraction", "final")
    high_apoptotic = dose.metric("high_dox", "apoptotic_fraction", "final")
    high_senescent = dose.metric("high_dox", "senescent_fraction", "final")
    assert low_senescent > low_apoptotic
    assert low_apoptotic < 0.05
    assert high_apoptotic > high_senescent
    # "early": apoptosis at the high dose is mostly done within a day of the pulse
    trajectory = dose.wide("high_dox")
    by_24h = trajectory.loc[trajectory.index <= 24, "apoptotic_fraction"].iloc[-1]
    assert by_24h > 0.5 * high_apoptotic


@pytest.mark.parametrize("output", PROTECTION)
def test_hypoxic_cm_protects_more_than_normoxic(flagship, output):
    """Lazzarini 2016 used hypoxia-preconditioned CM; hypoxia raises protective factors (seed
    004 sections 3.2, 4.1). The hypoxic product (potency x2, assumed) protects more."""
    for metric in ("final", "auc"):
        hypoxic = flagship.metric("dox_cm", output, metric)
        assert hypoxic < flagship.metric("dox_normoxic_cm", output, metric), metric


def test_total_nfkb_is_conserved_and_nothing_is_negative(flagship):
    """Issue 3 invariants: total NF-kB (0.06 uM, Lipniacki 2004) is conserved in every arm and
    no model output (all 22 are reported here) goes negative beyond solver noise."""
    table = flagship.trajectories
    total = table.loc[table["output"] == "nfkb_total", "value"].to_numpy()
    np.testing.assert_allclose(total, 0.06, rtol=1e-6)
    assert table["value"].min() >= -1e-12
    fractions = flagship.wide("dox")
    cells = fractions[["viable_fraction", "senescent_fraction", "apoptotic_fraction"]].sum(axis=1)
    np.testing.assert_allclose(cells.to_numpy(), 1.0, rtol=1e-9)


def test_control_arm_stays_at_rest(flagship):
    """The untreated arm is flat (with the scenario's pre-equilibration; tests/test_shipped.py
    checks the shipped initial state itself without it, over 7 days)."""
    control = flagship.wide("control").to_numpy()
    first = np.broadcast_to(control[0], control.shape)
    np.testing.assert_allclose(control, first, rtol=1e-7, atol=1e-12)


# --------------------------------------------------------------------------- NF-kB source model
LIPNIACKI_PER_SECOND = dict(
    a1=0.5, a2=0.2, t1=0.1, a3=1.0, t2=0.1, c1a=5e-7, c3a=4e-4, c4a=0.5, c5a=1e-4, c6a=2e-5,
    c1=5e-7, c3=4e-4, c4=0.5, c5=3e-4, k1=2.5e-3, k2=0.1, k3=1.5e-3, kprod=2.5e-5,
    kdeg=1.25e-4, kv=5.0, i1=2.5e-3, e2a=1e-2, i1a=1e-3, e1a=5e-4,
)  # fmt: skip


def _lipniacki(t, y, tr, p):
    """The published equations (Lipniacki 2004, Table/eqs; time in s, uM), written out
    independently of the Antimony file. Returns dy/dt."""
    ikkn, ikka, ikki, ikka_ikba, ikka_ikba_nfkb, nfkb, nfkbn, a20, a20t, ikba, ikban, ikbat = y[:12]
    ikba_nfkb, ikban_nfkbn = y[12:]
    return [
        p["kprod"] - p["kdeg"] * ikkn - tr * p["k1"] * ikkn,
        tr * p["k1"] * ikkn - p["k3"] * ikka - tr * p["k2"] * ikka * a20 - p["kdeg"] * ikka
        - p["a2"] * ikka * ikba + p["t1"] * ikka_ikba - p["a3"] * ikka * ikba_nfkb
        + p["t2"] * ikka_ikba_nfkb,
        p["k3"] * ikka + tr * p["k2"] * ikka * a20 - p["kdeg"] * ikki,
        p["a2"] * ikka * ikba - p["t1"] * ikka_ikba,
        p["a3"] * ikka * ikba_nfkb - p["t2"] * ikka_ikba_nfkb,
        p["c6a"] * ikba_nfkb - p["a1"] * nfkb * ikba + p["t2"] * ikka_ikba_nfkb - p["i1"] * nfkb,
        p["i1"] * p["kv"] * nfkb - p["a1"] * ikban * nfkbn,
        p["c4"] * a20t - p["c5"] * a20,
        p["c1"] * nfkbn - p["c3"] * a20t,
        -p["a2"] * ikka * ikba - p["a1"] * ikba * nfkb + p["c4a"] * ikbat - p["c5a"] * ikba
        - p["i1a"] * ikba + p["e1a"] * ikban,
        -p["a1"] * ikban * nfkbn + p["i1a"] * p["kv"] * ikba - p["e1a"] * p["kv"] * ikban,
        p["c1a"] * nfkbn - p["c3a"] * ikbat,
        p["a1"] * ikba * nfkb - p["c6a"] * ikba_nfkb - p["a3"] * ikka * ikba_nfkb
        + p["e2a"] * ikban_nfkbn,
        p["a1"] * ikban * nfkbn - p["e2a"] * p["kv"] * ikban_nfkbn,
    ]  # fmt: skip


def _published_nuclear_nfkb(times_s):
    """Nuclear NF-kB after switching TR 0 -> 1 at t = 0 from the resting state, as published."""
    rest = np.zeros(14)
    rest[12] = 0.06  # all NF-kB in cytoplasmic IkBa complexes, then equilibrate 100 h
    p = LIPNIACKI_PER_SECOND
    settle = solve_ivp(
        _lipniacki, (0, 3.6e5), rest, args=(0.0, p), method="LSODA", rtol=1e-10, atol=1e-14
    )
    run = solve_ivp(
        _lipniacki, (0, times_s[-1]), settle.y[:, -1], args=(1.0, p), method="LSODA",
        t_eval=times_s, rtol=1e-10, atol=1e-14,
    )  # fmt: skip
    return run.y[6]


@pytest.fixture(scope="module")
def sustained_ikk(tmp_path_factory):
    """The model's NF-kB module alone (Akt link off) under sustained TR = 1 from rest."""
    path = tmp_path_factory.mktemp("nfkb") / "nfkb.yaml"
    path.write_text(
        f"model: {ROOT / 'models' / 'cardiomyocyte.yaml'}\n"
        "time: {start: 0 h, end: 6 h, step: 1 min}\n"
        "arms:\n  tnf:\n    parameters: {k_akt_ikk: 0}\n"
        "    perturbations: [{type: set, parameter: ikk_stimulus, value: 1, time: 0 h}]\n"
        "outputs: [nfkb_nuclear, ikba]\npreequilibrate: true\n"
    )
    return run_scenario(path).wide("tnf")


def test_nfkb_module_reproduces_lipniacki_2004(sustained_ikk):
    """Same nuclear NF-kB trajectory as the published equations (independent SciPy solution)
    after converting rates from 1/s to 1/h and writing the nucleus as a compartment."""
    minutes = sustained_ikk.index.to_numpy() * 60.0
    published = _published_nuclear_nfkb(minutes * 60.0)
    np.testing.assert_allclose(sustained_ikk["nfkb_nuclear"].to_numpy(), published, atol=2e-4)


def test_nfkb_module_keeps_ikba_feedback_timing(sustained_ikk):
    """Lipniacki 2004 under sustained TNF: nuclear NF-kB peaks within ~15-45 min (about 24
    min), IkBa is degraded first and resynthesised by the NF-kB-induced feedback, and damped
    oscillations follow with a ~100 min period (Turner 2010: robust 100 min oscillations)."""
    minutes = sustained_ikk.index.to_numpy() * 60.0
    nuclear = sustained_ikk["nfkb_nuclear"].to_numpy()
    peaks, _ = find_peaks(nuclear, prominence=0.005)
    assert 15 <= minutes[peaks[0]] <= 45
    assert len(peaks) >= 2
    period = minutes[peaks[1]] - minutes[peaks[0]]
    assert 80 <= period <= 140
    assert nuclear[peaks[1]] < nuclear[peaks[0]]  # damped
    ikba = sustained_ikk["ikba"].to_numpy()
    trough = int(np.argmin(ikba[minutes <= 60]))
    assert minutes[trough] < minutes[peaks[0]]  # IkBa falls before NF-kB peaks
    assert ikba[minutes.searchsorted(120)] > ikba[trough]  # ...and is resynthesised


# --------------------------------------------------------------------------- assumed links
@pytest.mark.parametrize("switch", ["k_akt_ikk", "abcb1b_induction"])
def test_efflux_protection_needs_both_assumed_links(switch):
    """Akt -> IKK and NF-kB -> Abcb1b are assumed links (issue 3) that switch off at 0. With
    either off, CM no longer changes P-gp or intracellular Dox: the efflux route is all there
    is between CM and Dox exposure in this model."""
    scenario = with_parameters(load_scenario(FLAGSHIP), {switch: 0.0})
    result = run_scenario(scenario.model_copy(update={"outputs": ["pgp", "dox_intracellular"]}))
    for output in ("pgp", "dox_intracellular"):
        np.testing.assert_allclose(
            result.wide("dox_cm")[output].to_numpy(),
            result.wide("dox")[output].to_numpy(),
            rtol=1e-6,
            atol=1e-9,  # uM; the arms take different solver steps (atol 1e-12 per step)
        )


def test_direct_survival_link_adds_to_apoptosis_protection(flagship):
    """Akt -> Bcl-2 (assumed; seed 004 section 3.3 reports Bcl-2 up, Bax down) switches off at
    0. Without it CM still lowers apoptosis through less damage, but by a smaller factor."""
    scenario = with_parameters(load_scenario(FLAGSHIP), {"bcl2_akt_gain": 0.0})
    without = run_scenario(scenario.model_copy(update={"outputs": ["apoptotic_fraction"]}))
    metric = ("apoptotic_fraction", "auc")
    remaining_without = without.metric("dox_cm", *metric) / without.metric("dox", *metric)
    remaining_with = flagship.metric("dox_cm", *metric) / flagship.metric("dox", *metric)
    assert remaining_with < remaining_without < 1


# --------------------------------------------------------------------------- robustness
@pytest.mark.parametrize(
    ("parameter", "value"),
    [("k_akt_ikk", 0.02), ("kprod", 0.9), ("k1", 90.0), ("k3", 0.54), ("c6a", 0.72),
     ("i1", 0.9), ("e1a", 0.18), ("k_akt_off", 72.0), ("ly294002_hill", 2.0)],
)  # fmt: skip
def test_runs_at_range_endpoints_that_once_failed(parameter, value):
    """Values at the ends of the documented ranges run: pre-equilibration finds the moved
    resting state and the arms complete with finite, non-negative outputs (regression: these
    endpoints raised raw CVODE errors on subnormal states left by pre-equilibration)."""
    scenario = with_parameters(load_scenario(FLAGSHIP), {parameter: value})
    result = run_scenario(scenario)
    values = result.trajectories["value"].to_numpy()
    assert result.completed and np.isfinite(values).all() and values.min() >= -1e-9
