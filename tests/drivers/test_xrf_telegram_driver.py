"""The XRF print-out driver (drivers/xrf_telegram.py): its framer, and the driver over a pty.

The test plays the instrument on the master side of a pseudo-terminal made with os.openpty();
the driver opens the slave side by its path with pyserial, like any serial port.
"""

import contextlib
import os
import re
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.config import InstrumentConfig
from daq.errors import ProtocolError, TransportError, UnitError
from daq.instrument import InstrumentSettings
from drivers.registry import REGISTRY, check_instrument
from drivers.xrf_parse import load_template
from drivers.xrf_telegram import (
    Block,
    TelegramFramer,
    Truncated,
    XrfTelegram,
    XrfTelegramOptions,
    build,
    check_address,
)

TPL = load_template("telegram-default")
assert TPL.telegram_start is not None
assert TPL.telegram_end is not None

BLOCK = (
    b"RESULT 0042\r\n"
    b"Application: Au/Ni/CuZn\r\n"
    b"Product: VRM-RING-001\r\n"
    b"Operator: M. Keller\r\n"
    b"Date/Time: 2026-03-14 10:22:05\r\n"
    b"n      Au [\xb5m]    Ni [\xb5m]\r\n"  # Windows-1252 micro sign
    b"1      2.61       3.05\r\n"
    b"2      2.58       3.11\r\n"
    b"Mean   2.595      3.08\r\n"
    b"END\r\n"
)

# One reading as key: value lines, micro-inches, decimal comma, STX/ETX framing.
UIN_BLOCK = b"\x02Application: Rh/Ag\r\nReading: 7\r\nRh [\xb5in]: 12,4\r\n\x03"


def framer(**kw) -> TelegramFramer:
    return TelegramFramer(TPL.telegram_start, TPL.telegram_end, **kw)


# -- the framer, without a port --------------------------------------------------------------


def test_framer_whole_block():
    (block,) = framer().feed(BLOCK, 0.0)
    assert isinstance(block, Block)
    assert block.start == "RESULT 0042"
    assert block.body.startswith(b"Application: Au/Ni/CuZn\nProduct")
    assert b"END" not in block.body


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_framer_block_in_pieces_with_cr_lf_split(step):
    f = framer()
    out = []
    for i in range(0, len(BLOCK), step):
        out += f.feed(BLOCK[i : i + step], 0.0)
    (block,) = out
    assert block == framer().feed(BLOCK, 0.0)[0]


def test_framer_cr_only_and_lf_only_line_ends():
    for end in (b"\r", b"\n"):
        (block,) = framer().feed(BLOCK.replace(b"\r\n", end), 0.0)
        assert isinstance(block, Block)
        assert block.body.count(b"\n") == 7


def test_framer_ignores_garbage_outside_blocks():
    f = framer()
    out = f.feed(b"\xff\x00noise\r\n\x07\x07" + BLOCK + b"ERR 12\r\n" + UIN_BLOCK, 0.0)
    assert [type(e) for e in out] == [Block, Block]
    assert f.garbage > 0


def test_framer_next_start_truncates_the_open_block():
    cut = BLOCK[: BLOCK.index(b"2      2.58")]
    out = framer().feed(cut + BLOCK, 0.0)
    assert [type(e) for e in out] == [Truncated, Block]
    assert "next block began" in out[0].reason
    assert "no end line" in out[0].reason
    assert "6 line(s) are thrown away" in out[0].reason


def test_framer_gap_truncates_and_an_end_line_without_line_end_completes():
    f = framer(gap_s=1.0)
    f.feed(BLOCK[:60], 10.0)
    assert f.expire(10.5) == []
    (t,) = f.expire(11.1)
    assert isinstance(t, Truncated)
    assert "nothing arrived for 1 s" in t.reason
    assert not f.in_block
    f.feed(BLOCK[:-2], 20.0)  # "END" with no CR-LF after it
    (b,) = f.expire(21.5)
    assert isinstance(b, Block)


def test_framer_block_too_long():
    f = framer(max_block=300)
    out = f.feed(b"RESULT\r\n" + b"1   2.5   3.0\r\n" * 40 + b"END\r\n", 0.0)
    assert [type(e) for e in out] == [Truncated]
    assert "grew past 300 bytes" in out[0].reason


def test_framer_form_feed_ends_a_block():
    (b,) = framer().feed(BLOCK.replace(b"END\r\n", b"\x0c"), 0.0)
    assert isinstance(b, Block)


