import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.quality.drift import (
    Baseline,
    Cusum,
    DriftMonitor,
    DriftSettings,
    Ewma,
    baseline_from,
    step,
    z_shift,
)

GOLD = Baseline("thickness/layer_Au", 30, 3.0, 0.15, "2026-01", 1_700_000_000_000_000_000)
LSL = 2.5


def feed(state, xs):
    signals = []
    for x in xs:
        state, signal = step(state, x)
        if signal is not None:
            signals.append(signal)
    return state, signals


# --- baseline ---------------------------------------------------------------------------------


def test_baseline_from_values():
    b = baseline_from([2.9, 3.1, 3.0, 3.2, 2.8], feature="f", version="v1", created_ns=5)
    assert (b.feature, b.n, b.version, b.created_ns) == ("f", 5, "v1", 5)
    assert b.mean == pytest.approx(3.0)
    assert b.sigma == pytest.approx(math.sqrt(0.1 / 4))
    mr = baseline_from(
        [1.0, 2.0, 1.0], feature="f", version="v1", created_ns=0, method="moving-range"
    )
    assert mr.sigma == pytest.approx(1.0 / 1.128379, abs=1e-6)


@pytest.mark.parametrize(
    ("values", "message"),
    [([3.0], "at least 2"), ([3.0, 3.0], "no variation"), ([3.0, math.nan], "not finite")],
)
def test_baseline_from_refuses_degenerate_values(values, message):
    with pytest.raises(ValueError, match=message):
        baseline_from(values, feature="f", version="v1", created_ns=0)


def test_baseline_validates():
    with pytest.raises(ValueError, match="sigma"):
        Baseline("f", 10, 3.0, 0.0, "v1", 0)
    with pytest.raises(ValueError, match="at least 2"):
        Baseline("f", 1, 3.0, 0.1, "v1", 0)


def test_z_shift():
    assert z_shift(2.8, GOLD) == pytest.approx(-4 / 3)
    assert z_shift(3.0, GOLD) == 0.0


# --- CUSUM ------------------------------------------------------------------------------------


def test_lower_cusum_by_hand():
    # μ0 10, σ 2, k 0.5, h 2. Increments (10 − x)/2 − 0.5: 0, 0.5, −1, 1.5, 1.0.
    chart = Cusum(10.0, 2.0, k=0.5, h=2.0)
    state = chart.start()
    stats, sinces = [], []
    signals = []
    for x in [9.0, 8.0, 11.0, 6.0, 7.0]:
        state, signal = step(state, x)
        stats.append(state.statistic)
        sinces.append(state.since)
        signals.append(signal)
    assert stats == pytest.approx([0.0, 0.5, 0.0, 1.5, 2.5])
    assert sinces == [None, 1, None, 3, 3]
    assert signals[:4] == [None] * 4
    last = signals[4]
    assert last is not None
    assert (last.rule, last.index, last.since, last.statistic, last.limit) == (
        "cusum-lower",
        4,
        3,
        pytest.approx(2.5),
        2.0,
    )
    assert state.count == 5


def test_upper_cusum_mirrors_lower():
    up = Cusum(10.0, 2.0, k=0.5, h=2.0, side="upper").start()
    _, signals = feed(up, [11.0, 12.0, 9.0, 14.0, 13.0])
    assert [(s.rule, s.index, s.since) for s in signals] == [("cusum-upper", 4, 3)]


def test_cusum_step_shift_of_one_sigma():
    # x = μ0 − σ adds 1 − k = 0.5 per point: C = 5.0 after 10 points (not > h), 5.5 after 11.
    _, signals = feed(Cusum(3.0, 0.15).start(), [2.85] * 30)
    assert [s.index for s in signals] == [10]


def test_cusum_signals_once_per_crossing():
    chart = Cusum(0.0, 1.0, k=0.5, h=4.0)
    state, signals = feed(chart.start(), [-2.0] * 20)  # crosses at the 3rd point, stays beyond
    assert [s.index for s in signals] == [2]
    state, signals = feed(state, [3.0] * 30)  # back to 0
    assert signals == []
    assert state.statistic == 0.0
    assert state.since is None
    _, signals = feed(state, [-2.0] * 3)
    assert [s.index for s in signals] == [52]


