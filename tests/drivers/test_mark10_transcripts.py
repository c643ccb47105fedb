"""Mark-10 (GCL2) transcripts over a real pty: the test plays the gauge byte for byte.

Replies are the manual's examples (Series 4 guide §9.1.3, Series 5 GCL2 §9.6-9.8): ``-18.78 lbF``,
``4.285 N``, TT01 ``-18.78 lbFin`` / ``0.52 Nm``, numeric-only replies, ``*10`` ``*11`` ``*12``
``*22``. No simulator and no mock of pyserial: the driver opens the pty's slave like a port.

The ``Gauge`` helper here is shared with the Imada transcripts.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty

import pytest

from daq.config import InstrumentConfig
from daq.errors import (
    InstrumentError,
    InstrumentTimeout,
    ProtocolError,
    TransportError,
    UnitError,
)
from daq.instrument import InstrumentSettings
from daq.units import Normalizer
from drivers.mark10 import Mark10, Mark10Options, parse_line, resolve_unit
from drivers.registry import REGISTRY, check_instrument
from drivers.transport.serial import (
    LineAssembler,
    SerialLink,
    open_line_link,
    parse_line_address,
)

CRLF = b"\r\n"


class Gauge:
    """The instrument's side of a pty pair."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no CR/LF translation, even before the driver opens it
        self.path = os.ttyname(self.slave)
        self.received = bytearray()
        self._pending = bytearray()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def _read(self, wait: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return b""
        data = os.read(self.master, 4096)
        self.received += data
        return data

    def expect(self, data: bytes, timeout: float = 2.0) -> None:
        """Wait for exactly ``data`` from the driver (the next bytes it sends)."""
        deadline = time.monotonic() + timeout
        while len(self._pending) < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {data!r} from the driver, got {self._pending!r}")
            self._pending += self._read(left)
        got = bytes(self._pending[: len(data)])
        del self._pending[: len(data)]
        assert got == data, f"expected {data!r} from the driver, got {got!r}"

    def quiet(self, wait: float = 0.1) -> bytes:
        """Whatever the driver sent beyond what was expected, after ``wait`` s."""
        end = time.monotonic() + wait
        while (left := end - time.monotonic()) > 0:
            self._pending += self._read(left)
        extra = bytes(self._pending)
        self._pending.clear()
        return extra

    def play(self, *steps: tuple[bytes, bytes | list[bytes]]) -> None:
        """In the background: for each (command, reply) expect the command, send the reply.

        A reply given as a list is sent piece by piece, 20 ms apart (a split line).
        """

        def run() -> None:
            try:
                for command, reply in steps:
                    self.expect(command)
                    pieces = reply if isinstance(reply, list) else [reply]
                    for i, piece in enumerate(pieces):
                        if i:
                            time.sleep(0.02)
                        if piece:
                            self.send(piece)
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stream(self, lines: list[bytes], period: float, start_after: bytes | None = None) -> None:
        """In the background: optionally wait for a command, then send lines ``period`` apart."""

        def run() -> None:
            try:
                if start_after is not None:
                    self.expect(start_after)
                next_at = time.monotonic()
                for line in lines:
                    if self.stop.is_set():
                        return
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self.send(line)
                    next_at += period
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def done(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the instrument script did not finish"
            self._thread = None
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def gauge():
    g = Gauge()
    yield g
    g.close()


def make(gauge: Gauge, timeout: float = 0.5, **options) -> Mark10:
    return Mark10(InstrumentSettings("m10", gauge.path, timeout), Mark10Options(**options))


@pytest.fixture
def opened():
    """Drivers built by a test are closed after it, even when it fails."""
    drivers: list[Mark10] = []
    yield drivers
    for d in drivers:
        d.close()


def connect(gauge: Gauge, opened: list, *steps, **options) -> Mark10:
    driver = make(gauge, **options)
    opened.append(driver)
    gauge.play(*steps)
    driver.connect()
    return driver


# -- polled ----------------------------------------------------------------------------------------


def test_current_reading_with_its_unit(gauge, opened):
    d = connect(gauge, opened, (b"?C" + CRLF, b"4.285 N" + CRLF), (b"?C" + CRLF, b"4.285 N\r\n"))
    [s] = d.poll()
    gauge.done()
    assert gauge.received == b"?C\r\n?C\r\n"
    assert (s.value, s.unit, s.raw, s.flags) == (4.285, "N", "4.285 N", ())
    assert (s.instrument, s.measurement, s.channel, s.quantity) == (
        "m10",
        "force",
        "force",
        "force",
    )


def test_tension_is_negative_and_peak_command_is_sent(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"?PT\r\n", b"-18.78 lbF\r\n"),
        (b"CLR\r\n", b""),  # the peak is cleared for the next part
        (b"?PT\r\n", b"-18.78 lbF\r\n"),
        (b"CLR\r\n", b""),
        command="?PT",
        channel="jump_ring_pull",
    )
    [s] = d.poll()
    gauge.done()
    assert gauge.received == b"?PT\r\nCLR\r\n?PT\r\nCLR\r\n"
    assert (s.value, s.unit, s.channel) == (-18.78, "lbF", "jump_ring_pull")
    assert Normalizer().normalize(s).value == pytest.approx(-83.5376, abs=1e-3)


def test_unit_change_on_the_front_panel_is_converted_and_flagged(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"?C\r\n", b"4.285 N\r\n"),
        (b"?C\r\n", b"4.285 N\r\n"),
        (b"?C\r\n", b"0.963 lbF\r\n"),
        (b"?C\r\n", b"0.963 lbF\r\n"),
    )
    first, second, third = d.poll()[0], d.poll()[0], d.poll()[0]
    gauge.done()
    assert first.flags == () and third.flags == ()
    assert (second.unit, second.value, second.flags) == ("lbF", 0.963, ("unit_changed:N->lbF",))
    assert Normalizer().normalize(second).value == pytest.approx(4.2836, abs=1e-3)