def test_framer_an_unanchored_start_finds_a_block_glued_to_a_cut_line():
    start = re.compile(r"RESULT \d+\s*$")
    f = TelegramFramer(start, TPL.telegram_end)
    cut = BLOCK[: BLOCK.index(b"2.58") + 2]  # no line end: the next start is glued on
    out = f.feed(cut + b"~#+" + BLOCK, 0.0)
    assert [type(e) for e in out] == [Truncated, Block]
    assert out[1] == framer().feed(BLOCK, 0.0)[0]
    g = TelegramFramer(start, TPL.telegram_end)
    assert [type(e) for e in g.feed(b"+#~noise" + BLOCK, 0.0)] == [Block]


def test_framer_line_noise_before_an_anchored_start():
    (b,) = framer().feed(b"\x11\x13\x00" + BLOCK, 0.0)
    assert b.start == "RESULT 0042"


@given(st.lists(st.binary(max_size=200), max_size=20), st.integers(0, 3))
@settings(max_examples=300, deadline=None)
def test_fuzz_framer_and_parser_give_blocks_or_documented_errors(chunks, where):
    chunks.insert(min(where, len(chunks)), BLOCK[: where * 30])
    f = framer(gap_s=1.0, max_block=2000)
    events = []
    for i, chunk in enumerate(chunks):
        events += f.feed(chunk, float(i))
    events += f.expire(1e9)
    driver = XrfTelegram(InstrumentSettings("x", "loop://"), XrfTelegramOptions(), TPL)
    for e in events:
        assert isinstance(e, (Block, Truncated))
        if isinstance(e, Block):
            with contextlib.suppress(ProtocolError, UnitError):
                driver._samples(e)


# -- the driver over a pty -------------------------------------------------------------------


class Instrument:
    """The instrument's side of a pty pair."""

    def __init__(self):
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        os.close(slave)  # pyserial opens the slave by its path

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def send_slowly(self, data: bytes, step: int, pause: float) -> threading.Thread:
        def run():
            for i in range(0, len(data), step):
                os.write(self.master, data[i : i + step])
                time.sleep(pause)

        t = threading.Thread(target=run)
        t.start()
        return t

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def inst():
    pty = Instrument()
    yield pty
    pty.close()


@pytest.fixture
def connect(inst):
    drivers = []

    def make(**options) -> XrfTelegram:
        opts = XrfTelegramOptions.model_validate({"block_gap_s": 0.5, **options})
        driver = build(InstrumentSettings("xrf-print", inst.path), opts)
        driver.connect()
        drivers.append(driver)
        return driver

    yield make
    for d in drivers:
        d.close()


