"""The Imada simulator over a real pty, read the way the public drivers read it (§1.2).

``sktometometo/imada_forcegauge`` writes ``D\\r``, reads 10 bytes and parses ``[:-4]``; cranio
reads to CR and splits ``telegram[-3:]`` into unit, mode and judgement. The letters are the
simulator's documented choice (module docstring of ``simulators.imada``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial

from simulators.imada import (
    IMADA_PROFILES,
    IMADA_VOCABULARY,
    ImadaSimulator,
    format_telegram,
    running_imada,
    serve,
)
from simulators.scenario import FaultEntry, Scenario, ScenarioError, load_scenario

pytestmark = pytest.mark.timeout(20)

REPO = Path(__file__).resolve().parents[2]
QUIET = {"noise_pct_fs": 0.0, "reply_latency_s": 0.0, "latency_jitter_s": 0.0}


@contextmanager
def gauge(**kwargs) -> Iterator[tuple[ImadaSimulator, serial.Serial]]:
    kwargs.setdefault("model", QUIET)
    with running_imada(**kwargs) as sim, serial.Serial(sim.path, 19200, timeout=0.5) as port:
        yield sim, port


def request(port: serial.Serial) -> bytes:
    port.write(b"D\r")
    return port.read_until(b"\r")


def parse(telegram: bytes) -> tuple[float, str, str, str]:
    """Both reference drivers' slicing: value [:-4], then unit, mode, judgement."""
    text = telegram.decode("ascii")
    unit, mode, judgement = text.rstrip("\r")[-3:]
    return float(text[:-4]), unit, mode, judgement


def settle(sim: ImadaSimulator, until: float) -> None:
    deadline = time.monotonic() + 5.0
    while sim.elapsed() < until:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def quiet_for(port: serial.Serial, wait: float = 0.12) -> bytes:
    port.timeout = wait
    try:
        return port.read(4096)
    finally:
        port.timeout = 0.5


def test_format_telegram_is_fixed_width():
    big, small = IMADA_PROFILES["DS2-500N"], IMADA_PROFILES["DS2-50N"]
    cases = [
        (12.34, big, "N", "track", "none", "+012.3NTN"),
        (-80.0, big, "N", "peak", "none", "-080.0NPN"),
        (500.0, big, "N", "track", "overload", "+500.0NTE"),
        (500.0, big, "kgf", "track", "go", "+50.99KTG"),
        (-500.0, big, "lbf", "track", "high", "-112.4LTH"),
        (-0.01, big, "N", "track", "low", "+000.0NTL"),
        (4.2, small, "N", "track", "none", "+04.20NTN"),
        (4.2, small, "kgf", "track", "none", "+0.428KTN"),
        (50.0, small, "lbf", "track", "none", "+11.24LTN"),
    ]
    for value, profile, unit, mode, judgement, expected in cases:
        got = format_telegram(value, profile=profile, unit=unit, mode=mode, judgement=judgement)
        assert got == expected
        assert len(got) == 9


def test_request_d_gets_ten_bytes_ending_in_cr_without_lf():
    with gauge() as (_, port):
        port.write(b"D\r")
        telegram = port.read(10)
        assert telegram == b"+000.0NTN\r"
        assert quiet_for(port, 0.1) == b""  # no LF follows
        assert parse(telegram) == (0.0, "N", "T", "N")
        port.write(b"D\r\n")  # LF ignored
        assert port.read(10) == b"+000.0NTN\r"
        port.write(b"X\rd\rDD\r")  # anything but D is ignored silently
        assert quiet_for(port, 0.1) == b""


def test_units_modes_and_judgements_under_load():
    with gauge(model={**QUIET, "low_limit_n": 30.0, "high_limit_n": 60.0}) as (sim, port):
        run = sim.start_test("hold", target=45.0, unit="N", ramp_s=0.05, hold_s=30)
        settle(sim, run.start + 0.15)
        assert request(port) == b"-045.0NTG\r"  # pull is negative, within limits
        sim.set_unit("kgf")
        assert request(port) == b"-04.59KTG\r"
        sim.set_unit("lbf")
        assert request(port) == b"-010.1LTG\r"
        sim.set_unit("N")
        sim.high_limit_n = 40.0
        assert request(port) == b"-045.0NTH\r"
        sim.high_limit_n, sim.low_limit_n = 60.0, 50.0
        assert request(port) == b"-045.0NTL\r"
        sim.set_mode("peak")
        assert request(port) == b"-045.0NPL\r"
        with pytest.raises(ValueError, match="unknown unit"):
            sim.set_unit("ozf")
        with pytest.raises(ValueError, match="unknown mode"):
            sim.set_mode("average")


