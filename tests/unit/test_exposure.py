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


# -- a cabinet: zone, saturator and the operator's daily checks gate the count -----------------

from daq.quality.exposure import CabinetExposure  # noqa: E402


def cabinet(events, max_gap_s=90.0):
    """events: (t_s, kind, value) with kind zone (value = margin), saturator (ok), ph (ok),
    collection_rate (ok)."""
    c = CabinetExposure(max_gap_s=max_gap_s)
    for t, kind, value in events:
        if kind == "zone":
            c.zone(t * S, 35.0 + value, value)
        elif kind == "saturator":
            c.saturator(value)
        else:
            c.manual(kind, t * S, value)
    return c


def test_a_failed_ph_entry_stops_the_count_until_a_good_one():
    zone = [(t, "zone", 1.0) for t in range(0, 601, 60)]
    events = sorted(
        [*zone, (150, "ph", False), (390, "ph", True)], key=lambda e: (e[0], e[1] != "zone")
    )
    c = cabinet(events)
    # 0-120 counted; the intervals 120-180 ... 360-420 each had pH out at some point; 420-600.
    assert c.valid_hours * 3600 == pytest.approx(120 + 180)
    assert c.lost_s["pH"] == pytest.approx(300)
    assert c.lost_s["temperature"] == 0


def test_the_saturator_out_of_band_stops_the_count_and_is_named():
    events = [(0, "zone", 1.0), (60, "zone", 1.0), (90, "saturator", False), (120, "zone", 1.0),
              (150, "saturator", True), (180, "zone", 1.0), (240, "zone", 1.0)]  # fmt: skip
    c = cabinet(events)
    # 60-120 saw the saturator out; 120-180 too (it was out at 120, back at 150).
    assert c.valid_hours * 3600 == pytest.approx(60 + 60)
    assert c.lost_s["saturator"] == pytest.approx(120)


def test_losses_are_blamed_on_temperature_first_and_gaps_are_no_data():
    events = [(0, "zone", 1.0), (60, "zone", -0.5), (120, "zone", 1.0), (180, "zone", 1.0),
              (600, "zone", 1.0), (660, "zone", 1.0)]  # fmt: skip
    c = cabinet(events)
    assert c.valid_hours * 3600 == pytest.approx(120)
    assert c.lost_s["temperature"] == pytest.approx(120)
    assert c.lost_s["no data"] == pytest.approx(420)


def test_missing_daily_checks_are_named():
    c = cabinet([(0, "zone", 1.0), (10, "ph", True)])
    assert c.missing_entries(20 * S) == ["no collection rate entered yet"]
    assert c.missing_entries(30 * 3600 * S) == [
        "pH last entered 30 h ago",
        "no collection rate entered yet",
    ]
    with pytest.raises(ValueError, match="not a salt-spray daily check"):
        c.manual("conductivity", 0, True)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 50),
            st.sampled_from(["zone", "saturator", "ph", "collection_rate"]),
            st.booleans(),
            st.floats(-3, 3),
        ),
        max_size=60,
    )
)
def test_valid_plus_lost_is_the_zone_time_and_never_more(steps):
    c = CabinetExposure(max_gap_s=30.0)
    t = 0
    first = last = None
    for dt, kind, ok, margin in steps:
        t += dt
        if kind == "zone":
            c.zone(t * S, 35.0 + margin, margin)
            first = t if first is None else first
            last = t
        elif kind == "saturator":
            c.saturator(ok)
        else:
            c.manual(kind, t * S, ok)
    span = 0 if first is None else last - first
    assert c.state.valid_s + sum(c.lost_s.values()) == pytest.approx(span)
    assert 0 <= c.state.valid_s <= span
