"""EZ-ZONE PM and Eurotherm 3200 maps through Hallmark's Modbus driver, over real Modbus RTU.

The line is a socat pty pair with the pymodbus RTU server of simulators/modbus_rtu.py on one
end and pymodbus's RTU client (inside drivers.modbus_controller) or Debian's mbpoll (libmodbus)
on the other. No mocks. Several drivers polling one line at once are tested with the line's
scheduler in tests/drivers/test_rtu_line.py.
"""

import json
import math
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusIOException

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError
from daq.instrument import InstrumentSettings
from drivers.modbus_controller import MAPS_DIR, ModbusControllerOptions, build
from drivers.registry import REGISTRY
from simulators.modbus_rtu import (
    EZZONE_INPUT_ERROR_NONE,
    EZZONE_INPUT_ERROR_OPEN,
    EZZONE_SENSOR_BREAK_PV,
    NOISE_PERIOD_S,
    RTU_VOCABULARY,
    Eurotherm3200,
    EzZonePm,
    Fault,
    RtuLine,
    door_dip,
    parse_devices,
    process_noise,
    running_rtu_line,
)
from simulators.scenario import ScenarioError, load_scenario

pytestmark = pytest.mark.timeout(30)

TIMEOUT_S = 0.3


def make(line: RtuLine, map_name: str, device_id: int, **options):
    settings = InstrumentSettings(map_name, f"rtu://{line.path}?baudrate=9600&parity=N", TIMEOUT_S)
    return build(settings, ModbusControllerOptions(device_id=device_id, **options), map_name)


def poll_once(line: RtuLine, map_name: str, device_id: int, **options):
    driver = make(line, map_name, device_id, **options)
    driver.connect()
    try:
        return {s.channel: s for s in driver.poll()}
    finally:
        driver.close()


@pytest.fixture
def line():
    with running_rtu_line(noise=False) as rtu:  # exact values: the decoding is under test
        yield rtu


def test_registry_entries_use_the_generic_driver_and_their_maps() -> None:
    for name in ("watlow_ezzone_pm", "eurotherm_3200"):
        entry = REGISTRY[name]
        assert (entry.family, entry.mode) == ("chamber", "poll")
        assert entry.options is ModbusControllerOptions
        assert (MAPS_DIR / f"{name}.toml").is_file()
        driver = entry.build(InstrumentSettings("c", "rtu:///dev/null", 1.0), entry.options())
        assert driver.map.model in {"Watlow EZ-ZONE PM", "Eurotherm 3200"}


def test_ezzone_pm_floats_decode_to_celsius(line) -> None:
    s = poll_once(line, "watlow_ezzone_pm", 1)
    assert set(s) == {"temperature", "setpoint"}
    assert s["temperature"].value == 35.0
    assert s["setpoint"].value == 35.0
    assert (s["temperature"].unit, s["temperature"].quantity) == ("°C", "temperature")
    assert s["temperature"].raw == "360: 420C 0000"  # 35.0, high word first
    assert s["setpoint"].raw == "2160: 420C 0000"
    assert s["temperature"].flags == ()


def test_eurotherm_scaled_integers_decode_to_celsius(line) -> None:
    line.devices[2].pv = 46.8  # type: ignore[attr-defined]
    s = poll_once(line, "eurotherm_3200", 2)
    assert set(s) == {"temperature", "setpoint", "working_setpoint"}
    assert s["temperature"].value == pytest.approx(46.8)
    assert s["temperature"].raw == "1: 01D4"  # 468 counts, one implied decimal
    assert s["setpoint"].value == pytest.approx(47.0)
    assert s["working_setpoint"].value == pytest.approx(47.0)
    assert s["temperature"].unit == "°C"


def test_ezzone_in_cdab_is_refused_as_implausible(line) -> None:
    with pytest.raises(ProtocolError, match="word_order"):
        poll_once(line, "watlow_ezzone_pm", 1, word_order="CDAB")  # 35.0 read as ~2.4e-41


