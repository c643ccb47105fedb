"""Imada transcripts over a real pty: ``D`` + CR asked, ``+012.34NTO`` + CR (no LF) answered.

The reply layout is from public drivers (sktometometo/imada_forcegauge reads ``+XX.XXKTO`` + CR
from a DS2-500N); the letter meanings are the driver's documented assumption.
"""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError
from daq.instrument import InstrumentSettings
from daq.units import Normalizer
from drivers.imada import (
    DEFAULT_UNIT_LETTERS,
    Imada,
    ImadaOptions,
    parse_reply,
)
from drivers.registry import REGISTRY
from tests.drivers.test_mark10_transcripts import Gauge

D = b"D\r"


@pytest.fixture
def gauge():
    g = Gauge()
    yield g
    g.close()


@pytest.fixture
def opened():
    drivers: list[Imada] = []
    yield drivers
    for d in drivers:
        d.close()


def make(gauge: Gauge, timeout: float = 0.5, **options) -> Imada:
    return Imada(InstrumentSettings("imada-1", gauge.path, timeout), ImadaOptions(**options))


def connect(gauge: Gauge, opened: list, *steps, **options) -> Imada:
    d = make(gauge, **options)
    opened.append(d)
    gauge.play(*steps)
    d.connect()
    return d


def test_reading_in_newtons_with_mode_and_judgement(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"+012.34NTO\r"), channel="prong_push")
    [s] = d.poll()
    gauge.done()
    assert gauge.received == b"D\rD\r"
    assert (s.value, s.unit, s.raw, s.channel, s.flags) == (
        12.34,
        "N",
        "+012.34NTO",
        "prong_push",
        (),
    )
    assert dict(s.extra) == {"gauge_mode": "track", "judgement": "ok"}


def test_negative_peak_in_kgf_above_the_high_set_point(gauge, opened):
    d = connect(gauge, opened, (D, b"+00.000KTO\r"), (D, b"-01.234KPH\r"))
    [s] = d.poll()
    gauge.done()
    assert (s.value, s.unit) == (-1.234, "kgF")
    assert dict(s.extra) == {"gauge_mode": "peak", "judgement": "high"}
    assert Normalizer().normalize(s).value == pytest.approx(-12.1014, abs=1e-4)


def test_unit_change_is_flagged_and_converted(gauge, opened):
    d = connect(gauge, opened, (D, b"+010.00NTO\r"), (D, b"+010.00NTO\r"), (D, b"+02.248OTO\r"))
    first, second = d.poll()[0], d.poll()[0]
    gauge.done()
    assert first.flags == ()
    assert (second.unit, second.flags) == ("lbF", ("unit_changed:N->lbF",))
    assert Normalizer().normalize(second).value == pytest.approx(10.0, abs=1e-3)


def test_overload_judgement_flags_the_sample(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"+999.99NTE\r"))
    [s] = d.poll()
    gauge.done()
    assert s.flags == ("overload",) and dict(s.extra)["judgement"] == "overload"


def test_unknown_unit_letter_is_a_protocol_error_naming_the_option(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"+012.34XTO\r"))
    with pytest.raises(ProtocolError, match=r"unit letter 'X'.*options\.unit_letters"):
        d.poll()
    gauge.done()


def test_the_letter_map_is_an_option(gauge, opened):
    d = connect(
        gauge,
        opened,
        (D, b"+000.00OTO\r"),
        (D, b"+012.34OTO\r"),
        unit_letters={"O": "ozF", "N": "N"},
    )
    [s] = d.poll()
    gauge.done()
    assert s.unit == "ozF"


def test_unknown_mode_and_judgement_letters_are_kept_as_they_are(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"+001.00NQZ\r"))
    [s] = d.poll()
    gauge.done()
    assert dict(s.extra) == {"gauge_mode": "Q", "judgement": "Z"}


def test_reply_split_across_reads(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, [b"+01", b"2.34N", b"TO\r"]))
    [s] = d.poll()
    gauge.done()
    assert s.value == 12.34


def test_garbage_before_the_reply_is_dropped(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"\x00\xff\xff+012.34NTO\r"))
    [s] = d.poll()
    gauge.done()
    assert s.value == 12.34 and d.link.garbage == 3


def test_no_reply_times_out_within_the_bound(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b""))
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match="no reply to 'D'"):
        d.poll()
    assert 0.45 <= time.monotonic() - started < 0.7
    gauge.done()


def test_missing_cr_is_a_timeout_not_a_hang_and_the_next_poll_recovers(gauge, opened):
    d = connect(
        gauge,
        opened,
        (D, b"+000.00NTO\r"),
        (D, b"+012.34NTO"),  # the CR never comes
        (D, b"+012.35NTO\r"),
    )
    started = time.monotonic()
    with pytest.raises(InstrumentTimeout, match=r"got b'\+012.34NTO' without a line end"):
        d.poll()
    assert time.monotonic() - started < 0.7
    [s] = d.poll()  # the partial reply is thrown away, not glued to the next one
    gauge.done()
    assert s.value == 12.35


def test_lf_is_not_part_of_the_protocol(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"+012.34NTO\r\n"), (D, b"+012.35NTO\r"))
    assert d.poll()[0].value == 12.34
    assert d.poll()[0].value == 12.35  # the stray LF was garbage, not a line
    gauge.done()


