"""Watlow F4T over SCPI: the driver against pyvisa-sim devices (tests/drivers/visa/f4t.yaml),
the VISA link against a loopback TCP socket through pyvisa-py, and the reply parsers alone."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pyvisa
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError, TransportError
from daq.instrument import InstrumentSettings
from drivers import f4t_scpi
from drivers.f4t_scpi import F4TScpi, F4TScpiOptions, parse_number, parse_unit
from drivers.transport.visa import VisaLink, check_address, decode_reply, parse_error_reply

YAML = Path(__file__).parent / "visa" / "f4t.yaml"
F4T = "TCPIP::127.0.0.1::5025::SOCKET"
NOT_F4T = "TCPIP::127.0.0.2::5025::SOCKET"
MUTE = "TCPIP::127.0.0.3::5025::SOCKET"
GARBLED = "TCPIP::127.0.0.4::5025::SOCKET"
PLAUSIBLE = (-100.0, 400.0)

Make = Callable[..., F4TScpi]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Build drivers on a fresh copy of the simulated devices; close them all afterwards."""
    path = tmp_path / "f4t.yaml"
    shutil.copy(YAML, path)
    backend = f"{path}@sim"
    built: list[F4TScpi] = []

    def make(address: str = F4T, timeout: float = 0.3, **options: object) -> F4TScpi:
        opts = F4TScpiOptions.model_validate({"backend": backend, **options})
        driver = f4t_scpi.build(InstrumentSettings("chamber-1", address, timeout), opts)
        built.append(driver)
        return driver

    try:
        yield make
    finally:
        for driver in built:
            driver.close()
        pyvisa.ResourceManager(backend).close()


def by_channel(driver: F4TScpi) -> dict[str, object]:
    return {s.channel: s for s in driver.poll()}


# -- the driver against the simulated F4T ------------------------------------------------------


def test_poll_reads_temperature_and_setpoint_in_celsius(make: Make) -> None:
    driver = make()
    driver.connect()
    assert "F4T" in driver.identity
    samples = driver.poll()
    assert [(s.channel, s.quantity, s.value, s.unit, s.raw) for s in samples] == [
        ("temperature", "temperature", 35.1, "°C", "35.1"),
        ("setpoint", "temperature", 35.0, "°C", "35.0"),
    ]
    assert all(s.instrument == "chamber-1" and s.measurement == "chamber" for s in samples)
    assert all(s.flags == () for s in samples)


def test_humidity_loop_is_in_percent_rh(make: Make) -> None:
    driver = make(
        loops=[
            {"loop": 1, "channel": "temperature", "setpoint": "setpoint"},
            {"loop": 2, "channel": "humidity", "quantity": "humidity"},
        ],
        measurement="salt_spray",
    )
    driver.connect()
    samples = {s.channel: s for s in driver.poll()}
    assert set(samples) == {"temperature", "setpoint", "humidity", "humidity_setpoint"}
    assert (samples["humidity"].value, samples["humidity"].unit) == (95.2, "%RH")
    assert samples["humidity"].quantity == "humidity"
    assert samples["humidity_setpoint"].value == 95.0
    assert samples["temperature"].measurement == "salt_spray"


def test_fahrenheit_switched_between_polls_is_reported_and_flagged(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.poll()
    driver.link.write(":UNIT:TEMPERATURE F")
    driver.link.write("SIM:CLOOP1:PVALUE 95.2")
    driver.link.write(":SOURCE:CLOOP1:SPOINT 95.0")
    samples = {s.channel: s for s in driver.poll()}
    assert (samples["temperature"].value, samples["temperature"].unit) == (95.2, "°F")
    assert samples["temperature"].flags == ("unit_changed:°C->°F",)
    assert samples["setpoint"].unit == "°F"
    assert samples["setpoint"].flags == ("unit_changed:°C->°F",)
    again = {s.channel: s for s in driver.poll()}
    assert again["temperature"].flags == ()


def test_fahrenheit_from_the_start_is_not_a_change(make: Make) -> None:
    driver = make()
    driver.link.open()
    driver.link.write(":UNIT:TEMPERATURE F")
    driver.connect()
    samples = driver.poll()
    assert {s.unit for s in samples} == {"°F"}
    assert all(s.flags == () for s in samples)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("nan", InstrumentError),
        ("NaN", InstrumentError),
        ("9999", InstrumentError),
        ("-9999.0", InstrumentError),
        ("+9.9E+37", InstrumentError),
        ("450.0", InstrumentError),
        ("----", ProtocolError),
        ("OPEN", ProtocolError),
    ],
)
def test_sensor_break_is_refused_not_recorded(
    make: Make, reply: str, error: type[Exception]
) -> None:
    driver = make()
    driver.connect()
    driver.link.write(f"SIM:CLOOP1:PVALUE {reply}")
    with pytest.raises(error, match="sensor break or open thermocouple"):
        driver.poll()
    driver.link.write("SIM:CLOOP1:PVALUE 35.2")
    assert by_channel(driver)["temperature"].value == 35.2  # type: ignore[attr-defined]


