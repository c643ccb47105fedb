"""The Watlow F4T simulator over real Modbus TCP, read with a plain pymodbus client."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from simulators._modbus import (
    WordOrder,
    decode_float32,
    decode_int32,
    encode_float32,
    encode_int32,
)
from simulators.scenario import (
    FaultEntry,
    FaultTimeline,
    Scenario,
    ScenarioError,
    load_scenario,
)
from simulators.watlow_f4t import (
    CHAMBER_VOCABULARY,
    HARDWARE_ID,
    ChamberModel,
    ChamberModelParams,
    ChamberSimulator,
    running_chamber,
    serve,
)

pytestmark = pytest.mark.timeout(20)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SCENARIO = REPO / "simulators" / "scenarios" / "salt_spray_faults.toml"

# Register addresses straight from the TestEquity/Watlow F4T tables, not from the simulator.
CHAMBER_PV = 27586
CHAMBER_SP = 2782
CLOSED_LOOP_SP = 2810
SATURATOR_PV = 28906
SATURATOR_SP = 2942
STATUS = 90
UNITS = 1328
HW_ID = 0

FAST = Scenario(model={"time_constant_s": 0.15, "noise_c": 0.0})


@contextmanager
def connected(sim: ChamberSimulator, timeout: float = 1.0) -> Iterator[ModbusTcpClient]:
    client = ModbusTcpClient("127.0.0.1", port=sim.port, timeout=timeout, retries=0)
    assert client.connect(), f"cannot connect to {sim.address}"
    try:
        yield client
    finally:
        client.close()


def cdab(registers: Sequence[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", registers[1], registers[0]))[0])


def abcd(registers: Sequence[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", registers[0], registers[1]))[0])


def to_cdab(value: float) -> list[int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [low, high]


def regs(client: ModbusTcpClient, address: int, count: int = 2) -> list[int]:
    response = client.read_holding_registers(address, count=count, device_id=1)
    assert not response.isError(), f"read {address}: {response}"
    return list(response.registers)


def read_float(client: ModbusTcpClient, address: int) -> float:
    return cdab(regs(client, address))


def exception_code(client: ModbusTcpClient, address: int, count: int = 1) -> int:
    response = client.read_holding_registers(address, count=count, device_id=1)
    assert response.isError(), f"expected an exception reading {address}, got {response}"
    return int(response.exception_code)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def wait_for_clock(sim: ChamberSimulator, t: float) -> None:
    wait_until(lambda: sim.elapsed() >= t, t + 2.0, f"simulator clock {t} s")


# --- registers and the thermal model ------------------------------------------------------------


def test_preheated_chamber_serves_set_points_and_temperatures_low_word_first() -> None:
    with running_chamber() as sim, connected(sim) as client:
        words = regs(client, CHAMBER_PV)
        assert words[1] in (0x420B, 0x420C), f"high word of ~35.0 should come second: {words}"
        assert 34.7 < cdab(words) < 35.3
        assert read_float(client, CHAMBER_SP) == 35.0
        assert read_float(client, CLOSED_LOOP_SP) == 35.0
        assert read_float(client, SATURATOR_SP) == 47.0
        assert 46.7 < read_float(client, SATURATOR_PV) < 47.3
        assert regs(client, STATUS, 1) == [138]
        assert regs(client, UNITS, 1) == [15]
        hw = regs(client, HW_ID)
        assert struct.unpack(">i", struct.pack(">HH", hw[1], hw[0]))[0] == HARDWARE_ID


def test_cold_start_begins_near_ambient() -> None:
    with running_chamber(preheated=False) as sim, connected(sim) as client:
        assert 21.5 < read_float(client, CHAMBER_PV) < 22.5
        assert 21.5 < read_float(client, SATURATOR_PV) < 22.5
        assert read_float(client, CHAMBER_SP) == 35.0


def test_set_point_write_moves_the_chamber_toward_it() -> None:
    with running_chamber(scenario=FAST) as sim, connected(sim) as client:
        response = client.write_registers(CHAMBER_SP, to_cdab(40.0), device_id=1)
        assert not response.isError(), response
        assert read_float(client, CHAMBER_SP) == 40.0
        assert read_float(client, CLOSED_LOOP_SP) == 40.0
        wait_until(lambda: abs(read_float(client, CHAMBER_PV) - 40.0) < 0.05, 3.0, "PV at 40 °C")
        assert read_float(client, SATURATOR_PV) == pytest.approx(47.0, abs=1e-4)
        response = client.write_registers(SATURATOR_SP, to_cdab(49.5), device_id=1)
        assert not response.isError(), response
        wait_until(lambda: abs(read_float(client, SATURATOR_PV) - 49.5) < 0.05, 3.0, "sat 49.5")


def test_bad_writes_are_refused_with_the_right_exception() -> None:
    with running_chamber() as sim, connected(sim) as client:
        cases = {
            "set point out of range": (CHAMBER_SP, to_cdab(500.0), 3),
            "set point NaN": (CHAMBER_SP, to_cdab(math.nan), 3),
            "unknown units code": (UNITS, [7], 3),
            "read-only actual temperature": (CHAMBER_PV, to_cdab(20.0), 2),
            "read-only status": (STATUS, [32], 2),
            "unmapped address": (100, [1], 2),
        }
        for name, (address, values, code) in cases.items():
            response = client.write_registers(address, values, device_id=1)
            assert response.isError(), f"{name}: write accepted"
            assert response.exception_code == code, f"{name}: {response}"
        assert read_float(client, CHAMBER_SP) == 35.0
        assert regs(client, STATUS, 1) == [138]


def test_fahrenheit_display_units_apply_to_every_temperature_register() -> None:
    with running_chamber() as sim, connected(sim) as client:
        assert not client.write_register(UNITS, 30, device_id=1).isError()
        assert regs(client, UNITS, 1) == [30]
        assert read_float(client, CHAMBER_SP) == 95.0
        assert read_float(client, CLOSED_LOOP_SP) == 95.0
        assert read_float(client, SATURATOR_SP) == pytest.approx(116.6, abs=1e-4)
        assert 94.4 < read_float(client, CHAMBER_PV) < 95.6
        # A set point written while °F is displayed is taken in °F.
        assert not client.write_registers(CHAMBER_SP, to_cdab(100.4), device_id=1).isError()
        assert not client.write_register(UNITS, 15, device_id=1).isError()
        assert read_float(client, CHAMBER_SP) == pytest.approx(38.0, abs=1e-4)


def test_fahrenheit_can_be_the_configured_default() -> None:
    scenario = Scenario(model={"display_units": "F"})
    with running_chamber(scenario=scenario) as sim, connected(sim) as client:
        assert regs(client, UNITS, 1) == [30]
        assert read_float(client, CHAMBER_SP) == 95.0


def test_unmapped_addresses_answer_illegal_data_address() -> None:
    with running_chamber() as sim, connected(sim) as client:
        assert exception_code(client, CHAMBER_PV + 2) == 2
        assert exception_code(client, CHAMBER_PV - 1, count=2) == 2
        assert exception_code(client, CHAMBER_PV, count=3) == 2
        assert exception_code(client, 2) == 2
        assert exception_code(client, 40001) == 2
        assert exception_code(client, 65535) == 2
        assert regs(client, HW_ID + 1, 1)  # the second half of the s32 is a real register


def test_other_unit_ids_answer_gateway_target_failed() -> None:
    with running_chamber(device_id=3) as sim, connected(sim) as client:
        response = client.read_holding_registers(STATUS, count=1, device_id=1)
        assert response.isError() and response.exception_code == 0x0B, response
        response = client.read_holding_registers(STATUS, count=1, device_id=3)
        assert response.registers == [138]


# --- fault knobs ---------------------------------------------------------------------------------


def test_no_reply_makes_the_client_time_out() -> None:
    with running_chamber() as sim:
        with connected(sim, timeout=0.3) as client:
            sim.set_fault("no_reply")
            started = time.monotonic()
            with pytest.raises(ModbusException):
                client.read_holding_registers(STATUS, count=1, device_id=1)
            assert time.monotonic() - started >= 0.25
        sim.clear_faults()
        with connected(sim) as client:
            assert regs(client, STATUS, 1) == [138]


@pytest.mark.parametrize("code", [2, 4, 6])
def test_exception_fault_answers_every_read_with_the_code(code: int) -> None:
    with running_chamber() as sim, connected(sim) as client:
        sim.set_fault("exception", code=code)
        for address in (CHAMBER_PV, STATUS, CHAMBER_SP):
            assert exception_code(client, address) == code
        sim.clear_faults()
        assert regs(client, STATUS, 1) == [138]


def test_exception_fault_refuses_writes_too() -> None:
    with running_chamber() as sim, connected(sim) as client:
        sim.set_fault("exception", code=6)
        response = client.write_registers(CHAMBER_SP, to_cdab(40.0), device_id=1)
        assert response.isError() and response.exception_code == 6
        sim.clear_faults()
        assert read_float(client, CHAMBER_SP) == 35.0


def _connection_is_dropped(port: int) -> bool:
    """Connect with a bare socket and report whether the server closes it at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as raw:
        raw.settimeout(1.0)
        try:
            return raw.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def test_disconnect_drops_connections_and_refuses_new_ones_until_cleared() -> None:
    with running_chamber() as sim:
        with connected(sim) as client:
            assert regs(client, STATUS, 1) == [138]
            sim.set_fault("disconnect")
            with pytest.raises((ModbusException, OSError)):
                client.read_holding_registers(STATUS, count=1, device_id=1)
        assert _connection_is_dropped(sim.port)
        sim.clear_faults()
        assert not _connection_is_dropped(sim.port)
        with connected(sim) as client:
            assert regs(client, STATUS, 1) == [138]