def test_numeric_only_reply_takes_the_configured_unit(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"4.285\r\n"), (b"?C\r\n", b"-0.52\r\n"), unit="N")
    [s] = d.poll()
    gauge.done()
    assert (s.value, s.unit, s.raw) == (-0.52, "N", "-0.52")


def test_numeric_only_reply_without_a_unit_option_fails_clearly(gauge):
    d = make(gauge)
    gauge.play((b"?C\r\n", b"4.285\r\n"))
    with pytest.raises(ProtocolError, match=r"numeric only.*options\.unit"):
        d.connect()
    gauge.done()


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (b"*10", "illegal command"),
        (b"*11", "not applicable"),
        (b"*12", "invalid specifier"),
        (b"*22", "value too large"),
    ],
)
def test_error_replies_become_instrument_errors_in_words(gauge, opened, reply, words):
    d = connect(gauge, opened, (b"?A\r\n", b"1.00 N\r\n"), (b"?A\r\n", reply + CRLF), command="?A")
    with pytest.raises(InstrumentError, match=rf"\{reply.decode()} \({words}\) to '\?A'"):
        d.poll()
    gauge.done()


def test_force_gauge_answering_in_a_torque_unit_is_refused_at_connect(gauge):
    d = make(gauge)
    gauge.play((b"?C\r\n", b"0.52 Nm\r\n"))
    with pytest.raises(UnitError, match="force gauge sent a reading in 'Nm', which is a torque"):
        d.connect()
    gauge.done()


def test_torque_tester_readings(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"?P1\r\n", b"-18.78 lbFin\r\n"),
        (b"?P1\r\n", b"0.52 Nm\r\n"),
        quantity="torque",
        command="?P1",
        channel="charm_torque",
    )
    [s] = d.poll()
    gauge.done()
    assert (s.value, s.unit, s.quantity, s.measurement) == (0.52, "Nm", "torque", "torque")
    assert s.flags == ("unit_changed:lbFin->Nm",)


def test_reply_split_across_reads_is_joined(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"1.0 N\r\n"), (b"?C\r\n", [b"4.2", b"85 N\r", b"\n"]))
    [s] = d.poll()
    gauge.done()
    assert s.value == 4.285


def test_cr_only_reply_is_accepted(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"1.0 N\r"), (b"?C\r\n", b"4.285 N\r"))
    [s] = d.poll()
    gauge.done()
    assert s.value == 4.285


def test_garbage_bytes_are_dropped_and_counted(gauge, opened):
    d = connect(
        gauge, opened, (b"?C\r\n", b"\x00\xff1.0 N\r\n"), (b"?C\r\n", b"\xff\x004.285 N\x00\r\n")
    )
    [s] = d.poll()
    gauge.done()
    assert s.value == 4.285 and s.raw == "4.285 N"
    assert d.link.garbage == 5


