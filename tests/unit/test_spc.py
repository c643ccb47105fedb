import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.quality import spc

# INSTRUMENTS_AND_STANDARDS.md §5, as printed: n -> (d2, d3, c4, A2, D3, D4, A3, B3, B4).
TABLE = {
    2: (1.128, 0.853, 0.7979, 1.880, 0, 3.267, 2.659, 0, 3.267),
    3: (1.693, 0.888, 0.8862, 1.023, 0, 2.574, 1.954, 0, 2.568),
    4: (2.059, 0.880, 0.9213, 0.729, 0, 2.282, 1.628, 0, 2.266),
    5: (2.326, 0.864, 0.9400, 0.577, 0, 2.114, 1.427, 0, 2.089),
    6: (2.534, 0.848, 0.9515, 0.483, 0, 2.004, 1.287, 0.030, 1.970),
    7: (2.704, 0.833, 0.9594, 0.419, 0.076, 1.924, 1.182, 0.118, 1.882),
    8: (2.847, 0.820, 0.9650, 0.373, 0.136, 1.864, 1.099, 0.185, 1.815),
    9: (2.970, 0.808, 0.9693, 0.337, 0.184, 1.816, 1.032, 0.239, 1.761),
    10: (3.078, 0.797, 0.9727, 0.308, 0.223, 1.777, 0.975, 0.284, 1.716),
}
COLUMNS = ("d2", "d3", "c4", "A2", "D3", "D4", "A3", "B3", "B4")
DECIMALS = {"c4": 4}


def rounds_to(value, printed, decimals):
    return abs(value - printed) <= 0.5 * 10**-decimals + 1e-12


@pytest.mark.parametrize("n", sorted(TABLE))
@pytest.mark.parametrize("column", COLUMNS)
def test_constants_match_the_table_to_its_printed_precision(n, column):
    printed = TABLE[n][COLUMNS.index(column)]
    value = getattr(spc.constants(n), column)
    if (n, column) == (3, "D4"):
        # §5 prints 2.574 (from the rounded d2, d3: 1 + 3·0.888/1.693 = 2.5735); exact 2.5746.
        assert round(value, 3) == 2.575
        assert abs(value - printed) < 0.001
        return
    assert rounds_to(value, printed, DECIMALS.get(column, 3)), (n, column, value, printed)


def test_d3_for_7_to_10_is_not_the_b3_column_some_tables_print():
    d3s = [round(spc.constants(n).D3, 3) for n in (7, 8, 9, 10)]
    assert d3s == [0.076, 0.136, 0.184, 0.223]
    assert d3s != [0.118, 0.185, 0.239, 0.284]
    assert round(spc.constants(10).A3, 3) == 0.975  # not 0.957
    assert round(spc.constants(2).B4, 3) == 3.267  # not 2.266


def test_closed_forms_for_two():
    assert spc.d2(2) == pytest.approx(2 / math.sqrt(math.pi), abs=1e-10)
    assert spc.d3(2) == pytest.approx(math.sqrt(2 - 4 / math.pi), abs=1e-8)
    assert spc.c4(2) == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)


def test_constants_up_to_25_and_known_values_at_25():
    c = spc.constants(25)
    assert (round(c.d2, 3), round(c.d3, 3), round(c.c4, 4)) == (3.931, 0.708, 0.9896)
    assert (round(c.A2, 3), round(c.D3, 3), round(c.D4, 3)) == (0.153, 0.459, 1.541)
    # monotone in n, as they must be
    d2s = [spc.d2(n) for n in range(2, 26)]
    assert d2s == sorted(d2s)
    assert all(spc.constants(n).D3 == 0.0 for n in range(2, 7))


def test_known_sigma_constants():
    c = spc.constants(2)
    assert round(c.D2, 3) == 3.686
    assert round(c.B6, 3) == 2.606
    assert math.isclose(c.A, 3 / math.sqrt(2))
    c7 = spc.constants(7)
    assert math.isclose(c7.D1, c7.d2 - 3 * c7.d3)
    assert spc.constants(6).D1 == 0.0


