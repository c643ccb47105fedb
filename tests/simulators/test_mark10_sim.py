"""The Mark-10 simulator over a real pty, read with a plain pyserial client.

Expected bytes come from the manual (INSTRUMENTS_AND_STANDARDS.md §1.1) where it fixes them, and
from the simulator's documented choices (decimals per profile, silent set commands) elsewhere.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from simulators._pty import PtyPort
from simulators.mark10 import (
    MARK10_VOCABULARY,
    PROFILES,
    LoadCurve,
    Mark10Simulator,
    PartRun,
    format_number,
    nice_step,
    running_mark10,
    serve,
)
from simulators.scenario import FaultEntry, Scenario, ScenarioError, load_scenario

pytestmark = pytest.mark.timeout(20)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "simulators" / "scenarios"
QUIET = {"noise_pct_fs": 0.0, "reply_latency_s": 0.0, "latency_jitter_s": 0.0}
CRLF = b"\r\n"


@contextmanager
def gauge(**kwargs) -> Iterator[tuple[Mark10Simulator, serial.Serial]]:
    kwargs.setdefault("model", QUIET)
    with running_mark10(**kwargs) as sim, serial.Serial(sim.path, timeout=0.5) as port:
        yield sim, port


def ask(port: serial.Serial, command: bytes) -> bytes:
    port.write(command)
    return port.read_until(CRLF)


def silence(port: serial.Serial, wait: float = 0.12) -> bytes:
    """Whatever arrives within ``wait`` seconds (b'' when the gauge is quiet)."""
    old = port.timeout
    port.timeout = wait
    try:
        return port.read(4096)
    finally:
        port.timeout = old


def settle(sim: Mark10Simulator, until: float, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while sim.elapsed() < until:
        assert time.monotonic() < deadline, "simulator clock did not advance"
        time.sleep(0.01)


def wait_for(condition: Callable[[], bool], limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def started(sim: Mark10Simulator) -> PartRun:
    """The first part test, once the scenario's timer has started it."""
    deadline = time.monotonic() + 5.0
    while not sim.runs:
        assert time.monotonic() < deadline, "the scripted test never started"
        time.sleep(0.01)
    return sim.runs[0]


def poll(port: serial.Serial, seconds: float, command: bytes = b"?C\r") -> list[tuple[float, str]]:
    readings = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        readings.append((time.monotonic(), ask(port, command).decode().strip()))
    return readings


def value(line: str | bytes) -> float:
    text = line.decode() if isinstance(line, bytes) else line
    return float(text.split()[0])


# --- codecs --------------------------------------------------------------------------------------


def test_nice_step_and_format_number():
    assert nice_step(0.1) == 0.1
    assert nice_step(0.02248) == 0.05
    assert nice_step(10.197) == 20.0
    assert nice_step(0.00010197) == 0.0002
    assert format_number(-80.04, 0.1) == "-80.0"
    assert format_number(-0.04, 0.1) == "0.0"
    assert format_number(4.2849, 0.001) == "4.285"
    assert format_number(-18.78, 0.01, sign=False) == "18.78"
    assert format_number(10197.0, 20.0) == "10200"


def test_load_curve_mean_and_splice():
    curve = LoadCurve()
    curve.splice(1.0, [(2.0, -10.0), (3.0, -10.0), (3.5, 0.0)])
    assert curve.value(0.5) == 0.0
    assert curve.value(1.5) == pytest.approx(-5.0)
    assert curve.mean(2.0, 3.0) == pytest.approx(-10.0)
    assert curve.mean(1.0, 2.0) == pytest.approx(-5.0)
    assert curve.knots_between(1.0, 3.5) == [2.0, 3.0]
    curve.splice(2.5, [(2.6, 0.0)])  # a new test replaces the rest of the old one
    assert curve.value(3.0) == 0.0


def test_profiles_offer_their_native_unit():
    for profile in PROFILES.values():
        assert profile.native_unit in profile.units
        assert profile.step(profile.native_unit) == profile.resolution


# --- transcripts ---------------------------------------------------------------------------------

