"""Fuzzing stateful parsers fed a stream: the force-test detector and session, the XRF
telegram framer (and the parser behind it), and the transcript reader and replay matcher."""

from __future__ import annotations

import json
import math

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from daq.errors import ProtocolError, UnitError
from daq.transcript import (
    ReplayMatcher,
    Send,
    TranscriptError,
    build_exchanges,
    parse_transcript,
)
from drivers.forcetest import (
    DetectorSettings,
    ForceTestDetector,
    ForceTestSession,
    GaugeOptions,
    HoldProfile,
    parse_level,
)
from drivers.xrf_parse import load_template, parse_export, to_samples
from drivers.xrf_telegram import Block, TelegramFramer, Truncated
from tests.fuzz import fuzz_settings

# -- force tests ------------------------------------------------------------------------------

FORCE = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(
    min_value=-60, max_value=60
)
POINTS = st.lists(
    st.tuples(st.floats(min_value=-5, max_value=400) | st.floats(), FORCE), max_size=80
)


@st.composite
def detector_settings(draw):
    start = draw(st.floats(min_value=0.01, max_value=50))
    hold = None
    if draw(st.booleans()):
        target = draw(st.floats(min_value=0.1, max_value=50))
        hold = HoldProfile(
            target,
            draw(st.floats(min_value=0, max_value=target * 0.99)),
            draw(st.floats(min_value=0.01, max_value=10)),
            draw(st.floats(min_value=0.01, max_value=20)),
        )
    return DetectorSettings(
        start_threshold=start,
        rearm_threshold=draw(st.none() | st.floats(min_value=0, max_value=start * 0.99)),
        break_fraction=draw(st.floats(min_value=0.01, max_value=0.99)),
        break_drop_s=draw(st.floats(min_value=0.001, max_value=5)),
        confirm_points=draw(st.integers(min_value=1, max_value=5)),
        max_test_s=draw(st.floats(min_value=0.01, max_value=200)),
        hold=hold,
        curve_points=draw(st.integers(min_value=2, max_value=30)),
    )


@given(detector_settings(), POINTS, st.booleans())
@example(DetectorSettings(start_threshold=1.0), [(0.0, 5.0), (-1e308, 0.0), (1e308, 0.0)], True)
@example(DetectorSettings(start_threshold=1.0), [(0.0, 5.0), (math.inf, 0.0), (1.0, 0.1)], True)
@fuzz_settings(300)
def test_force_test_detector_on_any_curve(settings, points, armed):
    detector = ForceTestDetector(settings, armed=armed)
    events = []
    for t, force in points:
        event = detector.feed(t, force, f"{force}")
        if event is not None:
            events.append(event)
    if points:
        event = detector.expire(max(t for t, _ in points) + settings.max_test_s + 1)
        if event is not None:
            events.append(event)
    for ev in events:
        assert math.isfinite(ev.peak) and ev.points >= 1
        assert ev.outcome in ("broke", "released", "timeout")
        assert ev.start_t <= ev.end_t
        assert len(ev.curve) >= 1
        ev.curve_text()


LEVEL_TEXT = st.text(max_size=16) | st.sampled_from(
    ["0.5 N", "10 lbF", "2 lbFin", "1e999 N", "-1 N", "0 N", "5 Nm", "5", "N", "nan N"]
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "mode": st.sampled_from(["poll", "push", "x"]),
            "quantity": st.sampled_from(["force", "torque", "length"]),
            "capacity": LEVEL_TEXT,
            "start_threshold": LEVEL_TEXT,
            "rearm_threshold": LEVEL_TEXT,
            "break_fraction": st.floats(),
            "max_test_s": st.floats(),
            "hold": st.fixed_dictionaries(
                {"target": LEVEL_TEXT}, optional={"tolerance": LEVEL_TEXT}
            ),
        },
    )
)
@example({"mode": "push", "start_threshold": "1e999 N"})
@example({"mode": "push", "start_threshold": "0.5 N", "hold": {"target": "1e999 N"}})
@example({"mode": "push", "start_threshold": "0.5 N", "capacity": "1e999 N"})
@fuzz_settings(300)
def test_gauge_options_validate_or_refuse(options):
    try:
        parsed = GaugeOptions.model_validate(options)
    except ValidationError:
        return
    if parsed.mode == "push":
        parsed.detector_settings((parsed.quantity == "force" and "N") or "N·m")


@given(st.text(max_size=30))
@example("1" * 5000 + " N")
@fuzz_settings(200)
def test_parse_level(text):
    try:
        level = parse_level(text)
    except ValueError:
        return
    assert level.unit.strip() == level.unit and level.unit


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=300),
            FORCE,
            st.sampled_from(["N", "lbF", "kgF", "ozF", "gF", "N·m", "furlong"]),
        ),
        max_size=60,
    )
)
@fuzz_settings(200)
def test_force_test_session_on_any_reading_stream(readings):
    session = ForceTestSession(
        "gauge-1",
        GaugeOptions.model_validate(
            {"mode": "push", "start_threshold": "0.5 N", "capacity": "50 N"}
        ),
    )
    t_clock = 0.0
    for dt, value, unit in readings:
        t_clock += dt
        try:
            samples = session.feed(t_clock, value, unit, f"{value} {unit}", int(t_clock * 1e9))
        except UnitError:
            continue  # the driver checks the unit before feeding; a wrong one is refused
        for s in samples:
            assert s.instrument == "gauge-1" and math.isfinite(s.value)
    session.expire(t_clock + 1000, 0)