def test_constants_are_cached_and_bounded():
    assert spc.constants(5) is spc.constants(5)
    for n in (0, 1, 26):
        with pytest.raises(ValueError, match="subgroup size"):
            spc.constants(n)


SUBGROUPS = [[10.0, 12.0, 11.0], [11.0, 11.0, 14.0], [9.0, 12.0, 12.0]]


def test_xbar_r_from_data():
    chart = spc.xbar_r_limits(SUBGROUPS)
    c = spc.constants(3)
    rbar = (2 + 3 + 3) / 3
    assert chart.kind == "xbar-r"
    assert chart.n == 3
    assert chart.source == "data"
    assert chart.location.centre == pytest.approx(102 / 9)
    assert chart.location.ucl == pytest.approx(102 / 9 + c.A2 * rbar)
    assert chart.location.lcl == pytest.approx(102 / 9 - c.A2 * rbar)
    assert chart.dispersion.ucl == pytest.approx(c.D4 * rbar)
    assert chart.dispersion.lcl == 0.0
    assert chart.sigma == pytest.approx(rbar / c.d2)
    assert chart.location.sigma == pytest.approx(chart.sigma / math.sqrt(3))


def test_xbar_s_from_data():
    chart = spc.xbar_s_limits(SUBGROUPS)
    c = spc.constants(3)
    sds = [1.0, math.sqrt(3.0), math.sqrt(3.0)]
    sbar = sum(sds) / 3
    assert chart.location.ucl == pytest.approx(102 / 9 + c.A3 * sbar)
    assert chart.dispersion.centre == pytest.approx(sbar)
    assert chart.dispersion.ucl == pytest.approx(c.B4 * sbar)
    assert chart.sigma == pytest.approx(sbar / c.c4)


def test_imr_from_data():
    chart = spc.imr_limits([10.0, 11.0, 10.0, 12.0])
    mrbar = (1 + 1 + 2) / 3
    assert chart.location.centre == pytest.approx(10.75)
    assert chart.location.ucl == pytest.approx(10.75 + 3 * mrbar / 1.128379, abs=1e-5)
    assert chart.location.ucl - chart.location.centre == pytest.approx(2.659 * mrbar, abs=1e-3)
    assert chart.dispersion.ucl == pytest.approx(3.267 * mrbar, abs=1e-3)
    assert chart.dispersion.lcl == 0.0


