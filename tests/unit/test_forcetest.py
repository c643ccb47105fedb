"""Test-event detection on synthetic force curves (drivers/forcetest.py), no port involved."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.forcetest import (
    DetectorSettings,
    ForceTestDetector,
    ForceTestSession,
    GaugeOptions,
    HoldProfile,
    parse_level,
)

RATE = 50.0  # points per second, like AOUT50


def curve(*segments, rate=RATE, t0=0.0):
    """Piecewise-linear curve: segments of (duration_s, force_from, force_to)."""
    points = []
    t = t0
    for duration, a, b in segments:
        n = max(1, round(duration * rate))
        for i in range(n):
            points.append((t, a + (b - a) * i / n))
            t += 1 / rate
    return points


def run(points, s):
    det = ForceTestDetector(s)
    events = [e for t, f in points if (e := det.feed(t, f, f"{f:.3f} N")) is not None]
    return det, events


PULL = DetectorSettings(start_threshold=0.5)


def test_soldered_ring_breaks_at_its_peak():
    pts = curve((2.0, 0.0, 40.0), (0.02, 40.0, 40.0), (0.5, 0.1, 0.1))
    _, [ev] = run(pts, PULL)
    assert ev.outcome == "broke" and ev.broke
    assert ev.peak == pytest.approx(40.0)
    assert ev.end_force == ev.peak  # it broke at the peak
    assert ev.time_to_break_s == pytest.approx(2.0 - 0.04, abs=0.03)
    assert ev.peak_raw == "40.000 N"
    assert ev.points == len([p for p in pts if p[0] >= ev.start_t and p[0] <= ev.end_t])


def test_unsoldered_ring_plateaus_then_slips_off():
    # Opens at about 12 N, keeps a slowly falling plateau while the gap opens, then lets go.
    pts = curve((1.0, 0.0, 12.0), (1.0, 12.0, 11.2), (0.4, 0.05, 0.05))
    _, [ev] = run(pts, PULL)
    assert ev.broke
    assert ev.peak == pytest.approx(12.0)
    assert ev.end_force == pytest.approx(11.2, abs=0.05)
    assert ev.peak >= ev.end_force
    assert ev.time_to_break_s == pytest.approx(2.0 - 0.06, abs=0.05)
    assert ev.peak_time_s == pytest.approx(1.0 - 0.06, abs=0.05)


def test_slow_unloading_is_a_release_not_a_break():
    pts = curve((1.0, 0.0, 10.0), (2.0, 10.0, 0.0), (0.2, 0.0, 0.0))
    _, [ev] = run(pts, PULL)
    assert ev.outcome == "released" and not ev.broke
    assert ev.time_to_break_s is None
    assert ev.peak == pytest.approx(10.0)


def test_a_single_noisy_point_does_not_end_the_test():
    pts = curve((1.0, 0.0, 20.0), (1.0, 20.0, 30.0), (0.3, 0.0, 0.0))
    glitch = len(pts) // 3
    pts[glitch] = (pts[glitch][0], 0.0)  # one dropped-out reading mid-ramp
    _, events = run(pts, PULL)
    assert len(events) == 1
    assert events[0].peak == pytest.approx(30.0, abs=0.2)


def test_noise_creates_no_false_breaks_or_tests():
    rng = random.Random(4)
    base = [(i / RATE, rng.gauss(0.0, 0.1)) for i in range(200)]  # idle, below the threshold
    ramp = curve((2.0, 0.0, 25.0), (1.0, 25.0, 25.0), (0.4, 0.0, 0.0), t0=4.0)
    noisy = [(t, f * (1 + rng.gauss(0, 0.03)) + rng.gauss(0, 0.1)) for t, f in ramp]
    tail = [(7.5 + i / RATE, 0.45 + rng.gauss(0, 0.1)) for i in range(100)]  # hovering
    _, events = run(base + noisy + tail, PULL)
    assert len(events) == 1 and events[0].broke
    assert events[0].peak > 24


def test_two_tests_in_a_row_are_two_events():
    one = curve((1.0, 0.0, 10.0), (0.2, 0.0, 0.0))
    two = curve((1.0, 0.0, 14.0), (0.2, 0.0, 0.0), t0=2.0)
    _, events = run(one + two, PULL)
    assert [round(e.peak) for e in events] == [10, 14]


def test_rearm_waits_for_the_force_to_come_down():
    s = DetectorSettings(start_threshold=1.0, rearm_threshold=0.2)
    # Breaks, but the stand still rests at 0.6 (between rearm and start) and wobbles to 1.1.
    pts = curve((1.0, 0.0, 10.0), (0.2, 0.6, 0.6), (0.2, 1.1, 1.1), (0.2, 0.6, 0.6))
    _, events = run(pts, s)
    assert len(events) == 1


def test_a_test_that_never_ends_times_out():
    s = DetectorSettings(start_threshold=0.5, max_test_s=3.0)
    pts = curve((1.0, 0.0, 5.0), (3.0, 5.0, 5.0))
    _, [ev] = run(pts, s)
    assert ev.outcome == "timeout" and "still loaded" in ev.reason
    # expire() ends a test with no points coming
    det2 = ForceTestDetector(s)
    det2.feed(0.0, 2.0)
    assert det2.expire(2.0) is None
    ev2 = det2.expire(3.5)
    assert ev2 is not None and ev2.outcome == "timeout"


# -- holds (16 CFR 1500.51-.53 style: reach the target within 5 s, hold 10 s) ---------------------

HOLD = DetectorSettings(
    start_threshold=0.5, hold=HoldProfile(target=10.0, tolerance=0.5, ramp_max_s=5, hold_s=10)
)


def test_hold_reached_in_time_and_kept_ten_seconds_is_held():
    rng = random.Random(1)
    pts = curve((3.0, 0.0, 10.2), (10.6, 10.2, 10.2), (0.1, 10.2, 0.0), (0.3, 0.0, 0.0))
    pts = [(t, f + rng.gauss(0, 0.05)) for t, f in pts]
    _, [ev] = run(pts, HOLD)
    assert ev.held is True
    assert ev.reached_target_s == pytest.approx(9.5 / 10.2 * 3.0 - 0.15, abs=0.2)
    assert ev.held_s >= 10.0
    assert ev.outcome == "released"  # a drop after a completed hold is the release
    assert ev.reason == ""


def test_hold_that_fails_midway_is_not_held_and_says_when():
    pts = curve((3.0, 0.0, 10.2), (4.0, 10.2, 10.2), (0.5, 0.1, 0.1))
    _, [ev] = run(pts, HOLD)
    assert ev.held is False
    assert ev.broke
    assert ev.held_s == pytest.approx(4.2, abs=0.2)
    assert "fell below 9.5 after" in ev.reason and "the part broke" in ev.reason


def test_ramp_too_slow_is_not_held_with_the_reason():
    pts = curve((7.0, 0.0, 10.2), (11.0, 10.2, 10.2), (2.0, 10.2, 0.0))
    _, [ev] = run(pts, HOLD)
    assert ev.held is False
    assert ev.reached_target_s > 5.0
    assert ev.reason.startswith("ramp too slow: target reached after 6.")
    assert "(limit 5 s)" in ev.reason
    assert ev.held_s >= 10.0  # it was held long enough, but the ramp was too slow


def test_target_never_reached():
    pts = curve((3.0, 0.0, 8.0), (2.0, 8.0, 8.0), (0.5, 0.0, 0.0))
    _, [ev] = run(pts, HOLD)
    assert ev.held is False and ev.held_s == 0.0 and ev.reached_target_s is None
    assert "never reached" in ev.reason


def test_short_dip_during_hold_does_not_end_it():
    pts = curve((3.0, 0.0, 10.2), (10.6, 10.2, 10.2), (0.5, 0.0, 0.0))
    i = next(i for i, (t, _) in enumerate(pts) if t >= 8.0)
    pts[i] = (pts[i][0], 9.3)  # one point below the tolerance band
    _, [ev] = run(pts, HOLD)
    assert ev.held is True


def test_overshoot_beyond_tolerance_is_noted():
    pts = curve((3.0, 0.0, 11.0), (10.6, 11.0, 11.0), (0.5, 0.0, 0.0))
    _, [ev] = run(pts, HOLD)
    assert ev.held is True
    assert "above target + tolerance 10.5" in ev.reason


def test_curve_summary_is_short_and_keeps_the_peak():
    pts = curve((2.0, 0.0, 40.0), (0.02, 40.0, 40.0), (0.5, 0.1, 0.1))
    _, [ev] = run(pts, PULL)
    assert len(ev.curve) <= PULL.curve_points + 4
    assert max(f for _, f in ev.curve) == ev.peak
    text = ev.curve_text()
    assert text.startswith("0.00:") and "40" in text


# -- properties -----------------------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
steps = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(st.tuples(steps, finite), max_size=300),
    fraction=st.floats(min_value=0.05, max_value=0.95),
    confirm=st.integers(min_value=1, max_value=5),
    with_hold=st.booleans(),
)
def test_any_finite_curve_is_handled(points, fraction, confirm, with_hold):
    hold = HoldProfile(target=5.0, tolerance=0.5, ramp_max_s=1.0, hold_s=2.0)
    s = DetectorSettings(
        start_threshold=1.0,
        break_fraction=fraction,
        confirm_points=confirm,
        max_test_s=30.0,
        hold=hold if with_hold else None,
    )
    det = ForceTestDetector(s)
    t = 0.0
    events = []
    for dt, f in points:
        t += dt
        if (e := det.feed(t, f)) is not None:
            events.append(e)
    if (e := det.expire(t + 100.0)) is not None:
        events.append(e)
    for e in events:
        assert e.peak >= e.end_force
        assert e.peak > s.start_threshold
        assert e.points >= 1
        assert e.end_t >= e.start_t
        assert all(math.isfinite(f) for _, f in e.curve)
        if with_hold:
            assert e.held is not None and e.held_s is not None and e.held_s >= 0
            assert not e.held or e.held_s >= hold.hold_s


# -- the session: readings in, one Sample per test out --------------------------------------------


def options(**kw):
    return GaugeOptions(mode="push", start_threshold="0.5 N", **kw)


def feed_all(session, points, unit="N", flags=()):
    out = []
    for t, f in points:
        out += session.feed(t, f, unit, f"{f:.2f} {unit}", 1_000 + int(t * 1e9), flags=flags)
    return out


def test_session_makes_one_sample_per_pull_test():
    session = ForceTestSession("gauge-1", options(channel="jump_ring_pull"))
    pts = curve((2.0, 0.0, -40.0), (0.02, -40.0, -40.0), (0.5, -0.1, -0.1))  # tension < 0
    [s] = feed_all(session, pts)
    assert (s.instrument, s.measurement, s.channel, s.quantity) == (
        "gauge-1",
        "force",
        "jump_ring_pull",
        "force",
    )
    assert s.value == pytest.approx(40.0) and s.unit == "N"
    assert s.raw == "-40.00 N"
    scaled = dict(s.scaled)
    assert scaled["break_force"] == pytest.approx(40.0)
    extra = dict(s.extra)
    assert extra["outcome"] == "broke" and extra["broke"] is True
    assert extra["time_to_break_s"] == pytest.approx(1.96, abs=0.03)
    assert extra["points"] > 90 and isinstance(extra["curve"], str)
    assert "held" not in extra


def test_session_direction_negative_ignores_compression():
    session = ForceTestSession("g", options(direction="negative"))
    assert feed_all(session, curve((1.0, 0.0, 10.0), (0.3, 0.0, 0.0))) == []
    assert len(feed_all(session, curve((1.0, 0.0, -10.0), (0.3, 0.0, 0.0), t0=2.0))) == 1


def test_session_hold_sample_fields():
    hold = {"target": "10 lbF", "tolerance": "0.5 lbF", "ramp_max_s": 5, "hold_s": 10}
    session = ForceTestSession("g", options(channel="stone_retention_center", hold=hold))
    pts = curve((3.0, 0.0, 10.2), (10.6, 10.2, 10.2), (0.1, 10.2, 0.0), (0.3, 0.0, 0.0))
    [s] = feed_all(session, pts, unit="lbF")
    assert s.unit == "lbF" and s.value == pytest.approx(10.2)
    extra = dict(s.extra)
    assert extra["held"] is True
    assert extra["reached_target_s"] == pytest.approx(2.7, abs=0.2)
    assert extra["held_s"] >= 10.0
    assert extra["hold_s"] == 10.0 and extra["ramp_max_s"] == 5.0
    assert dict(s.scaled)["target"] == pytest.approx(10.0)  # thresholds follow the gauge's unit


def test_session_follows_a_unit_change_mid_test_and_flags_it():
    session = ForceTestSession("g", options())
    first = curve((1.0, 0.0, 10.0))  # N
    out = feed_all(session, first, unit="N")
    # the operator switches the gauge to lbF: 10 N is 2.248 lbF; then it breaks at 20 N
    second = [(1.0 + i / RATE, (10.0 + i * 0.2) / 4.4482216152605) for i in range(51)]
    out += feed_all(session, second, unit="lbF")
    out += feed_all(session, [(2.1, 0.01), (2.12, 0.01)], unit="lbF")
    [s] = out
    assert s.unit == "N" and s.value == pytest.approx(20.0, rel=1e-9)
    assert s.flags == ("unit_changed:N->lbF",)
    # the next test is recorded in the new unit, unflagged
    [s2] = feed_all(session, curve((1.0, 0.0, 3.0), (0.3, 0.0, 0.0), t0=3.0), unit="lbF")
    assert s2.unit == "lbF" and s2.flags == ()


def test_session_flags_overload_at_capacity():
    session = ForceTestSession("g", options(capacity="50 N"))
    [s] = feed_all(session, curve((1.0, 0.0, 50.0), (0.04, 50.0, 50.0), (0.3, 0.0, 0.0)))
    assert "overload" in s.flags
    [s] = feed_all(session, curve((1.0, 0.0, 20.0), (0.3, 0.0, 0.0), t0=2.0))
    assert s.flags == ()


# -- options --------------------------------------------------------------------------------------


def test_levels_parse_with_their_unit():
    assert parse_level("10 lbF") == parse_level(" 10lbF ")
    assert parse_level("2 lbFin").to("Nm", "torque") == pytest.approx(0.2259696, rel=1e-6)
    with pytest.raises(ValueError, match="number and a unit"):
        parse_level("ten pounds")


def test_push_mode_needs_a_start_threshold():
    with pytest.raises(ValidationError, match="start_threshold is required"):
        GaugeOptions(mode="push")


def test_a_level_in_the_wrong_quantity_is_refused():
    with pytest.raises(ValidationError, match="start_threshold"):
        GaugeOptions(mode="push", start_threshold="0.5 Nm")
    with pytest.raises(ValidationError, match=r"hold\.target"):
        GaugeOptions(
            mode="push", quantity="torque", start_threshold="0.01 Nm", hold={"target": "10 lbF"}
        )
    ok = GaugeOptions(
        mode="push", quantity="torque", start_threshold="0.01 Nm", hold={"target": "2 lbFin"}
    )
    assert ok.hold is not None and ok.hold.ramp_max_s == 5.0 and ok.hold.hold_s == 10.0


def test_detector_settings_are_checked():
    with pytest.raises(ValueError):
        DetectorSettings(start_threshold=0.0)
    with pytest.raises(ValueError):
        DetectorSettings(start_threshold=1.0, break_fraction=1.5)
    with pytest.raises(ValueError):
        HoldProfile(target=1.0, tolerance=2.0)


def test_session_failed_hold_says_why():
    hold = {"target": "10 lbF", "tolerance": "0.5 lbF"}
    session = ForceTestSession("g", options(channel="jump_ring_hold", hold=hold))
    pts = curve((7.0, 0.0, 10.2), (11.0, 10.2, 10.2), (2.0, 10.2, 0.0))
    [s] = feed_all(session, pts, unit="lbF")
    extra = dict(s.extra)
    assert extra["held"] is False and extra["outcome"] == "released"
    assert extra["test_reason"].startswith("ramp too slow: target reached after 6.")
    assert "reason" not in extra  # the verdict's field in the schema is not overwritten