def until(driver: XrfTelegram, seconds: float = 3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples = driver.receive(0.1)
        if samples:
            return samples
    return []


def test_full_block(inst, connect):
    driver = connect()
    inst.send(BLOCK)
    samples = until(driver)
    assert [(s.channel, s.value, s.unit) for s in samples] == [
        ("layer_Au", 2.61, "µm"),
        ("layer_Ni", 3.05, "µm"),
        ("layer_Au", 2.58, "µm"),
        ("layer_Ni", 3.11, "µm"),
    ]
    au = samples[0]
    assert (au.measurement, au.quantity, au.instrument) == ("thickness", "length", "xrf-print")
    assert au.instrument_time == "2026-03-14T10:22:05"
    extra = dict(au.extra)
    assert extra["application"] == "Au/Ni/CuZn"
    assert extra["reading"] == 1
    assert extra["layer_index"] == 1
    assert dict(au.scaled)["uncertainty"] == pytest.approx(0.261)
    assert dict(au.scaled)["series_mean"] == 2.595
    assert samples[0].time_ns < samples[2].time_ns


def test_partial_block_across_writes(inst, connect):
    driver = connect()
    writer = inst.send_slowly(BLOCK, 17, 0.01)
    try:
        samples = until(driver)
    finally:
        writer.join()
    assert len(samples) == 4


def test_half_a_block_then_the_rest(inst, connect):
    driver = connect()
    inst.send(BLOCK[:100])
    assert driver.receive(0.2) == []
    inst.send(BLOCK[100:])
    assert len(driver.receive(1.0)) == 4


def test_garbage_bytes_around_blocks(inst, connect):
    driver = connect()
    inst.send(b"\x00\xff\xfe~~ line noise\r\n" + BLOCK + b"\x13\x11PRINTER READY\r\n" + BLOCK)
    assert len(until(driver)) == 4
    assert len(until(driver)) == 4
    assert driver.garbage > 0


def test_truncated_by_the_next_block(inst, connect):
    driver = connect()
    inst.send(BLOCK[: BLOCK.index(b"2      2.58")] + BLOCK)
    with pytest.raises(ProtocolError, match=r"RESULT 0042.*no end line.*next block began"):
        until(driver)
    assert len(until(driver)) == 4  # the next block is whole and comes through


def test_cut_mid_line_and_run_into_the_next_block_is_refused_not_recorded(inst, connect):
    # Without a line end the next start line is glued to the cut line: the two blocks merge,
    # and the merged text is refused (with STX/ETX framing the next block would survive).
    driver = connect()
    inst.send(BLOCK[: BLOCK.index(b"2.58") + 2] + BLOCK)
    with pytest.raises(ProtocolError):
        until(driver)
    inst.send(BLOCK)
    assert len(until(driver)) == 4


def test_truncated_by_silence(inst, connect):
    driver = connect(block_gap_s=0.3)
    inst.send(BLOCK[:150])
    started = time.monotonic()
    with pytest.raises(ProtocolError, match=r"no end line.*nothing arrived for 0\.3 s"):
        until(driver)
    assert time.monotonic() - started < 1.5
    inst.send(BLOCK)
    assert len(until(driver)) == 4


def test_micro_inches_comma_decimals_and_a_unit_switch(inst, connect):
    driver = connect()
    inst.send(b"\x02Reading: 1\r\nRh [\xb5m]: 0,31\r\n\x03")
    (first,) = until(driver)
    assert (first.value, first.unit, first.flags) == (0.31, "µm", ())
    inst.send(UIN_BLOCK)
    (rh,) = until(driver)
    assert (rh.channel, rh.value, rh.unit) == ("layer_Rh", 12.4, "µin")
    assert rh.flags == ("unit_changed:µm->µin",)
    assert dict(rh.extra)["reading"] == 7
    assert dict(rh.scaled)["uncertainty"] == pytest.approx(12.4 * 0.05)


def test_a_complete_block_that_does_not_parse(inst, connect):
    driver = connect()
    inst.send(b"RESULT\r\nn  Xx [\xb5m]\r\n1  2.5\r\nEND\r\n")
    with pytest.raises(ProtocolError, match="unknown element 'Xx'"):
        until(driver)
    inst.send(b"RESULT\r\nAu [mg/cm2]: 12\r\nEND\r\n")
    with pytest.raises(UnitError, match="not a thickness unit"):
        until(driver)


def test_receive_keeps_its_time_bound(connect):
    driver = connect()
    for timeout in (0.0, 0.05, 0.3):
        started = time.monotonic()
        assert driver.receive(timeout) == []
        assert time.monotonic() - started < timeout + 0.1


def test_the_instrument_going_away_is_a_transport_error(inst, connect):
    driver = connect()
    inst.close()
    with pytest.raises(TransportError):
        until(driver, 1.0)
    driver.close()
    driver.close()


def test_a_missing_port_is_a_transport_error():
    driver = build(InstrumentSettings("x", "/dev/does-not-exist"), XrfTelegramOptions())
    with pytest.raises(TransportError, match="cannot open /dev/does-not-exist"):
        driver.connect()


# -- address, options, registry ----------------------------------------------------------------


def test_serial_settings_from_options_then_address_then_defaults():
    driver = build(
        InstrumentSettings("x", "/dev/ttyUSB0?baudrate=19200&parity=E"),
        XrfTelegramOptions(parity="O"),
    )
    s = driver.serial_settings
    assert (s.baudrate, s.bytesize, s.parity, s.stopbits) == (19200, 8, "O", 1.0)


def test_address_forms():
    assert check_address("/dev/ttyUSB0").target == "/dev/ttyUSB0"
    assert check_address("socket://10.0.0.5:4001").target == "socket://10.0.0.5:4001"
    with pytest.raises(ValueError, match="serial port"):
        check_address("visa://ASRL3::INSTR")


def test_registry_entry_and_config_checks(tmp_path):
    entry = REGISTRY["xrf_telegram"]
    assert (entry.family, entry.mode) == ("thickness", "push")
    base = {"name": "xrf-print", "driver": "xrf_telegram", "address": "/dev/ttyUSB0"}
    assert check_instrument(InstrumentConfig.model_validate(base)) == []
    problems = dict(
        check_instrument(
            InstrumentConfig.model_validate(
                {**base, "options": {"template": "export-default", "stopbits": 3}}
            )
        )
    )
    assert "stopbits is 1, 1.5 or 2" in problems["options.stopbits"]
    problems = dict(
        check_instrument(
            InstrumentConfig.model_validate({**base, "options": {"template": "export-default"}})
        )
    )
    assert "no [telegram]" in problems["options.template"]
