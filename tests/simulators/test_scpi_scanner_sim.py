"""The 34970A/DAQ970A scanner simulator over real TCP, spoken to with a plain socket."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.scenario import Scenario, ScenarioError, load_scenario
from simulators.scpi_scanner import (
    HUMIDITY_GAIN,
    HUMIDITY_OFFSET,
    SCANNER_VOCABULARY,
    ScannerSimulator,
    humidity_volts,
    running_scanner,
    serve,
)
from tests.simulators.scpi_client import check_serve, client, connect_refused, wait_until

pytestmark = pytest.mark.timeout(30)

NR3 = re.compile(r"^[+-]\d\.\d{8}E[+-]\d{2}$")
OPEN = "+9.90000000E+37"
SETUP = (
    "CONF:TEMP TC,K,(@101:103)",
    "ROUT:SCAN (@101:103)",
)


@pytest.fixture
def sim() -> Iterator[ScannerSimulator]:
    with running_scanner(seed=5) as simulator:
        yield simulator


def values(answer: str) -> list[float]:
    return [float(field) for field in answer.split(",")]


# --- commands --------------------------------------------------------------------------------


def test_identity_per_model() -> None:
    with running_scanner() as daq, client(daq) as c:
        assert c.query("*IDN?").startswith("Keysight Technologies,DAQ970A,")
        assert daq.address == f"TCPIP::127.0.0.1::{daq.port}::SOCKET"
    with running_scanner(scenario=Scenario(model={"model": "34970A"})) as old, client(old) as c:
        assert c.query("*IDN?").startswith("Agilent Technologies,34970A,")


def test_thermocouple_scan_reads_the_chamber_in_nr3(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        answer = c.query("READ?")
        assert c.errors() == []
    fields = answer.split(",")
    assert len(fields) == 3
    assert all(NR3.match(field) for field in fields)
    readings = values(answer)
    assert all(33.0 < value < 37.0 for value in readings)
    assert len(set(readings)) == 3


def test_thermocouple_positions_differ_on_average(sim: ScannerSimulator) -> None:
    sums = [0.0, 0.0, 0.0]
    with client(sim) as c:
        c.send(*SETUP)
        for _ in range(8):
            for index, value in enumerate(values(c.query("READ?"))):
                sums[index] += value / 8
            threading.Event().wait(0.11)
    # Position offsets +0.2, -0.3, +0.1 °C: channel 101 runs warmer than 102.
    assert sums[0] > sums[1]


def test_short_long_and_lower_case_forms(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send("configure:temperature tcouple,k,(@101)")
        c.send("ROUTE:SCAN (@101)")
        c.send("FORMAT:READING:CHANNEL ON")
        c.send("form:read:unit 1")
        answer = c.query("read?")
        assert c.query("ROUT:SCAN?") == "#16(@101)"
        assert c.query("FORM:READ:CHAN?") == "1"
        assert c.errors() == []
    assert re.match(r"^[+-]\d\.\d{8}E[+-]\d{2} C,101$", answer)


def test_configure_overwrites_the_scan_list_and_route_scan_sets_it(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        assert c.query("ROUT:SCAN?") == "#13(@)"
        c.send("CONF:TEMP TC,K,(@101:103)")
        assert c.query("ROUT:SCAN?") == "#214(@101,102,103)"
        c.send("CONF:VOLT:DC (@104)")
        assert c.query("ROUT:SCAN?") == "#16(@104)"
        c.send("ROUT:SCAN (@101:104)")
        assert c.query("ROUT:SCAN?") == "#218(@101,102,103,104)"
        assert c.query("ROUT:SCAN:SIZE?") == "+4"
        c.send("ROUT:SCAN (@)")
        assert c.query("ROUT:SCAN:SIZE?") == "+0"


def test_humidity_channel_volts_and_mx_plus_b(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send("CONF:VOLT:DC (@104)")
        volts = values(c.query("READ?"))[0]
        assert humidity_volts(94.0) < volts < humidity_volts(99.0)
        c.send(f"CALC:SCAL:GAIN {HUMIDITY_GAIN:.7f},(@104)")
        c.send(f"CALC:SCAL:OFFS {HUMIDITY_OFFSET:.7f},(@104)")
        c.send('CALC:SCAL:UNIT "%RH",(@104)')
        c.send("CALC:SCAL:STAT ON,(@104)")
        c.send("FORM:READ:UNIT ON")
        answer = c.query("READ?")
        assert c.query("CALC:SCAL:STAT? (@104)") == "1"
        assert c.query("CALC:SCAL:GAIN? (@104)") == "+3.22580645E+01"
        assert c.query("CALC:SCAL:UNIT? (@104)") == '"%RH"'
        assert c.errors() == []
    value, unit = answer.split(" ")
    assert unit == "%RH"
    assert 94.0 < float(value) < 99.0


def test_configure_clears_scaling_and_format_fields(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send("CONF:VOLT:DC (@104)", "CALC:SCAL:GAIN 2,(@104)", "CALC:SCAL:STAT ON,(@104)")
        c.send("FORM:READ:CHAN ON")
        c.send("CONF:VOLT:DC (@104)")
        assert c.query("CALC:SCAL:STAT? (@104)") == "0"
        assert c.query("CALC:SCAL:GAIN? (@104)") == "+1.00000000E+00"
        assert c.query("FORM:READ:CHAN?") == "0"


def test_channel_time_and_unit_fields(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        c.send("FORM:READ:CHAN ON", "FORM:READ:TIME ON", "FORM:READ:UNIT ON")
        relative = c.query("READ?").split(",")
        c.send("FORM:READ:TIME:TYPE ABS")
        absolute = c.query("FETC?").split(",")
        assert c.query("FORM:READ:TIME:TYPE?") == "ABS"
    assert relative[2::3] == ["101", "102", "103"]
    assert relative[1] == "000000000.000"
    assert relative[4] == "000000000.010"
    assert re.match(r"^[+-]\d\.\d{8}E[+-]\d{2} C$", relative[0])
    assert len(absolute) == 3 * 8
    assert absolute[7::8] == ["101", "102", "103"]
    assert re.match(r"^\d{4}$", absolute[1]) and re.match(r"^\d{2}\.\d{3}$", absolute[6])


def test_channel_numbers_follow_readings(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send("CONF:TEMP TC,K,(@101,102)", "FORM:READ:CHAN ON")
        answer = c.query("READ?")
    first, ch1, second, ch2 = answer.split(",")
    assert (ch1, ch2) == ("101", "102")
    assert NR3.match(first) and NR3.match(second)


def test_init_then_fetch_returns_the_same_scan_twice(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        c.send("INIT")
        first = c.query("FETC?")
        threading.Event().wait(0.15)
        assert c.query("FETC?") == first
        assert c.query("DATA:POIN?") == "+3"


def test_temperature_units(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        c.send("UNIT:TEMP F,(@101)", "UNIT:TEMP K,(@102)")
        f, k, celsius = values(c.query("READ?"))
        assert c.query("UNIT:TEMP? (@101:103)") == "F,K,C"
    assert 91.0 < f < 99.0
    assert 306.0 < k < 310.5
    assert 33.0 < celsius < 37.0


def test_unwired_thermocouple_reads_overload(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send("CONF:TEMP TC,K,(@110)")
        assert c.query("READ?") == OPEN


def test_errors_answer_nothing_and_queue_scpi_numbers(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        assert c.silent("FETC?")
        assert c.silent("READ?")
        c.send("CONF:TEMP TC,K,(@130)")
        c.send("CONF:TEMP TC,Q,(@101)")
        c.send("CONF:TEMP RTD,85,(@101)")
        c.send("CONF:TEMP TC,K")
        c.send("CALC:SCAL:GAIN lots,(@104)")
        c.send("CALC:SCAL:GAIN 1E16,(@104)")
        c.send('CALC:SCAL:UNIT "HUMID",(@104)')
        c.send("ROUT:SCAN 101")
        assert c.silent("FORM:READ:ALAR?")
        assert c.errors() == [
            '-230,"Data corrupt or stale"',
            '-221,"Settings conflict"',
            '-222,"Data out of range"',
            '-224,"Illegal parameter value"',
            '-224,"Illegal parameter value"',
            '-109,"Missing parameter"',
            '-104,"Data type error"',
            '-222,"Data out of range"',
            '-224,"Illegal parameter value"',
            '-104,"Data type error"',
            '-113,"Undefined header"',
        ]


def test_34970a_label_rules_refuse_percent() -> None:
    scenario = Scenario(model={"label_rules": "34970A"})
    with running_scanner(scenario=scenario) as sim, client(sim) as c:
        c.send('CALC:SCAL:UNIT "%RH",(@104)', 'CALC:SCAL:UNIT "RH",(@104)')
        assert c.errors() == ['-224,"Illegal parameter value"']
        assert c.query("CALC:SCAL:UNIT? (@104)") == '"RH"'


def test_rst_turns_formats_and_scaling_off(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send("CONF:VOLT:DC (@104)", "CALC:SCAL:STAT ON,(@104)", "FORM:READ:CHAN ON", "*RST")
        assert c.query("FORM:READ:CHAN?") == "0"
        assert c.query("CALC:SCAL:STAT? (@104)") == "0"


# --- faults --------------------------------------------------------------------------------------


def test_sensor_break_reads_overload_on_one_channel(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        sim.set_fault("sensor_break", channel=102)
        readings = c.query("READ?").split(",")
        assert readings[1] == OPEN
        assert 33.0 < float(readings[0]) < 37.0
        sim.clear_faults()
        assert c.query("READ?").split(",")[1] != OPEN


def test_frozen_readings_stop_changing(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        sim.set_fault("frozen")
        first = c.query("READ?")
        threading.Event().wait(0.25)
        assert c.query("READ?") == first
        sim.clear_faults()
        seen = {c.query("READ?")}
        threading.Event().wait(0.15)
        seen.add(c.query("READ?"))
        assert len(seen) == 2


def test_door_open_excursion_cools_the_thermocouples() -> None:
    fast = Scenario(model={"time_constant_s": 0.05, "noise_c": 0.0})
    with running_scanner(scenario=fast) as sim, client(sim) as c:
        c.send(*SETUP)
        sim.set_fault("excursion", delta=-6.0)
        wait_until(lambda: max(values(c.query("READ?"))) < 29.5)
        sim.clear_faults()
        wait_until(lambda: min(values(c.query("READ?"))) > 34.5)


def test_no_reply(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        sim.set_fault("no_reply")
        assert c.silent("*IDN?")
        sim.clear_faults()
        assert c.query("*OPC?") == "1"


def test_late_reply(sim: ScannerSimulator) -> None:
    sim.set_fault("late_reply", delay_s=0.6)
    with client(sim) as c:
        assert c.silent("*IDN?", wait=0.2)
        assert c.read_raw_line(timeout=5.0).startswith(b"Keysight")


def test_garbage_before_the_readings(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        sim.set_fault("garbage", count=3)
        c.send("READ?")
        line = c.read_raw_line()
    junk, text = line[:3], line[3:]
    assert all(byte < 0x20 or byte >= 0x7F for byte in junk)
    assert len(values(text.decode("ascii"))) == 3


def test_partial_line(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        sim.set_fault("partial_line", delay_s=0.5)
        c.send("READ?")
        first = c.read_available(0.25)
        assert first and b"\n" not in first
        c.buffer = first
        assert len(values(c.read_raw_line(timeout=5.0).decode())) == 3


def test_disconnect_refuses_then_accepts(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        assert c.query("*OPC?") == "1"
        sim.set_fault("disconnect", seconds=1.5)
        with pytest.raises((ConnectionError, TimeoutError)):
            c.query("*IDN?", timeout=0.5)
    assert connect_refused(sim.port)
    wait_until(lambda: not connect_refused(sim.port))


def test_reboot_resets_volatile_settings_and_keeps_the_scan_list(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        c.send("FORM:READ:CHAN ON", "UNIT:TEMP F,(@101)")
        assert c.query("*OPC?") == "1"
        sim.set_fault("reboot")
        with pytest.raises((ConnectionError, TimeoutError)):
            c.query("*IDN?", timeout=1.0)
    with client(sim) as c:
        assert c.query("FORM:READ:CHAN?") == "0"
        assert c.query("ROUT:SCAN?") == "#214(@101,102,103)"
        assert c.silent("FETC?")
        assert c.errors() == ['-230,"Data corrupt or stale"']


def test_scpi_error_on_read(sim: ScannerSimulator) -> None:
    with client(sim) as c:
        c.send(*SETUP)
        sim.set_fault("scpi_error", command="READ?", code=-222)
        assert c.silent("READ?")
        assert c.errors() == ['-222,"Data out of range"']
        assert c.query("*OPC?") == "1"


# --- scenarios and the CLI entry ----------------------------------------------------------------


def test_scripted_sensor_break_window(tmp_path: Path) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(
        'schema = 1\n[[fault]]\nkind = "sensor_break"\n'
        "start = 0.0\nduration = 0.5\nchannel = 101\n",
        encoding="utf-8",
    )
    scenario = load_scenario(path, SCANNER_VOCABULARY)
    with running_scanner(scenario=scenario) as sim, client(sim) as c:
        c.send(*SETUP)
        assert c.query("READ?").split(",")[0] == OPEN
        wait_until(lambda: c.query("READ?").split(",")[0] != OPEN)


def test_bad_scenario_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("schema = 1\n[model]\nthermocouples = 40\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="thermocouples"):
        load_scenario(path, SCANNER_VOCABULARY)
    assert serve("127.0.0.1", 0, 0, path) == 2


def test_serve_prints_its_address_and_stops_on_sigterm() -> None:
    check_serve("simulators.scpi_scanner", b"Keysight")
