import pytest
from hypothesis import given
from hypothesis import strategies as st

from daq.model import Limits
from daq.quality.judge import judge

TWO_SIDED = Limits(low=33.0, high=37.0, guard=0.5)


@pytest.mark.parametrize(
    ("value", "limits", "status", "margin"),
    [
        (35.0, TWO_SIDED, "pass", 2.0),
        (36.6, TWO_SIDED, "marginal", 0.4),
        (33.2, TWO_SIDED, "marginal", 0.2),
        (37.3, TWO_SIDED, "marginal", -0.3),
        (37.6, TWO_SIDED, "fail", -0.6),
        (30.0, TWO_SIDED, "fail", -3.0),
        (35.0, Limits(low=33.0, high=37.0), "pass", 2.0),
        (37.01, Limits(low=33.0, high=37.0), "fail", -0.01),
        (37.0, Limits(low=33.0, high=37.0), "pass", 0.0),
        # one-sided minimum thickness, 2.5 µm with a 5 % uncertainty of 0.125 µm
        (2.9, Limits(low=2.5, uncertainty=0.125), "pass", 0.4),
        (2.6, Limits(low=2.5, uncertainty=0.125), "marginal", 0.1),
        (2.45, Limits(low=2.5, uncertainty=0.125), "marginal", -0.05),
        (2.3, Limits(low=2.5, uncertainty=0.125), "fail", -0.2),
        (5.0, Limits(high=4.0), "fail", -1.0),
    ],
)
def test_verdicts(value, limits, status, margin):
    v = judge(value, limits)
    assert v.status == status
    assert v.margin == pytest.approx(margin)
    assert (v.low, v.high) == (limits.low, limits.high)


def test_margin_percent():
    assert judge(36.0, TWO_SIDED).margin_pct == pytest.approx(25.0)
    assert judge(3.0, Limits(low=2.5)).margin_pct == pytest.approx(20.0)


def test_no_limits_is_recorded_not_judged():
    assert judge(1.0, None).status == "none"
    assert judge(1.0, Limits()).status == "none"


@given(
    st.floats(-1e3, 1e3),
    st.floats(-1e3, 1e3),
    st.floats(0.001, 100),
    st.floats(0, 10),
)
def test_status_agrees_with_margin(value, low, width, guard):
    v = judge(value, Limits(low=low, high=low + width, guard=guard))
    assert v.margin is not None
    if v.margin < -guard:
        assert v.status == "fail"
    elif v.status == "pass":
        assert v.margin > guard or (guard == 0 and v.margin >= 0)
    inside = low <= value <= low + width
    assert (v.margin >= 0) == inside
