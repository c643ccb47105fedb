"""The PLC abrasion-tester simulator over real Modbus TCP, read with a bare pymodbus client.

Register addresses and codes are written out from Hallmark's reference layout (module docstring
of simulators/abrasion_plc.py), not taken from the simulator's tables.
"""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from simulators.abrasion_plc import (
    ABRASION_VOCABULARY,
    AbraserStateError,
    AbrasionModel,
    AbrasionModelParams,
    AbrasionPlcSimulator,
    measured_speed,
    running_abrasion_plc,
)
from simulators.scenario import FaultTimeline, ScenarioError, load_scenario

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[2]

# The reference layout: holding registers, 0-based, ABCD.
COUNT, PRESET, LOAD, SPEED, STATE, TEST_NO, FAULT, WHEEL = 0, 2, 4, 5, 6, 7, 8, 9
IDLE, RUNNING, PAUSED, DONE, STOPPED, FAULTED = 0, 1, 2, 3, 4, 5


@contextmanager
def connected(sim: AbrasionPlcSimulator, timeout: float = 1.0) -> Iterator[ModbusTcpClient]:
    client = ModbusTcpClient("127.0.0.1", port=sim.port, timeout=timeout, retries=0)
    assert client.connect(), f"cannot connect to {sim.address}"
    try:
        yield client
    finally:
        client.close()


def read_all(client: ModbusTcpClient, device_id: int = 1) -> dict[str, int]:
    reply = client.read_holding_registers(0, count=10, device_id=device_id)
    assert not reply.isError(), reply
    r = reply.registers
    return {
        "count": (r[0] << 16) | r[1],
        "preset": (r[2] << 16) | r[3],
        "load_g": r[4],
        "speed_x10": r[5],
        "state": r[6],
        "test_number": r[7],
        "fault": r[8],
        "wheel": r[9],
    }


def wait_for_state(client: ModbusTcpClient, state: int, within_s: float) -> dict[str, int]:
    deadline = time.monotonic() + within_s
    pause = threading.Event()
    seen: list[dict[str, int]] = []
    while time.monotonic() < deadline:
        now = read_all(client)
        seen.append(now)
        if now["state"] == state:
            return now
        pause.wait(0.05)
    raise AssertionError(f"state {state} not reached within {within_s} s; last {seen[-3:]}")


def test_power_on_registers_decode_as_documented() -> None:
    with running_abrasion_plc() as sim, connected(sim) as client:
        assert sim.address == f"tcp://127.0.0.1:{sim.port}"
        reply = client.read_holding_registers(0, count=10, device_id=1)
        assert reply.registers == [0, 0, 0, 1000, 1000, 0, IDLE, 0, 0, 17]


def test_a_test_runs_to_done_and_stays_there() -> None:
    # 200 cycles at 60 rpm x 100: about 2 s.
    with running_abrasion_plc(time_scale=100.0, seed=4) as sim, connected(sim) as client:
        sim.start_test(200, load_g=500, wheel=10)
        running = read_all(client)
        assert running["state"] == RUNNING
        assert (running["preset"], running["load_g"], running["wheel"]) == (200, 500, 10)
        assert running["test_number"] == 1
        counts, speeds = [running["count"]], [running["speed_x10"]]
        pause = threading.Event()
        for _ in range(5):
            pause.wait(0.2)
            now = read_all(client)
            if now["state"] != RUNNING:
                break
            counts.append(now["count"])
            speeds.append(now["speed_x10"])
        assert counts == sorted(counts) and counts[-1] > counts[0]
        assert all(595 <= s <= 605 for s in speeds)  # 60 ± 0.5 rpm
        assert len(set(speeds)) > 1  # the measured speed moves
        done = wait_for_state(client, DONE, within_s=5.0)
        assert done["count"] == 200
        assert done["speed_x10"] == 0  # the table has stopped
        pause.wait(0.2)
        assert read_all(client) == done
        sim.start_test(100)  # the next test: the count starts again
        again = read_all(client)
        assert again["test_number"] == 2
        assert again["state"] == RUNNING and again["count"] < 100
        assert (again["load_g"], again["wheel"]) == (1000, 17)


def test_operator_stop_freezes_the_count() -> None:
    with running_abrasion_plc(time_scale=50.0) as sim, connected(sim) as client:
        sim.start_test(1_000_000)
        threading.Event().wait(0.3)
        sim.stop_test()
        stopped = read_all(client)
        assert stopped["state"] == STOPPED
        assert 0 < stopped["count"] < 1_000_000
        threading.Event().wait(0.2)
        assert read_all(client) == stopped
        with pytest.raises(AbraserStateError, match="no test is running"):
            sim.stop_test()


