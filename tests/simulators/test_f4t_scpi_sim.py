"""The Watlow F4T SCPI simulator over real TCP, spoken to with a plain socket."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators._scpi import (
    ErrorQueue,
    ScpiError,
    compile_header,
    definite_block,
    format_nr3,
    match_header,
    parse_bool,
    parse_channel_list,
    split_params,
    split_units,
    unquote,
)
from simulators.f4t_scpi import F4T_SCPI_VOCABULARY, F4tScpiSimulator, running_f4t_scpi, serve
from simulators.scenario import Scenario, ScenarioError, load_scenario
from tests.simulators.scpi_client import check_serve, client, connect_refused, wait_until

pytestmark = pytest.mark.timeout(30)

FAST = Scenario(model={"time_constant_s": 0.05, "noise": 0.0})


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[F4tScpiSimulator]:
    with running_f4t_scpi(seed=3) as simulator:
        yield simulator


@pytest.fixture
def fast() -> Iterator[F4tScpiSimulator]:
    with running_f4t_scpi(scenario=FAST) as simulator:
        yield simulator


# --- the shared SCPI helpers -----------------------------------------------------------------


def test_header_matching_follows_the_short_and_long_form_rule() -> None:
    nodes, query = compile_header(":SOURce:CLOop#:PVALue?")
    assert query
    assert match_header(nodes, ["SOUR", "CLO2", "PVAL"]) == (2,)
    assert match_header(nodes, ["source", "cloop1", "pvalue"]) == (1,)
    assert match_header(nodes, ["SOURCE", "CLOOP", "PVALUE"]) == (1,)
    assert match_header(nodes, ["SOURC", "CLOOP1", "PVALUE"]) is None
    assert match_header(nodes, ["SOUR", "CLOOP1"]) is None
    optional, _ = compile_header(":PROGram[:SELected]:STATe")
    assert match_header(optional, ["PROG", "STAT"]) == ()
    assert match_header(optional, ["PROGRAM", "SELECTED", "STATE"]) == ()


def test_parameter_helpers() -> None:
    assert split_units(":A 1;:B?; ;*IDN?") == [":A 1", ":B?", "*IDN?"]
    assert split_params("TC,K,(@101:103,105)") == ["TC", "K", "(@101:103,105)"]
    assert split_params('"a,b",(@101)') == ['"a,b"', "(@101)"]
    assert parse_channel_list("(@101:103,105)") == [101, 102, 103, 105]
    assert parse_channel_list("(@)") == []
    assert parse_bool("on") and not parse_bool("0")
    assert unquote('"%RH"') == "%RH"
    assert definite_block("(@101,102,103)") == "#214(@101,102,103)"
    assert format_nr3(35.0123) == "+3.50123000E+01"
    assert format_nr3(9.9e37) == "+9.90000000E+37"
    for bad, code in (("(101)", -104), ("(@103:101)", -222)):
        with pytest.raises(ScpiError) as caught:
            parse_channel_list(bad)
        assert caught.value.code == code
    with pytest.raises(ScpiError):
        parse_bool("maybe")
    with pytest.raises(ScpiError):
        unquote("RH")


def test_error_queue_is_fifo_and_overflows_into_minus_350() -> None:
    queue = ErrorQueue(size=3)
    assert queue.pop() == '+0,"No error"'
    for code in (-113, -222, -104, -109):
        queue.push(code)
    assert [queue.pop() for _ in range(4)] == [
        '-113,"Undefined header"',
        '-222,"Data out of range"',
        '-350,"Queue overflow"',
        '+0,"No error"',
    ]


# --- commands --------------------------------------------------------------------------------


def test_identity_and_address(sim: F4tScpiSimulator) -> None:
    assert sim.address == f"TCPIP::127.0.0.1::{sim.port}::SOCKET"
    with client(sim) as c:
        fields = c.query("*IDN?").split(",")
    assert fields[0] == "Watlow Electric"
    assert fields[1] == "F4T"
    assert len(fields) == 4


@pytest.mark.parametrize(
    "header",
    [
        ":SOURCE:CLOOP1:PVALUE?",
        ":SOUR:CLOOP1:PVAL?",
        "SOUR:CLO1:PVAL?",
        ":source:cloop1:pvalue?",
        ":Sour:Cloop1:PValue?",
        ":SOURCE:CLOOP:PVALUE?",
    ],
)
def test_pv_accepts_long_short_and_mixed_case_forms(sim: F4tScpiSimulator, header: str) -> None:
    with client(sim) as c:
        value = float(c.query(header))
        assert c.errors() == []
    assert 33.0 < value < 37.0


def test_humidity_loop_reads_fog_humidity(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        rh = float(c.query(":SOURCE:CLOOP2:PVALUE?"))
        sp = float(c.query(":SOURCE:CLOOP2:SPOINT?"))
    assert 94.0 < rh < 99.0
    assert sp == 96.0


def test_set_point_write_read_and_limits(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 35.0
        c.send(":SOURCE:CLOOP1:SPOINT 36.5")
        assert float(c.query(":SOUR:CLOOP1:SPO?")) == 36.5
        c.send(":SOURCE:CLOOP1:SPOINT 500")
        c.send(":SOURCE:CLOOP1:SPOINT warm")
        c.send(":SOURCE:CLOOP2:SPOINT 101")
        c.send(":SOURCE:CLOOP1:SPOINT")
        assert c.errors() == [
            '-222,"Data out of range"',
            '-104,"Data type error"',
            '-222,"Data out of range"',
            '-109,"Missing parameter"',
        ]
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 36.5
        assert float(c.query(":SOURCE:CLOOP2:SPOINT?")) == 96.0


def test_fahrenheit_units_convert_temperatures_not_humidity(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        assert c.query(":UNIT:TEMPERATURE?") == "C"
        c.send(":UNIT:TEMPERATURE F")
        assert c.query(":UNIT:TEMP?") == "F"
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 95.0
        assert 91.0 < float(c.query(":SOURCE:CLOOP1:PVALUE?")) < 99.0
        assert float(c.query(":SOURCE:CLOOP2:SPOINT?")) == 96.0
        c.send(":SOURCE:CLOOP1:SPOINT 98.6")
        c.send(":UNIT:TEMPERATURE C")
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == pytest.approx(37.0, abs=0.01)
        c.send(":UNIT:TEMPERATURE K")
        assert c.errors() == ['-224,"Illegal parameter value"']


def test_ramp_rate_and_input_error_queries(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        assert float(c.query(":SOURCE:CLOOP1:RRATE?")) == 0.0
        c.send(":SOUR:CLO1:RRAT 2.5")
        assert float(c.query(":SOURCE:CLOOP1:RRATE?")) == 2.5
        assert c.query(":SOURCE:CLOOP1:ERROR?") == "NONE"


def test_profiles_select_start_pause_resume_stop(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        assert c.query(":PROGRAM:SELECTED:STATE?") == "STOP"
        c.send(":PROGRAM:NUMBER 1")
        assert c.query(":PROGRAM:NAME?").startswith('"B117')
        c.send(":PROGRAM:SELECTED:STATE start")
        assert c.query(":PROG:STAT?") == "RUN"
        c.send(":PROGRAM:SELECTED:STATE PAUSE")
        assert c.query(":PROGRAM:SELECTED:STATE?") == "PAUS"
        c.send(":PROG:SEL:STAT resume")
        assert c.query(":PROGRAM:SELECTED:STATE?") == "RUN"
        c.send(":PROGRAM:SELECTED:STATE STOP")
        assert c.query(":PROGRAM:SELECTED:STATE?") == "STOP"
        assert c.errors() == []
        c.send(":PROGRAM:SELECTED:STATE RESUME")
        c.send(":PROGRAM:NUMBER 40")
        assert c.query(":PROGRAM:NAME?") == '""'
        c.send(":PROGRAM:SELECTED:STATE START")
        c.send(":PROGRAM:NUMBER 41")
        c.send(":PROGRAM:SELECTED:STATE JUMP")
        assert c.errors() == [
            '-221,"Settings conflict"',
            '-221,"Settings conflict"',
            '-222,"Data out of range"',
            '-224,"Illegal parameter value"',
        ]
        assert c.query(":PROGRAM:NUMBER?") == "40"


def test_event_outputs(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        assert c.query(":OUTPUT1:STATE?") == "ON"
        assert c.query(":OUTP2:STAT?") == "OFF"
        c.send(":OUTPUT2:STATE ON")
        assert c.query(":OUTPUT2:STATE?") == "ON"
        c.send(":OUTPUT9:STATE?")
        c.send(":OUTPUT2:STATE MAYBE")
        assert c.errors() == ['-114,"Header suffix out of range"', '-224,"Illegal parameter value"']


def test_undefined_headers_and_bad_loops_answer_nothing_and_queue_errors(
    sim: F4tScpiSimulator,
) -> None:
    with client(sim) as c:
        assert c.silent(":SOURCE:CLOOP3:PVALUE?")
        assert c.silent(":SOURC:CLOOP1:PVALUE?")
        assert c.silent("FOO")
        assert c.errors() == [
            '-114,"Header suffix out of range"',
            '-113,"Undefined header"',
            '-113,"Undefined header"',
        ]


def test_temperature_only_chamber_has_one_loop() -> None:
    with running_f4t_scpi(scenario=Scenario(model={"humidity": False})) as sim, client(sim) as c:
        assert c.silent(":SOURCE:CLOOP2:PVALUE?")
        assert c.errors() == ['-114,"Header suffix out of range"']


def test_several_queries_on_one_line_answer_on_one_line(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        answer = c.query(":UNIT:TEMP?;:SOUR:CLOOP1:SPO 35.5;:SOUR:CLOOP1:SPO?")
    assert answer == "C;35.50"


def test_cls_empties_and_rst_restores_units(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        c.send("BAD")
        c.send("*CLS")
        assert c.query("SYST:ERR?") == '+0,"No error"'
        c.send(":UNIT:TEMPERATURE F")
        c.send("*RST")
        assert c.query(":UNIT:TEMPERATURE?") == "C"
        assert c.query("*OPC?") == "1"


def test_error_queue_overflow_over_the_wire(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        c.send(";".join(["NOPE"] * 25))
        found = c.errors()
    assert len(found) == 20
    assert found[-1] == '-350,"Queue overflow"'


def test_lines_with_crlf_and_two_clients(sim: F4tScpiSimulator) -> None:
    with client(sim) as a, client(sim) as b:
        a.sock.sendall(b":UNIT:TEMPERATURE?\r\n")
        assert a.read_raw_line() == b"C\n"
        b.send(":UNIT:TEMPERATURE F")
        assert b.query("*OPC?") == "1"
        assert a.query(":UNIT:TEMPERATURE?") == "F"


# --- faults --------------------------------------------------------------------------------------


def test_no_reply_accepts_commands_but_never_answers(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        sim.set_fault("no_reply")
        assert c.silent("*IDN?")
        c.send(":SOURCE:CLOOP1:SPOINT 37")
        sim.clear_faults()
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 37.0


def test_late_reply_answers_after_the_delay(sim: F4tScpiSimulator) -> None:
    sim.set_fault("late_reply", delay_s=0.6)
    with client(sim) as c:
        assert c.silent("*IDN?", wait=0.2)
        assert c.read_raw_line(timeout=5.0).startswith(b"Watlow Electric")


def test_garbage_comes_before_the_answer(sim: F4tScpiSimulator) -> None:
    sim.set_fault("garbage", count=5)
    with client(sim) as c:
        c.send(":UNIT:TEMPERATURE?")
        line = c.read_raw_line()
    assert line.endswith(b"C\n")
    junk = line[:-2]
    assert len(junk) == 5
    assert all(byte < 0x20 or byte >= 0x7F for byte in junk)


def test_partial_line_sends_the_rest_later(sim: F4tScpiSimulator) -> None:
    sim.set_fault("partial_line", delay_s=0.5)
    with client(sim) as c:
        c.send("*IDN?")
        first = c.read_available(0.25)
        assert first and not first.endswith(b"\n")
        c.buffer = first
        line = c.read_raw_line(timeout=5.0)
    assert line.startswith(b"Watlow Electric") and line.endswith(b"\n")


@pytest.mark.parametrize(("reading", "check"), [("nan", math.isnan), ("9999", lambda v: v == 9999)])
def test_sensor_break_pins_the_pv_and_sets_the_input_error(
    sim: F4tScpiSimulator, reading: str, check: object
) -> None:
    assert callable(check)
    sim.set_fault("sensor_break", loop=1, reading=reading)
    with client(sim) as c:
        assert c.query(":SOURCE:CLOOP1:PVALUE?") == reading
        assert check(float(c.query(":SOURCE:CLOOP1:PVALUE?")))
        assert c.query(":SOURCE:CLOOP1:ERROR?") == "ERROR"
        assert c.query(":SOURCE:CLOOP2:ERROR?") == "NONE"
        assert 90 < float(c.query(":SOURCE:CLOOP2:PVALUE?")) < 100
        sim.clear_faults()
        assert 33 < float(c.query(":SOURCE:CLOOP1:PVALUE?")) < 37


def test_frozen_pv_stops_changing(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        sim.set_fault("frozen")
        first = c.query(":SOURCE:CLOOP1:PVALUE?")
        threading.Event().wait(0.3)
        assert all(c.query(":SOURCE:CLOOP1:PVALUE?") == first for _ in range(3))
        sim.clear_faults()
        values = set()
        for _ in range(5):
            values.add(c.query(":SOURCE:CLOOP1:PVALUE?"))
            threading.Event().wait(0.12)
        assert len(values) > 1


def test_door_open_excursion_drops_then_recovers(fast: F4tScpiSimulator) -> None:
    with client(fast) as c:
        fast.set_fault("excursion", delta=-6.0)
        wait_until(lambda: float(c.query(":SOURCE:CLOOP1:PVALUE?")) < 29.5)
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 35.0
        fast.clear_faults()
        wait_until(lambda: float(c.query(":SOURCE:CLOOP1:PVALUE?")) > 34.9)


def test_reboot_drops_the_link_and_restores_defaults(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        c.send(":SOURCE:CLOOP1:SPOINT 40")
        c.send(":UNIT:TEMPERATURE F")
        c.send(":PROGRAM:SELECTED:STATE START")
        c.send(":OUTPUT1:STATE OFF")
        assert c.query("*OPC?") == "1"
        sim.set_fault("reboot", boot_s=0.3)
        with pytest.raises((ConnectionError, TimeoutError)):
            c.query("*IDN?", timeout=1.0)
    wait_until(lambda: not connect_refused(sim.port))
    with client(sim) as c:
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 35.0
        assert c.query(":UNIT:TEMPERATURE?") == "C"
        assert c.query(":PROGRAM:SELECTED:STATE?") == "STOP"
        assert c.query(":OUTPUT1:STATE?") == "ON"


def test_disconnect_closes_and_refuses_for_a_while(sim: F4tScpiSimulator) -> None:
    with client(sim) as c:
        assert c.query("*OPC?") == "1"
        sim.set_fault("disconnect", seconds=1.5)
        with pytest.raises((ConnectionError, TimeoutError)):
            c.query("*IDN?", timeout=0.5)
    assert connect_refused(sim.port)
    wait_until(lambda: not connect_refused(sim.port))
    with client(sim) as c:
        assert c.query("*OPC?") == "1"


def test_scpi_error_on_one_command(sim: F4tScpiSimulator) -> None:
    sim.set_fault("scpi_error", command=":SOURCE:CLOOP1:SPOINT", code=-222)
    with client(sim) as c:
        c.send(":SOURCE:CLOOP1:SPOINT 30")
        assert c.errors() == ['-222,"Data out of range"']
        assert float(c.query(":SOURCE:CLOOP1:SPOINT?")) == 35.0
        sim.set_fault("scpi_error", code=-200, message="Chamber busy")
        assert c.silent(":UNIT:TEMPERATURE?")
        assert c.errors() == ['-200,"Chamber busy"']


def test_unknown_fault_and_bad_parameters_are_refused(sim: F4tScpiSimulator) -> None:
    with pytest.raises(ScenarioError, match="unknown fault kind"):
        sim.set_fault("meltdown")
    with pytest.raises(ScenarioError, match="delay_s"):
        sim.set_fault("late_reply", delay_s=-1.0)


# --- scenarios and the CLI entry ----------------------------------------------------------------


def write_scenario(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "f4t.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_scripted_scenario_faults_follow_the_clock(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        """
schema = 1
[model]
noise = 0.0
time_constant_s = 0.05
setpoint_c = 35.0
[[fault]]
kind = "sensor_break"
start = 0.0
duration = 0.6
loop = 2
reading = "9999"
[[fault]]
kind = "excursion"
start = 0.0
duration = 30.0
delta = -5.0
""",
    )
    scenario = load_scenario(path, F4T_SCPI_VOCABULARY)
    with running_f4t_scpi(scenario=scenario) as sim, client(sim) as c:
        assert c.query(":SOURCE:CLOOP2:PVALUE?") == "9999"
        wait_until(lambda: c.query(":SOURCE:CLOOP2:ERROR?") == "NONE")
        wait_until(lambda: float(c.query(":SOURCE:CLOOP1:PVALUE?")) < 30.1)


def test_bad_scenario_names_the_key(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path, 'schema = 1\n[[fault]]\nkind = "sensor_break"\nstart = 1\nloop = 7\n'
    )
    with pytest.raises(ScenarioError, match="loop"):
        load_scenario(path, F4T_SCPI_VOCABULARY)
    assert serve("127.0.0.1", 0, 0, path) == 2


def test_serve_prints_its_address_and_stops_on_sigterm() -> None:
    check_serve("simulators.f4t_scpi", b"Watlow Electric")
