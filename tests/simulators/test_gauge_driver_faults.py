"""Gauge drivers against the gauge simulators over real ptys, one test per simulator fault knob.

Each test sets one fault on the simulator (``set_fault``), drives the real driver
(``drivers.mark10.build`` / ``drivers.imada.build``, pyserial underneath) and checks what the
driver documents for it: the error type from daq/errors.py and a message that says what
happened, or a reply still read correctly despite the fault, the ``overload`` and
``unit_changed`` flags, a reconnect after the device comes back. Then the fault is cleared and
the driver must read normally again.

The gauge holds a steady, noise-free load (a ``hold`` part test: 123.4 N compression for an
hour, no filter lag), so a correct reading is known exactly: ``sim.reading()`` /
``sim.telegram()``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daq.errors import InstrumentTimeout, ProtocolError, TransportError
from daq.instrument import InstrumentSettings
from daq.model import Sample
from drivers import imada, mark10
from simulators.imada import ImadaSimulator, running_imada
from simulators.mark10 import Mark10Simulator, running_mark10

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 0.3
LOAD_N = 123.4
QUIET = {"noise_pct_fs": 0.0}
IMADA_OPTIONS = {
    "unit_letters": {"N": "N", "K": "kgF", "L": "lbF"},
    "judgement_letters": {"N": "off", "G": "ok", "H": "high", "L": "low", "E": "overload"},
    "capacity": "500 N",
}


def steady_load(sim: Mark10Simulator | ImadaSimulator) -> None:
    """123.4 N compression from 50 ms on, for an hour."""
    sim.start_test(
        "hold", target=LOAD_N, unit="N", ramp_s=0.05, hold_s=3600.0, direction="compression"
    )
    deadline = time.monotonic() + 2.0
    while sim.elapsed() < sim.runs[-1].start + 0.1:
        assert time.monotonic() < deadline
        time.sleep(0.01)


@contextmanager
def mark10_gauge(
    address: Callable[[Mark10Simulator], str] | None = None, **kwargs
) -> Iterator[tuple[Mark10Simulator, mark10.Mark10]]:
    model = {**QUIET, "fltc": 0, **kwargs.pop("model", {})}
    options = kwargs.pop("options", {})
    with running_mark10(model=model, **kwargs) as sim:
        steady_load(sim)
        where = address(sim) if address else sim.path
        assert where is not None
        driver = mark10.build(
            InstrumentSettings("m10", where, TIMEOUT),
            mark10.Mark10Options(capacity="500 N", **options),
        )
        driver.connect()
        try:
            yield sim, driver
        finally:
            driver.close()


@contextmanager
def imada_gauge(**kwargs) -> Iterator[tuple[ImadaSimulator, imada.Imada]]:
    with running_imada(model=QUIET, **kwargs) as sim:
        steady_load(sim)
        assert sim.path is not None
        driver = imada.build(
            InstrumentSettings("ima", sim.path, TIMEOUT), imada.ImadaOptions(**IMADA_OPTIONS)
        )
        driver.connect()
        try:
            yield sim, driver
        finally:
            driver.close()


def one(driver: mark10.Mark10 | imada.Imada) -> Sample:
    samples = driver.poll()
    assert len(samples) == 1
    return samples[0]


def assert_mark10_normal(sim: Mark10Simulator, driver: mark10.Mark10, polls: int = 2) -> None:
    for _ in range(polls):
        sample = one(driver)
        assert sample.raw == sim.reading()
        assert sample.unit == sim.unit
        assert sample.flags == ()


def assert_imada_normal(sim: ImadaSimulator, driver: imada.Imada, polls: int = 2) -> None:
    for _ in range(polls):
        sample = one(driver)
        assert sample.raw == sim.telegram()
        assert sample.flags == ()


# --- Mark-10 ---------------------------------------------------------------------------------


def test_baseline_mark10_reading_is_the_steady_load():
    with mark10_gauge() as (sim, driver):
        sample = one(driver)
        assert (sample.value, sample.unit, sample.raw) == (LOAD_N, "N", "123.4 N")
        assert sim.reading() == "123.4 N"


def m10_no_reply(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("no_reply")
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"m10: no reply to '\?C' within 0\.3 s"):
        driver.poll()
    assert time.monotonic() - started < TIMEOUT + 0.2


def m10_late_reply(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("late_reply", delay_s=0.15)
    started = time.monotonic()
    sample = one(driver)
    assert time.monotonic() - started >= 0.15
    assert (sample.value, sample.raw) == (LOAD_N, "123.4 N")
    # beyond the timeout it is a timeout that names the command
    sim.clear_faults()
    sim.set_fault("late_reply", delay_s=0.5)
    with pytest.raises(InstrumentTimeout, match=r"no reply to '\?C'"):
        driver.poll()
    time.sleep(0.5)  # the late reply arrives; the next poll drops it as a repeat of the last


def m10_partial_line(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("partial_line", mode="split", gap_s=0.1)
    sample = one(driver)
    assert (sample.value, sample.raw) == (LOAD_N, "123.4 N")
    sim.clear_faults()
    sim.set_fault("partial_line", mode="no_terminator")
    with pytest.raises(
        InstrumentTimeout, match=r"no reply to '\?C'.*got b'123\.4 N' without a line end"
    ):
        driver.poll()


def m10_garbage(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    for where in ("before", "inside"):
        sim.clear_faults()
        before = driver.link.garbage
        sim.set_fault("garbage", where=where, content="noise", count=5)
        sample = one(driver)
        assert (sample.value, sample.raw) == (LOAD_N, "123.4 N")
        assert driver.link.garbage - before == 5


def m10_cr_only(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("cr_only")
    for _ in range(3):
        sample = one(driver)
        assert (sample.value, sample.raw) == (LOAD_N, "123.4 N")


def m10_overload(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("overload", side="compression")
    sample = one(driver)
    assert (sample.value, sample.raw, sample.flags) == (500.0, "500.0 N", ("overload",))
    sim.clear_faults()
    sim.set_fault("overload", side="tension")
    sample = one(driver)
    assert (sample.value, sample.flags) == (-500.0, ("overload",))


def m10_panel_unit(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("panel_unit", unit="lbF")
    sample = one(driver)
    assert sample.unit == "lbF" and sample.raw == "27.75 lbF"  # 123.4 N in 0.05 lbF steps
    assert sample.flags == ("unit_changed:N->lbF",)
    assert one(driver).flags == ()  # flagged once; the gauge stays in lbF


def m10_panel_zero(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("panel_zero")
    sample = one(driver)
    assert (sample.value, sample.raw, sample.flags) == (0.0, "0.0 N", ())


def m10_interleave(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("interleave", count=2)
    for _ in range(4):
        sample = one(driver)
        assert (sample.value, sample.raw) == (LOAD_N, "123.4 N")
    # the stream lines before each reply repeat the reading and are dropped as duplicates
    assert driver.duplicates >= 2


def m10_duplicate(sim: Mark10Simulator, driver: mark10.Mark10) -> None:
    sim.set_fault("duplicate")
    for _ in range(4):
        sample = one(driver)
        assert (sample.value, sample.raw) == (LOAD_N, "123.4 N")
    # Each copy is its own write on the pty: on a loaded machine a copy can arrive after the
    # next poll has begun and be taken as that poll's reply (the same reading), which leaves
    # one reply to be dropped later instead. Whatever the timing, the four polls drop at least
    # two copies (three when every copy is prompt).
    assert driver.duplicates >= 2


MARK10_KNOBS: dict[str, Callable[[Mark10Simulator, mark10.Mark10], None]] = {
    "no_reply": m10_no_reply,
    "late_reply": m10_late_reply,
    "partial_line": m10_partial_line,
    "garbage": m10_garbage,
    "cr_only": m10_cr_only,
    "overload": m10_overload,
    "panel_unit": m10_panel_unit,
    "panel_zero": m10_panel_zero,
    "interleave": m10_interleave,
    "duplicate": m10_duplicate,
}


@pytest.mark.parametrize("knob", list(MARK10_KNOBS))
def test_mark10_poll_fault(knob):
    with mark10_gauge() as (sim, driver):
        assert_mark10_normal(sim, driver, polls=1)
        MARK10_KNOBS[knob](sim, driver)
        sim.clear_faults()
        assert_mark10_normal(sim, driver)


def test_mark10_vanish_then_reconnect_through_the_by_id_link(tmp_path: Path):
    link = tmp_path / "usb-Mark-10_M5-100"
    with mark10_gauge(address=lambda sim: str(link), link_path=link) as (sim, driver):
        old = sim.path
        assert_mark10_normal(sim, driver, polls=1)
        sim.set_fault("vanish", new_path=True)
        assert sim.path is None and not link.exists()
        with pytest.raises(TransportError) as info:
            driver.poll()
        assert not isinstance(info.value, InstrumentTimeout)
        assert str(link) in str(info.value)
        with pytest.raises(TransportError, match=r"cannot open .*usb-Mark-10_M5-100"):
            driver.connect()  # still gone
        sim.clear_faults()  # comes back, on another pty
        assert sim.path is not None and sim.path != old
        driver.connect()
        assert_mark10_normal(sim, driver)


def test_mark10_push_duplicate_lines_are_dropped_during_aout_streaming():
    with mark10_gauge(options={"mode": "push", "aout_rate": 50, "start_threshold": "500 N"}) as (
        sim,
        driver,
    ):
        sim.set_fault("duplicate")
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            assert driver.receive(0.1) == []
        sim.clear_faults()
        sent = sim.stream_lines_sent
        assert driver.duplicates >= 40  # about one a stream line (50/s for 1 s)
        assert driver.ignored_lines == 0
        driver.link.write_line("AOUT0", b"\r\n")
        driver.receive(0.3)
        # every line the gauge streamed was read once: copies are dropped, not counted twice
        assert driver.stream_readings - driver.duplicates == sim.stream_lines_sent >= sent


def test_mark10_push_interleaved_lines_are_readings_like_the_stream():
    # In push mode the driver sends nothing after AOUT: interleave only shows when a set command
    # is acknowledged (``ack = "R"``); the interleaved lines are stream readings, the ack ignored.
    options = {"mode": "push", "aout_rate": 50, "start_threshold": "500 N"}
    with mark10_gauge(options=options, model={"ack": "R"}) as (sim, driver):
        sim.set_fault("interleave", count=3)
        driver.link.write_line("CLR", b"\r\n")
        before, ignored = driver.stream_readings, driver.ignored_lines
        assert driver.receive(0.3) == []
        assert driver.stream_readings - before >= 3
        assert driver.ignored_lines - ignored == 1  # the "R" that acknowledged CLR
        sim.clear_faults()
        assert driver.receive(0.1) == []


# --- Imada ----------------------------------------------------------------------------------


def test_baseline_imada_reading_is_the_steady_load():
    with imada_gauge() as (sim, driver):
        sample = one(driver)
        assert (sample.value, sample.unit, sample.raw) == (LOAD_N, "N", "+123.4NTN")
        assert dict(sample.extra) == {"gauge_mode": "track", "judgement": "off"}
        assert sim.telegram() == "+123.4NTN"


def ima_no_reply(sim: ImadaSimulator, driver: imada.Imada) -> None:
    sim.set_fault("no_reply")
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"ima: no reply to 'D' \(no complete line"):
        driver.poll()
    assert time.monotonic() - started < TIMEOUT + 0.2


def ima_late_reply(sim: ImadaSimulator, driver: imada.Imada) -> None:
    sim.set_fault("late_reply", delay_s=0.15)
    started = time.monotonic()
    sample = one(driver)
    assert time.monotonic() - started >= 0.15
    assert (sample.value, sample.raw) == (LOAD_N, "+123.4NTN")


def ima_missing_cr(sim: ImadaSimulator, driver: imada.Imada) -> None:
    sim.set_fault("missing_cr")
    with pytest.raises(
        InstrumentTimeout, match=r"no reply to 'D' .*got b'\+123\.4NTN' without a line end"
    ):
        driver.poll()


def ima_garbage(sim: ImadaSimulator, driver: imada.Imada) -> None:
    for where in ("before", "inside"):
        sim.clear_faults()
        before = driver.link.garbage
        sim.set_fault("garbage", where=where, content="ff", count=3)
        sample = one(driver)
        assert (sample.value, sample.raw) == (LOAD_N, "+123.4NTN")
        assert driver.link.garbage - before == 3


def ima_overload(sim: ImadaSimulator, driver: imada.Imada) -> None:
    sim.set_fault("overload", side="compression")
    sample = one(driver)
    assert (sample.value, sample.raw, sample.flags) == (500.0, "+500.0NTE", ("overload",))
    assert dict(sample.extra)["judgement"] == "overload"


def ima_panel_unit(sim: ImadaSimulator, driver: imada.Imada) -> None:
    sim.set_fault("panel_unit", unit="lbf")
    sample = one(driver)
    assert (sample.unit, sample.raw) == ("lbF", "+027.7LTN")  # 123.4 N = 27.74 lbf
    assert sample.flags == ("unit_changed:N->lbF",)
    assert one(driver).flags == ()


def ima_duplicate(sim: ImadaSimulator, driver: imada.Imada) -> None:
    sim.set_fault("duplicate")
    for _ in range(4):
        sample = one(driver)
        assert (sample.value, sample.raw) == (LOAD_N, "+123.4NTN")
        # At 19200 baud the copy lands one telegram (5.2 ms) after the reply: polled at a bench's
        # interval it is thrown away as stale before the next request. (Polled back to back, the
        # copy arrives after that check and is read as the next reply: one poll behind.)
        time.sleep(0.05)
    assert driver.stale_lines >= 3


IMADA_KNOBS: dict[str, Callable[[ImadaSimulator, imada.Imada], None]] = {
    "no_reply": ima_no_reply,
    "late_reply": ima_late_reply,
    "missing_cr": ima_missing_cr,
    "garbage": ima_garbage,
    "overload": ima_overload,
    "panel_unit": ima_panel_unit,
    "duplicate": ima_duplicate,
}


@pytest.mark.parametrize("knob", list(IMADA_KNOBS))
def test_imada_poll_fault(knob):
    with imada_gauge() as (sim, driver):
        assert_imada_normal(sim, driver, polls=1)
        IMADA_KNOBS[knob](sim, driver)
        sim.clear_faults()
        assert_imada_normal(sim, driver)


def test_imada_vanish_then_reconnect_on_the_same_path():
    with imada_gauge() as (sim, driver):
        path = sim.path
        sim.set_fault("vanish")
        with pytest.raises(TransportError) as info:
            driver.poll()
        assert not isinstance(info.value, InstrumentTimeout)
        assert str(path) in str(info.value)
        driver.close()  # the runtime closes a lost link before reconnecting
        sim.clear_faults()
        assert sim.path is not None
        if sim.path == path:  # Linux hands out the lowest free pts number: ours, once closed
            driver.connect()
            assert_imada_normal(sim, driver)
        else:  # another process took the number meanwhile: reconnect where the gauge is now
            again = imada.build(
                InstrumentSettings("ima", sim.path, TIMEOUT), imada.ImadaOptions(**IMADA_OPTIONS)
            )
            again.connect()
            try:
                assert_imada_normal(sim, again)
            finally:
                again.close()


def test_unasked_stream_in_poll_mode_is_a_protocol_error_and_stops_the_stream():
    # Not a fault knob but the poll-mode reading of interleave's cause: AOUT left on.
    with mark10_gauge(model={"noise_pct_fs": 0.5}) as (sim, driver):
        driver.link.write_line("AOUT50", b"\r\n")
        time.sleep(0.1)
        with pytest.raises(ProtocolError, match=r"unasked \(AOUT on\?\).*Sent AOUT0"):
            driver.poll()
        assert sim.aout == 0
        one(driver)


def test_mark10_setup_commands_reach_the_gauge():
    with mark10_gauge(options={"set_unit": "lbF", "command": "?PC"}) as (sim, driver):
        sample = one(driver)
        assert sample.unit == "lbF"
        assert sample.value == pytest.approx(LOAD_N / 4.4482216152605, abs=0.02)
        assert sim.unit == "lbF"  # the unit command changed the gauge itself
