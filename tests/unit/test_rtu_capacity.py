"""Wire-time arithmetic of Modbus RTU lines, checked against hand-computed figures.

Hand arithmetic (Modbus over Serial Line V1.02 §2.5.1 / §2.5.1.1; read of n registers: request
8 bytes, reply 5 + 2n bytes; 20 ms assumed turnaround):

- 9600 8N1: a character is 10 bits = 1.0417 ms; t3.5 = 35 bits = 3.6458 ms. Reading 2
  registers: 8 + 9 = 17 characters = 170 bits, plus 2 x 35 bits of silence: 240 bits = 25.0 ms
  on the wire, 45.0 ms with the turnaround.
- 9600 8E1 (or 8N2): 11 bits a character: 24 x 11 = 264 bits = 27.5 ms, 47.5 ms in all.
- 38400 8N1: above 19200 baud t3.5 is a fixed 1.75 ms; 1 register: 15 characters = 150 bits =
  3.90625 ms, + 3.5 ms + 20 ms = 27.40625 ms.
- Eurotherm 3200 map: registers 1..5 in one read: 23 characters = 230 bits + 70 bits = 300 bits
  = 31.25 ms, 51.25 ms in all. Four of them every 0.1 s: 4 x 0.5125 = 2.05 s per second.
"""

import math

import pytest

from daq.config import InstrumentConfig
from daq.instrument import InstrumentSettings
from drivers.modbus_controller import ModbusControllerOptions, build, capacity_plan
from drivers.rtu_capacity import (
    DEFAULT_TURNAROUND_S,
    BlockRead,
    PollPlan,
    RtuInstrument,
    char_time_s,
    check_lines,
    check_rtu_lines,
    line_utilisation,
    transaction_time_s,
    wire_seconds_per_second,
)
from drivers.transport.rtu_line import SerialSettings, inter_frame_delay_s

N1_9600 = SerialSettings(baudrate=9600, parity="N", bytesize=8, stopbits=1)
E1_9600 = SerialSettings(baudrate=9600, parity="E", bytesize=8, stopbits=1)
N2_9600 = SerialSettings(baudrate=9600, parity="N", bytesize=8, stopbits=2)
N1_38400 = SerialSettings(baudrate=38400)


def test_character_time_counts_start_data_parity_and_stop_bits():
    assert char_time_s(N1_9600) == pytest.approx(1.0416667e-3)
    assert char_time_s(E1_9600) == pytest.approx(11 / 9600)
    assert char_time_s(N2_9600) == pytest.approx(11 / 9600)
    assert char_time_s(SerialSettings(baudrate=19200, bytesize=7, parity="O")) == pytest.approx(
        10 / 19200
    )


def test_inter_frame_silence_is_3_5_characters_up_to_19200_then_fixed():
    assert inter_frame_delay_s(N1_9600) == pytest.approx(3.6458333e-3)
    assert inter_frame_delay_s(SerialSettings(baudrate=19200)) == pytest.approx(35 / 19200)
    assert inter_frame_delay_s(N1_38400) == 0.00175
    assert inter_frame_delay_s(SerialSettings(baudrate=115200)) == 0.00175


def test_transaction_times_by_hand():
    assert DEFAULT_TURNAROUND_S == 0.020
    assert transaction_time_s(N1_9600, 2, 0.0) == pytest.approx(0.025)
    assert transaction_time_s(N1_9600, 2, 0.020) == pytest.approx(0.045)
    assert transaction_time_s(E1_9600, 2, 0.020) == pytest.approx(0.0475)
    assert transaction_time_s(N1_38400, 1, 0.020) == pytest.approx(0.02740625)
    assert transaction_time_s(N1_9600, 5, 0.020) == pytest.approx(0.05125)
    # 125 registers, the most one read may ask for: 8 + 255 characters + 7 of silence.
    assert transaction_time_s(N1_9600, 125, 0.0) == pytest.approx(270 * 10 / 9600)


def eurotherm(name: str, poll_interval: float, serial: SerialSettings = N1_9600) -> RtuInstrument:
    return RtuInstrument(name, "/dev/ttyUSB0", serial, poll_interval, PollPlan((BlockRead(1, 5),)))