def test_two_device_ids_on_one_line_polled_in_turn(line) -> None:
    for round_ in range(3):
        line.devices[1].pv = 35.0 + round_  # type: ignore[attr-defined]
        line.devices[2].pv = 47.0 - round_  # type: ignore[attr-defined]
        chamber = poll_once(line, "watlow_ezzone_pm", 1)
        saturator = poll_once(line, "eurotherm_3200", 2)
        assert chamber["temperature"].value == 35.0 + round_
        assert saturator["temperature"].value == pytest.approx(47.0 - round_)


def test_absent_device_id_is_a_timeout(line) -> None:
    driver = make(line, "eurotherm_3200", 7)
    with pytest.raises(InstrumentTimeout, match="no reply"):
        driver.connect()


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        # pymodbus drops a reply whose CRC is wrong and keeps waiting: "no reply" in the end.
        (Fault("crc_error"), InstrumentTimeout, "no reply"),
        (Fault("exception", 2), InstrumentError, r"exception 02 \(illegal data address\)"),
        (Fault("exception", 4), InstrumentError, r"exception 04 \(device failure\)"),
        (Fault("no_reply"), InstrumentTimeout, "no reply"),
        (Fault("exception", 1), InstrumentError, r"exception 01 \(illegal function\)"),
        (Fault("exception", 3), InstrumentError, r"exception 03 \(illegal data value\)"),
        (Fault("exception", 6), InstrumentError, r"exception 06 \(device busy\)"),
        (Fault("exception", 11), InstrumentError, r"exception 11 \(gateway target"),
        # Half a frame and no CRC: the client waits for the rest, then gives up.
        (Fault("truncated"), InstrumentTimeout, "no reply"),
    ],
    ids=[
        "crc_error",
        "exception_02",
        "exception_04",
        "no_reply",
        "exception_01",
        "exception_03",
        "exception_06",
        "exception_0B",
        "truncated",
    ],
)
def test_fault_gives_its_error_then_recovers(line, fault, error, words) -> None:
    chamber = make(line, "watlow_ezzone_pm", 1)
    saturator = make(line, "eurotherm_3200", 2)
    chamber.connect()
    try:
        line.set_fault(1, fault.kind, code=fault.code)
        with pytest.raises(error, match=words):
            chamber.poll()
        with pytest.raises(error, match=words):
            chamber.poll()  # it lasts until cleared
        line.clear_fault(1)
        assert {s.channel: s.value for s in chamber.poll()}["temperature"] == 35.0
    finally:
        chamber.close()
    line.set_fault(1, fault.kind, code=fault.code)
    saturator.connect()  # the other device on the line is not affected
    try:
        assert {s.channel: s.value for s in saturator.poll()}["setpoint"] == pytest.approx(47.0)
    finally:
        saturator.close()


def test_fault_given_at_start_is_active_at_once() -> None:
    devices = [EzZonePm(1), Eurotherm3200(2)]
    with running_rtu_line(devices, {2: Fault("exception", 4)}, noise=False) as rtu:
        assert poll_once(rtu, "watlow_ezzone_pm", 1)["temperature"].value == 35.0
        with pytest.raises(InstrumentError, match="device failure"):
            poll_once(rtu, "eurotherm_3200", 2)


def write_setpoints(line: RtuLine) -> None:
    client = ModbusSerialClient(line.path, baudrate=9600, timeout=1.0, retries=0)
    assert client.connect()
    try:
        words = client.convert_to_registers(40.5, client.DATATYPE.FLOAT32)
        assert not client.write_registers(2160, words, device_id=1).isError()
        assert not client.write_register(2, 521, device_id=2).isError()
    finally:
        client.close()