def test_frozen_values_stop_changing() -> None:
    with running_chamber() as sim, connected(sim) as client:
        moving = []
        for _ in range(4):
            moving.append(regs(client, CHAMBER_PV))
            time.sleep(0.12)  # longer than the 0.1 s noise tick
        assert len({tuple(r) for r in moving}) > 1, "noise should move an unfrozen reading"
        sim.set_fault("frozen")
        frozen = []
        for _ in range(5):
            frozen.append((tuple(regs(client, CHAMBER_PV)), tuple(regs(client, SATURATOR_PV))))
            time.sleep(0.12)
        assert len(set(frozen)) == 1, frozen
        assert cdab(list(frozen[0][0])) == sim.reading("chamber_temperature")


def test_swapped_word_order_serves_high_word_first() -> None:
    with running_chamber(scenario=Scenario(model={"noise_c": 0.0})) as sim, connected(sim) as c:
        sim.set_fault("word_order_swapped")
        words = regs(c, CHAMBER_SP)
        assert words == [0x420C, 0x0000]
        assert abs(cdab(words)) < 1e-38, "a CDAB decoder sees a denormal near 2.4e-41"
        assert abcd(words) == 35.0
        assert abcd(regs(c, CHAMBER_PV)) == pytest.approx(35.0, abs=1e-4)
        hw = regs(c, HW_ID)
        assert struct.unpack(">i", struct.pack(">HH", *hw))[0] == HARDWARE_ID
        sim.clear_faults()
        assert read_float(c, CHAMBER_SP) == 35.0


