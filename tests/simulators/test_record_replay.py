"""Record an instrument session through the proxies, replay it to the same driver code.

Real parts only: the F4T simulator over Modbus TCP and the Mark-10 simulator on a pty are
recorded through daq/recorder.py while the real drivers poll them; simulators/replay.py then
serves the transcript and the same drivers must read the same samples. The committed fixtures
in tests/fixtures/transcripts/ replay to the drivers with known numbers (made by
``record_f4t_session`` / ``record_mark10_session`` below; see that folder's README.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from pymodbus.client import ModbusTcpClient

from daq.errors import InstrumentTimeout, TransportError
from daq.instrument import InstrumentSettings
from daq.recordcli import add_commands
from daq.recorder import recording_serial_proxy, recording_tcp_proxy
from daq.transcript import (
    Chunk,
    Event,
    Header,
    ReplayMatcher,
    Send,
    Transcript,
    TranscriptError,
    TranscriptWriter,
    build_exchanges,
    parse_transcript,
    read_transcript,
)
from drivers import mark10
from drivers.modbus_controller import ModbusControllerOptions, build
from simulators.mark10 import running_mark10
from simulators.replay import replaying_pty, replaying_tcp
from simulators.watlow_f4t import running_chamber

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "transcripts"
F4T_FIXTURE = FIXTURES / "watlow_f4t_modbus_tcp.jsonl"
MARK10_FIXTURE = FIXTURES / "mark10_gcl2_poll.jsonl"

#: Polls are this far apart so the F4T's noise (a new value every 0.1 s) changes between them.
GAP_S = 0.12
TIMEOUT_S = 0.5

Row = tuple[str, float, str, str, tuple[str, ...]]


def wait(seconds: float) -> None:
    threading.Event().wait(seconds)


def rows(samples) -> list[Row]:
    return [(s.channel, s.value, s.unit, s.raw, s.flags) for s in samples]


# --- sessions (also how the fixtures were made) -------------------------------------------------


def poll_f4t(address: str, polls: int, *, fahrenheit_after: int | None = None, sim=None):
    """Poll the F4T driver ``polls`` times; after poll ``fahrenheit_after`` switch to °F on the
    controller itself (a separate client straight to the simulator, not through the proxy)."""
    driver = build(
        InstrumentSettings("chamber-1", address, TIMEOUT_S),
        ModbusControllerOptions(),
        "watlow_f4t",
    )
    driver.connect()
    try:
        out = []
        for n in range(polls):
            if n and fahrenheit_after == n and sim is not None:
                client = ModbusTcpClient(sim.host, port=sim.port, timeout=1)
                assert client.connect()
                try:
                    assert not client.write_register(1328, 30, device_id=1).isError()
                finally:
                    client.close()
            out.append(rows(driver.poll()))
            wait(GAP_S)
        return out
    finally:
        driver.close()


def record_f4t_session(out: Path, polls: int = 5, fahrenheit_after: int | None = 3):
    """Record the F4T driver polling the simulated chamber (seed 3); returns what it read."""
    with (
        running_chamber(seed=3) as sim,
        recording_tcp_proxy(
            f"{sim.host}:{sim.port}",
            out,
            protocol="modbus-tcp",
            note=(
                f"simulated Watlow F4T (simulators.watlow_f4t, seed 3); driver watlow_f4t"
                f" polled {polls} times {GAP_S} s apart"
                + (
                    ""
                    if fahrenheit_after is None
                    else f"; display switched to °F on the controller before poll"
                    f" {fahrenheit_after + 1}"
                )
            ),
        ) as proxy,
    ):
        return poll_f4t(proxy.address, polls, fahrenheit_after=fahrenheit_after, sim=sim)


def poll_mark10(path: str, polls: int, *, lbf_after: int | None = None, sim=None):
    """Poll the Mark-10 driver; after poll ``lbf_after`` the operator switches the gauge to lbF."""
    driver = mark10.build(
        InstrumentSettings("m10", path, TIMEOUT_S), mark10.Mark10Options(capacity="500 N")
    )
    driver.connect()
    try:
        out = []
        for n in range(polls):
            if n and lbf_after == n and sim is not None:
                sim.set_panel_unit("lbF")
            out.append(rows(driver.poll()))
            wait(0.03)
        return out
    finally:
        driver.close()


def steady_hold(sim) -> None:
    """123.4 N compression (with the default noise) from 50 ms on, for an hour."""
    sim.start_test(
        "hold", target=123.4, unit="N", ramp_s=0.05, hold_s=3600.0, direction="compression"
    )
    for _ in range(100):
        if sim.elapsed() >= sim.runs[-1].start + 0.1:
            return
        wait(0.01)
    raise AssertionError("the Mark-10 simulator's hold did not start")


def record_mark10_session(out: Path, polls: int = 6, lbf_after: int | None = 4):
    """Record the Mark-10 driver polling the simulated M5-100 gauge (seed 5) over a pty."""
    with running_mark10(seed=5, model={"fltc": 0}) as sim:
        steady_hold(sim)
        assert sim.path is not None
        note = (
            "simulated Mark-10 M5-100 (simulators.mark10, seed 5, fltc 0) holding 123.4 N"
            f" compression; driver mark10 ('?C'): connect, then {polls} polls"
            + (
                ""
                if lbf_after is None
                else f"; panel unit switched to lbF before poll {lbf_after + 1}"
            )
        )
        with recording_serial_proxy(sim.path, out, note=note) as proxy:
            return poll_mark10(proxy.path, polls, lbf_after=lbf_after, sim=sim)


# --- (1) Modbus TCP: record, then replay to the same driver ------------------------------------


def test_f4t_session_replays_to_the_same_samples(tmp_path):
    out = tmp_path / "f4t.jsonl"
    recorded = record_f4t_session(out)
    temperatures = [dict((r[0], r[1]) for r in poll)["temperature"] for poll in recorded]
    assert len(set(temperatures[:3])) > 1, "the recording should hold changing values"
    assert "unit_changed:°C->°F" in dict((r[0], r[4]) for r in recorded[3])["temperature"]

    transcript = read_transcript(out)
    assert (transcript.header.transport, transcript.header.protocol) == ("tcp", "modbus-tcp")
    events = [e for e in transcript.entries if isinstance(e, Event)]
    assert [(e.event, e.by) for e in events] == [("connect", None), ("disconnect", "host")]

    with replaying_tcp(out, strict=True) as replay:
        replayed = poll_f4t(replay.address, len(recorded))
        assert replay.finished.wait(2.0)
        assert replay.mismatches == []
        assert not replay.failed
    assert replayed == recorded


def reconnect_session(address: str, sim=None) -> list:
    """Poll, lose the connection (the controller drops it), reconnect, poll again."""
    driver = build(
        InstrumentSettings("chamber-1", address, TIMEOUT_S), ModbusControllerOptions(), "watlow_f4t"
    )
    driver.connect()
    out: list = [rows(driver.poll())]
    if sim is not None:
        sim.set_fault("disconnect")
    with pytest.raises(TransportError):
        driver.poll()
    if sim is not None:
        sim.clear_faults()
    driver.close()
    driver.connect()
    out.append(rows(driver.poll()))
    driver.close()
    return out


def test_a_connection_the_instrument_dropped_is_dropped_again(tmp_path):
    out = tmp_path / "drop.jsonl"
    with (
        running_chamber(seed=4) as sim,
        recording_tcp_proxy(f"{sim.host}:{sim.port}", out, protocol="modbus-tcp") as proxy,
    ):
        recorded = reconnect_session(proxy.address, sim)
    events = [(e.event, e.by) for e in read_transcript(out).entries if isinstance(e, Event)]
    assert events == [
        ("connect", None),
        ("disconnect", "instrument"),
        ("connect", None),
        ("disconnect", "host"),
    ]
    with replaying_tcp(out, strict=True) as replay:
        replayed = reconnect_session(replay.address)
        assert replay.finished.wait(2.0)
        assert (replay.mismatches, replay.connections) == ([], 2)
    assert replayed == recorded


def test_modbus_transaction_ids_are_rewritten_into_replies(tmp_path):
    out = tmp_path / "f4t.jsonl"
    record_f4t_session(out, polls=1, fahrenheit_after=None)
    first = build_exchanges(read_transcript(out).entries)[0]
    request = b"\xbe\xef" + first.request[2:]
    with replaying_tcp(out, strict=True) as replay:
        host, port = replay.host, replay.port
        with socket.create_connection((host, port), timeout=2.0) as sock:
            sock.sendall(request)
            reply = receive(sock, len(first.reply_bytes))
    assert reply[:2] == b"\xbe\xef"
    assert reply[2:] == first.reply_bytes[2:]


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    for _ in range(100):
        if len(data) >= size:
            break
        piece = sock.recv(size - len(data))
        if not piece:
            break
        data += piece
    return data


# --- (2) Serial: record over a pty, replay over a pty ------------------------------------------


def test_mark10_session_replays_to_the_same_readings(tmp_path):
    out = tmp_path / "m10.jsonl"
    recorded = record_mark10_session(out)
    assert len({poll[0][1] for poll in recorded[:4]}) > 1, "the recording should hold noise"
    assert recorded[4][0][4] == ("unit_changed:N->lbF",)

    transcript = read_transcript(out)
    assert transcript.header.transport == "serial"
    assert transcript.bytes_sent("tx") == b"?C\r\n" * 7  # connect's identifying read + 6 polls

    with replaying_pty(out, strict=True) as replay:
        replayed = poll_mark10(replay.path, len(recorded))
        assert replay.finished.wait(2.0)
        assert replay.mismatches == []
    assert replayed == recorded


def test_serial_recorder_forwards_to_a_pyserial_url(tmp_path):
    # loop:// echoes what is written: the gauge side answers with the host's own bytes.
    sink = io.StringIO()
    with recording_serial_proxy("loop://", sink) as proxy:
        port = serial.Serial(proxy.path, timeout=0.05)
        try:
            port.write(b"?C\r\n")
            got = b""
            for _ in range(40):
                got += port.read(16)
                if got == b"?C\r\n":
                    break
        finally:
            port.close()
    assert got == b"?C\r\n"
    transcript = parse_transcript(sink.getvalue())
    assert transcript.bytes_sent("tx") == b"?C\r\n"
    assert transcript.bytes_sent("rx") == b"?C\r\n"
    assert transcript.header.target == "loop://"


# --- (3) Mismatches -----------------------------------------------------------------------------


def gcl2_transcript(*pairs: tuple[bytes, bytes]) -> Transcript:
    entries: list[Chunk | Event] = []
    t = 0.0
    for request, reply in pairs:
        entries.append(Chunk(t, "tx", request))
        entries.append(Chunk(t + 0.01, "rx", reply))
        t += 0.1
    return Transcript(Header("serial", "raw", "test", "2026-01-01T00:00:00Z"), tuple(entries))


def test_strict_tcp_replay_reports_the_offset_and_bytes_then_closes():
    transcript = gcl2_transcript((b"?C\r\n", b"1.0 N\r\n"), (b"?C\r\n", b"1.1 N\r\n"))
    with replaying_tcp(transcript, strict=True) as replay:
        with socket.create_connection((replay.host, replay.port), timeout=2.0) as sock:
            sock.sendall(b"?C\r\n")
            assert receive(sock, 7) == b"1.0 N\r\n"
            sock.sendall(b"?PT\r\n")
            assert sock.recv(64) == b""  # the replay ended the connection
        assert replay.finished.wait(2.0)
        assert replay.failed
    [mismatch] = replay.mismatches
    assert (mismatch.exchange, mismatch.offset, mismatch.stream_offset) == (2, 1, 5)
    assert mismatch.describe() == (
        "request 2 of 2 differs from the transcript at byte 1 of the request (byte 5 of the"
        " host's stream): expected 43 0d 0a ('C\\r\\n'), got 50 54 0d 0a ('PT\\r\\n')"
    )


def test_strict_pty_replay_ends_the_port_at_a_mismatch():
    transcript = gcl2_transcript((b"?C\r\n", b"1.0 N\r\n"), (b"?C\r\n", b"1.1 N\r\n"))
    with replaying_pty(transcript, strict=True) as replay:
        port = serial.Serial(replay.path, timeout=0.05)
        try:
            port.write(b"?PT\r\n")
            assert replay.finished.wait(2.0)
            with pytest.raises(serial.SerialException):
                for _ in range(40):  # the pty has vanished: pyserial fails on the next read
                    assert port.read(16) == b""
        finally:
            port.close()
        assert replay.failed
    [mismatch] = replay.mismatches
    assert mismatch.describe() == (
        "request 1 of 2 differs from the transcript at byte 1 of the request (byte 1 of the"
        " host's stream): expected 43 0d 0a ('C\\r\\n'), got 50 54 0d 0a ('PT\\r\\n')"
    )


def test_lenient_pty_replay_is_a_silent_gauge_to_the_driver():
    transcript = gcl2_transcript((b"?C\r\n", b"1.0 N\r\n"))
    reports = []
    with replaying_pty(transcript, on_mismatch=reports.append) as replay:
        driver = mark10.build(
            InstrumentSettings("m10", replay.path, 0.3),
            mark10.Mark10Options(command="?PT", capacity="500 N"),
        )
        try:
            with pytest.raises(InstrumentTimeout, match=r"m10: no reply to '\?PT' within 0\.3 s"):
                driver.connect()
        finally:
            driver.close()
        assert not replay.failed
        assert not replay.finished.is_set()
    assert [m.offset for m in reports] == [1]


def test_lenient_replay_stays_silent_then_goes_on():
    transcript = gcl2_transcript(
        (b"?C\r\n", b"1.0 N\r\n"), (b"?C\r\n", b"1.1 N\r\n"), (b"?PT\r\n", b"9.9 N\r\n")
    )
    reports = []
    with replaying_tcp(transcript, on_mismatch=reports.append) as replay:
        with socket.create_connection((replay.host, replay.port), timeout=0.3) as sock:
            sock.sendall(b"?C\r\n")
            assert receive(sock, 7) == b"1.0 N\r\n"
            sock.sendall(b"?X\r\n")
            with pytest.raises(TimeoutError):
                sock.recv(64)  # like a silent instrument
            sock.settimeout(2.0)
            # Cut differently from the recording: the stream is matched, not the writes.
            sock.sendall(b"?")
            wait(0.05)
            sock.sendall(b"C\r")
            sock.sendall(b"\n")
            assert receive(sock, 7) == b"1.1 N\r\n"
            # A later recorded request is found even though one was skipped.
            sock.sendall(b"?PT\r\n")
            assert receive(sock, 7) == b"9.9 N\r\n"
            assert sock.recv(64) == b""  # the end of the transcript closes the connection
        assert replay.finished.wait(2.0)
        assert not replay.failed
    assert [m.describe() for m in reports] == [
        "request 2 of 3 differs from the transcript at byte 1 of the request (byte 5 of the"
        " host's stream): expected 43 0d 0a ('C\\r\\n'), got 58 0d 0a ('X\\r\\n')"
    ]


def test_modbus_mismatch_drops_the_whole_frame():
    request = bytes.fromhex("0001000000060103005a0001")
    reply = bytes.fromhex("000100000005010302008a")
    other = bytes.fromhex("00070000000601030530000100")[:12]  # reads register 1328 instead
    matcher = ReplayMatcher(
        build_exchanges([Chunk(0.0, "tx", request), Chunk(0.01, "rx", reply)]),
        protocol="modbus-tcp",
    )
    [mismatch] = matcher.feed(other)
    assert (mismatch.offset, mismatch.expected[:2], mismatch.got[:2]) == (
        8,
        b"\x00\x5a",
        b"\x05\x30",
    )
    [send] = matcher.feed(b"\x00\x08" + request[2:])
    assert isinstance(send, Send)
    assert send.data == b"\x00\x08" + reply[2:]
    assert matcher.finished


def test_bytes_after_the_end_are_reported_once():
    matcher = ReplayMatcher(build_exchanges(gcl2_transcript((b"?C\r\n", b"1 N\r\n")).entries))
    assert isinstance(matcher.feed(b"?C\r\n")[0], Send)
    [late] = matcher.feed(b"?C\r\n")
    assert late.describe().startswith("the transcript has ended (1 exchanges), but the host sent")
    assert matcher.feed(b"?C\r\n") == []


def test_realtime_replay_keeps_the_recorded_delay():
    transcript = Transcript(
        Header("tcp", "raw", "test", "2026-01-01T00:00:00Z"),
        (Chunk(0.0, "tx", b"Q\n"), Chunk(0.4, "rx", b"A\n")),
    )
    with (
        replaying_tcp(transcript, realtime=True) as replay,
        socket.create_connection((replay.host, replay.port), timeout=0.1) as sock,
    ):
        sock.sendall(b"Q\n")
        with pytest.raises(TimeoutError):
            sock.recv(8)  # not before the recorded 0.4 s
        sock.settimeout(3.0)
        assert receive(sock, 2) == b"A\n"


# --- the format ---------------------------------------------------------------------------------


def test_writer_and_reader_round_trip_every_byte():
    sink = io.StringIO()
    writer = TranscriptWriter(sink, transport="tcp", protocol="raw", target="h:1", note="n")
    writer.event("connect")
    writer.chunk("tx", bytes(range(256)))
    writer.chunk("rx", b"12.3 N\r\n")
    writer.event("disconnect", "instrument")
    lines = sink.getvalue().splitlines()
    assert json.loads(lines[3]) == {
        "t": json.loads(lines[3])["t"],
        "dir": "rx",
        "hex": "31322e33204e0d0a",
        "text": "12.3 N\r\n",
    }
    assert "text" not in json.loads(lines[2])
    transcript = parse_transcript(sink.getvalue())
    assert transcript.bytes_sent("tx") == bytes(range(256))
    [exchange] = build_exchanges(transcript.entries)
    assert exchange.close_after


HEAD = '{"format": "hallmark-transcript", "version": 1, "transport": "tcp", "protocol": "raw"}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ('{"format": "other"}', "line 1: not a Hallmark transcript"),
        (
            HEAD.replace('"version": 1', '"version": 2'),
            "transcript version 2; this Hallmark reads version 1",
        ),
        (
            HEAD + '\n{"t": 0.1, "dir": "tx", "hex": "3f43", "text": "?D"}',
            "line 2: 'text' and 'hex' disagree",
        ),
        (
            HEAD + '\n{"t": 0.1, "dir": "up", "hex": "00"}',
            "line 2: 'dir' must be tx or rx",
        ),
    ],
)
def test_bad_transcripts_are_refused_in_words(text, message):
    with pytest.raises(TranscriptError, match=message):
        parse_transcript(text, "x.jsonl")


# --- (4) the committed fixtures -----------------------------------------------------------------


def test_f4t_fixture_replays_to_the_driver():
    with replaying_tcp(F4T_FIXTURE, strict=True) as replay:
        polls = poll_f4t(replay.address, 5)
        assert replay.finished.wait(2.0)
        assert replay.mismatches == []
    temperatures = [
        (r[1], r[2], r[3], r[4]) for poll in polls for r in poll if r[0] == "temperature"
    ]
    assert temperatures == F4T_EXPECTED  # float32 registers decode exactly
    setpoints = {r[1] for poll in polls[:3] for r in poll if r[0] == "setpoint"}
    assert setpoints == {35.0}


def test_mark10_fixture_replays_to_the_driver():
    with replaying_pty(MARK10_FIXTURE, strict=True) as replay:
        polls = poll_mark10(replay.path, 6)
        assert replay.finished.wait(2.0)
        assert replay.mismatches == []
    assert [poll[0][1:] for poll in polls] == MARK10_EXPECTED


#: What the committed fixtures hold (temperature per poll: value, unit, raw registers, flags).
F4T_EXPECTED = [
    (35.03928756713867, "°C", "27586: 283B 420C", ()),
    (35.03065872192383, "°C", "27586: 1F65 420C", ()),
    (34.92972183227539, "°C", "27586: B809 420B", ()),
    (95.10759735107422, "°F", "27586: 3717 42BE", ("unit_changed:°C->°F",)),
    (95.0240478515625, "°F", "27586: 0C50 42BE", ()),
]
MARK10_EXPECTED = [
    (123.3, "N", "123.3 N", ()),
    (123.4, "N", "123.4 N", ()),
    (123.7, "N", "123.7 N", ()),
    (123.3, "N", "123.3 N", ()),
    (27.75, "lbF", "27.75 lbF", ("unit_changed:N->lbF",)),
    (27.75, "lbF", "27.75 lbF", ()),
]


# --- the commands -------------------------------------------------------------------------------

CLI = (
    "import argparse, sys\n"
    "from daq import recordcli\n"
    "from simulators.replay import serve_replay\n"
    "p = argparse.ArgumentParser(prog='daq')\n"
    "sub = p.add_subparsers(dest='command', required=True)\n"
    "recordcli.add_commands(sub)\n"
    "sys.exit(recordcli.run_command(p.parse_args(sys.argv[1:]), serve_replay))\n"
)


@pytest.fixture
def cli() -> Iterator:
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> tuple[subprocess.Popen[str], dict]:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        return proc, json.loads(line)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_parser_has_record_and_replay():
    parser = argparse.ArgumentParser(prog="daq")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["record", "tcp", "--target", "h:502", "--out", "x.jsonl"])
    assert (args.record_transport, args.protocol, args.listen) == ("tcp", "raw", "127.0.0.1:0")
    args = parser.parse_args(["replay", "x.jsonl", "--pty", "--strict"])
    assert (args.pty, args.strict, args.realtime, args.listen) == (True, True, False, None)


def test_record_and_replay_commands_end_to_end(cli, tmp_path):
    out = tmp_path / "again.jsonl"
    replay, served = cli("replay", str(F4T_FIXTURE), "--progress")
    assert served["address"].startswith("tcp://127.0.0.1:")
    recorder, listening = cli(
        "record",
        "tcp",
        "--target",
        f"127.0.0.1:{served['port']}",
        "--protocol",
        "modbus-tcp",
        "--out",
        str(out),
    )
    polls = poll_f4t(listening["address"], 5)
    assert replay.wait(10) == 0  # the replay ends with its transcript
    n = served["exchanges"]
    assert f"replay: 100 % ({n} of {n} exchanges)" in replay.communicate(timeout=5)[1]
    recorder.send_signal(signal.SIGTERM)
    assert recorder.wait(10) == 0
    summary = json.loads(recorder.communicate(timeout=5)[0].strip().splitlines()[-1])
    assert summary["chunks"] > 0
    assert [r[1] for poll in polls for r in poll if r[0] == "temperature"] == pytest.approx(
        [row[0] for row in F4T_EXPECTED]
    )
    again = read_transcript(out)
    fixture = read_transcript(F4T_FIXTURE)
    assert again.bytes_sent("tx") == fixture.bytes_sent("tx")
    assert again.bytes_sent("rx") == fixture.bytes_sent("rx")


def test_strict_replay_command_exits_1_and_says_why(cli):
    replay, served = cli("replay", str(F4T_FIXTURE), "--strict")
    with socket.create_connection((served["host"], served["port"]), timeout=2.0) as sock:
        sock.sendall(bytes.fromhex("000100000006010300000002"))  # reads the hardware id first
        assert sock.recv(64) == b""
    assert replay.wait(10) == 1
    err = replay.communicate(timeout=5)[1]
    assert "request 1 of" in err
    assert "differs from the transcript at byte 9" in err


def test_record_serial_command_stops_after_its_duration(cli, tmp_path):
    out, link = tmp_path / "loop.jsonl", tmp_path / "gauge-tty"
    recorder, line = cli(
        "record",
        "serial",
        "--device",
        "loop://",
        "--out",
        str(out),
        "--link",
        str(link),
        "--duration",
        "1.0",
    )
    assert line["address"] == str(link)
    port = serial.Serial(str(link), timeout=0.05)
    try:
        port.write(b"?C\r\n")
        echoed = b""
        for _ in range(40):
            echoed += port.read(16)
            if echoed == b"?C\r\n":
                break
    finally:
        port.close()
    assert echoed == b"?C\r\n"
    assert recorder.wait(10) == 0
    assert not link.exists()
    transcript = read_transcript(out)
    assert (transcript.bytes_sent("tx"), transcript.bytes_sent("rx")) == (b"?C\r\n", b"?C\r\n")