def test_reboot_resets_set_points_to_defaults(line) -> None:
    write_setpoints(line)
    assert poll_once(line, "watlow_ezzone_pm", 1)["setpoint"].value == 40.5
    saturator = poll_once(line, "eurotherm_3200", 2)
    assert saturator["setpoint"].value == pytest.approx(52.1)
    assert saturator["working_setpoint"].value == pytest.approx(52.1)
    line.reboot(1)
    line.reboot(2, down_s=0.5)
    assert poll_once(line, "watlow_ezzone_pm", 1)["setpoint"].value == 35.0
    with pytest.raises(InstrumentTimeout):
        poll_once(line, "eurotherm_3200", 2)  # restarting: silent for a while
    driver = make(line, "eurotherm_3200", 2)
    for _ in range(20):  # bounded: 20 x 0.3 s
        try:
            driver.connect()
            break
        except InstrumentTimeout:
            continue
    try:
        assert {s.channel: s.value for s in driver.poll()}["setpoint"] == pytest.approx(47.0)
    finally:
        driver.close()


def test_two_decimal_eurotherm_wraps_above_327_67_and_is_refused(tmp_path) -> None:
    text = (MAPS_DIR / "eurotherm_3200.toml").read_text(encoding="utf-8")
    two_decimals = tmp_path / "eurotherm_3200_2dp.toml"
    two_decimals.write_text(text.replace("scale = 0.1", "scale = 0.01"), encoding="utf-8")
    device = Eurotherm3200(2, pv=47.25, setpoint=47.0, decimals=2)
    with running_rtu_line(devices=[device], noise=False) as rtu:
        s = poll_once(rtu, "eurotherm_3200", 2, map=two_decimals)
        assert s["temperature"].value == pytest.approx(47.25)
        device.pv = 330.0  # 33000 counts: beyond int16, read back as -325.36
        with pytest.raises(ProtocolError, match=r"-325\.36"):
            poll_once(rtu, "eurotherm_3200", 2, map=two_decimals)


# -- cross-check with mbpoll (libmodbus), an independent RTU client ---------------------------

_VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(\S+)\s*$", re.MULTILINE)


