"""EZ-ZONE PM and Eurotherm 3200 maps through Hallmark's Modbus driver, over real Modbus RTU.

The line is a socat pty pair with the pymodbus RTU server of simulators/modbus_rtu.py on one
end and pymodbus's RTU client (inside drivers.modbus_controller) or Debian's mbpoll (libmodbus)
on the other. No mocks. Two drivers on one line take turns (connect, poll, close): a shared-line
scheduler is not part of this.
"""

import re
import shutil
import subprocess

import pytest
from pymodbus.client import ModbusSerialClient

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError
from daq.instrument import InstrumentSettings
from drivers.modbus_controller import MAPS_DIR, ModbusControllerOptions, build
from drivers.registry import REGISTRY
from simulators.modbus_rtu import Eurotherm3200, EzZonePm, Fault, RtuLine, running_rtu_line

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
    with running_rtu_line() as rtu:
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
    ],
    ids=["crc_error", "exception_02", "exception_04", "no_reply"],
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
    with running_rtu_line(devices=devices, faults={2: Fault("exception", 4)}) as rtu:
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
    with running_rtu_line(devices=[device]) as rtu:
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
    ],
    ids=["exception_02", "exception_04", "crc_error", "no_reply"],
)
def test_mbpoll_sees_each_fault(line, fault, text) -> None:
    line.set_fault(1, fault.kind, code=fault.code)
    result = mbpoll(line, 1, "-t", "4:float", "-B", "-r", "360")
    assert result.returncode != 0 or "[360]" not in result.stdout
    assert text in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    line.clear_fault()
    assert polled(line, 1, "-t", "4:float", "-B", "-r", "360") == {360: "35"}