FORCE_TRANSCRIPT: list[tuple[bytes, bytes | None]] = [
    (b"?\r", b"0.0 N\r\n"),
    (b"?C\r\n", b"0.0 N\r\n"),  # CR-LF accepted, the LF ignored
    (b"\n?PT\r", b"0.0 N\r\n"),
    (b"?PC\r", b"0.0 N\r\n"),
    (b"?A\r", b"0.0 N\r\n"),
    (b"LIST\r", b"V1.00;N;CUR;FLTC8;FLTP1;AOUT00;AOFF5;FULL;MIT;POL;B0\r\n"),
    (b"RN\r", b"Series 5\r\n"),
    (b"RM\r", b"M5-100\r\n"),
    (b"RV\r", b"1.00\r\n"),
    (b"RS\r", b"5100000\r\n"),
    (b"LB\r", None),
    (b"?\r", b"0.00 lbF\r\n"),
    (b"OZ\r", None),
    (b"?\r", b"0.0 ozF\r\n"),
    (b"KG\r", None),
    (b"?\r", b"0.00 kgF\r\n"),
    (b"G\r", None),
    (b"?\r", b"0 gF\r\n"),
    (b"KN\r", None),
    (b"?\r", b"0.0000 kN\r\n"),
    (b"N\r", None),
    (b"NUM\r", None),
    (b"?\r", b"0.0\r\n"),
    (b"FULL\r", None),
    (b"PT\r", None),
    (b"PC\r", None),
    (b"CUR\r", None),
    (b"CLR\r", None),
    (b"Z\r", None),
    (b"FLTC4\r", None),
    (b"FLTP0\r", None),
    (b"AOFF0\r", None),
    (b"IPOL1\r", None),
    (b"MITD\r", None),
    (b"SPH100\r", None),
    (b"SPL-20.5\r", None),
    (b"SPHD\r", None),
    (b"SPLD\r", None),
    (b"SAVE\r", None),
    (b"LIST\r", b"V1.00;N;CUR;FLTC4;FLTP0;AOUT00;AOFF0;FULL;MITD;IPOL;B0\r\n"),
    (b"OPOL1\r", None),
    (b"LIST\r", b"V1.00;N;CUR;FLTC4;FLTP0;AOUT00;AOFF0;FULL;MITD;OPOL;B0\r\n"),
    # *10 illegal command
    (b"XYZ\r", b"*10\r\n"),
    (b"lb\r", b"*10\r\n"),
    (b"MEM\r", b"*10\r\n"),
    # *11 not applicable: torque commands, a unit this capacity does not offer, ?ET
    (b"?PCW\r", b"*11\r\n"),
    (b"?PCCW\r", b"*11\r\n"),
    (b"PCW\r", b"*11\r\n"),
    (b"LBIN\r", b"*11\r\n"),
    (b"NM\r", b"*11\r\n"),
    (b"MN\r", b"*11\r\n"),
    (b"?ET\r", b"*11\r\n"),
    # *12 invalid specifier
    (b"AOUT3\r", b"*12\r\n"),
    (b"FLTC\r", b"*12\r\n"),
    (b"FLTCX\r", b"*12\r\n"),
    (b"IPOL2\r", b"*12\r\n"),
    (b"SPHabc\r", b"*12\r\n"),
    # *22 value too large
    (b"AOUT300\r", b"*22\r\n"),
    (b"FLTC11\r", b"*22\r\n"),
    (b"AOFF31\r", b"*22\r\n"),
    (b"SPH600\r", b"*22\r\n"),
]


def test_force_transcript():
    with gauge() as (_, port):
        for sent, expected in FORCE_TRANSCRIPT:
            port.write(sent)
            if expected is None:
                assert silence(port, 0.03) == b"", f"{sent!r} should get no reply"
            else:
                assert port.read_until(CRLF) == expected, f"after {sent!r}"


def test_readings_under_load_in_every_unit_sign_and_format():
    with gauge() as (sim, port):
        run = sim.start_test("hold", target=100.0, unit="N", ramp_s=0.05, hold_s=30.0)
        settle(sim, run.start + 0.15)
        transcript = [
            (b"?C\r", b"-100.0 N\r\n"),  # tension is negative
            (b"LB\r?C\r", b"-22.50 lbF\r\n"),
            (b"KG\r?C\r", b"-10.20 kgF\r\n"),
            (b"G\r?C\r", b"-10200 gF\r\n"),
            (b"OZ\r?C\r", b"-359.5 ozF\r\n"),
            (b"KN\r?C\r", b"-0.1000 kN\r\n"),
            (b"N\rNUM\r?C\r", b"-100.0\r\n"),
            (b"FULL\rIPOL1\r?C\r", b"100.0 N\r\n"),
            (b"IPOL0\rOPOL1\r?C\r", b"100.0 N\r\n"),
            (b"OPOL0\r?PT\r", b"-100.0 N\r\n"),
            (b"?PC\r", b"0.0 N\r\n"),
            (b"?A\r", b"-"),  # the mean since power-on is a ramp-diluted tension
        ]
        for sent, expected in transcript:
            got = ask(port, sent)
            assert got.startswith(expected), f"after {sent!r}: {got!r}"
        assert -100.0 < value(ask(port, b"?A\r")) < -50.0


