"""Units: quantities written with units convert to model units via pint, or fail saying why."""

from __future__ import annotations

import pytest

from secretome_sim.units import UnitError, convert, parse_quantity

MW_VEGF = parse_quantity("38.2 kDa")


def test_mass_concentration_to_molar_through_molecular_weight():
    """1 ng/mL of a 38.2 kDa protein is 26.18 pM (1e-9 g/mL / 38200 g/mol)."""
    value = convert(parse_quantity("1 ng/mL"), "pM", molecular_weight=MW_VEGF)
    assert value == pytest.approx(1e-9 / 38200 * 1e3 * 1e12, rel=1e-6)


def test_molecular_weight_as_g_per_mol_is_equivalent():
    """'38200 g/mol' and '38.2 kDa' describe the same molecule."""
    a = convert(parse_quantity("2 ng/mL"), "pM", molecular_weight=MW_VEGF)
    b = convert(parse_quantity("2 ng/mL"), "pM", molecular_weight=parse_quantity("38200 g/mol"))
    assert a == pytest.approx(b, rel=1e-4)


def test_amount_to_concentration_through_volume():
    """100 ng into 1 mL is 100 ng/mL = 2617.8 pM."""
    value = convert(
        parse_quantity("100 ng"), "pM", molecular_weight=MW_VEGF, volume=parse_quantity("1 mL")
    )
    assert value == pytest.approx(2617.801, rel=1e-5)


def test_scaled_model_unit_for_particles():
    """Exosome counts convert to a scaled unit: 5e9 particles/mL = 5 (1e9 particles/mL)."""
    assert convert(parse_quantity("5e9 particles/mL"), "1e9 particles/mL") == pytest.approx(5.0)


def test_particles_never_become_molar():
    """Particle counts have their own dimension: no silent conversion to a concentration."""
    with pytest.raises(UnitError, match=r"convertible to pM.*\[particle\]"):
        convert(parse_quantity("1e9 particles/mL"), "pM", molecular_weight=MW_VEGF)


def test_times_and_rates():
    """2 day = 48 h; 1 ng/mL/h of VEGF = 26.18 pM/h; 7.2 1/day = 0.3 1/h."""
    assert convert(parse_quantity("2 day"), "hour") == 48.0
    assert convert(parse_quantity("1 ng/mL/h"), "pM/hour", molecular_weight=MW_VEGF) == (
        pytest.approx(26.178, rel=1e-4)
    )
    assert convert(parse_quantity("7.2 1/day"), "1/hour") == pytest.approx(0.3)


def test_mismatch_says_expected_found_and_what_would_help():
    """A mass dose without molecular weight names both dimensions and the missing fact."""
    with pytest.raises(UnitError) as info:
        convert(parse_quantity("1 ng/mL"), "pM")
    message = str(info.value)
    assert "convertible to pM ([substance] / [length] ** 3)" in message
    assert "[mass] / [length] ** 3" in message
    assert "molecular_weight" in message


def test_missing_volume_is_named():
    """An amount into a concentration input without a volume says a volume is needed."""
    with pytest.raises(UnitError, match="volume"):
        convert(parse_quantity("100 ng"), "pM", molecular_weight=MW_VEGF)


@pytest.mark.parametrize("bad", ["2 ngg/mL", "", "ten nM", True, None])
def test_unreadable_quantities(bad):
    """Garbage is an error naming the input, never a silent default."""
    with pytest.raises(UnitError):
        parse_quantity(bad)


def test_bare_zero_converts_to_any_unit():
    """'value: 0' (fresh medium) needs no unit."""
    assert convert(parse_quantity(0), "pM") == 0.0