def test_non_reading_lines_are_not_taken_for_the_reply(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"?C\r\n", b"1.0 N\r\n"),
        (b"?C\r\n", b"V1.00;LBF;CUR;FLTC8;FLTP1;AOUT00;AOFF5;FULL;MIT;POL;B0\r\n4.285 N\r\n"),
    )
    [s] = d.poll()
    gauge.done()
    assert s.value == 4.285 and d.ignored_lines == 1


def test_no_reply_times_out_within_the_bound(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"1.0 N\r\n"), (b"?C\r\n", b""))
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"no reply to '\?C' within 0.5 s"):
        d.poll()
    assert 0.45 <= time.monotonic() - started < 0.7
    gauge.done()


def test_reply_missing_its_line_end_times_out_and_says_what_came(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"1.0 N\r\n"), (b"?C\r\n", b"4.285 N"))
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"got b'4.285 N' without a line end"):
        d.poll()
    assert time.monotonic() - started < 0.7
    gauge.done()


def test_overload_at_capacity_is_flagged(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"?C\r\n", b"1.00 lbF\r\n"),
        (b"?C\r\n", b"50.02 lbF\r\n"),
        capacity="50 lbF",
    )
    [s] = d.poll()
    gauge.done()
    assert s.flags == ("overload",) and s.value == 50.02


def test_a_duplicated_reply_is_not_read_as_the_next_one(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"?C\r\n", b"1.00 N\r\n"),
        (b"?C\r\n", b"4.285 N\r\n4.285 N\r\n"),  # the line arrives twice
        (b"?C\r\n", b"4.300 N\r\n"),
    )
    first = d.poll()[0]
    time.sleep(0.05)
    second = d.poll()[0]
    gauge.done()
    assert (first.value, second.value) == (4.285, 4.3)
    assert d.duplicates == 1


def test_stream_lines_mixed_into_polling_void_the_poll_and_stop_the_stream(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"1.00 N\r\n"))
    gauge.done()
    gauge.send(b"1.01 N\r\n1.02 N\r\n")  # the gauge streams unasked (AOUT switched on)
    time.sleep(0.05)
    gauge.play((b"AOUT0\r\n", b""), (b"?C\r\n", b"1.03 N\r\n"))
    with pytest.raises(ProtocolError, match=r"unasked \(AOUT on\?\).*Sent AOUT0"):
        d.poll()
    [s] = d.poll()
    gauge.done()
    assert s.value == 1.03
    assert gauge.received == b"?C\r\nAOUT0\r\n?C\r\n"


def test_stale_input_is_flushed_on_connect(gauge, opened):
    gauge.send(b"\x00\xff-3.2 N\r\n9.99")  # left over from before a reconnect
    d = connect(gauge, opened, (b"?C\r\n", b"1.25 N\r\n"), (b"?C\r\n", b"1.26 N\r\n"))
    [s] = d.poll()
    gauge.done()
    assert s.value == 1.26


def test_a_port_that_is_not_there_is_a_transport_error():
    d = Mark10(InstrumentSettings("m10", "/dev/nonexistent-gauge", 0.2), Mark10Options())
    with pytest.raises(TransportError, match=r"cannot open /dev/nonexistent-gauge \(115200 8N1\)"):
        d.connect()
    d.close()
    d.close()  # idempotent


def test_a_port_that_goes_away_is_a_transport_error(gauge, opened):
    d = connect(gauge, opened, (b"?C\r\n", b"1.25 N\r\n"))
    gauge.done()
    os.close(gauge.master)
    gauge.master = os.open("/dev/null", os.O_RDONLY)  # so that close() has something to close
    with pytest.raises(TransportError):
        for _ in range(3):
            d.poll()


def test_poll_on_a_push_driver_is_refused(gauge):
    d = make(gauge, mode="push", start_threshold="0.5 N")
    with pytest.raises(InstrumentError, match="mode = push"):
        d.poll()


# -- pushed: one sample per test -------------------------------------------------------------------


def pull_curve(peak: float, unit: str = "N", rate: float = 50.0) -> list[bytes]:
    """Idle, a 1 s ramp in tension (negative), a break at the peak, idle again."""
    n = int(rate)
    values = [0.0] * 5 + [-peak * i / n for i in range(1, n + 1)] + [-0.02] * 10
    return [f"{v:.2f} {unit}\r\n".encode() for v in values]