def test_compression_is_positive_and_sph_checks_the_current_unit():
    with gauge(profile="M5-2") as (sim, port):
        run = sim.start_test(
            "hold", target=4.285, unit="N", ramp_s=0.05, hold_s=30, direction="compression"
        )
        settle(sim, run.start + 0.15)
        assert ask(port, b"?C\r") == b"4.285 N\r\n"  # the manual's own example
        assert ask(port, b"SPH11\r") == b"*22\r\n"  # above the 10 N capacity
        assert ask(port, b"LB\r?C\r") == b"0.9635 lbF\r\n"
        assert ask(port, b"MN\r?C\r") == b"4285 mN\r\n"
        assert ask(port, b"KN\r") == b"*11\r\n"  # not offered by a 10 N gauge


def test_torque_transcript():
    with gauge(profile="TT01-12") as (sim, port):
        steps: list[tuple[bytes, bytes | None]] = [
            (b"?\r", b"0.00 lbFin\r\n"),
            (b"RN\r", b"TT01\r\n"),
            (b"RM\r", b"TT01-12\r\n"),
            (b"LIST\r", b"V1.00;LBFIN;CUR;FLTC8;FLTP1;AOUT00;AOFF5;FULL;MIT;POL;B0\r\n"),
            (b"?PT\r", b"*11\r\n"),
            (b"?PC\r", b"*11\r\n"),
            (b"PT\r", b"*11\r\n"),
            (b"LB\r", b"*11\r\n"),
            (b"N\r", b"*11\r\n"),
            (b"KGM\r", b"*11\r\n"),
        ]
        for sent, expected in steps:
            assert ask(port, sent) == expected, sent
        run = sim.start_test("hold", target=2.0, unit="lbFin", ramp_s=0.05, hold_s=30)  # clockwise
        settle(sim, run.start + 0.15)
        assert ask(port, b"?C\r") == b"2.00 lbFin\r\n"
        assert ask(port, b"NM\r?C\r") == b"0.226 Nm\r\n"
        assert ask(port, b"NCM\r?C\r") == b"22.6 Ncm\r\n"
        assert ask(port, b"NMM\r?C\r") == b"226 Nmm\r\n"
        assert ask(port, b"OZIN\r?C\r") == b"32.0 ozFin\r\n"
        assert ask(port, b"LBFT\r?C\r") == b"0.167 lbFft\r\n"
        assert ask(port, b"KGMM\r?C\r") == b"23.0 kgFmm\r\n"
        assert ask(port, b"GCM\r?C\r") == b"2300 gFcm\r\n"
        assert ask(port, b"LBIN\r?PCW\r") == b"2.00 lbFin\r\n"
        assert ask(port, b"?PCCW\r") == b"0.00 lbFin\r\n"
        assert ask(port, b"PCW\r?\r") == b"2.00 lbFin\r\n"
        port.write(b"PCCW\rLIST\r")
        assert (
            port.read_until(CRLF)
            == b"V1.00;LBFIN;PCCW;FLTC8;FLTP1;AOUT00;AOFF5;FULL;MIT;POL;B0\r\n"
        )


def test_ack_option_answers_set_commands():
    with gauge(model={**QUIET, "ack": "R"}) as (_, port):
        assert ask(port, b"LB\r") == b"R\r\n"
        assert ask(port, b"LBIN\r") == b"*11\r\n"


# --- peaks, zero, filter, noise ------------------------------------------------------------------