def test_peak_mode_keeps_the_break_load_until_cleared():
    with gauge(model={**QUIET, "mode": "peak"}) as (sim, port):
        run = sim.start_test("jump_ring", break_n=80.0, rate_n_per_s=800.0)
        settle(sim, run.end + 0.05)
        assert request(port) == b"-080.0NPN\r"
        sim.set_mode("track")
        assert request(port) == b"+000.0NTN\r"
        sim.set_mode("peak")
        sim.clear_peak()
        assert request(port) == b"+000.0NPN\r"


def test_press_zero_tares_under_load():
    with gauge() as (sim, port):
        run = sim.start_test(
            "hold", target=20.0, unit="N", ramp_s=0.05, hold_s=30, direction="compression"
        )
        settle(sim, run.start + 0.15)
        assert request(port) == b"+020.0NTN\r"
        sim.press_zero()
        assert request(port) == b"+000.0NTN\r"


def poll_peak(sim: ImadaSimulator, port: serial.Serial, end: float) -> float:
    settle(sim, end + 0.03)
    return parse(request(port))[0]


def test_soldered_vs_unsoldered_and_individual_vs_shared():
    with gauge(model={**QUIET, "mode": "peak"}) as (sim, port):
        fast = {"spread_n": 0.0, "rate_n_per_s": 900.0}
        soldered = poll_peak(sim, port, sim.start_test("jump_ring", **fast).end)
        sim.clear_peak()
        run = sim.start_test("jump_ring", soldered=False, plateau_s=0.05, **fast)
        unsoldered = poll_peak(sim, port, run.end)
        sim.clear_peak()
        individual = poll_peak(sim, port, sim.start_test("prong", **fast).end)
        sim.clear_peak()
        shared = poll_peak(sim, port, sim.start_test("prong", setting="shared", **fast).end)
    assert soldered == pytest.approx(-80.0, abs=0.1)
    assert 0.25 <= unsoldered / soldered <= 0.45
    assert individual == pytest.approx(60.0, abs=0.1)
    assert 0.45 <= shared / individual <= 0.65


def test_hold_passes_or_fails_seen_by_polling():
    hold = {"target": 10.0, "unit": "lbF", "ramp_s": 0.1, "hold_s": 0.3, "release_s": 0.05}
    with gauge(model={**QUIET, "unit": "lbf"}) as (sim, port):
        for fail_after_s, outcome in ((None, "held"), (0.05, "failed")):
            run = sim.start_test(
                "hold", **hold, **({} if fail_after_s is None else {"fail_after_s": fail_after_s})
            )
            times = []
            while sim.elapsed() < run.end + 0.05:
                if request(port) == b"-010.0LTN\r":
                    times.append(time.monotonic())
            assert run.outcome == outcome
            span = max(times) - min(times)
            assert span >= 0.25 if outcome == "held" else span < 0.15
            assert request(port) == b"+000.0LTN\r"


def test_reply_is_paced_at_19200_baud_by_default():
    with gauge() as (sim, port):
        assert sim.port.baud == 19200
        start = time.monotonic()
        request(port)
        assert time.monotonic() - start >= 0.005  # 10 bytes × 10 bits / 19200 = 5.2 ms


def test_seed_repeats_noise_and_parts():
    a, b, c = (ImadaSimulator(seed=s) for s in (4, 4, 5))
    times = [0.011 * i for i in range(40)]
    assert [a.model.reading(t) for t in times] == [b.model.reading(t) for t in times]
    assert [a.model.reading(t) for t in times] != [c.model.reading(t) for t in times]
    scenario = Scenario(faults=(FaultEntry("prong", 0.0, params={}),))
    peaks = [ImadaSimulator(seed=s, scenario=scenario) for s in (4, 4, 5)]
    for sim in peaks:
        sim.start_test("prong")
    assert peaks[0].runs[0].peak == peaks[1].runs[0].peak != peaks[2].runs[0].peak


# --- faults --------------------------------------------------------------------------------------


def test_fault_missing_cr_makes_a_naive_read_to_cr_time_out():
    with gauge() as (sim, port):
        sim.set_fault("missing_cr")
        port.timeout = 0.2
        port.write(b"D\r")
        assert port.read_until(b"\r") == b"+000.0NTN"  # timed out, no CR
        port.write(b"D\r")
        assert port.read_until(b"\r") == b"+000.0NTN"
        sim.clear_faults()
        assert request(port) == b"+000.0NTN\r"


