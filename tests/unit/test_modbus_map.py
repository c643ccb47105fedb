import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daq.errors import ProtocolError
from drivers.modbus_controller import MAPS_DIR
from drivers.modbus_map import WORD_ORDERS, decode, load_map, plausible, read_plan


def test_float_word_orders_from_the_manual():
    # 35.0 = 0x420C0000 (INSTRUMENTS_AND_STANDARDS.md §2.1)
    assert decode([0x420C, 0x0000], "float32", "ABCD") == 35.0
    assert decode([0x0000, 0x420C], "float32", "CDAB") == 35.0
    assert decode([0x0C42, 0x0000], "float32", "BADC") == 35.0
    assert decode([0x0000, 0x0C42], "float32", "DCBA") == 35.0
    wrong = decode([0x0000, 0x420C], "float32", "ABCD")
    assert 0 < wrong < 1e-40
    assert not plausible(wrong, (-100.0, 400.0))
    assert plausible(0.0, (-100.0, 400.0))
    assert not plausible(float("nan"), None)


def test_integers():
    assert decode([0xFFFF], "int16", "ABCD") == -1
    assert decode([0xFFFF], "uint16", "ABCD") == 65535
    assert decode([0x0001, 0x0000], "int32", "CDAB") == 1
    assert decode([0xFFFF, 0xFFFE], "int32", "ABCD") == -2


def test_wrong_register_count():
    with pytest.raises(ProtocolError, match="float32 needs 2 registers, got 1"):
        decode([1], "float32", "ABCD")


@given(st.floats(width=32, allow_nan=False), st.sampled_from(WORD_ORDERS))
def test_float_roundtrip(value, order):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    regs = {
        "ABCD": [hi, lo],
        "CDAB": [lo, hi],
        "BADC": [((hi & 0xFF) << 8) | (hi >> 8), ((lo & 0xFF) << 8) | (lo >> 8)],
        "DCBA": [((lo & 0xFF) << 8) | (lo >> 8), ((hi & 0xFF) << 8) | (hi >> 8)],
    }[order]
    assert decode(regs, "float32", order) == value


def test_read_plan_groups_neighbours_only():
    assert read_plan([(10, 2), (12, 2), (90, 1), (27586, 2)]) == [(10, 4), (90, 1), (27586, 2)]
    assert read_plan([(0, 2), (5, 2)], max_gap=8) == [(0, 7)]
    assert read_plan([(0, 100), (110, 20)]) == [(0, 100), (110, 20)]


def test_shipped_map_is_valid():
    m = load_map(MAPS_DIR / "watlow_f4t.toml")
    assert m.word_order == "CDAB"
    assert {p.channel for p in m.point} >= {"temperature", "setpoint", "saturator_temperature"}


def test_bad_map_is_explained(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(
        'schema = 1\nmodel = "x"\n[[point]]\nchannel = "t"\nquantity = "temperature"\n'
        'address = 1\nunit = "display"\n'
    )
    with pytest.raises(ValueError, match="unit = 'display' but the map has no"):
        load_map(path)


@pytest.mark.parametrize("name", ["watlow_f4t", "watlow_ezzone_pm", "eurotherm_3200"])
def test_every_shipped_map_loads(name):
    m = load_map(MAPS_DIR / f"{name}.toml")
    assert any(p.channel == "temperature" for p in m.point)


def _one_point_map(tmp_path, extra: str):
    path = tmp_path / "m.toml"
    path.write_text(
        'schema = 1\nmodel = "x"\n[[point]]\nchannel = "sp"\nquantity = "temperature"\n'
        f'address = 2\nunit = "°C"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_point_interval_is_optional_and_positive(tmp_path):
    assert load_map(_one_point_map(tmp_path, "")).point[0].interval_s is None
    assert load_map(_one_point_map(tmp_path, "interval_s = 10.0\n")).point[0].interval_s == 10.0
    assert load_map(_one_point_map(tmp_path, "interval_s = 5\n")).point[0].interval_s == 5.0


@pytest.mark.parametrize("value", ["0", "-1.0", "inf", "nan", '"often"'])
def test_bad_point_interval_is_explained(tmp_path, value):
    with pytest.raises(ValueError, match=r"register map .*m\.toml: point\.0\.interval_s"):
        load_map(_one_point_map(tmp_path, f"interval_s = {value}\n"))


@pytest.mark.parametrize("name", ["watlow_f4t", "watlow_ezzone_pm", "eurotherm_3200"])
def test_shipped_maps_read_every_point_every_poll(name):
    assert all(p.interval_s is None for p in load_map(MAPS_DIR / f"{name}.toml").point)