# -- XRF telegrams ----------------------------------------------------------------------------

TELEGRAM = load_template("telegram-default")
PER_LINE = load_template("telegram-per-line")
GOOD_BLOCK = (
    b"XRF RESULT\r\nApplication: Au/Ni/CuZn\r\nOperator: OP1\r\n"
    b"Date: 2025-01-15 09:30:00\r\n  1 Au       1.040 um\r\n  1 Ni       3.105 um\r\nEND\r\n"
)
PIECES = st.sampled_from(
    [GOOD_BLOCK, GOOD_BLOCK[:40], GOOD_BLOCK[40:], b"\x02", b"\x03", b"\x0c", b"\r", b"\n",
     b"\x11\x13\x00", b"END\r\n", b"XRF RESULT", b"x" * 5000, b"\xff\xfe", b"  2 Xx 1 um\r\n"]
)  # fmt: skip


@given(
    st.sampled_from([TELEGRAM, PER_LINE]),
    st.lists(
        st.tuples(PIECES | st.binary(max_size=200), st.floats(min_value=0, max_value=10)),
        max_size=25,
    ),
    st.integers(min_value=16, max_value=70000),
)
@example(PER_LINE, [(GOOD_BLOCK[:-5], 0.0), (b"", 100.0)], 65536)
@fuzz_settings(200)
def test_telegram_framer_and_parser_on_any_byte_stream(template, chunks, max_block):
    assert template.telegram_start is not None and template.telegram_end is not None
    framer = TelegramFramer(template.telegram_start, template.telegram_end, max_block=max_block)
    now = 0.0
    out: list[Block | Truncated] = []
    for data, dt in chunks:
        now += dt
        out += framer.feed(data, now)
        out += framer.expire(now)
    out += framer.expire(now + 3600)
    assert not framer.in_block
    for item in out:
        if isinstance(item, Truncated):
            assert "no end line" in item.reason
            continue
        try:
            for series in parse_export(item.body, template):
                to_samples(series, instrument="xrf-1", time_ns=0)
        except (ProtocolError, UnitError):
            continue


# -- transcripts ------------------------------------------------------------------------------

HEADER = json.dumps({"format": "hallmark-transcript", "version": 1, "transport": "tcp",
                     "protocol": "modbus-tcp", "target": "127.0.0.1:5020"})  # fmt: skip
ENTRY_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
    st.sampled_from(["tx", "rx", "connect", "disconnect", "host", "instrument", "0001", "zz"]),
    st.binary(max_size=20).map(bytes.hex),
)  # fmt: skip
ENTRY = st.dictionaries(st.sampled_from(["t", "dir", "hex", "text", "event", "by"]), ENTRY_VALUES)
JSON_LINE = ENTRY.map(json.dumps) | st.text(max_size=30) | st.sampled_from(
    ['{"t": 1' + "0" * 400 + ', "dir": "tx", "hex": "00"}',  # float() of a 401-digit int
     '{"t": 1' + "0" * 5000 + "}",  # int() digit limit inside json.loads
     "[" * 100_000,  # json's recursion
     '{"t": NaN, "dir": "tx", "hex": "00"}', '{"t": Infinity, "event": "connect"}']
)  # fmt: skip


@given(st.lists(JSON_LINE, max_size=8), st.booleans())
@example(['{"t": 1' + "0" * 400 + ', "dir": "tx", "hex": "00"}'], True)
@example(['{"t": 1' + "0" * 5000 + "}"], True)
@example(["[" * 100_000], True)
@example(["[" * 100_000], False)
@example(['{"t": NaN, "dir": "tx", "hex": "00"}'], True)
@fuzz_settings(300)
def test_transcript_parser(lines, with_header):
    text = "\n".join([HEADER, *lines] if with_header else lines)
    try:
        transcript = parse_transcript(text, "session.jsonl")
    except TranscriptError as exc:
        assert "session.jsonl" in str(exc)
        return
    assert all(math.isfinite(e.t) and e.t >= 0 for e in transcript.entries)
    build_exchanges(transcript.entries)


CHUNKS = st.lists(
    st.tuples(st.sampled_from(["tx", "rx"]), st.binary(min_size=1, max_size=14)), max_size=10
)


@given(
    CHUNKS,
    st.sampled_from(["raw", "modbus-tcp"]),
    st.booleans(),
    st.lists(st.binary(max_size=30), max_size=10),
)
@fuzz_settings(300)
def test_replay_matcher_on_any_host_bytes(chunks, protocol, strict, sent):
    lines = [HEADER.replace("modbus-tcp", protocol)]
    lines += [
        json.dumps({"t": i * 0.01, "dir": d, "hex": b.hex()}) for i, (d, b) in enumerate(chunks)
    ]
    transcript = parse_transcript("\n".join(lines))
    exchanges = build_exchanges(transcript.entries)
    matcher = ReplayMatcher(exchanges, protocol=protocol, strict=strict)
    matcher.start()
    for data in [*sent, *(e.request for e in exchanges)]:
        for action in matcher.feed(data):
            if isinstance(action, Send):
                assert 1 <= action.exchange <= len(exchanges) or action.exchange == 0
            else:
                action.describe()
    assert 0 <= matcher.position <= matcher.exchanges