def test_pause_holds_the_count_and_resume_goes_on() -> None:
    with running_abrasion_plc(time_scale=50.0) as sim, connected(sim) as client:
        sim.start_test(1_000_000)
        threading.Event().wait(0.2)
        sim.pause_test()
        paused = read_all(client)
        assert paused["state"] == PAUSED and paused["speed_x10"] == 0
        threading.Event().wait(0.2)
        assert read_all(client)["count"] == paused["count"]
        sim.resume_test()
        threading.Event().wait(0.2)
        resumed = read_all(client)
        assert resumed["state"] == RUNNING and resumed["count"] > paused["count"]
        with pytest.raises(AbraserStateError, match="still running"):
            sim.start_test(10)


@pytest.mark.parametrize("code", [1, 2, 3], ids=["motor_overload", "vacuum", "emergency_stop"])
def test_machine_fault_stops_the_count_with_its_code(code: int) -> None:
    with running_abrasion_plc(time_scale=50.0) as sim, connected(sim) as client:
        sim.start_test(1_000_000)
        threading.Event().wait(0.2)
        sim.fault(code)
        faulted = read_all(client)
        assert (faulted["state"], faulted["fault"], faulted["speed_x10"]) == (FAULTED, code, 0)
        threading.Event().wait(0.2)
        assert read_all(client) == faulted
        sim.start_test(500)  # the next start clears the fault
        cleared = read_all(client)
        assert (cleared["state"], cleared["fault"], cleared["test_number"]) == (RUNNING, 0, 2)
    with pytest.raises(ValueError, match="fault code must be 1, 2 or 3"):
        AbrasionPlcSimulator().fault(7)


def test_preset_is_writable_as_uint32_and_other_registers_are_not() -> None:
    with running_abrasion_plc() as sim, connected(sim) as client:
        words = list(struct.unpack(">HH", struct.pack(">I", 100_000)))
        assert not client.write_registers(PRESET, words, device_id=1).isError()
        assert read_all(client)["preset"] == 100_000
        assert not client.write_registers(PRESET, [0xFFFF, 0xFFFF], device_id=1).isError()
        assert read_all(client)["preset"] == 0xFFFF_FFFF  # unsigned, not -1
        refused = client.write_registers(PRESET, [0, 0], device_id=1)
        assert refused.isError() and refused.exception_code == 3  # a preset of 0 cycles
        read_only = client.write_register(LOAD, 250, device_id=1)
        assert read_only.isError() and read_only.exception_code == 2
        sim.start_test()  # no preset given: the register's
        assert read_all(client)["preset"] == 0xFFFF_FFFF


def test_lowering_the_preset_below_the_count_ends_the_test() -> None:
    with running_abrasion_plc(time_scale=100.0) as sim, connected(sim) as client:
        sim.start_test(1_000_000)
        threading.Event().wait(0.3)
        assert not client.write_registers(PRESET, [0, 5], device_id=1).isError()
        ended = read_all(client)
        assert (ended["state"], ended["count"], ended["preset"]) == (DONE, 5, 5)


def test_unserved_addresses_and_units() -> None:
    with running_abrasion_plc() as sim, connected(sim) as client:
        beyond = client.read_holding_registers(9, count=2, device_id=1)
        assert beyond.isError() and beyond.exception_code == 2
        other_unit = client.read_holding_registers(0, count=10, device_id=5)
        assert other_unit.isError() and other_unit.exception_code == 0x0B


@pytest.mark.parametrize("code", [2, 4, 6, 11])
def test_link_exception_fault(code: int) -> None:
    with running_abrasion_plc() as sim, connected(sim) as client:
        sim.set_fault("exception", code=code)
        reply = client.read_holding_registers(0, count=10, device_id=1)
        assert reply.isError() and reply.exception_code == code
        sim.clear_faults()
        assert read_all(client)["wheel"] == 17


def test_link_no_reply_fault() -> None:
    with running_abrasion_plc() as sim, connected(sim, timeout=0.3) as client:
        sim.set_fault("no_reply")
        with pytest.raises(ModbusIOException):
            client.read_holding_registers(0, count=10, device_id=1)
        sim.clear_faults()
    with running_abrasion_plc() as sim, connected(sim) as client:
        assert read_all(client)["state"] == IDLE


def test_link_disconnect_fault() -> None:
    with running_abrasion_plc() as sim:
        with connected(sim, timeout=0.5) as client:
            assert read_all(client)["state"] == IDLE
            sim.set_fault("disconnect")
            with pytest.raises((ModbusException, OSError)):
                client.read_holding_registers(0, count=10, device_id=1)
        with pytest.raises((ModbusException, OSError, AssertionError)), connected(sim) as refused:
            read_all(refused)  # new connections are closed while the fault lasts
        sim.clear_faults()
        with connected(sim) as client:
            assert read_all(client)["state"] == IDLE