def mbpoll(
    line: RtuLine, device_id: int, *args: str, zero_based: bool = True
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mbpoll")
    if exe is None:
        pytest.fail("mbpoll is not installed (Debian: apt-get install mbpoll)")
    command = [exe, "-m", "rtu", "-b", "9600", "-P", "none", "-a", str(device_id), "-1"]
    if zero_based:
        command.append("-0")  # -r is then the PDU address, as in the maps
    return subprocess.run(
        [*command, "-o", "1", *args, line.path],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


def polled(line: RtuLine, device_id: int, *args: str) -> dict[int, str]:
    result = mbpoll(line, device_id, *args)
    assert result.returncode == 0, f"mbpoll {' '.join(args)} failed: {result.stderr}"
    return {int(ref): value for ref, value in _VALUE_LINE.findall(result.stdout)}


@pytest.mark.integration
def test_mbpoll_reads_the_same_values(line) -> None:
    assert polled(line, 1, "-t", "4:float", "-B", "-r", "360") == {360: "35"}
    assert polled(line, 1, "-t", "4:float", "-B", "-r", "2160") == {2160: "35"}
    assert polled(line, 2, "-t", "4", "-r", "1", "-c", "5") == {
        1: "470",
        2: "470",
        3: "0",
        4: "0",
        5: "470",
    }
    # Eurotherm's float region: parameter a at 0x8000 + 2a.
    assert polled(line, 2, "-t", "4:float", "-B", "-r", str(0x8000 + 2)) == {32770: "47"}


@pytest.mark.integration
def test_mbpoll_without_dash_zero_counts_from_one(line) -> None:
    one_based = mbpoll(line, 1, "-t", "4:float", "-B", "-r", "361", zero_based=False)
    assert one_based.returncode == 0, one_based.stderr
    assert "[361]: \t35" in one_based.stdout  # reference 361 is PDU address 360
    off_by_one = mbpoll(line, 1, "-t", "4:float", "-B", "-r", "360", zero_based=False)
    assert off_by_one.returncode != 0
    assert "illegal data address" in off_by_one.stderr.lower()  # PDU 359 is not served


@pytest.mark.integration
@pytest.mark.parametrize(
    ("fault", "text"),
    [
        (Fault("exception", 2), "illegal data address"),
        (Fault("exception", 4), "slave device or server failure"),
        (Fault("crc_error"), "invalid crc"),
        (Fault("no_reply"), "timed out"),
        (Fault("truncated"), "timed out"),
        (Fault("exception", 6), "busy"),
        (Fault("exception", 11), "target device failed to respond"),
    ],
    ids=["exception_02", "exception_04", "crc_error", "no_reply", "truncated", "busy", "0B"],
)
def test_mbpoll_sees_each_fault(line, fault, text) -> None:
    line.set_fault(1, fault.kind, code=fault.code)
    result = mbpoll(line, 1, "-t", "4:float", "-B", "-r", "360")
    assert result.returncode != 0 or "[360]" not in result.stdout
    assert text in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    line.clear_fault()
    assert polled(line, 1, "-t", "4:float", "-B", "-r", "360") == {360: "35"}


# -- process model, value faults, reboot, scenarios, serve ------------------------------------

NOISE_GAP_S = 0.15  # longer than NOISE_PERIOD_S: the next read draws new noise


def read_registers(line: RtuLine, device_id: int, address: int, count: int) -> list[int]:
    client = ModbusSerialClient(line.path, baudrate=9600, timeout=1.0, retries=0)
    assert client.connect()
    try:
        reply = client.read_holding_registers(address, count=count, device_id=device_id)
        assert not reply.isError(), reply
        return list(reply.registers)
    finally:
        client.close()


def as_float(words: list[int]) -> float:
    return struct.unpack(">f", struct.pack(">HH", *words))[0]


def reads_over_time(line: RtuLine, device_id: int, address: int, count: int, n: int = 4):
    client = ModbusSerialClient(line.path, baudrate=9600, timeout=1.0, retries=0)
    assert client.connect()
    pause = threading.Event()
    out = []
    try:
        for _ in range(n):
            reply = client.read_holding_registers(address, count=count, device_id=device_id)
            assert not reply.isError(), reply
            out.append(tuple(reply.registers))
            pause.wait(NOISE_GAP_S)
    finally:
        client.close()
    return out


def test_noise_is_bounded_seeded_and_changes_every_tick() -> None:
    values = [process_noise(7, 1, (tick + 0.5) * NOISE_PERIOD_S, 0.3) for tick in range(200)]
    assert all(-0.3 <= v <= 0.3 for v in values)
    assert max(values) > 0.2 and min(values) < -0.2  # it does use the band
    assert len(set(values)) == len(values)
    assert values == [
        process_noise(7, 1, (tick + 0.5) * NOISE_PERIOD_S, 0.3) for tick in range(200)
    ]
    assert values != [
        process_noise(8, 1, (tick + 0.5) * NOISE_PERIOD_S, 0.3) for tick in range(200)
    ]
    assert values != [
        process_noise(7, 2, (tick + 0.5) * NOISE_PERIOD_S, 0.3) for tick in range(200)
    ]
    assert process_noise(7, 1, 1.23, 0.0) == 0.0


def test_door_dip_drops_at_once_and_recovers_exponentially() -> None:
    assert door_dip(-1.0, 6.0, 600.0) == 0.0
    assert door_dip(0.0, 6.0, 600.0) == 6.0
    assert door_dip(200.0, 6.0, 600.0) == pytest.approx(6.0 * math.exp(-1.0))
    assert door_dip(600.0, 6.0, 600.0) == pytest.approx(0.3, rel=0.01)  # 95 % recovered


def test_noisy_values_move_around_the_set_point() -> None:
    with running_rtu_line(seed=3) as rtu:
        chamber = [as_float(list(r)) for r in reads_over_time(rtu, 1, 360, 2)]
        saturator = [as_float(list(r)) for r in reads_over_time(rtu, 2, 0x8002, 2)]
    assert all(abs(v - 35.0) <= 0.3 + 1e-5 for v in chamber)
    assert all(abs(v - 47.0) <= 0.3 + 1e-5 for v in saturator)
    assert len(set(chamber)) > 1
    assert len(set(saturator)) > 1


def test_frozen_process_value_repeats_exactly_until_cleared() -> None:
    with running_rtu_line(seed=1) as rtu:
        rtu.set_fault(1, "frozen")
        rtu.set_fault(2, "frozen")
        chamber = reads_over_time(rtu, 1, 360, 2)
        saturator = reads_over_time(rtu, 2, 1, 1)
        saturator_float = reads_over_time(rtu, 2, 0x8002, 2)
        assert len(set(chamber)) == 1
        assert abs(as_float(list(chamber[0])) - 35.0) <= 0.3 + 1e-5
        assert len(set(saturator)) == 1
        assert len(set(saturator_float)) == 1
        # Comms and set points are unaffected: a stuck input, not a dead controller.
        assert as_float(read_registers(rtu, 1, 2160, 2)) == 35.0
        rtu.clear_fault()
        assert len(set(reads_over_time(rtu, 1, 360, 2))) > 1
        assert len(set(reads_over_time(rtu, 2, 0x8002, 2))) > 1


def test_ezzone_sensor_break_sets_input_error_and_pins_the_value() -> None:
    with running_rtu_line(noise=False) as rtu:
        healthy = read_registers(rtu, 1, 360, 4)
        assert as_float(healthy[:2]) == 35.0
        assert healthy[2:] == [EZZONE_INPUT_ERROR_NONE, 0] == [61, 0]
        rtu.set_fault(1, "sensor_break")
        broken = read_registers(rtu, 1, 360, 4)
        assert as_float(broken[:2]) == EZZONE_SENSOR_BREAK_PV == 9999.0
        assert broken[2:] == [EZZONE_INPUT_ERROR_OPEN, 0] == [65, 0]
        assert rtu.registers(1)[362] == 65  # the same, without a client
        assert read_registers(rtu, 2, 258, 1) == [0]  # the other device is fine
        # The driver reads the map's input-error register and refuses the reading in words.
        with pytest.raises(InstrumentError, match=r"sensor break on temperature: register 362"
                           r" reads 65 \(open sensor\)"):  # fmt: skip
            poll_once(rtu, "watlow_ezzone_pm", 1)
        rtu.clear_fault(1)
        assert read_registers(rtu, 1, 360, 4) == healthy
        assert "temperature" in poll_once(rtu, "watlow_ezzone_pm", 1)


def test_eurotherm_sensor_break_sets_258_and_pins_pv_at_range_high() -> None:
    with running_rtu_line(noise=False) as rtu:
        assert read_registers(rtu, 2, 258, 1) == [0]
        assert read_registers(rtu, 2, 11, 2) == [(-2000) & 0xFFFF, 13720]  # RNG.LO, RNG.HI
        rtu.set_fault(2, "sensor_break")
        assert read_registers(rtu, 2, 258, 1) == [1]
        assert read_registers(rtu, 2, 1, 1) == [13720]  # 1372.0 °C, one decimal
        assert as_float(read_registers(rtu, 2, 0x8002, 2)) == 1372.0
        assert read_registers(rtu, 2, 2, 1) == [470]  # set point unchanged
        with pytest.raises(ProtocolError, match="1372"):  # outside the map's plausible range
            poll_once(rtu, "eurotherm_3200", 2)
        rtu.clear_fault(2)
        assert read_registers(rtu, 2, 258, 1) == [0]
        assert read_registers(rtu, 2, 1, 1) == [470]


def test_door_open_dips_then_recovers() -> None:
    recover_s = 1.5
    with running_rtu_line(noise=False) as rtu:
        opened_after = rtu.elapsed()
        rtu.set_fault(1, "door_open", depth=6.0, recover_s=recover_s)
        opened_before = rtu.elapsed()

        def read_within_model_bounds() -> float:
            asked = rtu.elapsed()
            value = as_float(read_registers(rtu, 1, 360, 2))
            answered = rtu.elapsed()
            # The dip shrinks with time, so the value lies between its ends of the read window.
            low = 35.0 - door_dip(asked - opened_before, 6.0, recover_s)
            high = 35.0 - door_dip(answered - opened_after, 6.0, recover_s)
            assert low - 1e-4 <= value <= high + 1e-4
            return value

        first = read_within_model_bounds()
        assert first < 32.0  # a real dip
        assert as_float(read_registers(rtu, 2, 0x8002, 2)) == 47.0  # only device 1's door
        pause = threading.Event()
        pause.wait(recover_s / 3)
        middle = read_within_model_bounds()
        pause.wait(recover_s)
        last = read_within_model_bounds()
        assert first < middle < last < 35.0
        assert last >= 35.0 - 0.3  # 95 % recovered after recover_s


def test_reboot_brings_back_default_values() -> None:
    devices = [EzZonePm(1, pv=35.0), Eurotherm3200(2, pv=47.0)]
    with running_rtu_line(devices, noise=False) as rtu:
        devices[0].pv = 20.0  # as if the chamber were still cold
        devices[1].pv = 30.0
        write_setpoints(rtu)
        assert as_float(read_registers(rtu, 1, 360, 2)) == 20.0
        assert read_registers(rtu, 2, 1, 5) == [300, 521, 0, 0, 521]
        rtu.reboot(1)
        rtu.reboot(2)
        assert as_float(read_registers(rtu, 1, 360, 2)) == 35.0
        assert as_float(read_registers(rtu, 1, 2160, 2)) == 35.0
        assert read_registers(rtu, 2, 1, 5) == [470, 470, 0, 0, 470]


def write_scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rtu.toml"
    path.write_text("schema = 1\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def test_scenario_faults_apply_per_device_id(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        """
        [model]
        noise = false

        [[fault]]
        kind = "exception"
        start = 0.0
        device = 2
        code = 6

        [[fault]]
        kind = "sensor_break"
        start = 0.0
        duration = 0.8
        device = 1

        [[fault]]
        kind = "no_reply"
        start = 0.0
        duration = 0.8
        """,
    )
    scenario = load_scenario(path, RTU_VOCABULARY)
    with running_rtu_line(scenario=scenario) as rtu:
        healthy_after = 0.9
        client = ModbusSerialClient(rtu.path, baudrate=9600, timeout=0.3, retries=0)
        assert client.connect()
        try:
            with pytest.raises(ModbusIOException):  # no_reply without device: the whole line
                client.read_holding_registers(360, count=4, device_id=1)
            threading.Event().wait(max(0.0, healthy_after - rtu.elapsed()))
            reply = client.read_holding_registers(360, count=4, device_id=1)
            assert as_float(reply.registers[:2]) == 35.0  # the sensor break has ended too
            assert reply.registers[2] == EZZONE_INPUT_ERROR_NONE
            busy = client.read_holding_registers(1, count=1, device_id=2)
            assert busy.isError() and busy.exception_code == 6  # device 2 only, still busy
        finally:
            client.close()


def test_scripted_reboot_restores_defaults_after_a_silence(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        """
        [model]
        noise = false

        [[fault]]
        kind = "reboot"
        start = 0.5
        down_s = 0.5
        device = 1
        """,
    )
    device = EzZonePm(1)
    with running_rtu_line([device], scenario=load_scenario(path, RTU_VOCABULARY)) as rtu:
        device.setpoint = 40.0
        assert as_float(read_registers(rtu, 1, 2160, 2)) == 40.0
        pause = threading.Event()
        pause.wait(max(0.0, 0.6 - rtu.elapsed()))
        client = ModbusSerialClient(rtu.path, baudrate=9600, timeout=0.2, retries=0)
        assert client.connect()
        try:
            with pytest.raises(ModbusIOException):  # restarting
                client.read_holding_registers(2160, count=2, device_id=1)
        finally:
            client.close()
        pause.wait(max(0.0, 1.1 - rtu.elapsed()))
        assert as_float(read_registers(rtu, 1, 2160, 2)) == 35.0


def test_scenario_naming_an_absent_device_is_refused(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, '[[fault]]\nkind = "frozen"\nstart = 1.0\ndevice = 9\n')
    scenario = load_scenario(path, RTU_VOCABULARY)
    with pytest.raises(ScenarioError, match="no device 9 on this line"):
        RtuLine([EzZonePm(1)], scenario=scenario)
    bad = write_scenario(tmp_path, '[[fault]]\nkind = "door_open"\nstart = 1.0\ndepht = 3\n')
    with pytest.raises(ScenarioError, match="depht: unknown key"):
        load_scenario(bad, RTU_VOCABULARY)


def test_fault_arguments_are_checked() -> None:
    line = RtuLine([EzZonePm(1)])
    with pytest.raises(ValueError, match="unknown fault kind"):
        line.set_fault(1, "melted")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no exception code 9"):
        line.set_fault(1, "exception", code=9)
    with pytest.raises(ValueError, match="no device 3"):
        line.set_fault(3, "frozen")


def test_parse_devices() -> None:
    parsed = parse_devices("1:ezzone_pm, 7:eurotherm_3200")
    assert [(d.device_id, d.model, driver) for d, driver in parsed] == [
        (1, "Watlow EZ-ZONE PM", "watlow_ezzone_pm"),
        (7, "Eurotherm 3200", "eurotherm_3200"),
    ]
    for bad, words in [
        ("", "no devices"),
        ("1:ezzone", "ID:MODEL"),
        ("one:ezzone_pm", "must be a number"),
        ("1:ezzone_pm,1:eurotherm_3200", "distinct"),
        ("300:ezzone_pm", "1..247"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_devices(bad)


def run_serve(*args: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from pathlib import Path; from simulators.modbus_rtu import serve;"
        " a = sys.argv[1:];"
        " sys.exit(serve(a[0], int(a[1]), Path(a[2]) if len(a) > 2 else None))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_serve_prints_the_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path, '[[fault]]\nkind = "exception"\nstart = 0.0\ndevice = 2\ncode = 11\n'
    )
    process = run_serve("1:ezzone_pm,2:eurotherm_3200", "5", str(path))
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["address"] == f"rtu://{info['path']}?baudrate=9600"
        assert info["devices"] == {
            "1": {"model": "Watlow EZ-ZONE PM", "driver": "watlow_ezzone_pm"},
            "2": {"model": "Eurotherm 3200", "driver": "eurotherm_3200"},
        }
        settings = InstrumentSettings("chamber", info["address"], 1.0)
        driver = build(settings, ModbusControllerOptions(device_id=1), "watlow_ezzone_pm")
        driver.connect()
        try:
            value = {s.channel: s.value for s in driver.poll()}["temperature"]
            assert abs(value - 35.0) <= 0.3 + 1e-5
        finally:
            driver.close()
        saturator = build(settings, ModbusControllerOptions(device_id=2), "eurotherm_3200")
        with pytest.raises(InstrumentError, match="exception 11"):
            saturator.connect()
            saturator.poll()
        saturator.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert not Path(info["path"]).exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.communicate()


def test_serve_refuses_a_bad_device_list() -> None:
    process = run_serve("1:nonesuch", "0")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "1:nonesuch" in err