def test_limits_from_a_frozen_baseline():
    x = spc.xbar_r_limits_from_baseline(3.0, 0.15, 5)
    c = spc.constants(5)
    assert x.source == "baseline"
    assert x.location.ucl == pytest.approx(3.0 + 3 * 0.15 / math.sqrt(5))
    assert x.dispersion.centre == pytest.approx(c.d2 * 0.15)
    assert x.dispersion.ucl == pytest.approx(c.D2 * 0.15)
    s = spc.xbar_s_limits_from_baseline(3.0, 0.15, 5)
    assert s.dispersion.centre == pytest.approx(c.c4 * 0.15)
    assert s.dispersion.ucl == pytest.approx(c.B6 * 0.15)
    i = spc.imr_limits_from_baseline(3.0, 0.15)
    assert (i.location.lcl, i.location.ucl) == pytest.approx((2.55, 3.45))
    assert i.dispersion.ucl == pytest.approx(3.686 * 0.15, abs=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: spc.xbar_r_limits([]), "no subgroups"),
        (lambda: spc.xbar_r_limits([[1.0, 2.0], [1.0, 2.0, 3.0]]), "same size"),
        (lambda: spc.xbar_r_limits([[1.0], [2.0]]), "subgroup size"),
        (lambda: spc.xbar_r_limits([[1.0, 1.0], [2.0, 2.0]]), "zero spread"),
        (lambda: spc.xbar_s_limits([[1.0, 1.0], [2.0, 2.0]]), "zero spread"),
        (lambda: spc.xbar_r_limits([[1.0, math.nan]]), "not finite"),
        (lambda: spc.imr_limits([1.0]), "at least 2"),
        (lambda: spc.imr_limits([1.0, 1.0, 1.0]), "zero spread"),
        (lambda: spc.imr_limits_from_baseline(1.0, 0.0), "sigma"),
        (lambda: spc.xbar_r_limits_from_baseline(math.inf, 1.0, 5), "mean"),
    ],
)
def test_chart_limits_refuse_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- run rules: each fires on a crafted sequence, not on a slightly weaker one ---------------
# Points are z-values (centre 0, σ 1). (rule, firing, weaker, index, evidence, direction)
ALT14 = [0.5, -0.5] * 7
RULE_CASES = [
    ("WE1", [0, 0.2, -3.1], [0, 0.2, -2.9], 2, (2,), "down"),
    ("N1", [0, 3.01], [0, 3.0], 1, (1,), "up"),
    ("WE2", [2.5, 0, 2.1], [2.5, 0, 0, 2.1], 2, (0, 2), "up"),
    ("N5", [0, -2.5, -2.1], [0, -2.5, 2.1], 2, (1, 2), "down"),
    ("WE3", [-1.5, -1.5, 0, -1.2, -1.1], [-1.5, -1.5, 0, 0.5, -1.1], 4, (0, 1, 3, 4), "down"),
    ("N6", [0, 1.5, 1.1, 1.2, 1.3], [0, 1.5, 1.1, 1.2, 0.9], 4, (1, 2, 3, 4), "up"),
    ("WE4", [0.3] * 8, [0.3] * 7 + [-0.3], 7, tuple(range(8)), "up"),
    ("N2", [-0.3] * 9, [-0.3] * 8 + [0.0], 8, tuple(range(9)), "down"),
    ("WE5", [0, 0.1, 0.2, 0.3, 0.4, 0.5], [0, 0.1, 0.2, 0.2, 0.4, 0.5], 5, tuple(range(6)), "up"),
    ("N3", [1, 0.5, 0, -0.5, -1, -1.5], [1, 0.5, 0, -0.5, -1], 5, tuple(range(6)), "down"),
    ("WE7", ALT14, ALT14[:13], 13, tuple(range(14)), None),
    ("N4", ALT14, [*ALT14[:12], 0.5, 0.6], 13, tuple(range(14)), None),
    ("WE6", [0.5, -0.5] * 7 + [0.9], [0.5, -0.5] * 7 + [1.0], 14, tuple(range(15)), None),
    ("N7", [0.1] * 15, [0.1] * 14 + [-1.2], 14, tuple(range(15)), None),
    ("WE8", [1.5, -1.5] * 4, [1.5] * 8, 7, tuple(range(8)), None),
    ("N8", [1.5, -1.5] * 4, [1.5, -1.5] * 3 + [1.5, -0.5], 7, tuple(range(8)), None),
]


@pytest.mark.parametrize(
    ("rule", "firing", "weaker", "index", "evidence", "direction"),
    RULE_CASES,
    ids=[c[0] for c in RULE_CASES],
)
def test_rule_fires_on_crafted_sequence_not_on_weaker_one(
    rule, firing, weaker, index, evidence, direction
):
    found = spc.check_rules(firing, 0.0, 1.0, [rule])
    assert [(v.rule, v.index, v.indices, v.direction) for v in found] == [
        (rule, index, evidence, direction)
    ]
    assert found[0].description
    assert spc.check_rules(weaker, 0.0, 1.0, [rule]) == []