def test_plausible_range_is_an_option(make: Make) -> None:
    driver = make(plausible=[20, 50])
    driver.connect()
    driver.link.write("SIM:CLOOP1:PVALUE 60")
    with pytest.raises(InstrumentError, match=r"outside the plausible range \[20, 50\]"):
        driver.poll()


def test_wrong_identity_is_refused_and_closes_the_link(make: Make) -> None:
    driver = make(NOT_F4T)
    with pytest.raises(InstrumentError, match=r"is not a Watlow F4T.*DAQ970A"):
        driver.connect()
    assert not driver.link.is_open


def test_identity_check_can_be_turned_off(make: Make) -> None:
    driver = make(NOT_F4T, check_identity=False, loops=[{"loop": 1, "channel": "t"}])
    driver.connect()
    assert "DAQ970A" in driver.identity


def test_unknown_unit_fails_the_connect(make: Make) -> None:
    driver = make(GARBLED)
    with pytest.raises(ProtocolError, match=r"UNIT:TEMPERATURE.*'K'"):
        driver.connect()


def test_no_reply_is_a_timeout_naming_the_command(make: Make) -> None:
    driver = make(MUTE, timeout=0.2)
    driver.connect()
    with pytest.raises(InstrumentTimeout, match=r"did not answer ':SOURCE:CLOOP1:PVALUE\?'"):
        driver.poll()


def test_non_text_reply_is_a_protocol_error(make: Make) -> None:
    driver = make(GARBLED, loops=[{"loop": 1, "channel": "h", "quantity": "humidity"}])
    driver.connect()
    with pytest.raises(ProtocolError, match="non-text bytes"):
        driver.poll()


def test_empty_reply_is_a_protocol_error(make: Make) -> None:
    driver = make(
        GARBLED, loops=[{"loop": 2, "channel": "h", "quantity": "humidity", "read_setpoint": False}]
    )
    driver.connect()
    with pytest.raises(ProtocolError, match="empty line"):
        driver.poll()


def test_unchanged_value_is_flagged_stuck(make: Make) -> None:
    driver = make(stuck_after_s=0.02)
    driver.connect()
    first = by_channel(driver)
    assert first["temperature"].flags == ()  # type: ignore[attr-defined]
    threading.Event().wait(0.05)
    samples = by_channel(driver)
    assert samples["temperature"].flags == ("stuck",)  # type: ignore[attr-defined]
    assert samples["setpoint"].flags == ()  # type: ignore[attr-defined]
    driver.link.write("SIM:CLOOP1:PVALUE 35.3")
    assert by_channel(driver)["temperature"].flags == ()  # type: ignore[attr-defined]


def test_stuck_detection_can_be_turned_off(make: Make) -> None:
    driver = make(stuck_after_s=0)
    driver.connect()
    driver.poll()
    threading.Event().wait(0.02)
    assert all(s.flags == () for s in driver.poll())


def test_close_is_idempotent_and_poll_after_close_is_a_transport_error(make: Make) -> None:
    driver = make()
    driver.connect()
    driver.close()
    driver.close()
    with pytest.raises(TransportError, match="not open"):
        driver.poll()
    with pytest.raises(InstrumentError, match="polled"):
        driver.receive(0.1)


def test_missing_resource_is_a_transport_error(make: Make) -> None:
    driver = make("TCPIP::127.0.0.9::5025::SOCKET")
    with pytest.raises(TransportError):
        driver.connect()


# -- options and addresses ---------------------------------------------------------------------


def test_default_options_read_loop_1_as_temperature_and_setpoint() -> None:
    (loop,) = F4TScpiOptions().loops
    assert (loop.loop, loop.channel, loop.quantity, loop.setpoint_channel) == (
        1,
        "temperature",
        "temperature",
        "setpoint",
    )


