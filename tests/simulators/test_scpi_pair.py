"""VISA drivers against the TCP SCPI simulators: the drivers (drivers/f4t_scpi.py,
drivers/scpi_scanner.py) and the simulators (simulators/f4t_scpi.py, simulators/scpi_scanner.py)
were written by different people from the same manuals and meet only here, through pyvisa-py
over a real TCP socket (TCPIP::127.0.0.1::PORT::SOCKET)."""

import math

import pytest

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError, TransportError
from daq.instrument import InstrumentSettings
from daq.units import Normalizer
from drivers import f4t_scpi, scpi_scanner
from simulators.f4t_scpi import running_f4t_scpi
from simulators.scpi_scanner import HUMIDITY_GAIN, HUMIDITY_OFFSET, running_scanner


def f4t_driver(address, **options):
    settings = InstrumentSettings("nss-zone", address, timeout=0.5)
    return f4t_scpi.build(settings, f4t_scpi.F4TScpiOptions.model_validate(options))


def scanner_driver(address, **options):
    channels = [
        {"channel": 101, "name": "temperature", "tc_type": "K"},
        {"channel": 102, "name": "temperature_far", "tc_type": "K"},
        # The simulated cabinet wires three thermocouples from 101 and its humidity
        # transmitter next, on 104.
        {"channel": 104, "name": "humidity", "kind": "humidity",
         "gain": HUMIDITY_GAIN, "offset": HUMIDITY_OFFSET},
    ]  # fmt: skip
    settings = InstrumentSettings("nss-scanner", address, timeout=0.5)
    opts = scpi_scanner.ScpiScannerOptions.model_validate({"channels": channels, **options})
    return scpi_scanner.build(settings, opts)


def by_channel(samples):
    return {s.channel: s for s in samples}


def test_f4t_poll_unit_and_loops():
    with running_f4t_scpi(seed=3) as sim:
        driver = f4t_driver(
            sim.address,
            loops=[{"loop": 1, "channel": "temperature"},
                   {"loop": 2, "channel": "humidity", "quantity": "humidity"}],
        )  # fmt: skip
        driver.connect()
        try:
            got = by_channel(driver.poll())
            assert set(got) == {
                "temperature", "temperature_setpoint", "humidity", "humidity_setpoint"}  # fmt: skip
            t = Normalizer().normalize(got["temperature"])
            assert t.unit == "°C" and 33.0 < t.value < 37.0
            assert abs(t.value - sim.pv(1)) < 1.0
            assert got["humidity"].unit == "%RH" and 80 < got["humidity"].value <= 100
        finally:
            driver.close()


def test_f4t_sensor_break_is_refused_and_never_recorded():
    with running_f4t_scpi(seed=4) as sim:
        driver = f4t_driver(sim.address)
        driver.connect()
        try:
            assert driver.poll()
            for reading in ("nan", "9999"):
                sim.set_fault("sensor_break", loop=1, reading=reading)
                with pytest.raises((InstrumentError, ProtocolError), match="sensor break"):
                    driver.poll()
                sim.clear_faults()
            assert all(math.isfinite(s.value) for s in driver.poll())
        finally:
            driver.close()


def test_f4t_no_reply_times_out_and_a_disconnect_is_a_transport_error():
    with running_f4t_scpi(seed=5) as sim:
        driver = f4t_driver(sim.address)
        driver.connect()
        try:
            sim.set_fault("no_reply")
            with pytest.raises(InstrumentTimeout):
                driver.poll()
            sim.clear_faults()
            driver.close()
            driver.connect()  # a fresh session after the timeout, as the runtime does
            assert driver.poll()
            sim.set_fault("disconnect", seconds=0.5)
            with pytest.raises((TransportError, InstrumentTimeout)):
                driver.poll()
        finally:
            driver.close()


def test_scanner_configures_scans_and_scales_humidity():
    with running_scanner(seed=6) as sim:
        driver = scanner_driver(sim.address)
        driver.connect()
        try:
            got = by_channel(driver.poll())
            assert set(got) == {"temperature", "temperature_far", "humidity"}
            assert got["temperature"].unit == "°C" and 33 < got["temperature"].value < 37
            # The driver's Mx+B turned the transmitter's volts into %RH at the instrument.
            assert got["humidity"].quantity == "humidity" and 80 < got["humidity"].value <= 100
            assert abs(got["temperature"].value - sim.value(101)) < 1.0
        finally:
            driver.close()


def test_scanner_open_thermocouple_leaves_the_other_channels_recorded():
    with running_scanner(seed=7) as sim:
        driver = scanner_driver(sim.address)
        driver.connect()
        try:
            sim.set_fault("sensor_break", channel=102)
            got = by_channel(driver.poll())
            assert set(got) == {"temperature", "humidity"}
            assert driver.sensor_break == ("temperature_far",)
            sim.clear_faults()
            assert set(by_channel(driver.poll())) == {"temperature", "temperature_far", "humidity"}
            assert driver.sensor_break == ()
        finally:
            driver.close()


def test_scanner_refuses_a_garbled_reply_in_words():
    with running_scanner(seed=8) as sim:
        driver = scanner_driver(sim.address)
        driver.connect()
        try:
            sim.set_fault("garbage", count=4)
            with pytest.raises((ProtocolError, InstrumentError)):
                driver.poll()
        finally:
            driver.close()
