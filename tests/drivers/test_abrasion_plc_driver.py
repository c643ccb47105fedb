"""The abrasion_plc driver: its pure state machine, its register decoding, and the driver over
real Modbus TCP against a minimal pymodbus server whose registers each test sets step by step.

The registers are written here from Hallmark's reference layout (drivers/maps/abrasion_plc.toml
and the driver's docstring), high word first, independently of the driver's decoding.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.errors import InstrumentError, ProtocolError, TransportError
from daq.instrument import InstrumentSettings
from daq.model import Sample
from daq.units import Normalizer
from drivers.abrasion_plc import (
    DEFAULT_MAP,
    OUTCOME_UNKNOWN,
    AbrasionPlcOptions,
    EventSettings,
    Snapshot,
    State,
    Tracker,
    build,
    check_address,
    check_options,
    decode_snapshot,
    layout_from_map,
    lost_sight,
    observe,
)
from drivers.modbus_map import RegisterMap, load_map
from simulators._modbus import LinkFaults, ModbusTcpDevice, Point

pytestmark = pytest.mark.timeout(60)

SETTINGS = EventSettings(instrument="taber-1")
SECOND = 1_000_000_000
STATE_CODES = {"idle": 0, "running": 1, "paused": 2, "done": 3, "stopped": 4, "fault": 5}


def words(
    *,
    cycles: int = 0,
    preset: int = 1000,
    load: int = 1000,
    speed_x10: int = 600,
    state: int = 0,
    test: int = 0,
    fault: int = 0,
    wheel: int = 10,
) -> list[int]:
    """Registers 0-9 of the reference layout, 32-bit values high word first."""
    return [
        cycles >> 16,
        cycles & 0xFFFF,
        preset >> 16,
        preset & 0xFFFF,
        load,
        speed_x10,
        state,
        test,
        fault,
        wheel,
    ]


def snap(state: State, test: int, cycles: int = 0, **kw) -> Snapshot:
    kw.setdefault("speed_rpm", 60.0)
    return Snapshot(state=state, test_number=test, cycles=cycles, **kw)


def run(
    snaps: Sequence[Snapshot | None], tracker: Tracker | None = None, step: int = SECOND
) -> tuple[Tracker, list[list[Sample]]]:
    """Feed snapshots one poll per ``step``; ``None`` is a reconnect."""
    tracker = tracker or Tracker()
    out: list[list[Sample]] = []
    for i, s in enumerate(snaps):
        if s is None:
            tracker = lost_sight(tracker)
            continue
        tracker, samples = observe(tracker, s, (i + 1) * step, SETTINGS)
        out.append(samples)
    return tracker, out


def events_in(samples: Sequence[Sample]) -> list[Sample]:
    return [s for s in samples if s.channel == "test"]


def extra(sample: Sample) -> dict[str, object]:
    return dict(sample.extra)


# -- decoding the reference layout -------------------------------------------------------------

LAYOUT = layout_from_map(load_map(DEFAULT_MAP))


def as_map(regs: list[int], start: int = 0) -> dict[int, int]:
    return {start + i: w for i, w in enumerate(regs)}


def test_reference_layout_is_one_block_of_ten_registers():
    assert LAYOUT.plan == ((0, 10),)
    assert LAYOUT.word_order == "ABCD"
    assert dict(LAYOUT.states) == {0: "idle", 1: "running", 2: "paused", 3: "done"} | {
        4: "stopped",
        5: "fault",
    }


def test_decode_reference_words():
    regs = words(cycles=70000, preset=100000, load=500, speed_x10=605, state=1, test=12, wheel=17)
    s = decode_snapshot(as_map(regs), LAYOUT)
    assert (s.state, s.test_number, s.cycles, s.preset_cycles) == ("running", 12, 70000, 100000)
    assert (s.load_g, s.speed_rpm, s.fault_code, s.wheel_code) == (500.0, 60.5, 0, 17)
    assert s.raw["cycles"] == "0: 0001 1170"
    assert s.raw["speed"] == "5: 025D"
    assert s.block_raw == "0: 0001 1170 0001 86A0 01F4 025D 0001 000C 0000 0011"


def test_62_rpm_decodes_exactly():
    assert decode_snapshot(as_map(words(speed_x10=620)), LAYOUT).speed_rpm == 62.0


def test_unknown_state_code_is_a_protocol_error():
    with pytest.raises(ProtocolError, match=r"state register 6 holds 9, which is no state"):
        decode_snapshot(as_map(words(state=9)), LAYOUT)


def test_absurd_speed_is_a_protocol_error():
    with pytest.raises(
        ProtocolError, match=r"register 5 \(speed\) reads 500 rpm, outside the plausible 0 to 200"
    ):
        decode_snapshot(as_map(words(speed_x10=5000)), LAYOUT)


def test_count_in_the_wrong_word_order_is_caught_and_the_option_fixes_it():
    regs = words(cycles=500)
    regs[0], regs[1] = regs[1], regs[0]  # served low word first
    with pytest.raises(ProtocolError, match=r"register 0 \(cycles\).*check word_order \(now ABCD"):
        decode_snapshot(as_map(regs), LAYOUT)
    cdab = layout_from_map(load_map(DEFAULT_MAP), "CDAB")
    regs[2], regs[3] = regs[3], regs[2]
    s = decode_snapshot(as_map(regs), cdab)
    assert (s.cycles, s.preset_cycles) == (500, 1000)


def test_missing_register_is_named():
    regs = as_map(words())
    del regs[7]
    with pytest.raises(ProtocolError, match=r"register 7 \(test_number\) was not read"):
        decode_snapshot(regs, LAYOUT)


def reference_map_dict() -> dict:
    return tomllib.loads(DEFAULT_MAP.read_text(encoding="utf-8"))


def test_shipped_map_loads_with_the_generic_loader():
    m = load_map(DEFAULT_MAP)
    assert {p.channel for p in m.point} == {
        "cycles",
        "preset_cycles",
        "load",
        "speed",
        "test_number",
        "fault_code",
        "wheel_code",
    }


def test_map_without_optional_codes_and_numbered_from_one():
    raw = reference_map_dict()
    raw["point"] = [p for p in raw["point"] if p["channel"] not in ("fault_code", "wheel_code")]
    raw["base"] = 1
    for table in [raw["status"], *raw["point"]]:
        table["address"] += 1
    layout = layout_from_map(RegisterMap.model_validate(raw))
    assert layout.plan == ((0, 8),)
    s = decode_snapshot(as_map(words(state=5, test=2, cycles=9, fault=1)[:8]), layout)
    assert (s.state, s.cycles, s.fault_code, s.wheel_code) == ("fault", 9, None, None)
    assert s.raw["cycles"] == "1: 0000 0009"
    assert s.block_raw.startswith("1: 0000 0009 ")
    _, out = run([snap("idle", 1), s])
    assert extra(out[1][0])["outcome"] == "fault: no fault code given"
    assert "wheel" not in extra(out[1][0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("status"), r"\[status\] table describing the state register is missing"),
        (
            lambda m: m["status"]["values"].update({"6": "exploded"}),
            r"\[status\] value 6 = 'exploded' is not a state",
        ),
        (
            lambda m: m["status"].update(values={"0": "idle", "1": "running"}),
            r"\[status\] values name no 'done' state",
        ),
        (
            lambda m: m["point"].pop(3),
            r"point\(s\) speed are missing",
        ),
        (
            lambda m: m["point"].append(
                {"channel": "vacuum", "quantity": "ratio", "address": 20, "unit": "%"}
            ),
            r"point\(s\) vacuum are not read by the abrasion driver",
        ),
        (
            lambda m: m["point"][2].update(unit="N"),
            r"point load: unit 'N' is a force unit, not load",
        ),
        (
            lambda m: m["point"][0].update(quantity="number"),
            r"point cycles must have quantity 'count'",
        ),
    ],
)
def test_map_checks(change, message):
    raw = reference_map_dict()
    change(raw)
    with pytest.raises(ValueError, match=message):
        layout_from_map(RegisterMap.model_validate(raw))


# -- the state machine: scenarios ----------------------------------------------------------------


def test_idle_running_done_reports_one_test():
    polls = [
        snap("idle", 6, 480, preset_cycles=500),
        snap("running", 7, 0, preset_cycles=500, load_g=1000.0, speed_rpm=59.8, wheel_code=10),
        snap("running", 7, 200, preset_cycles=500, load_g=1000.0, speed_rpm=60.2, wheel_code=10),
        snap("running", 7, 400, preset_cycles=500, load_g=1000.0, speed_rpm=60.0, wheel_code=10),
        snap("done", 7, 500, preset_cycles=500, load_g=1000.0, speed_rpm=0.0, wheel_code=10),
        snap("done", 7, 500, preset_cycles=500, load_g=1000.0, wheel_code=10),
        snap("idle", 7, 500, preset_cycles=500, load_g=1000.0, wheel_code=10),
    ]
    _, out = run(polls)
    assert out[0] == []
    for i in (1, 2, 3):
        live = {s.channel: s for s in out[i]}
        assert set(live) == {"cycles", "speed", "load"}
        assert (live["cycles"].quantity, live["cycles"].unit) == ("count", "cycles")
        assert (live["speed"].quantity, live["speed"].unit) == ("speed", "rpm")
        assert (live["load"].quantity, live["load"].unit, live["load"].value) == ("load", "g", 1e3)
        assert all(s.measurement == "abrasion" and s.instrument == "taber-1" for s in out[i])
        assert all(s.time_ns == (i + 1) * SECOND for s in out[i])
    assert [s.value for s in out[2] if s.channel == "cycles"] == [200.0]
    (test,) = out[4]
    assert (test.channel, test.quantity, test.value, test.unit) == (
        "test",
        "count",
        500.0,
        "cycles",
    )
    assert test.time_ns == 5 * SECOND
    assert extra(test) == {
        "test_number": 7,
        "outcome": "end point reached",
        "preset_cycles": 500,
        "load_g": 1000.0,
        "wheel": "CS-10",
        "duration_s": 3.0,
        "mean_speed_rpm": 60.0,
    }
    assert test.flags == ()
    assert out[5] == [] and out[6] == []


def test_paused_polls_carry_no_speed_and_do_not_count_in_the_mean():
    polls = [
        snap("idle", 1),
        snap("running", 2, 10, speed_rpm=61.0),
        snap("paused", 2, 50, speed_rpm=0.0),
        snap("running", 2, 60, speed_rpm=61.0),
        snap("stopped", 2, 80, preset_cycles=1000),
    ]
    _, out = run(polls)
    paused = {s.channel: s for s in out[2]}
    assert set(paused) == {"cycles", "load"}
    assert all(s.flags == ("paused",) for s in out[2])
    (test,) = out[4]
    e = extra(test)
    assert e["mean_speed_rpm"] == 61.0
    assert e["outcome"] == "stopped by operator"
    assert e["duration_s"] == 3.0
    assert test.flags == ("stopped_early",)


def test_fault_outcome_names_the_fault():
    settings_ = dataclasses.replace(SETTINGS, fault_names={1: "motor overload", 9: "belt"})
    for code, outcome in [(1, "fault: motor overload"), (7, "fault: code 7"), (0, "fault: no")]:
        t = Tracker()
        t, _ = observe(t, snap("idle", 3), 1, settings_)
        t, _ = observe(t, snap("running", 4, 10, speed_rpm=60.0), 2, settings_)
        t, out = observe(t, snap("fault", 4, 30, preset_cycles=100, fault_code=code), 3, settings_)
        (test,) = out
        assert str(extra(test)["outcome"]).startswith(outcome)
        assert extra(test)["fault_code"] == code
        assert "stopped_early" in test.flags


@pytest.mark.parametrize(
    ("speeds", "flagged"),
    [((58.0, 62.0), False), ((62.0, 62.0), False), ((62.1, 62.1), True), ((57.0, 58.5), True)],
)
def test_mean_speed_tolerance_is_inclusive(speeds, flagged):
    polls = [snap("idle", 0)] + [
        snap("running", 1, 5 + i, speed_rpm=v) for i, v in enumerate(speeds)
    ]
    _, out = run([*polls, snap("done", 1, 100, preset_cycles=100)])
    (test,) = out[-1]
    assert ("speed_out_of_tolerance" in test.flags) is flagged


def test_tolerance_is_an_option():
    wide = dataclasses.replace(SETTINGS, speed_rpm=72.0, speed_tolerance_rpm=1.0)
    t = Tracker()
    t, _ = observe(t, snap("idle", 0), 1, wide)
    t, _ = observe(t, snap("running", 1, 3, speed_rpm=72.5), 2, wide)
    _, out = observe(t, snap("done", 1, 9, preset_cycles=9), 3, wide)
    assert out[0].flags == ()


def test_finished_test_found_at_start_up_is_taken_as_known():
    _, out = run([snap("done", 7, 500), snap("done", 7, 500), snap("idle", 7, 500)])
    assert out == [[], [], []]


def test_idle_tester_at_start_up_reports_nothing():
    _, out = run([snap("idle", 7, 480), snap("idle", 7, 480), snap("stopped", 7, 480)])
    assert out == [[], [], []]


def test_test_running_at_start_up_is_reported_without_a_duration():
    _, out = run([snap("running", 7, 250, speed_rpm=60.0), snap("done", 7, 500, preset_cycles=500)])
    (test,) = out[1]
    assert extra(test)["test_number"] == 7
    assert "duration_s" not in extra(test)
    assert extra(test)["mean_speed_rpm"] == 60.0
    assert test.flags == ("start_not_seen",)


def test_count_of_zero_means_the_start_was_seen_even_at_start_up():
    _, out = run([snap("running", 7, 0), snap("done", 7, 500, preset_cycles=500)])
    assert extra(out[1][0])["duration_s"] == 1.0


def test_whole_test_between_polls_is_reported_with_its_outcome():
    _, out = run([snap("idle", 5), snap("done", 6, 300, preset_cycles=300, load_g=500.0)])
    (test,) = out[1]
    e = extra(test)
    assert (e["test_number"], e["outcome"], e["load_g"], test.value) == (
        6,
        "end point reached",
        500.0,
        300.0,
    )
    assert "duration_s" not in e and "mean_speed_rpm" not in e
    assert test.flags == ("start_not_seen",)


def test_a_reconnect_never_reports_a_test_twice():
    polls = [
        snap("idle", 1),
        snap("running", 2, 0),
        None,
        snap("running", 2, 300),
        snap("done", 2, 500, preset_cycles=500),
        None,
        snap("done", 2, 500, preset_cycles=500),
        None,
        snap("done", 3, 200, preset_cycles=500),  # a whole test while the link was down
        None,
        snap("done", 3, 200, preset_cycles=500),
    ]
    _, out = run(polls)
    reported = [extra(t)["test_number"] for poll in out for t in events_in(poll)]
    assert reported == [2, 3]
    test3 = next(t for poll in out for t in events_in(poll) if extra(t)["test_number"] == 3)
    assert set(test3.flags) == {"start_not_seen", "stopped_early"}


def test_start_after_a_reconnect_is_not_seen():
    _, out = run([snap("idle", 1), None, snap("running", 2, 40), snap("done", 2, 100)])
    assert "duration_s" not in extra(out[-1][0])


def test_new_test_number_while_running_ends_the_watched_test_unseen():
    polls = [snap("idle", 1), snap("running", 2, 10), snap("running", 2, 90), snap("running", 3, 5)]
    polls.append(snap("done", 3, 100, preset_cycles=100))
    _, out = run(polls)
    (ended, *live) = out[3]
    assert (extra(ended)["test_number"], ended.value, extra(ended)["outcome"]) == (
        2,
        90.0,
        OUTCOME_UNKNOWN,
    )
    assert ended.flags == ("end_not_seen",)
    assert {s.channel for s in live} == {"cycles", "speed", "load"}
    (test3,) = out[4]
    assert extra(test3)["test_number"] == 3
    assert extra(test3)["duration_s"] == 1.0  # first seen running one poll before its end


def test_two_tests_found_at_one_poll_are_one_ns_apart():
    _, out = run([snap("idle", 1), snap("running", 2, 10), snap("done", 3, 70, preset_cycles=70)])
    first, second = out[2]
    assert [extra(first)["test_number"], extra(second)["test_number"]] == [2, 3]
    assert second.time_ns - first.time_ns == 1
    assert extra(second)["outcome"] == "end point reached"


def test_idle_after_running_reports_the_count_seen():
    _, out = run([snap("idle", 1), snap("running", 2, 300), snap("idle", 2, 0)])
    (test,) = out[2]
    assert (test.value, extra(test)["outcome"]) == (300.0, OUTCOME_UNKNOWN)
    assert "duration_s" not in extra(test)


def test_idle_with_a_new_number_reports_only_a_test_that_counted():
    _, out = run([snap("idle", 1), snap("idle", 2, 0), snap("idle", 3, 250)])
    assert out[1] == []
    (test,) = out[2]
    assert (extra(test)["test_number"], test.value, test.flags) == (
        3,
        250.0,
        ("start_not_seen", "end_not_seen"),
    )


def test_test_resumed_after_it_was_reported_is_live_only():
    polls = [
        snap("idle", 1),
        snap("running", 2, 10),
        snap("stopped", 2, 20),
        snap("running", 2, 30),
        snap("done", 2, 100),
    ]
    _, out = run(polls)
    assert [len(events_in(p)) for p in out] == [0, 0, 1, 0, 0]
    assert {s.channel for s in out[3]} == {"cycles", "speed", "load"}


def test_wheel_code_without_a_name_is_kept_as_its_code():
    _, out = run([snap("idle", 1), snap("done", 2, 5, wheel_code=12)])
    assert extra(out[1][0])["wheel"] == "12"


def test_every_sample_normalizes():
    polls = [snap("idle", 1), snap("running", 2, 10, speed_rpm=60.0, load_g=250.0)]
    polls.append(snap("done", 2, 500))
    _, out = run(polls)
    normalizer = Normalizer()
    samples = [s for poll in out for s in poll]
    assert {s.channel for s in samples} == {"cycles", "speed", "load", "test"}
    for s in samples:
        reading = normalizer.normalize(s)
        assert (reading.value, reading.unit) == (s.value, s.unit)  # already canonical


# -- the state machine: properties ---------------------------------------------------------------

snapshots = st.builds(
    Snapshot,
    state=st.sampled_from(list(STATE_CODES)),
    test_number=st.integers(0, 3),
    cycles=st.integers(0, 2000),
    preset_cycles=st.integers(0, 2000),
    load_g=st.sampled_from([250.0, 500.0, 1000.0]),
    speed_rpm=st.floats(0.0, 200.0),
    fault_code=st.one_of(st.none(), st.integers(0, 9)),
    wheel_code=st.one_of(st.none(), st.integers(0, 20)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(snapshots, st.none()), max_size=40))
def test_random_sequences_never_crash_nor_report_a_test_twice(polls):
    _, out = run(polls)
    shown = [s for s in polls if s is not None]
    normalizer = Normalizer()
    last_event: dict[int, int] = {}  # test number -> index of the poll that reported it
    for i, samples in enumerate(out):
        for s in samples:
            normalizer.normalize(s)
            assert s.instrument == "taber-1"
        for t in events_in(samples):
            n = int(extra(t)["test_number"])
            assert any(p.test_number == n for p in shown[: i + 1])
            if n in last_event:
                # Again only if the register left this number and came back to it since.
                j = last_event[n]
                assert any(
                    shown[k].test_number == n and shown[k - 1].test_number != n
                    for k in range(j + 1, i + 1)
                ), f"test {n} reported at polls {j} and {i}"
            last_event[n] = i
        events = events_in(samples)
        assert len({int(extra(t)["test_number"]) for t in events}) == len(events)


@st.composite
def plc_histories(draw):
    """A tester's life: idle, then tests 1..k, each running with a growing count, ending in
    done/stopped/fault and staying there or going idle; then a random subset of polls of it
    (missed polls, reconnects)."""
    timeline: list[Snapshot] = [snap("idle", 0)]
    finals: dict[int, int] = {}
    for number in range(1, draw(st.integers(1, 5)) + 1):
        preset = draw(st.sampled_from([100, 500, 1000]))
        cycles = 0
        for _ in range(draw(st.integers(1, 6))):
            state = draw(st.sampled_from(["running", "running", "paused"]))
            timeline.append(snap(state, number, cycles, preset_cycles=preset, speed_rpm=60.0))
            cycles = min(preset, cycles + draw(st.integers(1, 300)))
        end = draw(st.sampled_from(["done", "stopped", "fault"]))
        final = preset if end == "done" else cycles  # cycles: at least every count shown
        finals[number] = final
        for _ in range(draw(st.integers(1, 3))):
            timeline.append(snap(end, number, final, preset_cycles=preset, fault_code=1))
        if draw(st.booleans()):
            timeline.append(snap("idle", number, final, preset_cycles=preset))
    keep = draw(st.lists(st.booleans(), min_size=len(timeline), max_size=len(timeline)))
    polls: list[Snapshot | None] = []
    for s, kept in zip(timeline, keep, strict=True):
        if kept:
            polls.append(s)
        elif draw(st.booleans()):
            polls.append(None)
    return timeline, polls, finals


_END_STATES = ("done", "stopped", "fault")


@settings(max_examples=300, deadline=None)
@given(plc_histories())
def test_every_test_seen_is_reported_exactly_once(history):
    _, polls, finals = history
    shown = [s for s in polls if s is not None]
    _, out = run(polls)
    events = [t for samples in out for t in events_in(samples)]
    reported = [int(extra(t)["test_number"]) for t in events]
    assert len(reported) == len(set(reported))
    if not shown:
        assert reported == []
        return
    first = shown[0]
    seen_after_first = {s.test_number for s in shown[1:]}
    expected = {n for n in seen_after_first if n != first.test_number and n in finals}
    if first.state in ("running", "paused"):
        expected.add(first.test_number)
    if shown[-1].state in ("running", "paused"):  # still running at the last poll
        expected.discard(shown[-1].test_number)
    assert set(reported) == expected
    for t in events:
        n = int(extra(t)["test_number"])
        end_shown = any(s.test_number == n and s.state in _END_STATES for s in shown)
        assert (extra(t)["outcome"] != OUTCOME_UNKNOWN) is end_shown
        assert 0 <= t.value <= finals[n]
        if end_shown:
            assert t.value == finals[n]


# -- the driver over real Modbus TCP -------------------------------------------------------------


class Panel:
    """The PLC side: plain holding registers that the test sets, served by pymodbus."""

    def __init__(self, start: int = 0, count: int = 10) -> None:
        self.regs = dict.fromkeys(range(start, start + count), 0)
        self.disconnect = False
        self._points = [Point(f"r{a}", a, "uint16") for a in self.regs]

    @property
    def points(self) -> Sequence[Point]:
        return self._points

    def set(self, regs: list[int]) -> None:
        start = min(self.regs)
        self.regs.update({start + i: w for i, w in enumerate(regs)})

    def link_faults(self) -> LinkFaults:
        return LinkFaults(disconnect=self.disconnect)

    def read(self, points: Sequence[Point]) -> list[list[int]]:
        return [[self.regs[p.address]] for p in points]

    def write(self, writes: Sequence[tuple[Point, list[int]]]) -> int | None:
        return 1  # read-only: illegal function


@contextmanager
def serving(panel: Panel, device_id: int = 1) -> Iterator[str]:
    device = ModbusTcpDevice(
        panel, name="abrasion-plc", host="127.0.0.1", port=0, device_id=device_id
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="abrasion-plc-test", daemon=True)
    thread.start()
    try:
        host, port = asyncio.run_coroutine_threadsafe(device.start(), loop).result(10)
        yield f"tcp://{host}:{port}"
    finally:
        try:
            asyncio.run_coroutine_threadsafe(device.stop(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()


@contextmanager
def connected(address: str, **options: object) -> Iterator[object]:
    driver = build(InstrumentSettings("taber-1", address, 0.5), AbrasionPlcOptions(**options))
    driver.connect()
    try:
        yield driver
    finally:
        driver.close()


def by_channel(samples: Sequence[Sample]) -> dict[str, Sample]:
    return {s.channel: s for s in samples}


def test_driver_over_tcp_idle_running_done():
    panel = Panel()
    panel.set(words(state=0, test=4, cycles=120, preset=500))
    with serving(panel) as address, connected(address) as driver:
        assert driver.poll() == []
        panel.set(words(state=1, test=5, cycles=0, preset=500, load=1000, speed_x10=598))
        live = by_channel(driver.poll())
        assert set(live) == {"cycles", "speed", "load"}
        assert (live["speed"].value, live["speed"].raw) == (59.8, "5: 0256")
        panel.set(words(state=1, test=5, cycles=100, preset=500, speed_x10=602))
        live = by_channel(driver.poll())
        assert (live["cycles"].value, live["cycles"].raw) == (100.0, "0: 0000 0064")
        panel.set(words(state=1, test=5, cycles=250, preset=500, speed_x10=602))
        assert by_channel(driver.poll())["cycles"].value == 250.0
        panel.set(words(state=3, test=5, cycles=500, preset=500, speed_x10=0, wheel=17))
        (test,) = driver.poll()
        assert (test.channel, test.value, test.unit, test.quantity) == (
            "test",
            500.0,
            "cycles",
            "count",
        )
        e = extra(test)
        assert (e["test_number"], e["outcome"], e["wheel"], e["load_g"]) == (
            5,
            "end point reached",
            "CS-17",
            1000.0,
        )
        assert e["preset_cycles"] == 500
        assert e["mean_speed_rpm"] == 60.067  # (59.8 + 60.2 + 60.2) / 3
        assert isinstance(e["duration_s"], float) and e["duration_s"] >= 0
        assert test.raw == "0: 0000 01F4 0000 01F4 03E8 0000 0003 0005 0000 0011"
        assert test.flags == ()
        assert driver.poll() == []


def test_driver_over_tcp_reconnect_and_a_test_during_the_outage():
    panel = Panel()
    panel.set(words(state=0, test=1))
    with serving(panel) as address, connected(address) as driver:
        driver.poll()
        panel.set(words(state=1, test=2, cycles=100, preset=300))
        driver.poll()
        panel.set(words(state=4, test=2, cycles=150, preset=300))
        (test,) = driver.poll()
        assert extra(test)["outcome"] == "stopped by operator"
        assert test.flags == ("stopped_early",)
        panel.disconnect = True
        with pytest.raises(TransportError):
            driver.poll()
        driver.close()
        # Test 3 runs and faults while the link is down.
        panel.set(words(state=5, test=3, cycles=40, preset=300, fault=2))
        panel.disconnect = False
        driver.connect()
        (test3,) = driver.poll()
        assert (extra(test3)["test_number"], extra(test3)["outcome"]) == (3, "fault: vacuum fault")
        driver.close()
        driver.connect()
        assert driver.poll() == []


def test_driver_over_tcp_garbled_registers():
    panel = Panel()
    panel.set(words(state=1, test=1, speed_x10=600))
    with serving(panel) as address, connected(address) as driver:
        panel.set(words(state=9, test=1))
        with pytest.raises(ProtocolError, match="state register 6 holds 9"):
            driver.poll()
        panel.set(words(state=1, test=1, speed_x10=9000))
        with pytest.raises(ProtocolError, match=r"register 5 \(speed\) reads 900 rpm"):
            driver.poll()
        panel.set(words(state=1, test=1, cycles=20))
        assert by_channel(driver.poll())["cycles"].value == 20.0


def test_connect_refuses_a_plc_that_does_not_speak_the_layout():
    panel = Panel()
    panel.set(words(state=77))
    with serving(panel) as address:
        driver = build(InstrumentSettings("taber-1", address, 0.5), AbrasionPlcOptions())
        with pytest.raises(ProtocolError, match="holds 77"):
            driver.connect()
        with pytest.raises(TransportError, match="not connected"):
            driver.poll()
        driver.close()


def test_own_map_device_id_and_word_order(tmp_path: Path):
    # A PLC laid out at 100.., count low word first, served as device 3: a map file and options.
    text = DEFAULT_MAP.read_text(encoding="utf-8")
    for old, new in [(0, 100), (2, 102), (4, 104), (5, 105), (6, 106), (7, 107), (8, 108)]:
        text = text.replace(f"address = {old}\n", f"address = {new}\n")
    text = text.replace("address = 9\n", "address = 109\n")
    own = tmp_path / "own_plc.toml"
    own.write_text(text, encoding="utf-8")
    panel = Panel(start=100)
    regs = words(state=3, test=8, cycles=400, preset=400)
    regs[0:2], regs[2:4] = regs[1::-1], regs[3:1:-1]
    panel.set(regs)
    with serving(panel, device_id=3) as address:
        options = {"map": own, "device_id": 3, "word_order": "CDAB"}
        with connected(address, **options) as driver:
            assert driver.layout.plan == ((100, 10),)
            assert driver.poll() == []  # a finished test at start-up is known
            regs = words(state=3, test=9, cycles=0x12345, preset=0x12345)
            regs[0:2], regs[2:4] = regs[1::-1], regs[3:1:-1]
            panel.set(regs)
            (test,) = driver.poll()
            assert (test.value, extra(test)["test_number"]) == (0x12345, 9)
            assert test.raw.startswith("100: 2345 0001 2345 0001")


def test_wrong_device_id_is_an_instrument_error():
    panel = Panel()
    with serving(panel, device_id=3) as address:
        driver = build(InstrumentSettings("taber-1", address, 0.5), AbrasionPlcOptions())
        with pytest.raises(InstrumentError, match="Modbus exception 11"):
            driver.connect()
        driver.close()


def test_polled_driver_refuses_receive():
    driver = build(InstrumentSettings("taber-1", "tcp://127.0.0.1:1", 0.5), AbrasionPlcOptions())
    assert driver.mode == "poll"
    with pytest.raises(InstrumentError, match="is polled"):
        driver.receive(0.1)
    driver.close()
    driver.close()


def test_check_address_and_options(tmp_path: Path):
    assert check_address("rtu:///dev/ttyUSB0?baudrate=19200").kind == "rtu"
    with pytest.raises(ValueError, match="not a Modbus address"):
        check_address("/dev/ttyUSB0")
    assert check_options(AbrasionPlcOptions()) == []
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_MAP.read_text(encoding="utf-8").replace('"paused"', '"resting"'))
    ((key, message),) = check_options(AbrasionPlcOptions(map=bad))
    assert key == "options.map"
    assert "'resting' is not a state" in message
    ((key, message),) = check_options(AbrasionPlcOptions(map=tmp_path / "nowhere.toml"))
    assert "cannot read it" in message


def test_options_are_strict_and_take_toml_keys():
    o = AbrasionPlcOptions.model_validate({"fault_names": {"4": "door open"}, "speed_rpm": 72})
    assert o.fault_names == {4: "door open"}
    with pytest.raises(ValueError, match="extra"):
        AbrasionPlcOptions.model_validate({"adress": 3})