def test_four_controllers_overload_a_9600_baud_line():
    members = [eurotherm(f"oven-{i}", 0.1) for i in range(4)]
    assert wire_seconds_per_second(members[0]) == pytest.approx(0.5125)
    assert line_utilisation(members) == pytest.approx(2.05)
    findings = check_rtu_lines(members)
    assert [f.level for f in findings] == ["warning"]
    assert str(findings[0]) == (
        "line /dev/ttyUSB0 at 9600 baud needs 2.05 s of wire time per second for its"
        " 4 controllers: polls will fall behind; poll less often or raise the baud rate"
    )


def test_busy_but_not_full_line_gets_a_note_and_a_quiet_one_nothing():
    ezzone = PollPlan((BlockRead(360, 2), BlockRead(2160, 2)))  # 2 x 45 ms a poll
    busy = RtuInstrument("chamber", "/dev/ttyUSB0", N1_9600, 0.1, ezzone)
    assert line_utilisation([busy]) == pytest.approx(0.9)
    findings = check_rtu_lines([busy])
    assert [f.level for f in findings] == ["note"]
    assert "line /dev/ttyUSB0 at 9600 baud is 90% busy with its 1 controller" in str(findings[0])
    quiet = RtuInstrument("chamber", "/dev/ttyUSB0", N1_9600, 1.0, ezzone)
    assert check_rtu_lines([quiet]) == []


def test_slow_group_counts_at_its_own_interval():
    grouped = PollPlan((BlockRead(360, 2), BlockRead(2160, 2, interval_s=10.0)))
    inst = RtuInstrument("chamber", "/dev/ttyUSB0", N1_9600, 0.1, grouped)
    assert wire_seconds_per_second(inst) == pytest.approx(0.045 / 0.1 + 0.045 / 10.0)
    # A group interval shorter than the poll interval is read once a poll, no more.
    fast_group = PollPlan((BlockRead(360, 2), BlockRead(2160, 2, interval_s=0.5)))
    inst = RtuInstrument("chamber", "/dev/ttyUSB0", N1_9600, 2.0, fast_group)
    assert wire_seconds_per_second(inst) == pytest.approx(0.09 / 2.0)


def test_turnaround_is_per_instrument():
    slow = RtuInstrument(
        "c", "/dev/ttyUSB0", N1_9600, 1.0, PollPlan((BlockRead(360, 2),), turnaround_s=0.1)
    )
    assert wire_seconds_per_second(slow) == pytest.approx(0.125)


def test_lines_are_counted_apart_and_conflicting_settings_are_an_error():
    a = eurotherm("oven-a", 0.1)
    b = RtuInstrument("oven-b", "/dev/ttyUSB1", N1_9600, 0.1, a.plan)
    c = eurotherm("oven-c", 0.1, serial=E1_9600)
    assert check_rtu_lines([a, b]) == []  # 0.51 each, on two lines
    findings = check_rtu_lines([a, b, c])
    assert [(f.level, f.device) for f in findings] == [("error", "/dev/ttyUSB0")]
    assert "'oven-a' 9600 baud 8N1; 'oven-c' 9600 baud 8E1" in findings[0].message
    assert "make the rtu:// addresses agree" in findings[0].message


def inst(name: str, driver: str, address: str, poll: float | None = 0.1, **extra):
    return InstrumentConfig(name=name, driver=driver, address=address, poll_interval=poll, **extra)


def plans(config: InstrumentConfig) -> PollPlan | None:
    if config.driver not in ("eurotherm_3200", "watlow_ezzone_pm", "watlow_f4t"):
        return None
    return capacity_plan(config, config.driver)


def test_check_lines_reads_a_bench_config():
    line = "rtu:///dev/ttyUSB0?baudrate=9600"
    instruments = [
        *(inst(f"oven-{i}", "eurotherm_3200", line) for i in range(4)),
        inst("spare", "eurotherm_3200", line, enabled=False),
        inst("f4t", "watlow_f4t", "tcp://10.0.0.5:502"),
        inst("gauge", "mark10", "/dev/ttyUSB0"),
        inst("xrf", "xrf_telegram", "/dev/ttyS0", poll=None),
    ]
    findings = check_lines(instruments, plans)
    assert [f.level for f in findings] == ["warning"]
    assert "needs 2.05 s of wire time per second for its 4 controllers" in str(findings[0])
    assert check_lines(instruments[:1], plans) == []  # one of them: 51 %