@pytest.mark.parametrize(
    "options",
    [
        {"unknown": 1},
        {"loops": []},
        {"loops": [{"loop": 0, "channel": "t"}]},
        {"loops": [{"loop": 1, "channel": "t", "quantity": "pressure"}]},
        {"loops": [{"loop": 1, "channel": "t"}, {"loop": 2, "channel": "t"}]},
        {"loops": [{"loop": 1, "channel": "a"}, {"loop": 1, "channel": "b"}]},
        {"plausible": [10, 5]},
        {"stuck_after_s": -1},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        F4TScpiOptions.model_validate(options)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "empty"),
        ("192.168.1.5:5025", "not a VISA resource"),
        ("TCPIP::host::5025", "::5025::SOCKET"),
        ("TCPIP::host::70000::SOCKET", "port"),
        ("TCPIP::127.0.0.1::5025::SOCKET@sim", "backend"),
        ("USB::0x1::0x2::3::RAW", "message-based"),
    ],
)
def test_bad_addresses_are_refused_in_words(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        f4t_scpi.check_address(address)


@pytest.mark.parametrize(
    "address",
    ["TCPIP::127.0.0.1::5025::SOCKET", "TCPIP::10.0.0.5::INSTR", "ASRL/dev/ttyUSB0::INSTR"],
)
def test_good_addresses_pass(address: str) -> None:
    assert str(f4t_scpi.check_address(address)) == address


# -- the link through pyvisa-py on a real loopback socket --------------------------------------


class LineServer:
    """A one-connection TCP server on 127.0.0.1 answering LF-ended lines from a table."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.received: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LineServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        conn = None
        while conn is None and not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
        if conn is None:
            return
        with conn:
            conn.settimeout(0.05)
            buf = b""
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode("ascii").strip()
                    self.received.append(text)
                    if text in self.answers:
                        conn.sendall(self.answers[text].encode("ascii") + b"\r\n")


def test_driver_over_pyvisa_py_socket() -> None:
    answers = {
        "*IDN?": "WATLOW,F4T,0,1.0",
        ":UNIT:TEMPERATURE?": "C",
        ":SOURCE:CLOOP1:PVALUE?": "35.40",
        ":SOURCE:CLOOP1:SPOINT?": "35.00",
    }
    with LineServer(answers) as server:
        address = f"TCPIP::127.0.0.1::{server.port}::SOCKET"
        driver = f4t_scpi.build(InstrumentSettings("f4t", address, 1.0), F4TScpiOptions())
        try:
            driver.connect()
            values = [(s.channel, s.value, s.unit) for s in driver.poll()]
        finally:
            driver.close()
    assert values == [("temperature", 35.4, "°C"), ("setpoint", 35.0, "°C")]
    assert server.received[:2] == ["*IDN?", ":UNIT:TEMPERATURE?"]


def test_pyvisa_py_timeout_and_error_queue() -> None:
    answers = {"SYST:ERR?": '-222,"Data out of range"'}
    with LineServer(answers) as server:
        link = VisaLink(f"TCPIP::127.0.0.1::{server.port}::SOCKET", timeout=0.2, name="f4t")
        link.open()
        try:
            with pytest.raises(InstrumentTimeout, match=r"'\*IDN\?'"):
                link.query("*IDN?")
            with pytest.raises(InstrumentError, match=r"and maybe more"):
                link.check_errors()
        finally:
            link.close()
            link.close()


def test_refused_connection_is_a_transport_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    link = VisaLink(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout=0.5)
    try:
        with pytest.raises(TransportError) as caught:
            link.open()
            link.query("*IDN?")
        assert not isinstance(caught.value, InstrumentTimeout)
    finally:
        link.close()


# -- parsers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "value"), [("35", 35.0), ("+35.25", 35.25), ("-3.5E+01", -35.0), (" .5 ", 0.5)]
)
def test_parse_number_accepts_scpi_numbers(reply: str, value: float) -> None:
    assert parse_number(reply, "Q?", PLAUSIBLE) == value


def test_setpoint_out_of_range_does_not_blame_the_sensor() -> None:
    with pytest.raises(InstrumentError) as caught:
        parse_number("9999", ":SOURCE:CLOOP1:SPOINT?", PLAUSIBLE, sensor=False)
    assert "sensor break" not in str(caught.value)


@pytest.mark.parametrize(("reply", "unit"), [("C", "°C"), ("f", "°F"), ('"F"', "°F")])
def test_parse_unit(reply: str, unit: str) -> None:
    assert parse_unit(reply) == unit


@given(st.text(max_size=40))
def test_parse_number_raises_only_protocol_or_instrument_errors(text: str) -> None:
    try:
        value = parse_number(text, "Q?", PLAUSIBLE)
    except (ProtocolError, InstrumentError):
        return
    assert PLAUSIBLE[0] <= value <= PLAUSIBLE[1]


@given(st.binary(max_size=60))
def test_decode_reply_raises_only_protocol_errors(data: bytes) -> None:
    try:
        text = decode_reply(data, "Q?", "f4t")
    except ProtocolError:
        return
    assert text and text == text.strip() and text.isprintable()


@pytest.mark.parametrize(
    ("reply", "parsed"),
    [
        ('+0,"No error"', (0, "No error")),
        ('-113,"Undefined header"', (-113, "Undefined header")),
        ("-222, Data out of range", (-222, "Data out of range")),
    ],
)
def test_parse_error_reply(reply: str, parsed: tuple[int, str]) -> None:
    assert parse_error_reply(reply) == parsed


def test_parse_error_reply_refuses_other_text() -> None:
    with pytest.raises(ProtocolError, match="SYST:ERR"):
        parse_error_reply("OK")


def test_check_address_is_shared_with_the_link() -> None:
    assert check_address(F4T).is_socket
