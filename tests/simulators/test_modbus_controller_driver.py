"""The map-driven Modbus driver against the F4T simulator, over real TCP, one test per fault."""

import pytest
from pymodbus.client import ModbusTcpClient

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError, TransportError
from daq.instrument import InstrumentSettings
from daq.units import Normalizer
from drivers.modbus_controller import ModbusControllerOptions, build
from simulators.watlow_f4t import running_chamber


def make(address, timeout=0.5, **options):
    settings = InstrumentSettings("chamber-1", address, timeout)
    return build(settings, ModbusControllerOptions(**options), "watlow_f4t")


@pytest.fixture
def chamber():
    with running_chamber(seed=3) as sim:
        yield sim


@pytest.fixture
def driver(chamber):
    d = make(chamber.address)
    d.connect()
    yield d
    d.close()


def by_channel(samples):
    return {s.channel: s for s in samples}


def test_poll_reads_every_point(driver, chamber):
    s = by_channel(driver.poll())
    assert set(s) == {"temperature", "setpoint", "saturator_temperature", "saturator_setpoint"}
    t = s["temperature"]
    assert (t.instrument, t.measurement, t.quantity, t.unit) == (
        "chamber-1",
        "chamber",
        "temperature",
        "°C",
    )
    assert t.value == pytest.approx(35.0, abs=0.5)
    assert s["setpoint"].value == pytest.approx(35.0)
    assert s["saturator_setpoint"].value == pytest.approx(47.0)
    assert t.raw.startswith("27586: ")
    assert t.flags == ()


def test_fahrenheit_display_is_converted_and_flagged(driver, chamber):
    driver.poll()
    client = ModbusTcpClient(chamber.host, port=chamber.port, timeout=1)
    assert client.connect()
    try:
        assert not client.write_register(1328, 30, device_id=1).isError()
    finally:
        client.close()
    s = by_channel(driver.poll())
    t = s["temperature"]
    assert t.unit == "°F"
    assert "unit_changed:°C->°F" in t.flags
    reading = Normalizer().normalize(t)
    assert reading.unit == "°C"
    assert reading.value == pytest.approx(35.0, abs=0.5)
    assert "unit_changed:°C->°F" not in by_channel(driver.poll())["temperature"].flags


def test_swapped_word_order_is_caught(driver, chamber):
    chamber.set_fault("word_order_swapped")
    with pytest.raises(ProtocolError, match=r"plausible range .*check word_order \(now CDAB\)"):
        driver.poll()


def test_configured_word_order_wins():
    with running_chamber(seed=1) as sim:
        sim.set_fault("word_order_swapped")
        d = make(sim.address, word_order="ABCD")
        d.connect()
        try:
            assert by_channel(d.poll())["temperature"].value == pytest.approx(35.0, abs=0.5)
        finally:
            d.close()


@pytest.mark.parametrize(
    ("code", "words"), [(2, "illegal data address"), (4, "device failure"), (6, "device busy")]
)
def test_modbus_exceptions(driver, chamber, code, words):
    chamber.set_fault("exception", code=code)
    with pytest.raises(InstrumentError, match=f"Modbus exception {code:02d} \\({words}\\)"):
        driver.poll()
    chamber.clear_faults()
    assert driver.poll()


def test_no_reply_times_out(driver, chamber):
    chamber.set_fault("no_reply")
    with pytest.raises(
        InstrumentTimeout, match=r"no reply from tcp://127\.0\.0\.1:\d+ within 0\.5 s"
    ):
        driver.poll()


def test_disconnect_is_a_transport_error(driver, chamber):
    chamber.set_fault("disconnect")
    with pytest.raises(TransportError):
        driver.poll()
    chamber.clear_faults()
    driver.close()
    driver.connect()
    assert driver.poll()


def test_frozen_values(driver, chamber):
    chamber.set_fault("frozen")
    first = by_channel(driver.poll())["temperature"].value
    values = {by_channel(driver.poll())["temperature"].value for _ in range(5)}
    assert values == {first}


def test_device_fail_is_flagged(driver, chamber):
    chamber.set_fault("device_fail")
    assert "status=fail" in by_channel(driver.poll())["temperature"].flags


def test_nothing_listening():
    with running_chamber() as sim:
        address = sim.address
    d = make(address)
    with pytest.raises(TransportError, match=r"cannot connect to tcp://127\.0\.0\.1"):
        d.connect()
    d.close()
    d.close()  # idempotent