def test_a_late_reply_is_not_taken_for_the_next_one(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b""))
    with pytest.raises(InstrumentTimeout):
        d.poll()
    gauge.done()
    gauge.send(b"+099.99NTO\r")  # the reply to the poll that timed out, arriving late
    time.sleep(0.05)
    gauge.play((D, b"+001.00NTO\r"))
    [s] = d.poll()
    gauge.done()
    assert s.value == 1.0 and d.stale_lines == 1


def test_garbled_reply_is_a_protocol_error(gauge, opened):
    d = connect(gauge, opened, (D, b"+000.00NTO\r"), (D, b"+0x2.34NTO\r"))
    with pytest.raises(ProtocolError, match="not <sign><digits><unit><mode><judgement>"):
        d.poll()
    gauge.done()


# -- push: repeated D polling, one sample per test -------------------------------------------------


def answer_curve(gauge: Gauge, values: list[float], letters: str = "NTO") -> threading.Thread:
    """Answer each D with the next value of the curve (then the last one, forever)."""

    def run() -> None:
        i = 0
        try:
            while not gauge.stop.is_set():
                try:
                    gauge.expect(D, timeout=0.2)
                except AssertionError:
                    continue
                v = values[min(i, len(values) - 1)]
                gauge.send(f"{v:+07.2f}{letters}\r".encode())
                i += 1
        except OSError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_pull_test_by_polling_is_one_sample(gauge, opened):
    values = [0.0] * 3 + [30.0 * i / 20 for i in range(1, 21)] + [28.5] * 5 + [0.1] * 50
    answer_curve(gauge, values, "NTO")
    d = make(gauge, mode="push", start_threshold="0.5 N", rate_hz=50, channel="jump_ring_pull")
    opened.append(d)
    d.connect()
    samples: list = []
    end = time.monotonic() + 3.0
    while not samples and time.monotonic() < end:
        samples += d.receive(0.25)
    [s] = samples
    assert (s.channel, s.value, s.unit, s.raw) == ("jump_ring_pull", 30.0, "N", "+030.00NTO")
    assert dict(s.scaled) == {"break_force": 28.5}
    extra = dict(s.extra)
    assert extra["broke"] is True and 0.3 < extra["time_to_break_s"] < 1.0
    assert extra["points"] == 27


def test_receive_keeps_its_timeout_and_its_rate(gauge, opened):
    answer_curve(gauge, [0.0])
    d = make(gauge, mode="push", start_threshold="0.5 N", rate_hz=20)
    opened.append(d)
    d.connect()
    gauge_before = len(gauge.received)
    started = time.monotonic()
    assert d.receive(0.5) == []
    elapsed = time.monotonic() - started
    assert elapsed < 0.7
    requests = (len(gauge.received) - gauge_before) // len(D)
    assert 5 <= requests <= 11


def test_overload_during_a_polled_test_flags_it(gauge, opened):
    values = [0.0] * 2 + [100.0 * i / 10 for i in range(1, 11)] + [0.0] * 20
    lines = ["NTO"] * 11 + ["NTE"] + ["NTO"] * 20

    def run() -> None:
        for i, v in enumerate(values):
            try:
                gauge.expect(D, timeout=2.0)
            except (AssertionError, OSError):
                return
            gauge.send(f"{v:+07.2f}{lines[i]}\r".encode())

    threading.Thread(target=run, daemon=True).start()
    d = make(gauge, mode="push", start_threshold="1 N", rate_hz=50)
    opened.append(d)
    d.connect()
    samples: list = []
    end = time.monotonic() + 3.0
    while not samples and time.monotonic() < end:
        samples += d.receive(0.2)
    [s] = samples
    assert s.flags == ("overload",) and s.value == 100.0


# -- options, codec, registry ----------------------------------------------------------------------


def test_torque_gauge_needs_its_letters():
    with pytest.raises(ValidationError, match="unit_letters: give the unit letters"):
        ImadaOptions(quantity="torque")
    ok = ImadaOptions(quantity="torque", unit_letters={"N": "Ncm"})
    assert ok.units == {"N": "Ncm"}
    with pytest.raises(ValidationError, match=r"unit_letters\.N"):
        ImadaOptions(unit_letters={"N": "Nm"})  # a torque unit on a force gauge


def test_default_letters_are_the_documented_assumption():
    assert DEFAULT_UNIT_LETTERS == {"N": "N", "K": "kgF", "O": "lbF"}
    assert ImadaOptions().units == DEFAULT_UNIT_LETTERS


def test_parse_reply_by_position():
    r = parse_reply("+012.34NTO")
    assert (r.value, r.unit_letter, r.mode_letter, r.judgement_letter) == (12.34, "N", "T", "O")
    assert parse_reply("-1.5KPL").value == -1.5
    with pytest.raises(ProtocolError, match="too short"):
        parse_reply("NTO")


def test_poll_on_a_push_driver_is_refused(gauge):
    d = make(gauge, mode="push", start_threshold="0.5 N")
    with pytest.raises(InstrumentError, match="mode = push"):
        d.poll()


def test_registry_entry():
    entry = REGISTRY["imada"]
    assert (entry.family, entry.mode, entry.options) == ("force", "either", ImadaOptions)
