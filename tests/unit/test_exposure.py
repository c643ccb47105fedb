import pytest
from hypothesis import given
from hypothesis import strategies as st

from daq.quality.exposure import ExposureState, observe

S = 1_000_000_000


def run(readings, max_gap_s=5.0):
    state = ExposureState()
    started, ended = [], []
    for t, value, margin in readings:
        state, s, e = observe(state, t * S, value, margin, max_gap_s=max_gap_s)
        started += [s] if s else []
        ended += [e] if e else []
    return state, started, ended


def test_time_in_tolerance_counts():
    state, started, ended = run([(0, 35.0, 2.0), (1, 35.1, 1.9), (2, 34.9, 1.9), (3, 35.0, 2.0)])
    assert state.valid_s == pytest.approx(3.0)
    assert not started and not ended and state.excursions == 0


def test_an_excursion_is_reported_with_its_worst_value_and_does_not_count():
    state, started, ended = run([
        (0, 35.0, 2.0), (1, 35.0, 2.0),
        (2, 32.5, -0.5), (3, 30.1, -2.9), (4, 31.0, -2.0),
        (5, 34.0, 1.0), (6, 35.0, 2.0),
    ])  # fmt: skip
    assert state.valid_s == pytest.approx(2.0)  # 0→1 and 5→6
    assert [s.start_ns for s in started] == [2 * S]
    (e,) = ended
    assert (e.start_ns, e.end_ns, e.worst, e.duration_s) == (2 * S, 5 * S, 30.1, 3.0)
    assert state.excursions == 1 and state.open is None


def test_a_gap_in_the_readings_does_not_count():
    state, _, _ = run([(0, 35.0, 2.0), (1, 35.0, 2.0), (30, 35.0, 2.0), (31, 35.0, 2.0)])
    assert state.valid_s == pytest.approx(2.0)


@given(st.lists(st.tuples(st.floats(0.1, 10), st.floats(-5, 5)), min_size=1, max_size=60))
def test_valid_time_never_exceeds_elapsed_time(steps):
    state, t_ns, first, opened, closed = ExposureState(), 0, None, 0, 0
    for dt, margin in steps:
        t_ns += int(dt * S)
        first = t_ns if first is None else first
        state, s, e = observe(state, t_ns, 35.0 - margin, margin, max_gap_s=20.0)
        opened += s is not None
        closed += e is not None
    assert 0.0 <= state.valid_s <= (t_ns - first) / S + 1e-9
    assert opened - closed == (1 if state.open is not None else 0)
    assert state.excursions == opened
