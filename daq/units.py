"""Normalization of instrument units to Hallmark's canonical units, with pint.

Every quantity has one canonical unit (docs/schema.md):

    length (plating thickness) µm   force N       torque N·m    temperature °C
    humidity %RH                    flow mL/h     acidity pH    duration h
    count cycles                    mass mg       ratio %

Instruments spell units their own way (``lbF``, ``in-lbf``, ``µin``, ``DEG C``); the aliases below
map those spellings to pint expressions. A pint conversion costs tens of microseconds, which
alone would cap the pipeline, so each (unit, quantity) pair is resolved once into a linear
transform ``canonical = raw * scale + offset`` and cached. Every unit we accept converts
linearly (temperature offsets included).
"""

from __future__ import annotations

import math
import tokenize
from dataclasses import dataclass
from functools import lru_cache

import pint

from daq.errors import UnitError
from daq.model import Reading, Sample

__all__ = ["CANONICAL", "Normalizer", "canonical_unit", "convert"]

#: quantity -> (canonical symbol written to the database, pint expression)
CANONICAL: dict[str, tuple[str, str]] = {
    "length": ("µm", "micrometer"),
    "force": ("N", "newton"),
    "torque": ("N·m", "newton * meter"),
    "temperature": ("°C", "degC"),
    "flow": ("mL/h", "milliliter / hour"),
    "duration": ("h", "hour"),
    "mass": ("mg", "milligram"),
    #: A dead-weight load such as a Taber abraser's grams per wheel.
    "load": ("g", "gram"),
    #: Turntable or motor speed.
    "speed": ("rpm", "revolution / minute"),
}

#: Quantities with no physical dimension: only these spellings are accepted, value unchanged.
_DIMENSIONLESS: dict[str, tuple[str, frozenset[str]]] = {
    "humidity": ("%RH", frozenset({"%RH", "%rh", "RH%", "%"})),
    "acidity": ("pH", frozenset({"pH", "PH", "ph"})),
    "count": ("cycles", frozenset({"cycles", "cycle", "cyc", "count", ""})),
    #: How many of something: defects found, findings.
    "number": ("count", frozenset({"count", ""})),
    "ratio": ("%", frozenset({"%", "percent", "pct"})),
    #: A protection or corrosion rating on a 0-10 scale (ISO 10289, ASTM D610).
    "rating": ("rating", frozenset({"rating", ""})),
    #: Taber wear index: mg lost per 1000 cycles (ASTM D4060).
    "wear_index": ("mg/1000 cycles", frozenset({"mg/1000 cycles", "mg/kc", ""})),
}

#: Vendor spellings -> pint expressions. Keys are matched exactly, then case-folded.
_ALIASES: dict[str, str] = {
    "µm": "micrometer",
    "μm": "micrometer",  # Greek mu, as some Windows exports write it
    "um": "micrometer",
    "µin": "microinch",
    "μin": "microinch",
    "uin": "microinch",
    'u"': "microinch",
    "mils": "thou",  # a thousandth of an inch (pint's "mil" is an angle)
    "mil": "thou",
    "lbf": "force_pound",
    "lbF": "force_pound",
    "kgf": "kilogram_force",
    "kgF": "kilogram_force",
    "gf": "gram_force",
    "gF": "gram_force",
    "ozf": "force_ounce",
    "ozF": "force_ounce",
    "kN": "kilonewton",
    "mN": "millinewton",
    "N·m": "newton * meter",
    "Nm": "newton * meter",
    "N-m": "newton * meter",
    "N.m": "newton * meter",
    "N·cm": "newton * centimeter",
    "Nmm": "newton * millimeter",
    "N·mm": "newton * millimeter",
    "lbFft": "force_pound * foot",
    "kgFm": "kilogram_force * meter",
    "kgFmm": "kilogram_force * millimeter",
    "gFcm": "gram_force * centimeter",
    "nm": "nanometer",
    "Ncm": "newton * centimeter",
    "N-cm": "newton * centimeter",
    "mN·m": "millinewton * meter",
    "mNm": "millinewton * meter",
    "lbf·in": "force_pound * inch",
    "lbFin": "force_pound * inch",
    "lbf-in": "force_pound * inch",
    "in-lbf": "force_pound * inch",
    "inlbf": "force_pound * inch",
    "lbf·ft": "force_pound * foot",
    "ft-lbf": "force_pound * foot",
    "ozf·in": "force_ounce * inch",
    "ozFin": "force_ounce * inch",
    "in-ozf": "force_ounce * inch",
    "kgf·cm": "kilogram_force * centimeter",
    "kgFcm": "kilogram_force * centimeter",
    "kgf-cm": "kilogram_force * centimeter",
    "°C": "degC",
    "℃": "degC",
    "C": "degC",
    "degC": "degC",
    "DEG C": "degC",
    "°F": "degF",
    "℉": "degF",
    "F": "degF",
    "degF": "degF",
    "DEG F": "degF",
    "K": "kelvin",
    "mL/h": "milliliter / hour",
    "ml/h": "milliliter / hour",
    "mL/hr": "milliliter / hour",
    "h": "hour",
    "hr": "hour",
    "min": "minute",
    "s": "second",
    "mg": "milligram",
    "g": "gram",
}