def test_excursion_pulls_the_chamber_away_and_it_recovers() -> None:
    with running_chamber(scenario=FAST) as sim, connected(sim) as client:
        sim.set_fault("excursion", delta=-6.0)
        wait_until(lambda: read_float(client, CHAMBER_PV) < 29.2, 3.0, "door-open dip to 29 °C")
        assert read_float(client, CHAMBER_SP) == 35.0, "an excursion is not a set-point change"
        assert read_float(client, SATURATOR_PV) == pytest.approx(47.0, abs=1e-4)
        sim.clear_faults()
        wait_until(lambda: read_float(client, CHAMBER_PV) > 34.8, 3.0, "recovery to 35 °C")


def test_device_fail_sets_status_32() -> None:
    with running_chamber() as sim, connected(sim) as client:
        sim.set_fault("device_fail")
        assert regs(client, STATUS, 1) == [32]
        sim.clear_faults()
        assert regs(client, STATUS, 1) == [138]


def test_set_fault_rejects_unknown_kinds_and_bad_parameters() -> None:
    sim = ChamberSimulator()
    with pytest.raises(ValueError, match="unknown fault kind 'melted'"):
        sim.set_fault("melted")
    with pytest.raises(ValueError, match="code"):
        sim.set_fault("exception", code=5)
    with pytest.raises(ValueError, match="code"):
        sim.set_fault("exception")
    with pytest.raises(ValueError, match="colour"):
        sim.set_fault("frozen", colour=1)


