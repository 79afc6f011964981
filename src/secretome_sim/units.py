"""Units: parse quantities written with units and convert them to a model's units, via pint.

Only three conversions beyond pint's own are allowed, and each needs an explicit fact from the
model metadata: mass <-> substance through a molecular weight, and amount <-> concentration
through a distribution volume. Everything else that does not match is an error naming both
dimensions.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import pint


@cache
def registry() -> pint.UnitRegistry:
    """The one unit registry (pint quantities only combine within a registry)."""
    ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
    # Vesicles and cells are counted, not weighed: give them their own dimension so that
    # "1e9 particles/mL" never silently converts to a molar concentration.
    ureg.define("particle = [particle] = particles")
    ureg.define("cell = [cell] = cells")
    # Quantities pickled for worker processes unpickle into pint's application registry: make
    # that this one, or a worker's quantities could not be combined with ours.
    pint.set_application_registry(ureg)
    return ureg


class UnitError(ValueError):
    """A quantity could not be read or converted. The message says what was expected."""


def parse_quantity(value: Any) -> pint.Quantity:
    """Read ``'10 ng/mL'``, ``'24 h'``, ``'1e9 particles/mL'`` or a plain number (dimensionless)."""
    ureg = registry()
    if isinstance(value, pint.Quantity):
        return value
    if isinstance(value, bool):
        raise UnitError(f"expected a quantity such as '10 ng/mL', got the boolean {value}")
    if isinstance(value, int | float):
        quantity = ureg.Quantity(float(value), "")
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise UnitError("expected a quantity such as '10 ng/mL', got an empty string")
        try:
            quantity = ureg.Quantity(text)
        except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError) as exc:
            raise UnitError(f"cannot read {value!r} as a quantity: {exc}") from None
        except Exception as exc:  # pint raises assorted parser errors on garbage
            raise UnitError(f"cannot read {value!r} as a quantity ({type(exc).__name__})") from None
        if not isinstance(quantity, pint.Quantity):  # "5" parses to a bare number
            quantity = ureg.Quantity(float(quantity), "")
    else:
        raise UnitError(f"expected a quantity such as '10 ng/mL', got {type(value).__name__}")
    magnitude = quantity.magnitude
    if not isinstance(magnitude, int | float) or math.isnan(magnitude):
        raise UnitError(f"expected a finite number with a unit, got {value!r}")
    return quantity


def parse_unit(text: str) -> pint.Quantity:
    """A model unit, which may carry a scale: ``'pM'``, ``'1/h'``, ``'1e9 particles/mL'``.

    Parsed once per text (a sweep converts the same few units at every point; parsing was ~90 %
    of planning a point); each call returns a fresh Quantity, so callers may modify it."""
    if not isinstance(text, str) or not text.strip():
        raise UnitError(f"expected a unit such as 'nM' or '1/h', got {text!r}")
    magnitude, units = _parsed_unit(text)
    return registry().Quantity(magnitude, units)


@cache
def _parsed_unit(text: str) -> tuple[float, Any]:
    quantity = parse_quantity(text if any(ch.isalpha() for ch in text) else f"{text} dimensionless")
    if quantity.magnitude == 0:
        _fail_zero(text)
    return quantity.magnitude, quantity.units


def _fail_zero(text: str) -> pint.Quantity:
    raise UnitError(f"unit {text!r} has a zero scale")


def dimension_text(quantity: pint.Quantity) -> str:
    dims = str(quantity.dimensionality)
    return "dimensionless" if dims == "dimensionless" else dims


def molar_mass(molecular_weight: pint.Quantity) -> pint.Quantity:
    """Molecular weight as mass per substance: '38.2 kDa' (mass) or '38200 g/mol' both work."""
    ureg = registry()
    if molecular_weight.check("[mass]"):
        return molecular_weight * ureg.avogadro_constant
    if molecular_weight.check("[mass]/[substance]"):
        return molecular_weight
    raise UnitError(
        f"molecular weight must be a mass ('38.2 kDa') or mass per substance ('38200 g/mol'), "
        f"got {molecular_weight:~P}"
    )


def convert(
    quantity: pint.Quantity,
    unit: str,
    *,
    molecular_weight: pint.Quantity | None = None,
    volume: pint.Quantity | None = None,
) -> float:
    """Magnitude of ``quantity`` expressed in ``unit`` (which may carry a scale).

    Tries the direct conversion first, then through the molecular weight and/or the
    distribution volume when the metadata provides them. Raises UnitError naming the expected
    and found dimensions, and which fact would have made the conversion possible.
    """
    target = parse_unit(unit)
    if quantity.magnitude == 0 and quantity.dimensionless:
        return 0.0  # a bare zero is zero in any unit (e.g. fresh medium: value 0)
    candidates = [quantity]
    if molecular_weight is not None:
        mass_per_mol = molar_mass(molecular_weight)
        candidates += [quantity / mass_per_mol, quantity * mass_per_mol]
    if volume is not None:
        candidates += [c / volume for c in list(candidates)]
        candidates += [c * volume for c in list(candidates[: len(candidates) // 2])]
    for candidate in candidates:
        if candidate.dimensionality == target.dimensionality:
            return float((candidate / target).to("dimensionless").magnitude)
    hints = []
    if molecular_weight is None and _differs_by(quantity, target, "[mass]/[substance]", "[mass]"):
        hints.append(
            "a molecular_weight in the model metadata would allow mass <-> molar conversion"
        )
    if volume is None and any(_differs_by(c, target, "[length]**3") for c in candidates):
        hints.append(
            "a volume in the model metadata would allow amount <-> concentration conversion"
        )
    message = (
        f"expected a quantity convertible to {unit} ({dimension_text(target)}), "
        f"got {quantity:~P} ({dimension_text(quantity)})"
    )
    if hints:
        message += "; " + "; ".join(hints)
    raise UnitError(message)


def _differs_by(a: pint.Quantity, b: pint.Quantity, *dimensions: str) -> bool:
    """True if a and b differ by exactly one of ``dimensions`` (or its inverse)."""
    ureg = registry()
    ratio = (a / b).dimensionality
    for dimension in dimensions:
        dims = ureg.get_dimensionality(dimension)
        if ratio in (dims, 1 / dims):
            return True
    return False


def to_time(quantity: pint.Quantity, unit: str) -> float:
    """A time in the model's time unit; plain numbers are rejected as ambiguous."""
    if not quantity.check("[time]"):
        raise UnitError(f"expected a time such as '24 h' or '2 day', got {quantity:~P}")
    return convert(quantity, unit)


def format_quantity(quantity: pint.Quantity) -> str:
    """Compact text that parse_quantity reads back: '2 ng / mL'."""
    if quantity.dimensionless and str(quantity.units) == "dimensionless":
        return f"{quantity.magnitude:g}"
    return f"{quantity.magnitude:g} {quantity.units:~}"