def test_check_lines_conflicting_settings():
    instruments = [
        inst("a", "eurotherm_3200", "rtu:///dev/ttyUSB0?baudrate=9600", poll=5.0),
        inst("b", "watlow_ezzone_pm", "rtu:///dev/ttyUSB0?baudrate=19200", poll=5.0),
        inst("c", "watlow_ezzone_pm", "rtu:///dev/ttyUSB1", poll=5.0),
    ]
    findings = check_lines(instruments, plans)
    assert [(f.level, f.device) for f in findings] == [("error", "/dev/ttyUSB0")]
    assert "'a' 9600 baud 8N1; 'b' 19200 baud 8N1" in str(findings[0])


def test_check_lines_leaves_out_instruments_with_bad_options():
    instruments = [
        inst("a", "eurotherm_3200", "rtu:///dev/ttyUSB0?baudrate=9600", poll=0.05),
        inst("b", "eurotherm_3200", "rtu:///dev/ttyUSB0?baudrate=9600", options={"map": "/no"}),
    ]
    findings = check_lines(instruments, plans)  # "b" is the config check's business
    assert [f.level for f in findings] == ["warning"]
    assert "needs 1.02 s of wire time per second for its 1 controller" in str(findings[0])


def test_turnaround_option_reaches_the_plan():
    config = inst("c", "watlow_ezzone_pm", "rtu:///dev/ttyUSB0", options={"turnaround_s": 0.05})
    plan = capacity_plan(config, "watlow_ezzone_pm")
    assert plan.turnaround_s == 0.05
    # 360-361 the process value and 362 the input-error register, read in one block.
    assert plan.reads == (BlockRead(360, 3), BlockRead(2160, 2))
    with pytest.raises(ValueError, match="turnaround_s"):
        capacity_plan(inst("c", "watlow_ezzone_pm", "rtu:///x", options={"turnaround_s": -1}), "x")


def test_block_reads_per_group_keep_display_and_status_in_every_poll(tmp_path):
    settings = InstrumentSettings("f4t", "tcp://127.0.0.1:502", 1.0)
    plain = build(settings, ModbusControllerOptions(), "watlow_f4t").block_reads()
    assert plain == [
        BlockRead(90, 1),
        BlockRead(1328, 1),
        BlockRead(2782, 2),
        BlockRead(2942, 2),
        BlockRead(27586, 2),
        BlockRead(28906, 2),
    ]
    from drivers.modbus_controller import MAPS_DIR

    text = (MAPS_DIR / "watlow_f4t.toml").read_text(encoding="utf-8")
    for channel in ("setpoint", "saturator_setpoint"):
        marker = f'channel = "{channel}"\n'
        text = text.replace(marker, f"{marker}interval_s = 10.0\n")
    grouped_map = tmp_path / "f4t.toml"
    grouped_map.write_text(text, encoding="utf-8")
    grouped = build(settings, ModbusControllerOptions(map=grouped_map), "watlow_f4t")
    assert grouped.block_reads() == [
        BlockRead(90, 1),
        BlockRead(1328, 1),
        BlockRead(27586, 2),
        BlockRead(28906, 2),
        BlockRead(2782, 2, 10.0),
        BlockRead(2942, 2, 10.0),
    ]
    assert grouped.capacity_plan().turnaround_s == DEFAULT_TURNAROUND_S
    assert math.isclose(
        wire_seconds_per_second(
            RtuInstrument("f4t", "/dev/ttyUSB0", N1_9600, 1.0, grouped.capacity_plan())
        ),
        sum(transaction_time_s(N1_9600, n, 0.02) for n in (1, 1, 2, 2))
        + 2 * transaction_time_s(N1_9600, 2, 0.02) / 10.0,
    )