# --- scenarios ---------------------------------------------------------------------------------


def test_scenario_turns_faults_on_and_off_on_time() -> None:
    scenario = Scenario(
        faults=(
            FaultEntry("exception", start=0.5, duration=0.5, params={"code": 4}),
            FaultEntry("device_fail", start=1.5, duration=0.5),
        )
    )
    # Each read comes 0.1 s after a boundary, leaving 0.4 s before the next one.
    with running_chamber(scenario=scenario) as sim, connected(sim) as client:
        assert sim.elapsed() < 0.4
        assert regs(client, STATUS, 1) == [138]
        wait_for_clock(sim, 0.6)
        assert exception_code(client, STATUS) == 4
        wait_for_clock(sim, 1.1)
        assert regs(client, STATUS, 1) == [138]
        wait_for_clock(sim, 1.6)
        assert regs(client, STATUS, 1) == [32]
        wait_for_clock(sim, 2.1)
        assert regs(client, STATUS, 1) == [138]


def test_scripted_disconnect_drops_an_idle_connection() -> None:
    scenario = Scenario(faults=(FaultEntry("disconnect", start=0.4, duration=0.8),))
    with running_chamber(scenario=scenario) as sim:
        with (
            connected(sim) as client,
            socket.create_connection(("127.0.0.1", sim.port), timeout=2.0) as idle,
        ):
            assert regs(client, STATUS, 1) == [138]
            assert idle.recv(1) == b"", "an idle connection is closed when the window opens"
            assert sim.elapsed() >= 0.4
            with pytest.raises((ModbusException, OSError)):
                client.read_holding_registers(STATUS, count=1, device_id=1)
        assert _connection_is_dropped(sim.port)
        wait_for_clock(sim, 1.25)
        with connected(sim) as client:
            assert regs(client, STATUS, 1) == [138]


def test_example_scenario_file_loads() -> None:
    scenario = load_scenario(EXAMPLE_SCENARIO, CHAMBER_VOCABULARY)
    kinds = {entry.kind for entry in scenario.faults}
    assert kinds == set(CHAMBER_VOCABULARY.faults)
    assert scenario.model["seed"] == 7
    assert [w.kind for w in scenario.active_at(25.0)] == ["excursion"]
    assert scenario.active_at(60.0) == []
    sim = ChamberSimulator(scenario=scenario, seed=99)
    assert sim.params.seed == 7, "the scenario's [model] overrides the constructor"