def test_operator_actions_are_not_link_faults() -> None:
    with pytest.raises(ValueError, match="operator action"):
        AbrasionPlcSimulator().set_fault("stop")
    with pytest.raises(ScenarioError, match="code"):
        AbrasionPlcSimulator().set_fault("exception", code=9)


def test_measured_speed_is_seeded_and_within_half_an_rpm() -> None:
    speeds = [measured_speed(3, (tick + 0.5) * 0.1, 60.0, 0.5) for tick in range(300)]
    assert all(59.5 <= s <= 60.5 for s in speeds)
    assert max(speeds) > 60.4 and min(speeds) < 59.6
    assert speeds == [measured_speed(3, (tick + 0.5) * 0.1, 60.0, 0.5) for tick in range(300)]
    assert speeds != [measured_speed(4, (tick + 0.5) * 0.1, 60.0, 0.5) for tick in range(300)]
    assert measured_speed(3, 1.0, 0.0, 0.5) == 0.0


def test_model_count_does_not_depend_on_how_often_it_is_read() -> None:
    params = AbrasionModelParams(seed=9, preset_cycles=5000)
    often, once = AbrasionModel(params, FaultTimeline()), AbrasionModel(params, FaultTimeline())
    often.start_test(0.0, None, 1000, 17)
    once.start_test(0.0, None, 1000, 17)
    for step in range(1, 1000):
        often.values(step * 0.0937)
    assert often.values(93.7)["cycle_count"] == once.values(93.7)["cycle_count"]
    assert once.values(93.7)["cycle_count"] in range(92, 95)  # ~1 cycle/s at 60 rpm
    assert once.values(6000.0)["cycle_count"] == 5000
    assert once.values(6000.0)["state"] == DONE


def write_scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "abrasion.toml"
    path.write_text("schema = 1\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def test_scenario_starts_a_test_and_slows_the_table(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        """
        [model]
        time_scale = 20.0
        seed = 2

        [[fault]]
        kind = "start"
        start = 0.0
        preset = 1000000
        load_g = 250
        wheel = 10

        [[fault]]
        kind = "speed"
        start = 0.3
        duration = 0.5
        rpm = 57.0

        [[fault]]
        kind = "stop"
        start = 1.0
        """,
    )
    scenario = load_scenario(path, ABRASION_VOCABULARY)
    with running_abrasion_plc(scenario=scenario) as sim, connected(sim) as client:
        first = read_all(client)
        assert (first["state"], first["load_g"], first["wheel"]) == (RUNNING, 250, 10)
        assert first["test_number"] == 1
        pause = threading.Event()
        pause.wait(max(0.0, 0.5 - sim.elapsed()))
        slow = read_all(client)
        if sim.elapsed() < 0.8:
            assert 565 <= slow["speed_x10"] <= 575  # 57 ± 0.5 rpm: out of D4060's 60 ± 2
        pause.wait(max(0.0, 1.1 - sim.elapsed()))
        stopped = read_all(client)
        assert stopped["state"] == STOPPED
        # Stopped at t = 1.0 s: about 1.0 s x 1 cycle/s x 20, a little less for the slow spell.
        assert 17 <= stopped["count"] <= 21


def test_scenario_events_take_no_duration(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, '[[fault]]\nkind = "stop"\nstart = 1.0\nduration = 2.0\n')
    scenario = load_scenario(path, ABRASION_VOCABULARY)
    with pytest.raises(ScenarioError, match="an event takes no duration"):
        AbrasionPlcSimulator(scenario=scenario)
    bad = write_scenario(tmp_path, '[[fault]]\nkind = "start"\nstart = 1.0\nwheel = 18\n')
    with pytest.raises(ScenarioError, match="wheel"):
        load_scenario(bad, ABRASION_VOCABULARY)


def test_serve_prints_its_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, '[[fault]]\nkind = "fault"\nstart = 0.0\ncode = 3\n')
    code = (
        "import sys; from pathlib import Path; from simulators.abrasion_plc import serve;"
        " sys.exit(serve('127.0.0.1', 0, 1, Path(sys.argv[1])))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["address"] == f"tcp://127.0.0.1:{info['port']}"
        client = ModbusTcpClient("127.0.0.1", port=info["port"], timeout=1.0, retries=0)
        assert client.connect()
        try:
            now = read_all(client)
            assert (now["state"], now["fault"]) == (FAULTED, 3)
        finally:
            client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.communicate()