def test_rules_scale_with_centre_and_sigma():
    # WE2 on raw values: centre 3.0 µm, σ 0.15 → 2σ below is 2.7.
    points = [3.0, 2.68, 2.95, 2.69]
    found = spc.check_rules(points, 3.0, 0.15, ["WE2"])
    assert [(v.index, v.indices) for v in found] == [(3, (1, 3))]
    assert "below the centre line" in found[0].description
    assert found[0].description.startswith("Western Electric rule 2")


def test_m_of_n_rules_need_no_full_window_at_start_up():
    assert [v.index for v in spc.check_rules([-2.5, -2.1], 0.0, 1.0, ["WE2"])] == [1]
    assert [v.index for v in spc.check_rules([1.5] * 4, 0.0, 1.0, ["WE3"])] == [3]
    assert spc.check_rules([1.5] * 7, 0.0, 1.0, ["WE4"]) == []


def test_a_long_run_is_reported_at_each_point_that_extends_it():
    found = spc.check_rules([-0.3] * 10, 0.0, 1.0, ["WE4"])
    assert [v.index for v in found] == [7, 8, 9]
    assert found[-1].indices == tuple(range(2, 10))


def test_rule_toggles_are_respected():
    # A sequence that trips WE1, WE2, WE3, WE4 and N2 somewhere.
    points = [0.5, 0.5, 1.5, 1.5, 1.5, 2.5, 2.5, 0.5, 0.4, 3.5]
    everything = {v.rule for v in spc.check_rules(points, 0.0, 1.0, spc.RULES)}
    assert {"WE1", "WE2", "WE3", "WE4", "N1", "N2", "N5", "N6"} <= everything
    for chosen in (["WE1"], ["WE2", "WE4"], ["N2"], []):
        got = {v.rule for v in spc.check_rules(points, 0.0, 1.0, chosen)}
        assert got == everything & set(chosen)
    default = {v.rule for v in spc.check_rules(points, 0.0, 1.0)}
    assert default == everything & set(spc.WESTERN_ELECTRIC)


def test_last_only_and_ordering():
    points = [3.5, 0.0, -3.5]
    assert [v.index for v in spc.check_rules(points, 0.0, 1.0, ["WE1"])] == [0, 2]
    assert [v.index for v in spc.check_rules(points, 0.0, 1.0, ["WE1"], last_only=True)] == [2]
    assert spc.check_rules([], 0.0, 1.0) == []


def test_rule_input_errors():
    with pytest.raises(ValueError, match="unknown run rule"):
        spc.check_rules([1.0], 0.0, 1.0, ["WE9"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="sigma"):
        spc.check_rules([1.0], 0.0, 0.0)
    with pytest.raises(ValueError, match="not finite"):
        spc.check_rules([math.nan], 0.0, 1.0)


# z-values on a 0.1 grid offset by 0.05: never on a threshold (0, ±1, ±2, ±3), so rounding
# after an affine transform cannot move a point across one.
Z_VALUES = st.lists(st.integers(-40, 40).map(lambda k: k / 10 + 0.05), min_size=0, max_size=40)
FLIP = {"up": "down", "down": "up", None: None}


@settings(max_examples=150, deadline=None)
@given(
    zs=Z_VALUES,
    centre=st.floats(-1000, 1000),
    sigma=st.floats(1e-3, 1e3),
    scale=st.floats(1e-2, 1e2),
    negate=st.booleans(),
    offset=st.floats(-1000, 1000),
)
def test_rule_detection_is_invariant_under_affine_transforms(
    zs, centre, sigma, scale, negate, offset
):
    points = [centre + sigma * z for z in zs]
    a = -scale if negate else scale
    moved = [a * x + offset for x in points]
    before = spc.check_rules(points, centre, sigma, spc.RULES)
    after = spc.check_rules(moved, a * centre + offset, abs(a) * sigma, spc.RULES)
    expect = [
        (v.rule, v.index, v.indices, FLIP[v.direction] if negate else v.direction) for v in before
    ]
    assert [(v.rule, v.index, v.indices, v.direction) for v in after] == expect