BAD_SCENARIOS = {
    "unknown kind": ('schema = 1\n[[fault]]\nkind = "melted"\nstart = 0\n', ["#1", "melted"]),
    "missing code": ('schema = 1\n[[fault]]\nkind = "exception"\nstart = 0\n', ["#1", "code"]),
    "bad code": ('schema = 1\n[[fault]]\nkind = "exception"\nstart = 0\ncode = 5\n', ["code"]),
    "negative start": ('schema = 1\n[[fault]]\nkind = "frozen"\nstart = -1\n', ["start"]),
    "zero duration": (
        'schema = 1\n[[fault]]\nkind = "frozen"\nstart = 1\nduration = 0\n',
        ["duration"],
    ),
    "missing schema": ('[[fault]]\nkind = "frozen"\nstart = 1\n', ["schema"]),
    "future schema": ("schema = 2\n", ["schema", "schema = 1"]),
    "unknown model key": ("schema = 1\n[model]\nsetpoint = 35\n", ["[model]", "setpoint"]),
    "delta not a number": (
        'schema = 1\n[[fault]]\nkind = "excursion"\nstart = 0\ndelta = "cold"\n',
        ["delta"],
    ),
    "stray key": ('schema = 1\n[[fault]]\nkind = "frozen"\nstart = 0\nsevere = true\n', ["severe"]),
    "bad toml": ("schema = 1\n[[fault]\n", ["not valid TOML", "line 2"]),
    "unknown top-level": ("schema = 1\nfaults = []\n", ["faults", "unknown top-level key"]),
}


@pytest.mark.parametrize("name", sorted(BAD_SCENARIOS))
def test_bad_scenario_files_give_errors_naming_file_and_key(tmp_path: Path, name: str) -> None:
    text, fragments = BAD_SCENARIOS[name]
    path = tmp_path / "chamber.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, CHAMBER_VOCABULARY)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_every_problem_in_a_scenario_is_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "many.toml"
    path.write_text(
        "schema = 1\n"
        "[model]\ntime_constant_s = -5\n"
        '[[fault]]\nkind = "exception"\nstart = 0\ncode = 9\n'
        '[[fault]]\nkind = "excursion"\nstart = -2\n',
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, CHAMBER_VOCABULARY)
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 4, problems
    for fragment in ("time_constant_s", "#1 (kind = 'exception'): code", "#2", "delta", "start"):
        assert fragment in problems


def test_missing_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "absent.toml")


def test_simulator_validates_a_scenario_built_in_code() -> None:
    with pytest.raises(ScenarioError, match=r"kind = 'excursion'.*delta"):
        ChamberSimulator(scenario=Scenario(faults=(FaultEntry("excursion", start=0),)))


def test_fault_timeline_mixes_scripted_and_hand_set_windows() -> None:
    scenario = Scenario(faults=(FaultEntry("frozen", start=1.0, duration=2.0),))
    timeline = FaultTimeline(scenario.windows())
    timeline.start_manual("no_reply", 0.5, {})
    assert [w.kind for w in timeline.active(1.5)] == ["frozen", "no_reply"]
    timeline.stop_manual(2.0)
    assert [w.kind for w in timeline.active(2.5)] == ["frozen"]
    assert timeline.active(3.0) == []
    assert timeline.next_start_after(0.0) == 0.5
    assert timeline.next_start_after(0.5, ["frozen"]) == 1.0
    assert timeline.next_start_after(1.0) is None


# --- determinism ---------------------------------------------------------------------------------


def _model(seed: int) -> ChamberModel:
    params = ChamberModelParams(seed=seed, time_constant_s=5.0, preheated=False)
    timeline = FaultTimeline(
        Scenario(
            faults=(FaultEntry("excursion", start=2.0, duration=3.0, params={"delta": -6.0}),)
        ).windows()
    )
    model = ChamberModel(params, timeline)
    model.set_setpoint("chamber", 1.0, 36.0)
    return model


def test_same_seed_gives_the_same_values_whatever_the_read_order() -> None:
    times = [0.0, 0.35, 1.0, 2.5, 4.99, 7.0, 30.0]
    forward = [_model(3).temperature("chamber", t) for t in times]
    model = _model(3)
    backward = [model.temperature("chamber", t) for t in reversed(times)][::-1]
    assert forward == backward
    assert forward != [_model(4).temperature("chamber", t) for t in times]
    # The lag itself: cold start at 22 °C, heading for 36, pulled toward 30 during the excursion.
    assert forward[0] == pytest.approx(22.0, abs=0.3)
    assert forward[-1] == pytest.approx(36.0, abs=0.3)