def test_peak_latches_until_clr_and_z_zeroes():
    with gauge() as (sim, port):
        assert ask(port, b"FLTP0\r?PT\r") == b"0.0 N\r\n"
        run = sim.start_test("jump_ring", break_n=80.0, rate_n_per_s=800.0)
        settle(sim, run.end + 0.1)
        assert ask(port, b"?C\r") == b"0.0 N\r\n"  # the ring broke, the force is gone
        assert ask(port, b"?PT\r") == b"-80.0 N\r\n"  # the peak stays
        assert ask(port, b"PT\r?\r") == b"-80.0 N\r\n"
        assert ask(port, b"?PC\r") == b"0.0 N\r\n"
        assert ask(port, b"CLR\r?PT\r") == b"0.0 N\r\n"
        sim.start_test("hold", target=50.0, unit="N", ramp_s=0.05, hold_s=0.3, release_s=0.05)
        settle(sim, sim.runs[-1].start + 0.15)
        assert ask(port, b"CUR\rZ\r?C\r") == b"0.0 N\r\n"  # zeroed under load
        assert ask(port, b"?PT\r") == b"0.0 N\r\n"  # and the peaks cleared
        settle(sim, sim.runs[-1].end + 0.1)
        assert ask(port, b"?C\r") == b"50.0 N\r\n"  # unloading now reads as compression


def test_peak_is_never_below_a_reading_already_sent():
    with gauge(model={"reply_latency_s": 0.0, "latency_jitter_s": 0.0}) as (sim, port):
        run = sim.start_test("jump_ring", rate_n_per_s=600.0)
        readings = poll(port, run.end - sim.elapsed() + 0.05)
        lowest = min(value(text) for _, text in readings)
        peak = value(ask(port, b"?PT\r"))
        assert peak <= lowest
        assert peak == pytest.approx(run.peak, abs=2.0)


def test_filter_lag_fltc10_vs_fltc0():
    with gauge() as (sim, port):
        run = sim.start_test("hold", target=400.0, unit="N", ramp_s=0.4, hold_s=5)
        settle(sim, run.start + 0.15)
        fast = value(ask(port, b"FLTC0\r?C\r"))
        slow = value(ask(port, b"FLTC10\r?C\r"))
        # 2^10 samples at 7 kHz average the last 146 ms: the reading lags ~73 ms of ramp.
        assert slow > fast + 30.0


def test_noise_is_about_0_05_percent_of_full_scale():
    with gauge(model={"reply_latency_s": 0.0, "latency_jitter_s": 0.0}) as (_, port):
        readings = [value(text) for _, text in poll(port, 0.6)]
        spread = statistics.pstdev(readings)
        assert 0.1 < spread < 0.5  # 0.05 % of 500 N = 0.25 N, quantised to 0.1 N
        assert all(round(r * 10) == pytest.approx(r * 10) for r in readings)


def test_seed_gives_the_same_parts_and_noise():
    scenario = Scenario(faults=(FaultEntry("jump_ring", 0.0, params={"soldered": True}),))
    a = Mark10Simulator(seed=5, scenario=scenario)
    b = Mark10Simulator(seed=5, scenario=scenario)
    c = Mark10Simulator(seed=6, scenario=scenario)
    for sim in (a, b, c):
        sim.model.start_test(0.0, "jump_ring", sim._checked_test_params("jump_ring", {}, where=""))
    assert a.runs[0].peak == b.runs[0].peak != c.runs[0].peak
    times = [0.013 * i for i in range(50)]
    assert [a.model.reading(t) for t in times] == [b.model.reading(t) for t in times]
    assert [a.model.reading(t) for t in times] != [c.model.reading(t) for t in times]


def test_seed_gives_the_same_peak_on_the_wire():
    scenario = Scenario(faults=(FaultEntry("prong", 0.05, params={"rate_n_per_s": 600.0}),))
    peaks = []
    for _ in range(2):
        with gauge(seed=9, scenario=scenario) as (sim, port):
            run = started(sim)
            settle(sim, run.end + 0.05)
            peaks.append(ask(port, b"?PC\r"))
    assert peaks[0] == peaks[1] != b"0.0 N\r\n"


# --- part tests ----------------------------------------------------------------------------------