def collect(driver: Mark10, want: int, within: float = 4.0) -> list:
    samples: list = []
    end = time.monotonic() + within
    while len(samples) < want and time.monotonic() < end:
        samples += driver.receive(0.2)
    return samples


def test_pull_test_is_one_sample_with_break_force_and_curve(gauge, opened):
    lines = pull_curve(40.0)
    lines.insert(20, b"*10\r\n")  # an error reply in the stream
    lines.insert(30, b"\x00\xff")  # garbage
    lines.insert(40, b"V1.00;LBF;CUR;FLTC8;FLTP1;AOUT50;AOFF5;FULL;MIT;POL;B0\r\n")
    lines[44] += lines[44]  # a duplicated line, back to back
    d = make(gauge, mode="push", start_threshold="0.5 N", channel="jump_ring_pull", aout_rate=50)
    opened.append(d)
    gauge.stream(lines, 0.02, start_after=b"AOUT50\r\n")
    d.connect()
    [s] = collect(d, 1)
    gauge.done()
    assert (s.channel, s.measurement, s.quantity, s.unit) == (
        "jump_ring_pull",
        "force",
        "force",
        "N",
    )
    assert s.value == 40.0 and s.raw == "-40.00 N"
    assert dict(s.scaled) == {"break_force": 40.0}
    extra = dict(s.extra)
    assert extra["outcome"] == "broke" and extra["broke"] is True
    assert 0.8 < extra["time_to_break_s"] < 1.2
    assert 45 <= extra["points"] <= 52
    assert extra["curve"].startswith("0.00:")
    assert s.flags == ()
    assert d.duplicates == 1 and d.ignored_lines >= 2
    d.close()
    assert gauge.quiet() == b"AOUT0\r\n"


def test_receive_returns_nothing_within_its_timeout_when_no_test_ends(gauge, opened):
    d = make(gauge, mode="push", start_threshold="0.5 N", aout_rate=10)
    opened.append(d)
    gauge.stream([b"0.00 N\r\n"] * 30, 0.1, start_after=b"AOUT10\r\n")
    d.connect()
    started = time.monotonic()
    assert d.receive(0.3) == []
    assert time.monotonic() - started < 0.5


def test_refused_stream_rate_fails_connect(gauge):
    d = make(gauge, mode="push", start_threshold="0.5 N", aout_rate=100)
    gauge.play((b"AOUT100\r\n", b"*12\r\n"))
    with pytest.raises(InstrumentError, match=r"\*12 \(invalid specifier\) to 'AOUT100'"):
        d.connect()
    gauge.done()


def test_no_stream_after_aout_times_out(gauge):
    d = make(gauge, timeout=0.3, mode="push", start_threshold="0.5 N")
    gauge.play((b"AOUT50\r\n", b""))
    with pytest.raises(InstrumentTimeout, match="no readings came after 'AOUT50'"):
        d.connect()
    gauge.done()


def test_unit_change_mid_test_is_converted_and_flagged(gauge, opened):
    lines = pull_curve(20.0)
    # from the 30th line on the gauge shows lbF (same force)
    for i in range(30, len(lines)):
        value, _ = lines[i].decode().split()
        lines[i] = f"{float(value) / 4.4482216152605:.4f} lbF\r\n".encode()
    d = make(gauge, mode="push", start_threshold="0.5 N")
    opened.append(d)
    gauge.stream(lines, 0.02, start_after=b"AOUT50\r\n")
    d.connect()
    [s] = collect(d, 1)
    gauge.done()
    assert s.unit == "N" and s.value == pytest.approx(20.0, abs=1e-3)
    assert s.flags == ("unit_changed:N->lbF",)
    assert s.raw.endswith("lbF")  # the peak line as the gauge sent it


