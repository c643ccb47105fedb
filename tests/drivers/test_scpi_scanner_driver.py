"""SCPI scanner (34970A/DAQ970A style): the driver against pyvisa-sim devices
(tests/drivers/visa/scanner.yaml) and the READ? parser alone, fuzzed."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pyvisa
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError, TransportError
from daq.instrument import InstrumentSettings
from drivers import scpi_scanner
from drivers.scpi_scanner import (
    ScpiScanner,
    ScpiScannerOptions,
    channel_list,
    parse_scan,
    setup_commands,
)

YAML = Path(__file__).parent / "visa" / "scanner.yaml"
DAQ = "TCPIP::127.0.0.1::5025::SOCKET"
MUTE = "TCPIP::127.0.0.3::5025::SOCKET"

CHANNELS: list[dict[str, object]] = [
    {"channel": 101, "name": "temperature"},
    {"channel": 102, "name": "zone_2", "tc_type": "K"},
    {"channel": 103, "name": "humidity", "kind": "humidity", "gain": 100},
]

Make = Callable[..., ScpiScanner]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Build scanners on a fresh copy of the simulated devices; close them all afterwards."""
    path = tmp_path / "scanner.yaml"
    shutil.copy(YAML, path)
    backend = f"{path}@sim"
    built: list[ScpiScanner] = []

    def make(address: str = DAQ, timeout: float = 0.3, **options: object) -> ScpiScanner:
        values = {"backend": backend, "channels": CHANNELS, **options}
        opts = ScpiScannerOptions.model_validate(values)
        driver = scpi_scanner.build(InstrumentSettings("daq-1", address, timeout), opts)
        built.append(driver)
        return driver

    try:
        yield make
    finally:
        for driver in built:
            driver.close()
        pyvisa.ResourceManager(backend).close()


# -- the driver against the simulated scanner --------------------------------------------------


def test_connect_and_poll_every_channel(make: Make) -> None:
    driver = make()
    driver.connect()
    assert "DAQ970A" in driver.identity
    samples = driver.poll()
    assert [(s.channel, s.quantity, s.value, s.unit, s.raw) for s in samples] == [
        ("temperature", "temperature", 35.12, "°C", "+3.51200000E+01,101"),
        ("zone_2", "temperature", 34.87, "°C", "+3.48700000E+01,102"),
        ("humidity", "humidity", 95.2, "%RH", "+9.52000000E+01,103"),
    ]
    assert {(s.instrument, s.measurement) for s in samples} == {("daq-1", "chamber")}
    assert driver.sensor_break == ()