def test_unsoldered_ring_opens_at_a_fraction_with_a_plateau():
    with gauge(model={"reply_latency_s": 0.0, "latency_jitter_s": 0.0, "noise_pct_fs": 0.0}) as (
        sim,
        port,
    ):
        port.write(b"FLTP0\rFLTC0\r")  # no averaging: see the curve as it is
        params = {"spread_n": 0.0, "rate_n_per_s": 800.0, "plateau_s": 0.25}
        soldered = sim.start_test("jump_ring", soldered=True, **params)
        curve_soldered = poll(port, soldered.end - sim.elapsed() + 0.05)
        peak_soldered = value(ask(port, b"?PT\rCLR\r"))
        unsoldered = sim.start_test("jump_ring", soldered=False, **params)
        curve_unsoldered = poll(port, unsoldered.end - sim.elapsed() + 0.05)
        peak_unsoldered = value(ask(port, b"?PT\r"))
    assert soldered.outcome == "broke" and unsoldered.outcome == "opened"
    assert peak_soldered == pytest.approx(-80.0, abs=0.1)
    assert 0.25 <= peak_unsoldered / peak_soldered <= 0.45
    assert value(curve_soldered[-1][1]) == 0.0 and value(curve_unsoldered[-1][1]) == 0.0

    def time_near_peak(curve: list[tuple[float, str]], peak: float) -> float:
        near = [t for t, text in curve if value(text) <= 0.85 * peak]
        return max(near) - min(near)

    assert time_near_peak(curve_unsoldered, peak_unsoldered) >= 0.2  # the plateau
    assert time_near_peak(curve_soldered, peak_soldered) < 0.05  # a clean break


def test_shared_prongs_push_out_at_less_force_than_individual_settings():
    with gauge() as (sim, port):
        port.write(b"FLTP0\r")
        individual = sim.start_test("prong", setting="individual", spread_n=0, rate_n_per_s=900)
        settle(sim, individual.end + 0.02)
        peak_individual = value(ask(port, b"?PC\rCLR\r"))
        shared = sim.start_test("prong", setting="shared", spread_n=0, rate_n_per_s=900)
        settle(sim, shared.end + 0.06)  # past FLTC8's 37 ms of averaging
        peak_shared = value(ask(port, b"?PC\r"))
        assert ask(port, b"?C\r") == b"0.0 N\r\n"
    assert peak_individual == pytest.approx(60.0, abs=0.1)  # compression is positive
    assert 0.45 <= peak_shared / peak_individual <= 0.65


def stream(port: serial.Serial, seconds: float) -> list[tuple[float, bytes]]:
    lines = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        line = port.read_until(CRLF)
        if line:
            lines.append((time.monotonic(), line))
    return lines


def test_tension_hold_passes_or_fails_seen_in_the_aout_stream():
    hold = {"target": 10.0, "unit": "lbF", "ramp_s": 0.2, "hold_s": 0.4, "release_s": 0.1}
    with gauge() as (sim, port):
        port.timeout = 0.1
        port.write(b"LB\rAOUT50\r")
        passing = sim.start_test("hold", **hold)
        held = stream(port, passing.end - sim.elapsed() + 0.1)
        failing = sim.start_test("hold", **hold, fail_after_s=0.1)
        failed = stream(port, failing.end - sim.elapsed() + 0.1)
        port.write(b"AOUT0\r")
    assert passing.outcome == "held" and failing.outcome == "failed"
    at_target = [t for t, line in held if line == b"-10.00 lbF\r\n"]
    assert at_target and max(at_target) - min(at_target) >= 0.3  # the 0.4 s hold
    assert held[-1][1] == b"0.00 lbF\r\n"  # released
    at_target = [t for t, line in failed if line == b"-10.00 lbF\r\n"]
    assert at_target and max(at_target) - min(at_target) < 0.2  # let go 0.1 s into the hold
    assert failed[-1][1] == b"0.00 lbF\r\n"


def test_hold_that_fails_on_the_ramp_and_torque_both_directions():
    with gauge(profile="TT01-12") as (sim, port):
        ccw = sim.start_test(
            "hold", target=2.0, unit="lbFin", ramp_s=0.1, hold_s=0.1, direction="ccw"
        )
        settle(sim, ccw.end + 0.05)
        assert ask(port, b"?PCCW\r") == b"-2.00 lbFin\r\n"
        early = sim.start_test("hold", target=2.0, unit="lbFin", ramp_s=0.1, fail_at=1.2)
        settle(sim, early.end + 0.05)
        assert early.outcome == "failed"
        assert ask(port, b"CLR\r?PCW\r") == b"0.00 lbFin\r\n"  # cleared after the first part
        assert sim.runs[-1].peak == pytest.approx(1.2 * 0.1129848, rel=1e-6)