def test_fault_garbage_no_reply_late_reply_duplicate():
    with gauge() as (sim, port):
        sim.set_fault("garbage", where="before", content="ff", count=2)
        assert request(port) == b"\xff\xff+000.0NTN\r"
        sim.clear_faults()
        sim.set_fault("garbage", where="inside", content="nul", count=1)
        assert request(port) == b"+000\x00.0NTN\r"
        sim.clear_faults()
        sim.set_fault("no_reply")
        port.write(b"D\r")
        assert quiet_for(port, 0.2) == b""
        sim.clear_faults()
        sim.set_fault("late_reply", delay_s=0.25)
        start = time.monotonic()
        assert request(port) == b"+000.0NTN\r"
        assert time.monotonic() - start >= 0.24
        sim.clear_faults()
        sim.set_fault("duplicate")
        port.write(b"D\r")
        assert quiet_for(port, 0.15) == b"+000.0NTN\r+000.0NTN\r"


def test_fault_overload_and_panel_unit():
    scenario = Scenario(
        faults=(
            FaultEntry("overload", 0.0, 0.5, params={"side": "compression"}),
            FaultEntry("panel_unit", 0.6, params={"unit": "kgf"}),
        )
    )
    with gauge(scenario=scenario) as (sim, port):
        assert request(port) == b"+500.0NTE\r"
        settle(sim, 0.5)
        deadline = time.monotonic() + 5.0
        while sim.unit != "kgf":
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert request(port) == b"+00.00KTN\r"
        sim.set_fault("overload", side="tension")
        assert request(port) == b"-50.99KTE\r"


def test_vanish_and_come_back(tmp_path: Path):
    path_file = tmp_path / "imada.port"
    with running_imada(model=QUIET, path_file=path_file) as sim:
        first = sim.path
        with serial.Serial(first, 19200, timeout=0.5) as port:
            assert request(port) == b"+000.0NTN\r"
            sim.set_fault("vanish", new_path=True)
            with pytest.raises(serial.SerialException):
                port.write(b"D\r")
                port.read(10)
            assert path_file.read_text() == ""
            sim.clear_faults()
        second = path_file.read_text().strip()
        assert second == sim.path and second != first
        with serial.Serial(second, 19200, timeout=0.5) as port:
            assert request(port) == b"+000.0NTN\r"


# --- scenarios and the CLI hook ------------------------------------------------------------------


def test_scenario_file_and_bad_scenarios(tmp_path: Path):
    good = tmp_path / "imada.toml"
    good.write_text(
        'schema = 1\n[model]\nprofile = "DS2-50N"\nunit = "lbf"\nmode = "peak"\nseed = 2\n'
        '[[fault]]\nkind = "jump_ring"\nstart = 0.0\nstrength_n = 30.0\nrate_n_per_s = 600.0\n'
        '[[fault]]\nkind = "missing_cr"\nstart = 100.0\n'
    )
    scenario = load_scenario(good, IMADA_VOCABULARY)
    with gauge(scenario=scenario) as (sim, port):
        deadline = time.monotonic() + 5.0
        while not sim.runs:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        settle(sim, sim.runs[0].end + 0.03)
        value, unit, mode, judgement = parse(request(port))
        assert (unit, mode, judgement) == ("L", "P", "N")
        assert value == pytest.approx(sim.runs[0].peak / 4.4482216152605, abs=0.01)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'schema = 1\n[model]\nunit = "ozf"\n'
        '[[fault]]\nkind = "cr_only"\nstart = 1.0\n'
        '[[fault]]\nkind = "overload"\nstart = 1.0\nside = "cw"\n'
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad, IMADA_VOCABULARY)
    for needle in ("unit", "cr_only", "side"):
        assert needle in str(info.value)


def test_serve_prints_one_json_line_and_stops_on_sigint():
    code = (
        "import sys; from simulators.imada import serve; sys.exit(serve(True, 1, None, 'DS2-50N'))"
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
        assert (line["family"], line["model"], line["transport"]) == ("force", "imada", "serial")
        assert line["port"] == line["address"] and line["baud"] == 19200
        with serial.Serial(line["port"], 19200, timeout=1.0) as port:
            assert parse(request(port))[1:] == ("N", "T", "N")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]):
    assert serve(False, 0, None, "DS2-500N") == 2
    assert serve(True, 0, None, "DS9") == 2
    assert "unknown profile" in capsys.readouterr().err