#: Upper-case spellings some instruments and LIMS exports use.
_UPPER: dict[str, str] = {
    "LBF": "force_pound",
    "OZF": "force_ounce",
    "KGF": "kilogram_force",
    "GF": "gram_force",
    "KN": "kilonewton",
    "MN": "millinewton",  # Mark-10's unit command for mN; never meganewton on a force gauge
    "NM": "newton * meter",
    "NCM": "newton * centimeter",
    "NMM": "newton * millimeter",
    "LBFIN": "force_pound * inch",
    "LBIN": "force_pound * inch",
    "LBFFT": "force_pound * foot",
    "OZFIN": "force_ounce * inch",
    "OZIN": "force_ounce * inch",
    "KGFM": "kilogram_force * meter",
    "KGFMM": "kilogram_force * millimeter",
    "GFCM": "gram_force * centimeter",
    "UM": "micrometer",
    "UIN": "microinch",
    "DEGC": "degC",
    "DEGF": "degF",
}

_ureg: pint.UnitRegistry[float] = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


@dataclass(frozen=True, slots=True)
class _Linear:
    scale: float
    offset: float
    symbol: str


def canonical_unit(quantity: str) -> str:
    """The canonical unit symbol of a quantity. Raises UnitError for an unknown quantity."""
    if quantity in CANONICAL:
        return CANONICAL[quantity][0]
    if quantity in _DIMENSIONLESS:
        return _DIMENSIONLESS[quantity][0]
    known = ", ".join(sorted([*CANONICAL, *_DIMENSIONLESS]))
    raise UnitError(f"unknown quantity '{quantity}' (known: {known})")


def _pint_expr(unit: str) -> str | None:
    if unit in _ALIASES:
        return _ALIASES[unit]
    # No case folding: "nm" (nanometre) and "Nm" (newton metre) differ only in case.
    return _UPPER.get(unit.strip())


@lru_cache(maxsize=1024)
def _resolve(unit: str, quantity: str) -> _Linear:
    symbol = canonical_unit(quantity)
    if quantity in _DIMENSIONLESS:
        if unit.strip() in _DIMENSIONLESS[quantity][1]:
            return _Linear(1.0, 0.0, symbol)
        raise UnitError(f"unit '{unit}' is not a {quantity} unit (expected {symbol})")
    expr = _pint_expr(unit)
    target = CANONICAL[quantity][1]
    try:
        source = _ureg.Unit(expr if expr is not None else unit)
        dest = _ureg.Unit(target)
        zero = _ureg.Quantity(0.0, source).to(dest).magnitude
        # A wide span keeps the scale exact to the last digits despite offsets (°F -> °C).
        span = _ureg.Quantity(1000.0, source).to(dest).magnitude
    except pint.errors.DimensionalityError as exc:
        raise UnitError(
            f"unit '{unit}' is a {_quantity_of(source)} unit, not {quantity}"
            f" (expected a unit convertible to {symbol})"
        ) from exc
    except (
        pint.errors.UndefinedUnitError,
        AttributeError,
        TypeError,
        ValueError,
        KeyError,  # "kelvin**0"
        ZeroDivisionError,  # "1/0", "m**(1/0)"
        tokenize.TokenError,  # "(": pint's parser tokenizes the expression (found by fuzzing)
    ) as exc:
        raise UnitError(f"unknown unit '{unit}' for {quantity} (expected e.g. {symbol})") from exc
    except AssertionError as exc:  # pint asserts on some malformed expressions
        raise UnitError(f"unknown unit '{unit}' for {quantity}") from exc
    return _Linear(float(span - zero) / 1000.0, float(zero), symbol)


def _quantity_of(unit: pint.Unit) -> str:
    """Name the quantity a unit measures, in words, for error messages."""
    dims = unit.dimensionality
    for name, (_, expr) in CANONICAL.items():
        if _ureg.Unit(expr).dimensionality == dims:
            return name
    return f"different ({dims})"


def convert(value: float, unit: str, quantity: str) -> tuple[float, str]:
    """Convert ``value`` in ``unit`` to the canonical unit of ``quantity``.

    Returns (value, canonical symbol). Raises UnitError for an unknown unit, a unit of another
    quantity, or a value that is not a finite number.
    """
    if not math.isfinite(value):
        raise UnitError(f"value {value!r} is not a finite number")
    lin = _resolve(unit, quantity)
    converted = value * lin.scale + lin.offset
    if not math.isfinite(converted):
        raise UnitError(f"value {value!r} {unit} is out of range once converted to {lin.symbol}")
    return converted, lin.symbol


class Normalizer:
    """Turns Samples into Readings in canonical units (the pipeline's normalize stage)."""

    def normalize(self, sample: Sample) -> Reading:
        """Convert one sample. Raises UnitError with a reason naming the channel."""
        value = sample.value
        try:
            # convert(), inlined: this runs for every reading.
            if not math.isfinite(value):
                raise UnitError(f"value {value!r} is not a finite number")
            lin = _resolve(sample.unit, sample.quantity)
            scaled: tuple[tuple[str, float], ...] = ()
            if sample.scaled:
                scaled = tuple(
                    (name, convert(v, sample.unit, sample.quantity)[0]) for name, v in sample.scaled
                )
            converted = value * lin.scale + lin.offset
            if not math.isfinite(converted):
                raise UnitError(
                    f"value {value!r} {sample.unit} is out of range once converted to {lin.symbol}"
                )
        except UnitError as exc:
            raise UnitError(f"{sample.measurement}.{sample.channel}: {exc}") from exc
        return Reading(sample, converted, lin.symbol, scaled)