def test_scenario_starts_tests_and_a_force_test_needs_a_force_gauge():
    scenario = Scenario(
        faults=(FaultEntry("jump_ring", 0.1, params={"break_n": 30.0, "rate_n_per_s": 600.0}),)
    )
    with gauge(scenario=scenario) as (sim, port):
        settle(sim, started(sim).end + 0.05)
        assert ask(port, b"FLTP0\r?PT\r") == b"-30.0 N\r\n"
        assert [run.outcome for run in sim.runs] == ["broke"]
    with pytest.raises(ScenarioError, match="force gauge"):
        Mark10Simulator(profile="TT01-12", scenario=scenario)
    with pytest.raises(ScenarioError, match="not a force unit"):
        Mark10Simulator().start_test("hold", target=2, unit="lbFin")


# --- AOUT streaming and pacing -------------------------------------------------------------------


def test_aout_streams_at_about_the_requested_rate_and_stops():
    with gauge() as (_, port):
        port.timeout = 0.2
        port.write(b"AOUT10\r")
        lines = stream(port, 1.0)
        assert 7 <= len(lines) <= 13
        assert all(line == b"0.0 N\r\n" for _, line in lines)
        port.write(b"AOUT50\r")
        port.reset_input_buffer()
        lines = stream(port, 0.5)
        assert 18 <= len(lines) <= 32
        port.write(b"AOUT0\r")
        time.sleep(0.05)
        port.reset_input_buffer()
        assert silence(port, 0.2) == b""


def test_aout_from_model_and_list_reports_it():
    with gauge(model={**QUIET, "aout": 25}) as (_, port):
        port.write(b"AOUT0\r")
        time.sleep(0.05)
        port.reset_input_buffer()
        assert ask(port, b"LIST\r").split(b";")[5] == b"AOUT00"
        port.write(b"AOUT25\r")
        time.sleep(0.02)
        port.reset_input_buffer()
        port.write(b"LIST\r")
        lines = [port.read_until(CRLF) for _ in range(12)]
        assert any(b";AOUT25;" in line for line in lines)


def test_aout_stream_interleaves_with_replies():
    with gauge() as (_, port):
        port.write(b"AOUT250\r")
        time.sleep(0.05)
        port.write(b"RN\r")
        lines = [port.read_until(CRLF) for _ in range(30)]
        port.write(b"AOUT0\r")
        assert b"Series 5\r\n" in lines
        assert lines.count(b"0.0 N\r\n") >= 5


def test_baud_pacing_slows_replies_and_drops_stream_lines():
    with gauge(baud=1200) as (_, port):
        start = time.monotonic()
        assert ask(port, b"RN\r") == b"Series 5\r\n"
        assert time.monotonic() - start >= 0.07  # 10 bytes at 1200 baud = 83 ms
    with gauge(baud=9600) as (sim, port):
        port.timeout = 0.1
        port.write(b"AOUT250\r")
        lines = stream(port, 0.5)
        port.write(b"AOUT0\r")
        # 7-byte lines at 9600 baud: at most ~137/s get through, the rest are dropped.
        assert 20 <= len(lines) <= 80
        assert sim.stream_dropped > 20


# --- fault knobs ---------------------------------------------------------------------------------


def test_fault_no_reply():
    with gauge() as (sim, port):
        sim.set_fault("no_reply")
        port.write(b"?C\r")
        assert silence(port, 0.2) == b""
        sim.clear_faults()
        assert ask(port, b"?C\r") == b"0.0 N\r\n"


def test_fault_late_reply():
    with gauge() as (sim, port):
        sim.set_fault("late_reply", delay_s=0.3)
        start = time.monotonic()
        assert ask(port, b"RN\r") == b"Series 5\r\n"
        assert time.monotonic() - start >= 0.28


def test_fault_partial_line_split_and_no_terminator():
    with gauge() as (sim, port):
        sim.set_fault("partial_line", mode="split", gap_s=0.3)
        port.write(b"RN\r")
        first = silence(port, 0.15)
        assert first == b"Serie"
        assert port.read_until(CRLF) == b"s 5\r\n"
        sim.clear_faults()
        sim.set_fault("partial_line", mode="no_terminator")
        port.write(b"RN\rRM\r")
        assert silence(port, 0.15) == b"Series 5M5-100"


def test_fault_garbage_before_and_inside():
    with gauge() as (sim, port):
        sim.set_fault("garbage", where="before", content="nul", count=3)
        assert ask(port, b"RN\r") == b"\x00\x00\x00Series 5\r\n"
        sim.set_fault("garbage", where="inside", content="ff", count=2)
        assert ask(port, b"RN\r") == b"Seri\xff\xffes 5\r\n"
        sim.set_fault("garbage", where="before", content="noise", count=6)
        noisy = ask(port, b"RN\r")
        assert noisy.endswith(b"Series 5\r\n") and len(noisy) == 16
        assert b"\r" not in noisy[:6] and b"\n" not in noisy[:6]