def test_same_seed_gives_the_same_registers_over_tcp() -> None:
    frozen_at_start = Scenario(faults=(FaultEntry("frozen", start=0.0),))
    seen = []
    for seed in (11, 11, 12):
        with running_chamber(seed=seed, scenario=frozen_at_start) as sim, connected(sim) as c:
            seen.append((tuple(regs(c, CHAMBER_PV)), tuple(regs(c, SATURATOR_PV))))
    assert seen[0] == seen[1]
    assert seen[0] != seen[2]


# --- lifecycle -----------------------------------------------------------------------------------


async def test_start_and_stop_inside_a_running_loop() -> None:
    sim = ChamberSimulator(port=0)
    host, port = await sim.start()
    try:
        assert (host, port) == ("127.0.0.1", sim.port)
        assert port > 0 and sim.address == f"tcp://127.0.0.1:{port}"
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
        assert await client.connect()
        try:
            response = await client.read_holding_registers(CHAMBER_PV, count=2, device_id=1)
            assert 34.7 < cdab(response.registers) < 35.3
        finally:
            client.close()
    finally:
        await sim.stop()
    await sim.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


async def test_start_fails_clearly_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sim = ChamberSimulator(port=taken.getsockname()[1])
        with pytest.raises(OSError, match="cannot listen"):
            await sim.start()
        await sim.stop()


def test_running_chamber_leaves_no_thread_behind() -> None:
    with running_chamber():
        assert any(t.name == "f4t-simulator" for t in threading.enumerate())
    assert not any(t.name == "f4t-simulator" for t in threading.enumerate())


def test_serve_prints_one_json_line_and_exits_0_on_sigterm() -> None:
    code = (
        "import sys; from simulators.watlow_f4t import serve; "
        "sys.exit(serve('127.0.0.1', 0, 5, None))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            info = json.loads(process.stdout.readline())
            assert info == {
                "family": "chamber",
                "model": "watlow_f4t",
                "transport": "modbus-tcp",
                "host": "127.0.0.1",
                "port": info["port"],
                "address": f"tcp://127.0.0.1:{info['port']}",
                "device_id": 1,
            }
            client = ModbusTcpClient("127.0.0.1", port=info["port"], timeout=1.0, retries=0)
            assert client.connect()
            try:
                assert read_float(client, CHAMBER_SP) == 35.0
            finally:
                client.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0, process.stderr.read() if process.stderr else ""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)


def test_serve_rejects_a_bad_scenario_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("schema = 1\n[[fault]]\nkind = 'nope'\nstart = 0\n", encoding="utf-8")
    assert serve("127.0.0.1", 0, 0, path) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(path) in captured.err and "nope" in captured.err


# --- word-order codecs ---------------------------------------------------------------------------

finite_floats = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(value=finite_floats, order=st.sampled_from(list(WordOrder)))
def test_float32_codec_round_trips_in_both_word_orders(value: float, order: WordOrder) -> None:
    assert decode_float32(encode_float32(value, order), order) == value


@given(value=st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_int32_codec_puts_the_low_word_first_in_cdab(value: int) -> None:
    high, low = struct.unpack(">HH", struct.pack(">i", value))
    assert encode_int32(value, WordOrder.CDAB) == [low, high]
    assert encode_int32(value, WordOrder.ABCD) == [high, low]
    assert decode_int32([low, high], WordOrder.CDAB) == value


def test_35_degrees_encodes_as_in_the_domain_notes() -> None:
    assert encode_float32(35.0, WordOrder.ABCD) == [0x420C, 0x0000]
    assert encode_float32(35.0, WordOrder.CDAB) == [0x0000, 0x420C]
    assert decode_float32([0x420C, 0x0000], WordOrder.CDAB) == pytest.approx(2.37e-41, rel=0.01)
