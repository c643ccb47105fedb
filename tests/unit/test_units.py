import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daq.errors import UnitError
from daq.model import Sample
from daq.units import Normalizer, canonical_unit, convert


@pytest.mark.parametrize(
    ("value", "unit", "quantity", "expected", "symbol"),
    [
        (1.0, "lbF", "force", 4.4482216152605, "N"),
        (1.0, "kgf", "force", 9.80665, "N"),
        (100.0, "gf", "force", 0.980665, "N"),
        (16.0, "ozf", "force", 4.4482216152605, "N"),
        (2.0, "in-lbf", "torque", 0.2259696580552, "N·m"),
        (52.0, "N·cm", "torque", 0.52, "N·m"),
        (0.52, "Nm", "torque", 0.52, "N·m"),
        (95.0, "°F", "temperature", 35.0, "°C"),
        (-40.0, "F", "temperature", -40.0, "°C"),
        (308.15, "K", "temperature", 35.0, "°C"),
        (100.0, "µin", "length", 2.54, "µm"),
        (2.5, "um", "length", 2.5, "µm"),
        (1.5, "mL/h", "flow", 1.5, "mL/h"),
        (6.8, "pH", "acidity", 6.8, "pH"),
        (55.0, "%", "humidity", 55.0, "%RH"),
        (90.0, "min", "duration", 1.5, "h"),
    ],
)
def test_converts_to_canonical(value, unit, quantity, expected, symbol):
    got, sym = convert(value, unit, quantity)
    assert sym == symbol
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("unit", "quantity", "message"),
    [
        ("N", "torque", "unit 'N' is a force unit, not torque"),
        ("Nm", "force", "unit 'Nm' is a torque unit, not force"),
        ("°C", "length", "unit '°C' is a temperature unit, not length"),
        ("blorp", "force", "unknown unit 'blorp' for force"),
        ("mm", "acidity", "unit 'mm' is not a acidity unit"),
    ],
)
def test_rejects_with_reason(unit, quantity, message):
    with pytest.raises(UnitError, match=message):
        convert(1.0, unit, quantity)


def test_unknown_quantity_and_nonfinite():
    with pytest.raises(UnitError, match="unknown quantity 'colour'"):
        canonical_unit("colour")
    with pytest.raises(UnitError, match="not a finite number"):
        convert(math.nan, "N", "force")


def test_normalizer_names_channel():
    s = Sample("g1", "force", "peak", "force", 1.0, "N·m", 0)
    with pytest.raises(UnitError, match=r"^force\.peak: unit 'N·m' is a torque unit"):
        Normalizer().normalize(s)
    r = Normalizer().normalize(Sample("g1", "force", "peak", "force", 2.0, "lbf", 0))
    assert r.unit == "N"
    assert r.value == pytest.approx(8.896443230521)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_fahrenheit_roundtrip_is_linear(x):
    c, _ = convert(x, "°F", "temperature")
    assert c == pytest.approx((x - 32.0) * 5.0 / 9.0, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize(
    ("value", "unit", "quantity", "expected"),
    [
        (1.0, "mils", "length", 25.4),  # a thousandth of an inch, not an angle
        (500.0, "nm", "length", 0.5),  # nanometre, not newton metre
        (1.0, "Nmm", "torque", 0.001),
        (1.0, "LBF", "force", 4.4482216152605),
        (1.0, "kgFmm", "torque", 0.00980665),
        (100.0, "gFcm", "torque", 0.00980665),
    ],
)
def test_spellings_that_used_to_collide(value, unit, quantity, expected):
    assert convert(value, unit, quantity)[0] == pytest.approx(expected)
    with pytest.raises(UnitError):
        convert(1.0, "nm", "torque")