def test_fault_cr_only_line_endings():
    with gauge() as (sim, port):
        sim.set_fault("cr_only")
        port.write(b"RN\r")
        assert silence(port, 0.15) == b"Series 5\r"


def test_fault_overload_pins_the_reading_and_the_peak():
    with gauge() as (sim, port):
        sim.set_fault("overload", side="tension")
        assert ask(port, b"?C\r") == b"-500.0 N\r\n"
        assert ask(port, b"LB\r?C\r") == b"-112.40 lbF\r\n"
        sim.clear_faults()
        assert ask(port, b"N\r?C\r") == b"0.0 N\r\n"
        assert ask(port, b"?PT\r") == b"-500.0 N\r\n"  # latched until CLR
        sim.set_fault("overload", side="compression")
        assert ask(port, b"?C\r") == b"500.0 N\r\n"
    with gauge(profile="M5-2") as (sim, port):  # a real overload: 80 N on a 10 N gauge
        run = sim.start_test("jump_ring", rate_n_per_s=900)
        settle(sim, run.end + 0.05)
        assert ask(port, b"?PT\r") == b"-10.000 N\r\n"


def test_fault_panel_unit_changes_the_token_without_a_command():
    scenario = Scenario(faults=(FaultEntry("panel_unit", 0.15, params={"unit": "kgF"}),))
    with gauge(scenario=scenario) as (sim, port):
        assert ask(port, b"?C\r") == b"0.0 N\r\n"
        wait_for(lambda: sim.unit == "kgF")
        assert ask(port, b"?C\r") == b"0.00 kgF\r\n"
        sim.set_fault("panel_unit", unit="lbF")
        assert ask(port, b"?C\r") == b"0.00 lbF\r\n"
        with pytest.raises(ValueError, match="not offered"):
            sim.set_fault("panel_unit", unit="mN")


def test_fault_panel_zero_and_press_zero():
    with gauge() as (sim, port):
        run = sim.start_test("hold", target=20.0, unit="N", ramp_s=0.05, hold_s=10)
        settle(sim, run.start + 0.15)
        assert ask(port, b"?C\r") == b"-20.0 N\r\n"
        sim.set_fault("panel_zero")
        assert ask(port, b"?C\r") == b"0.0 N\r\n"
        assert ask(port, b"?PT\r") == b"0.0 N\r\n"


def test_fault_interleave_and_duplicate():
    with gauge() as (sim, port):
        sim.set_fault("interleave", count=2)
        port.write(b"RN\r")
        assert [port.read_until(CRLF) for _ in range(3)] == [
            b"0.0 N\r\n",
            b"0.0 N\r\n",
            b"Series 5\r\n",
        ]
        sim.clear_faults()
        sim.set_fault("duplicate")
        port.write(b"RN\r")
        assert silence(port, 0.15) == b"Series 5\r\nSeries 5\r\n"


def test_vanish_and_come_back_on_a_new_path(tmp_path: Path):
    seen: list[str | None] = []
    path_file = tmp_path / "mark10.port"
    link = tmp_path / "by-id"
    with running_mark10(
        model=QUIET, path_file=path_file, link_path=link, on_path=seen.append
    ) as sim:
        first = sim.path
        assert first is not None and path_file.read_text() == first + "\n"
        assert os.path.realpath(link) == first
        with serial.Serial(str(link), timeout=0.5) as port:
            assert ask(port, b"RN\r") == b"Series 5\r\n"
            sim.set_fault("vanish", new_path=True)
            assert sim.path is None and path_file.read_text() == "" and not link.exists()
            with pytest.raises(serial.SerialException):
                port.read(1)
            with pytest.raises(serial.SerialException):
                port.write(b"?C\r")
            sim.clear_faults()
            second = sim.path
            assert second is not None and second != first
        assert path_file.read_text() == second + "\n"
        with serial.Serial(second, timeout=0.5) as port:
            assert ask(port, b"?C\r") == b"0.0 N\r\n"
        assert seen == [first, None, second]
        assert sim.port.generation == 1