def test_torque_hold_test_is_held(gauge, opened):
    # 16 CFR style, shortened: reach 2 lbFin within 0.5 s, hold 1 s.
    ramp = [2.1 * i / 10 for i in range(1, 11)]
    values = [0.0] * 3 + ramp + [2.1] * 60 + [1.0, 0.0, 0.0, 0.0]
    lines = [f"{v:.3f} lbFin\r\n".encode() for v in values]
    d = make(
        gauge,
        mode="push",
        quantity="torque",
        channel="charm_torque",
        start_threshold="0.2 lbFin",
        hold={"target": "2 lbFin", "tolerance": "0.2 lbFin", "ramp_max_s": 0.5, "hold_s": 1.0},
    )
    opened.append(d)
    gauge.stream(lines, 0.02, start_after=b"AOUT50\r\n")
    d.connect()
    [s] = collect(d, 1)
    gauge.done()
    assert (s.channel, s.measurement, s.unit, s.value) == ("charm_torque", "torque", "lbFin", 2.1)
    extra = dict(s.extra)
    assert extra["held"] is True and extra["held_s"] >= 1.0
    assert extra["reached_target_s"] < 0.5
    assert dict(s.scaled)["target"] == pytest.approx(2.0)
    assert Normalizer().normalize(s).unit == "N·m"


def test_torque_unit_on_a_force_stream_is_refused(gauge, opened):
    d = make(gauge, mode="push", start_threshold="0.5 N")
    opened.append(d)
    gauge.stream([b"0.52 Nm\r\n"] * 3, 0.02, start_after=b"AOUT50\r\n")
    with pytest.raises(UnitError, match="torque unit"):
        d.connect()


# -- VISA ------------------------------------------------------------------------------------------


def test_the_same_gauge_through_pyvisa(gauge, opened):
    address = f"visa://ASRL{gauge.path}::INSTR?baudrate=9600"
    d = Mark10(InstrumentSettings("m10", address, 0.5), Mark10Options())
    opened.append(d)
    gauge.play((b"?C\r\n", b"\x004.285 N\r\n"), (b"?C\r\n", b"-18.78 lbF\r"))
    d.connect()
    [s] = d.poll()
    gauge.done()
    assert (s.value, s.unit) == (-18.78, "lbF")
    assert d.link.garbage == 1


def test_visa_timeout_is_bounded(gauge, opened):
    d = Mark10(InstrumentSettings("m10", f"visa://ASRL{gauge.path}::INSTR", 0.3), Mark10Options())
    opened.append(d)
    gauge.play((b"?C\r\n", b"4.285 N"))
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout):
        d.connect()
    assert time.monotonic() - started < 0.6
    gauge.done()


def test_a_missing_visa_resource_is_a_transport_error():
    d = Mark10(
        InstrumentSettings("m10", "visa://ASRL/dev/nonexistent-gauge::INSTR", 0.2), Mark10Options()
    )
    with pytest.raises(TransportError, match="cannot open visa://ASRL/dev/nonexistent-gauge"):
        d.connect()
    d.close()


# -- the link and its framing, without a gauge -----------------------------------------------------


def test_line_assembler_framing():
    a = LineAssembler(max_line=16)
    a.feed(b"4.2")
    assert a.next_line() is None
    a.feed(b"85 N\r")
    assert a.next_line() == "4.285 N"
    a.feed(b"\n-1 N\r\n\r\n\x00\xff\r\n2 N\r")  # the LF of the split CR-LF, blank lines, garbage
    assert (a.next_line(), a.next_line(), a.next_line()) == ("-1 N", "2 N", None)
    assert a.garbage == 2
    a.feed(b"x" * 40)  # no terminator ever: thrown away, not kept growing
    assert a.next_line() is None and a.pending() == b""
    assert a.garbage == 42


def test_loop_url_round_trip():
    link = open_line_link("loop://", timeout=0.2)
    link.open()
    try:
        assert link.query("?C", terminator=b"\r\n") == "?C"
        link.write_line("4.285 N", b"\r")
        assert link.read_line() == "4.285 N"
        started = time.monotonic()
        with pytest.raises(InstrumentTimeout):
            link.read_line(0.1)
        assert time.monotonic() - started < 0.2
    finally:
        link.close()
        link.close()