def test_reply_in_another_order_with_spaces_is_parsed(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.link.write("SIM:SCAN 9.5E1, 103 ,  -1.5e-1,102,35,+101")
    values = {s.channel: s.value for s in driver.poll()}
    assert values == {"temperature": 35.0, "zone_2": -0.15, "humidity": 95.0}


def test_overload_on_one_channel_records_the_others(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    driver = make()
    driver.connect()
    driver.link.write("SIM:SCAN +3.51E+01,101,+9.90000000E+37,102,+9.5E+01,103")
    with caplog.at_level(logging.WARNING, logger="drivers.scpi_scanner"):
        samples = driver.poll()
        driver.poll()
    assert [s.channel for s in samples] == ["temperature", "humidity"]
    assert driver.sensor_break == ("zone_2",)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once when it breaks, not on every poll
    assert "daq-1" in warnings[0] and "zone_2" in warnings[0]
    assert "sensor break or open thermocouple" in warnings[0]
    driver.link.write("SIM:SCAN +3.51E+01,101,+3.50E+01,102,+9.5E+01,103")
    assert len(driver.poll()) == 3
    assert not driver.sensor_break


def test_overload_on_every_channel_is_an_instrument_error(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.link.write("SIM:SCAN +9.9E+37,101,+9.9E+37,102,-9.9E+37,103")
    with pytest.raises(InstrumentError, match="every channel reads overload"):
        driver.poll()
    assert driver.sensor_break == ("temperature", "zone_2", "humidity")


def test_missing_channel_is_a_protocol_error(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.link.write("SIM:SCAN +3.51E+01,101,+9.5E+01,103")
    with pytest.raises(ProtocolError, match=r"did not return channel.*102"):
        driver.poll()


def test_unexpected_and_repeated_channels_are_protocol_errors(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.link.write("SIM:SCAN 1,101,2,102,3,103,4,104")
    with pytest.raises(ProtocolError, match="104, which is not in the scan"):
        driver.poll()
    driver.link.write("SIM:SCAN 1,101,2,101,3,103")
    with pytest.raises(ProtocolError, match="101 twice"):
        driver.poll()


def test_readings_without_channel_numbers_are_refused(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.link.write("SIM:SCAN +3.51E+01,+3.48E+01,+9.5E+01")
    with pytest.raises(ProtocolError, match="value,channel pairs"):
        driver.poll()


def test_setup_the_instrument_does_not_take_is_listed_from_syst_err(make: Make) -> None:
    channels = [dict(CHANNELS[0]), dict(CHANNELS[1], tc_type="J"), dict(CHANNELS[2])]
    driver = make(channels=channels)
    with pytest.raises(InstrumentError) as caught:
        driver.connect()
    message = str(caught.value)
    assert "after configuring the scan" in message
    assert message.count('-113,"Undefined header"') == 2  # CONF:TEMP TC,J and TC,K lists
    assert not driver.link.is_open


def test_without_reset_no_rst_is_sent(make: Make) -> None:
    driver = make(reset=False)
    driver.connect()
    assert len(driver.poll()) == 3
    assert "*RST" not in setup_commands(driver.options)


def test_no_reply_to_read_is_a_timeout(make: Make) -> None:
    driver = make(MUTE, timeout=0.2)
    driver.connect()
    with pytest.raises(InstrumentTimeout, match=r"'READ\?'"):
        driver.poll()


def test_close_is_idempotent(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.close()
    driver.close()
    with pytest.raises(TransportError):
        driver.poll()


def test_error_queue_is_read_at_most_twenty_times(make: Make) -> None:
    driver = make()
    driver.connect()
    for i in range(25):
        driver.link.write(f"BOGUS{i}")
    with pytest.raises(InstrumentError, match="and maybe more") as caught:
        driver.link.check_errors()
    assert str(caught.value).count("-113") == 20


# -- set-up commands and options ---------------------------------------------------------------


def test_setup_commands_follow_the_manual_order() -> None:
    options = ScpiScannerOptions.model_validate(
        {
            "channels": [
                {"channel": 201, "name": "temperature", "tc_type": "T"},
                {"channel": 101, "name": "a"},
                {"channel": 103, "name": "b"},
                {"channel": 105, "name": "rh", "kind": "humidity", "gain": 20, "offset": -25},
            ]
        }
    )
    assert setup_commands(options) == [
        "*RST",
        "*CLS",
        "CONF:TEMP TC,K,(@101,103)",
        "CONF:TEMP TC,T,(@201)",
        "CONF:VOLT:DC (@105)",
        "UNIT:TEMP C,(@101,103,201)",
        "CALC:SCAL:GAIN 20,(@105)",
        "CALC:SCAL:OFFS -25,(@105)",
        'CALC:SCAL:UNIT "RH",(@105)',
        "CALC:SCAL:STAT ON,(@105)",
        "FORM:READ:CHAN ON",
        "FORM:READ:UNIT OFF",
        "ROUT:SCAN (@101,103,105,201)",
    ]


def test_channel_list() -> None:
    assert channel_list([103, 101, 102]) == "(@101,102,103)"


@pytest.mark.parametrize(
    "options",
    [
        {"channels": []},
        {"channels": [{"channel": 100, "name": "a"}]},
        {"channels": [{"channel": 400, "name": "a"}]},
        {"channels": [{"channel": 101, "name": "a", "kind": "voltage"}]},
        {"channels": [{"channel": 101, "name": "a", "tc_type": "X"}]},
        {"channels": [{"channel": 101, "name": "a", "gain": 2}]},
        {"channels": [{"channel": 101, "name": "a", "kind": "humidity", "gain": 0}]},
        {"channels": [{"channel": 101, "name": "a"}, {"channel": 101, "name": "b"}]},
        {"channels": [{"channel": 101, "name": "a"}, {"channel": 102, "name": "a"}]},
        {"channels": [{"channel": 101, "name": "a"}], "humidity_label": "%RH"},
        {"channels": [{"channel": 101, "name": "a"}], "extra": True},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ScpiScannerOptions.model_validate(options)


def test_bad_address_is_refused() -> None:
    with pytest.raises(ValueError, match="not a VISA resource"):
        scpi_scanner.check_address("daq970a.local:5025")


# -- the READ? parser --------------------------------------------------------------------------


def test_parse_scan_marks_overload_as_none() -> None:
    readings = parse_scan("+2.1E+01,101,+9.9E+37,102", [101, 102])
    assert [(r.channel, r.value) for r in readings] == [(101, 21.0), (102, None)]


@pytest.mark.parametrize(
    "reply",
    ["", "21.0", "21.0,101,", "abc,101", "21.0,abc", "21.0,101.5", "nan,101", "21.0,1e2"],
)
def test_parse_scan_refuses_garbage(reply: str) -> None:
    with pytest.raises(ProtocolError):
        parse_scan(reply, [101])


@given(st.text(max_size=120))
def test_parse_scan_raises_only_protocol_errors(text: str) -> None:
    try:
        readings = parse_scan(text, [101, 102, 103])
    except ProtocolError:
        return
    assert sorted(r.channel for r in readings) == [101, 102, 103]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([101, 102, 103, 201, 322]),
            st.floats(allow_nan=False, allow_infinity=False, width=32),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda pair: pair[0],
    )
)
def test_parse_scan_reads_back_what_the_instrument_formats(
    pairs: list[tuple[int, float]],
) -> None:
    reply = ",".join(f"{value:+.8E},{channel}" for channel, value in pairs)
    readings = parse_scan(reply, [channel for channel, _ in pairs])
    for (channel, value), reading in zip(pairs, readings, strict=True):
        assert reading.channel == channel
        if abs(value) >= 9.9e37:
            assert reading.value is None
        else:
            assert reading.value == pytest.approx(value, rel=1e-8, abs=0)