def test_scripted_vanish_comes_back_when_the_window_ends(tmp_path: Path):
    scenario = Scenario(faults=(FaultEntry("vanish", 0.1, 0.2, params={}),))
    path_file = tmp_path / "port"
    with running_mark10(model=QUIET, scenario=scenario, path_file=path_file) as sim:
        with serial.Serial(sim.path, timeout=0.5) as port:
            wait_for(lambda: sim.path is None)
            with pytest.raises(serial.SerialException):
                port.read(1)
        wait_for(lambda: path_file.read_text() != "")
        path = path_file.read_text().strip()
        assert path and path == sim.path  # the old client closed: the kernel may reuse the path
        with serial.Serial(path, timeout=0.5) as port:
            assert ask(port, b"RM\r") == b"M5-100\r\n"


def test_pty_port_start_stop_are_bounded_and_idempotent():
    received: list[bytes] = []
    port = PtyPort(received.append, name="echo")
    path = port.start(timeout=2.0)
    with serial.Serial(path, timeout=0.5) as client:
        client.write(b"hello")
        deadline = time.monotonic() + 2.0
        while b"".join(received) != b"hello" and time.monotonic() < deadline:
            time.sleep(0.01)
        port.send(b"world", delay=0.05)
        assert client.read(5) == b"world"
    port.stop(timeout=2.0)
    port.stop(timeout=2.0)
    assert b"".join(received) == b"hello"
    with pytest.raises(ValueError, match="baud"):
        PtyPort(received.append, baud=0)


# --- scenarios -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pull_tests.toml", "torque_holds.toml"])
def test_example_scenarios_load_and_run(name: str):
    scenario = load_scenario(SCENARIOS / name, MARK10_VOCABULARY)
    assert scenario.faults and scenario.description
    with gauge(scenario=scenario, model={"aout": 0}) as (sim, port):
        assert ask(port, b"RM\r") == f"{sim.profile.model}\r\n".encode()


def test_bad_scenarios_are_reported_with_their_keys(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "schema = 1\n"
        '[model]\nprofile = "M9-1"\nnoise = 1\n'
        '[[fault]]\nkind = "late_reply"\nstart = 1.0\ndelay_s = -2\n'
        '[[fault]]\nkind = "wobble"\nstart = 2.0\n'
        '[[fault]]\nkind = "garbage"\nstart = 3.0\ncolour = "red"\n'
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad, MARK10_VOCABULARY)
    text = str(info.value)
    for needle in ("delay_s", "wobble", "colour", "profile", "noise"):
        assert needle in text
    timed_test = tmp_path / "timed.toml"
    timed_test.write_text(
        'schema = 1\n[[fault]]\nkind = "jump_ring"\nstart = 1.0\nduration = 2.0\n'
    )
    with pytest.raises(ScenarioError, match="leave duration out"):
        Mark10Simulator(scenario=load_scenario(timed_test, MARK10_VOCABULARY))
    wrong_unit = tmp_path / "unit.toml"
    wrong_unit.write_text('schema = 1\n[[fault]]\nkind = "panel_unit"\nstart = 1.0\nunit = "Nm"\n')
    with pytest.raises(ScenarioError, match="not offered"):
        Mark10Simulator(scenario=load_scenario(wrong_unit, MARK10_VOCABULARY))
    with pytest.raises(ScenarioError, match="unit"):
        Mark10Simulator(model={"unit": "lbFin"})
    with pytest.raises(ValueError, match="start_test"):
        Mark10Simulator().set_fault("jump_ring")


# --- the CLI hook --------------------------------------------------------------------------------


def test_serve_prints_one_json_line_and_stops_on_sigterm(tmp_path: Path):
    code = (
        "import sys; from pathlib import Path; from simulators.mark10 import serve; "
        f"sys.exit(serve(True, 3, None, 'M5-2', path_file=Path({str(tmp_path / 'p')!r})))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["family"] == "force" and line["model"] == "mark10"
        assert line["transport"] == "serial" and line["port"] == line["address"]
        assert line["profile"] == "M5-2"
        assert (tmp_path / "p").read_text().strip() == line["port"]
        with serial.Serial(line["port"], timeout=1.0) as port:
            assert ask(port, b"RM\r") == b"M5-2\r\n"
            assert ask(port, b"RS\r") == b"5020003\r\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream_ in (proc.stdout, proc.stderr):
            if stream_ is not None:
                stream_.close()


def test_serve_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert serve(False, 0, None, "M5-100") == 2
    assert serve(True, 0, None, "M9-9") == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("schema = 2\n")
    assert serve(True, 0, bad, "M5-100") == 2
    assert "schema" in capsys.readouterr().err