@pytest.mark.parametrize(
    ("address", "kind", "target", "baud"),
    [
        ("/dev/ttyUSB0", "serial", "/dev/ttyUSB0", None),
        ("/dev/ttyUSB0?baudrate=9600&parity=n", "serial", "/dev/ttyUSB0", 9600),
        ("COM3?baudrate=19200", "serial", "COM3", 19200),
        ("socket://10.0.0.5:4001", "serial", "socket://10.0.0.5:4001", None),
        (
            "rfc2217://10.0.0.5:2217?baudrate=9600&logging=debug",
            "serial",
            "rfc2217://10.0.0.5:2217?logging=debug",
            9600,
        ),
        ("loop://", "serial", "loop://", None),
        ("visa://ASRL/dev/pts/3::INSTR?baudrate=115200", "visa", "ASRL/dev/pts/3::INSTR", 115200),
        ("visa://ASRL3::INSTR", "visa", "ASRL3::INSTR", None),
    ],
)
def test_address_forms(address, kind, target, baud):
    a = parse_line_address(address)
    assert (a.kind, a.target, a.settings.baudrate) == (kind, target, baud)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("", "empty"),
        ("/dev/ttyUSB0?baud=9600", "unknown setting(s) baud"),
        ("/dev/ttyUSB0?baudrate=fast", "are numbers"),
        ("/dev/ttyUSB0?parity=X", "parity is N, E, O, M or S"),
        ("visa://ASRL3", "not a VISA serial resource"),
        ("visa://TCPIP::10.0.0.5::4001::SOCKET", "use socket://HOST:PORT"),
    ],
)
def test_bad_addresses_say_why(address, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_line_address(address)


def test_options_win_over_the_address_and_defaults_fill_in():
    link = open_line_link(
        "/dev/ttyUSB0?baudrate=9600&parity=E",
        settings=Mark10Options(baudrate=19200).serial_settings(),
        defaults=Mark10Options()
        .serial_settings()
        .over(parse_line_address("x?bytesize=7").settings),
    )
    assert isinstance(link, SerialLink)
    assert (link.settings.baudrate, link.settings.parity, link.settings.bytesize) == (19200, "E", 7)


# -- codec and registry ----------------------------------------------------------------------------


def test_codec():
    assert parse_line("-18.78 lbF").value == -18.78
    assert parse_line("4.285").token is None
    assert parse_line("*10").meaning == "illegal command"
    assert parse_line("V1.00;LBF;CUR") is None
    assert resolve_unit("lbFft", "torque", None) == "lbf·ft"
    assert resolve_unit("LBF", "force", None) == "lbF"
    with pytest.raises(ProtocolError, match="unknown unit 'furlong'"):
        resolve_unit("furlong", "force", None)


def instrument(**kw):
    base = {"name": "gauge-1", "driver": "mark10", "address": "/dev/ttyUSB0"}
    return InstrumentConfig.model_validate(base | kw)


def test_registry_entry_and_mode_from_options():
    entry = REGISTRY["mark10"]
    assert (entry.family, entry.mode) == ("force", "either")
    assert REGISTRY["watlow_f4t"].mode == "poll"
    assert check_instrument(instrument(poll_interval=1.0)) == []
    assert check_instrument(instrument(options={"mode": "poll"})) == [
        (
            "poll_interval",
            'this instrument is polled (options.mode = "poll"): give poll_interval (s)',
        )
    ]
    push = {"mode": "push", "start_threshold": "0.5 N"}
    assert check_instrument(instrument(options=push)) == []
    assert check_instrument(instrument(options=push, poll_interval=1.0)) == [
        ("poll_interval", 'this instrument pushes its results (options.mode = "push"): remove it')
    ]


def test_registry_reports_option_and_address_problems_together():
    problems = check_instrument(
        instrument(
            address="/dev/ttyUSB0?baud=9600",
            options={"mode": "push", "colour": "red", "start_threshold": "1 Nm"},
        )
    )
    keys = [k for k, _ in problems]
    assert keys[0] == "address" and "options.colour" in keys


def test_unit_and_zero_are_set_at_connect(gauge, opened):
    d = connect(
        gauge,
        opened,
        (b"N\r\n", b""),
        (b"Z\r\n", b""),
        (b"?C\r\n", b"0.000 N\r\n"),
        (b"?C\r\n", b"-4.285 N\r\n"),
        set_unit="N",
        zero_on_connect=True,
    )
    [s] = d.poll()
    gauge.done()
    assert gauge.received == b"N\r\nZ\r\n?C\r\n?C\r\n"
    assert (s.value, s.unit) == (-4.285, "N")


def test_set_unit_is_checked_against_the_quantity():
    with pytest.raises(ValueError, match="set_unit: 'furlong' is not a Mark-10 unit"):
        Mark10Options(set_unit="furlong")
    with pytest.raises(ValueError, match="set_unit: unit 'Nm' is a torque unit, not force"):
        Mark10Options(set_unit="Nm")