def test_no_alarm_on_constant_data_at_the_mean():
    c, cs = feed(Cusum(3.0, 0.15).start(), [3.0] * 5000)
    e, es = feed(Ewma(3.0, 0.15).start(), [3.0] * 5000)
    assert (cs, es) == ([], [])
    assert c.statistic == 0.0
    assert e.statistic == 3.0


def test_designs_are_validated():
    with pytest.raises(ValueError, match="sigma"):
        Cusum(0.0, 0.0)
    with pytest.raises(ValueError, match="h"):
        Cusum(0.0, 1.0, h=0.0)
    with pytest.raises(ValueError, match="k"):
        Cusum(0.0, 1.0, k=-1.0)
    with pytest.raises(ValueError, match="lambda"):
        Ewma(0.0, 1.0, lam=0.0)
    with pytest.raises(ValueError, match="side"):
        Ewma(0.0, 1.0, side="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        step(Cusum(0.0, 1.0).start(), math.nan)


# --- EWMA -------------------------------------------------------------------------------------


def test_lower_ewma_by_hand():
    # μ0 10, σ 1, λ 0.5, L 2. Z1 = 9.0, Z2 = 8.5.
    # σ_Z1 = √(0.5/1.5·(1 − 0.25)) = 0.5 → limit 9.0 (Z1 on it: not beyond).
    # σ_Z2 = √(1/3·(1 − 0.0625)) = 0.5590 → limit 8.882 > Z2 = 8.5: signal.
    chart = Ewma(10.0, 1.0, lam=0.5, L=2.0)
    assert chart.limit(1) == pytest.approx(9.0)
    assert chart.limit(2) == pytest.approx(10.0 - 2 * math.sqrt(0.3125))
    state, first = step(chart.start(), 8.0)
    assert state.statistic == pytest.approx(9.0)
    assert first is None
    state, second = step(state, 8.0)
    assert state.statistic == pytest.approx(8.5)
    assert second is not None
    assert (second.rule, second.index, second.since) == ("ewma-lower", 1, 0)
    assert second.limit == pytest.approx(chart.limit(2))


def test_upper_ewma():
    chart = Ewma(10.0, 1.0, lam=0.5, L=2.0, side="upper")
    _, signals = feed(chart.start(), [12.0, 12.0])
    assert [(s.rule, s.index) for s in signals] == [("ewma-upper", 1)]
    assert chart.limit(1) == pytest.approx(11.0)


def test_ewma_limits_widen_to_the_asymptote():
    chart = Ewma(3.0, 0.15, lam=0.1, L=2.814)
    widths = [chart.mean - chart.limit(i) for i in range(1, 200)]
    assert widths == sorted(widths)
    assert widths[0] == pytest.approx(2.814 * 0.15 * 0.1)  # σ_Z1 = λσ exactly
    asymptote = chart.mean - chart.asymptotic_limit()
    assert asymptote == pytest.approx(2.814 * 0.15 * math.sqrt(0.1 / 1.9))
    assert all(w <= asymptote for w in widths)
    assert widths[50] < asymptote
    assert widths[-1] == pytest.approx(asymptote, rel=1e-15)
    with pytest.raises(ValueError, match="first point"):
        chart.limit(0)


def test_ewma_step_shift():
    _, signals = feed(Ewma(3.0, 0.15).start(), [2.85] * 50)
    assert len(signals) == 1
    assert signals[0].index < 15


# --- properties -------------------------------------------------------------------------------

VALUES = st.lists(st.floats(-50, 50), max_size=60)


@settings(max_examples=200, deadline=None)
@given(xs=VALUES, k=st.floats(0, 2), h=st.floats(0.1, 10), side=st.sampled_from(["lower", "upper"]))
def test_cusum_never_negative_and_resets_to_zero(xs, k, h, side):
    chart = Cusum(1.0, 2.0, k=k, h=h, side=side)
    state = chart.start()
    for x in xs:
        previous = state
        state, _ = step(state, x)
        move = ((1.0 - x) if side == "lower" else (x - 1.0)) / 2.0 - k
        assert state.statistic >= 0.0
        assert state.statistic == pytest.approx(max(0.0, previous.statistic + move))
        if previous.statistic + move <= 0.0:
            assert state.statistic == 0.0
            assert state.since is None
        else:
            assert state.since == (previous.since if previous.since is not None else previous.count)
        assert state.signalling == (state.statistic > h)


@settings(max_examples=200, deadline=None)
@given(c=st.floats(-1e6, 1e6), lam=st.floats(0.01, 1.0), n=st.integers(1, 200))
def test_ewma_of_a_constant_sequence_is_that_constant(c, lam, n):
    state, signals = feed(Ewma(c, 1.0, lam=lam).start(), [c] * n)
    assert state.statistic == c
    assert signals == []


@settings(max_examples=100, deadline=None)
@given(c=st.floats(-10, 10), lam=st.floats(0.01, 1.0), n=st.integers(1, 100))
def test_ewma_follows_its_closed_form(c, lam, n):
    state, _ = feed(Ewma(0.0, 1.0, lam=lam, L=1e6).start(), [c] * n)
    assert state.statistic == pytest.approx(c * (1 - (1 - lam) ** n), abs=1e-9)


# --- the monitor ------------------------------------------------------------------------------


def lot(mean, seed, parts=50):
    rng = random.Random(seed)
    return [mean + rng.gauss(0.0, GOLD.sigma) for _ in range(parts)]


def flagged(values, monitor_settings=None):
    monitor = DriftMonitor(GOLD, monitor_settings)
    return [a for i, v in enumerate(values) for a in monitor.observe(v, i)]


def test_a_drifting_lot_still_in_spec_is_flagged_while_a_stable_one_is_not():
    # Golden sample 3.0 ± 0.15 µm, minimum 2.5 µm. Bulk at 2.8 µm: the mean is 2σ inside the
    # spec, yet 1.33σ below the baseline. Same part-to-part noise for both lots.
    stable, drifting = lot(3.0, seed=7), lot(2.8, seed=7)
    assert sum(drifting) / 50 > LSL + 0.25
    assert flagged(stable) == []
    alarms = flagged(drifting)
    assert alarms
    assert alarms[0].rule in {"cusum-lower", "ewma-lower"}
    assert alarms[0].index < 25


def test_drifting_lots_are_flagged_far_more_often_than_stable_ones():
    stable = sum(bool(flagged(lot(3.0, seed))) for seed in range(60))
    drifting = sum(bool(flagged(lot(2.8, seed))) for seed in range(60))
    assert drifting == 60
    assert stable <= 12  # ≈ 12 % expected for 50 points at the default settings


def test_alarm_carries_its_evidence():
    values = [3.0] * 5 + [2.85] * 15
    monitor = DriftMonitor(GOLD, DriftSettings(ewma=False, rules=()))
    alarms = [a for i, v in enumerate(values) for a in monitor.observe(v, 1000 + i)]
    assert len(alarms) == 1
    a = alarms[0]
    assert (a.rule, a.index, a.time_ns, a.direction) == ("cusum-lower", 15, 1015, "down")
    assert a.indices == tuple(range(5, 16))
    assert a.times_ns == tuple(range(1005, 1016))
    assert a.values == (2.85,) * 11
    assert a.statistic == pytest.approx(5.5)
    assert a.limit == 5.0
    assert (a.baseline_mean, a.baseline_sigma, a.baseline_version) == (3.0, 0.15, "2026-01")
    fields = a.fields()
    assert fields["severity"] == "warning"
    assert fields["rule"] == "cusum-lower"
    assert fields["evidence_indices"] == ",".join(str(i) for i in range(5, 16))
    assert fields["baseline_version"] == "2026-01"
    assert "CUSUM" in str(fields["message"])
    assert "thickness/layer_Au" in a.description


def test_a_lasting_shift_raises_one_alarm_per_detector():
    values = [3.0] * 5 + [2.6] * 100
    alarms = flagged(values, DriftSettings(rules=("WE1", "WE2", "WE3", "WE4")))
    rules = [a.rule for a in alarms]
    assert sorted(rules) == sorted(set(rules))
    assert {"cusum-lower", "ewma-lower", "WE2", "WE3", "WE4"} <= set(rules)


def test_run_rules_respect_the_monitored_side():
    # after the EWMA's start-up: its early, narrow limits would catch a 4σ spike too
    spike_up, spike_down = [3.0] * 30 + [3.6, 3.0], [3.0] * 30 + [2.4, 3.0]
    assert flagged(spike_up) == []
    assert [a.rule for a in flagged(spike_down)] == ["WE1"]
    both = DriftSettings(side="both")
    assert [(a.rule, a.direction) for a in flagged(spike_up, both)] == [("WE1", "up")]
    upper = DriftSettings(side="upper")
    assert [a.rule for a in flagged(spike_up, upper)] == ["WE1"]
    assert flagged(spike_down, upper) == []
    wear = flagged([3.0] * 3 + [3.2] * 30, upper)
    assert "cusum-upper" in {a.rule for a in wear}


def test_rule_alarm_evidence_and_statistic():
    alarms = flagged([3.0, 2.68, 3.0, 2.69], DriftSettings(cusum=False, ewma=False, rules=("WE2",)))
    assert len(alarms) == 1
    a = alarms[0]
    assert (a.rule, a.index, a.indices, a.values) == ("WE2", 3, (1, 3), (2.68, 2.69))
    assert a.statistic == pytest.approx(z_shift(2.69, GOLD))
    assert a.limit is None
    assert "2 of 3" in a.description


def test_reset_after_corrective_action():
    monitor = DriftMonitor(GOLD)
    for i in range(30):
        monitor.observe(2.8, i)
    assert monitor.statistics()["cusum_lower"] > 5
    monitor.reset()
    assert monitor.statistics()["cusum_lower"] == 0.0
    assert monitor.statistics()["ewma"] == 3.0
    assert monitor.count == 30
    # after the reset the EWMA starts again with its narrow start-up limit
    assert monitor.statistics()["ewma_lcl"] == pytest.approx(3.0 - 2.814 * 0.15 * 0.1)
    alarms = [a for i in range(30, 60) for a in monitor.observe(2.8, i)]
    assert {a.rule for a in alarms} == {"cusum-lower", "ewma-lower"}
    cusum = next(a for a in alarms if a.rule == "cusum-lower")
    assert cusum.indices[0] == 30  # evidence indices keep counting across the reset


def test_reset_with_a_new_baseline():
    monitor = DriftMonitor(GOLD)
    new = Baseline(GOLD.feature, 40, 2.8, 0.15, "2026-02", 0)
    monitor.reset(new)
    assert monitor.baseline is new
    assert [a for i in range(50) for a in monitor.observe(2.8, i)] == []
    with pytest.raises(ValueError, match="watches"):
        monitor.reset(Baseline("force/pull", 40, 2.8, 0.15, "x", 0))


def test_monitor_refuses_bad_input():
    monitor = DriftMonitor(GOLD)
    with pytest.raises(ValueError, match="not finite"):
        monitor.observe(math.inf, 0)
    assert monitor.count == 0
    with pytest.raises(ValueError, match="unknown run rules"):
        DriftSettings(rules=("WE9",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side"):
        DriftSettings(side="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="history"):
        DriftSettings(history=3)
    with pytest.raises(ValueError, match="h"):
        DriftSettings(cusum_h=-1.0)


def test_monitor_charts_and_statistics():
    monitor = DriftMonitor(GOLD, DriftSettings(side="both"))
    assert [c.chart.side for c in monitor.charts] == ["lower", "upper", "lower", "upper"]
    assert set(monitor.statistics()) == {
        "cusum_lower",
        "cusum_upper",
        "ewma",
        "ewma_lcl",
        "ewma_ucl",
    }
