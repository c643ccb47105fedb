"""The XRF simulators over real ptys (read with pyserial) and a real directory.

What arrives is parsed by the small readers below, written from the layouts documented in
``simulators/xrf_telegram.py`` and ``simulators/xrf_export.py`` (not by a driver). Regenerate
the fixtures in ``tests/fixtures/xrf/`` with::

    HALLMARK_REGEN_XRF_FIXTURES=1 .venv/bin/pytest tests/simulators/test_xrf_sim.py -k fixtures
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import statistics as pystats
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.scenario import (
    FaultEntry,
    ParamValue,
    Scenario,
    ScenarioError,
    load_scenario,
)
from simulators.xrf import (
    APPLICATIONS,
    Emission,
    Series,
    XrfModel,
    XrfModelParams,
    tabulate,
)
from simulators.xrf_export import (
    EXPORT_STYLES,
    EXPORT_VOCABULARY,
    NOT_EXPORT_MAGIC,
    ExportSimulator,
    render_export,
    running_xrf_export,
    serve_export,
)
from simulators.xrf_telegram import (
    FISCHER_LIKE,
    GENERIC,
    TELEGRAM_VOCABULARY,
    TEMPLATES,
    TelegramSimulator,
    render_telegram,
    running_xrf_telegram,
    serve_telegram,
    wire_bytes,
)

pytestmark = pytest.mark.timeout(20)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "xrf"
EXAMPLE_SCENARIO = REPO / "simulators" / "scenarios" / "xrf_drift.toml"
FIXED = datetime(2025, 1, 15, 9, 30, 0)


def fixed_clock() -> datetime:
    return FIXED


# --- a tiny independent telegram reader ----------------------------------------------------------


@dataclass
class Block:
    header: dict[str, str] = field(default_factory=dict)
    unit: str = ""
    #: reading number -> column name (``Au``, ``Au%``) -> value
    readings: dict[int, dict[str, float]] = field(default_factory=dict)
    #: column name -> statistic (n, mean, s, cov, min, max) -> value
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    ended: bool = False


def number(text: str, decimal: str = ".") -> float:
    if decimal == ",":
        assert "." not in text, text
        text = text.replace(",", ".")
    assert re.fullmatch(r"-?\d+(\.\d+)?", text), f"not a fixed-point number: {text!r}"
    return float(text)


GENERIC_READING = re.compile(r"^\s*(\d+) (\S+)\s+(\S+) (um|uin)(?:\s+(\S+) %)?$")
GENERIC_STAT = re.compile(r"^(\S+)\s+(n|Mean|s|CoV|Min|Max)\s+(\S+)(?: (\S+))?$")
GENERIC_LABELS = {"n": "n", "Mean": "mean", "s": "s", "CoV": "cov", "Min": "min", "Max": "max"}


def parse_generic(data: bytes, decimal: str = ".") -> Block:
    text = data.decode("ascii")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "CR LF lines only"
    lines = text.split("\r\n")[:-1]
    assert lines[0] == "XRF RESULT", lines[0]
    block = Block()
    index = 1
    while not GENERIC_READING.match(lines[index]):
        key, _, value = lines[index].partition(": ")
        block.header[key] = value
        index += 1
    while match := GENERIC_READING.match(lines[index]):
        reading, element, value, unit, composition = match.groups()
        block.unit = unit
        row = block.readings.setdefault(int(reading), {})
        row[element] = number(value, decimal)
        if composition is not None:
            row[element + "%"] = number(composition, decimal)
        index += 1
    assert lines[index] == "Statistics", lines[index]
    for line in lines[index + 1 : -1]:
        match = GENERIC_STAT.match(line)
        assert match, f"not a statistics line: {line!r}"
        name, label, value, _unit = match.groups()
        block.stats.setdefault(name, {})[GENERIC_LABELS[label]] = number(value, decimal)
    block.ended = lines[-1] == "END"
    return block


FISCHER_READING = re.compile(r"^  (\S+) \((\d)\) =\s+(\S+) (um|uin)(?:\s+(\S+) %)?$")
FISCHER_STAT = re.compile(r"^(Mean|Std\.Dev|C\.O\.V\.|Min|Max)\s+(\S+) \((\d)\) =\s+(\S+) (\S+)$")
FISCHER_LABELS = {"Mean": "mean", "Std.Dev": "s", "C.O.V.": "cov", "Min": "min", "Max": "max"}


def parse_fischer_like(data: bytes, decimal: str = ".") -> Block:
    lines = data.decode("ascii").split("\r\n")
    assert lines[-1] == "", "block ends with CR LF"
    lines = lines[:-1]
    assert lines[0] == lines[7] == "-" * 32
    block = Block()
    block.header["application"] = lines[1].removeprefix("Appl.:  ")
    block.header["product"] = lines[2].removeprefix("Prod.:  ")
    part = re.fullmatch(r"Part:   (\S+)   Lot: (\d+)", lines[3])
    assert part, lines[3]
    block.header["part"], block.header["lot"] = part.groups()
    block.header["operator"] = lines[4].removeprefix("Oper.:  ")
    block.header["datetime"] = lines[5]
    block.header["time"] = lines[6]
    index, current = 8, 0
    while not lines[index].startswith("-"):
        if reading := re.fullmatch(r"n=\s*(\d+)", lines[index]):
            current = int(reading.group(1))
        else:
            match = FISCHER_READING.match(lines[index])
            assert match, f"not a reading line: {lines[index]!r}"
            element, _layer, value, unit, composition = match.groups()
            block.unit = unit
            row = block.readings.setdefault(current, {})
            row[element] = number(value, decimal)
            if composition is not None:
                row[element + "%"] = number(composition, decimal)
        index += 1
    assert lines[index] == "---------- Statistics ----------"
    count = re.fullmatch(r"n\s+=\s+(\d+)", lines[index + 1])
    assert count, lines[index + 1]
    for line in lines[index + 2 : -1]:
        match = FISCHER_STAT.match(line)
        assert match, f"not a statistics line: {line!r}"
        label, name, _layer, value, _unit = match.groups()
        block.stats.setdefault(name, {})[FISCHER_LABELS[label]] = number(value, decimal)
    for values in block.stats.values():
        values["n"] = float(count.group(1))
    block.ended = lines[-1] == "=== END ==="
    return block


def check_statistics(block: Block, decimals: dict[str, int]) -> None:
    """The printed statistics agree with the printed readings (to the last printed digit)."""
    for name, printed in block.stats.items():
        values = [row[name] for _, row in sorted(block.readings.items())]
        mean = pystats.fmean(values)
        s = pystats.stdev(values) if len(values) > 1 else 0.0
        d = decimals[name]
        assert printed["n"] == len(values)
        assert printed["mean"] == pytest.approx(mean, abs=0.51 * 10**-d)
        assert printed["s"] == pytest.approx(s, abs=0.51 * 10 ** -(d + 1))
        assert printed["min"] == min(values)
        assert printed["max"] == max(values)
        if printed["mean"]:
            assert printed["cov"] == pytest.approx(s / mean * 100, abs=0.006 + 1e-9)


def expected_rows(emission: Emission) -> dict[int, dict[str, float]]:
    table = emission.table
    names = [c.element + ("%" if c.quantity == "composition" else "") for c in table.columns]
    return {i: dict(zip(names, row, strict=True)) for i, row in enumerate(table.rows, 1)}


def decimals_of(emission: Emission) -> dict[str, int]:
    return {
        c.element + ("%" if c.quantity == "composition" else ""): c.decimals
        for c in emission.table.columns
    }


# --- a tiny independent export reader ------------------------------------------------------------


@dataclass
class ExportFile:
    encoding: str
    delimiter: str
    header: dict[str, str]
    columns: list[str]
    rows: list[list[str]]
    stats_title: str
    stats: dict[str, list[str]]


def decode_export(raw: bytes) -> tuple[str, str]:
    if raw.startswith(b"\xff\xfe"):
        return "utf-16", raw[2:].decode("utf-16-le")
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", raw[3:].decode("utf-8")
    try:
        return "utf-8", raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252", raw.decode("cp1252")


def parse_export(raw: bytes) -> ExportFile:
    encoding, text = decode_export(raw)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), "CR LF lines only"
    lines = text.split("\r\n")[:-1]
    delimiter = next(d for d in (";", "\t", ",") if d in lines[0])
    blank = lines.index("")
    header = dict(line.split(delimiter, 1) for line in lines[:blank])
    columns = lines[blank + 1].split(delimiter)
    second = lines.index("", blank + 1)
    rows = [line.split(delimiter) for line in lines[blank + 2 : second]]
    stats = {}
    for line in lines[second + 2 :]:
        label, *cells = line.split(delimiter)
        assert cells[:2] == ["", ""], f"X/Y cells of a statistics row are empty: {line!r}"
        stats[label] = cells[2:]
    return ExportFile(encoding, delimiter, header, columns, rows, lines[second + 1], stats)


def only_file(directory: Path, pattern: str = "*") -> Path:
    files = sorted(directory.glob(pattern))
    assert len(files) == 1, files
    return files[0]


# --- helpers -------------------------------------------------------------------------------------


@contextmanager
def opened(path: str) -> Iterator[serial.Serial]:
    port = serial.Serial(path, baudrate=9600, timeout=0.05)
    try:
        yield port
    finally:
        port.close()


def read_until(
    port: serial.Serial, marker: bytes, timeout: float = 3.0, *, count: int = 1
) -> bytes:
    """Read until ``marker`` has arrived ``count`` times."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while data.count(marker) < count and time.monotonic() < deadline:
        data += port.read(4096)
    assert data.count(marker) >= count, f"no {marker!r} x{count} in {timeout} s: {bytes(data)!r}"
    return bytes(data)


def read_quiet(port: serial.Serial, quiet: float = 0.3, timeout: float = 3.0) -> bytes:
    """Everything that arrives until the line has been quiet for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    last = time.monotonic()
    while time.monotonic() < deadline:
        chunk = port.read(4096)
        if chunk:
            data += chunk
            last = time.monotonic()
        elif time.monotonic() - last >= quiet:
            break
    return bytes(data)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def series_for(
    application: str, *, seq: int = 1, n: int = 5, part: str = "P0001", **model: object
) -> Series:
    params = XrfModelParams.model_validate({"application": application, "seed": 7, **model})
    return XrfModel(params).measure(
        seq=seq, part_id=part, lot=1, n=n, golden=False, measured_at=FIXED
    )


# --- telegrams on the pty ------------------------------------------------------------------------


def test_generic_block_arrives_on_the_pty_with_the_documented_layout() -> None:
    with running_xrf_telegram(seed=3, clock=fixed_clock) as sim, opened(sim.address) as port:
        emission = sim.emit_series(part_id="RING-7", n=6).wait()
        data = read_until(port, b"END\r\n")
    assert data == emission.sent == emission.data
    block = parse_generic(data)
    assert block.ended
    assert block.header == {
        "Instrument": "XRF-SIM 1",
        "Application": "Au/Ni/CuZn",
        "Product": "HM-RING-001",
        "Part": "RING-7",
        "Lot": "1",
        "Operator": "OP1",
        "Date": "2025-01-15 09:30:00",
        "Measuring time": "30 s",
        "Readings": "6",
    }
    assert block.unit == "um"
    assert block.readings == expected_rows(emission)
    assert set(block.stats) == {"Au", "Ni"}
    check_statistics(block, decimals_of(emission))
    # Plausible values around the nominal 1.0 µm gold over 3.0 µm nickel.
    assert 0.85 < block.stats["Au"]["mean"] < 1.15
    assert 2.5 < block.stats["Ni"]["mean"] < 3.5


def test_fischer_like_block_has_its_own_labels_and_ordering() -> None:
    with (
        running_xrf_telegram(template="fischer-like", clock=fixed_clock) as sim,
        opened(sim.address) as port,
    ):
        emission = sim.emit_series(n=5).wait()
        data = read_until(port, b"=== END ===\r\n")
    block = parse_fischer_like(data)
    assert block.ended
    assert block.header["application"] == "Au/Ni/CuZn"
    assert block.header["part"] == "P0001"
    assert block.header["datetime"] == "15.01.2025   09:30:00"
    assert block.header["time"] == "t(meas) = 30 s"
    assert block.readings == expected_rows(emission)
    check_statistics(block, decimals_of(emission))
    stat_lines = [line for line in data.decode().split("\r\n") if FISCHER_STAT.match(line)]
    # Grouped by statistic: every layer's Mean, then every layer's Std.Dev, ...
    assert [line.split()[0] for line in stat_lines[:4]] == ["Mean", "Mean", "Std.Dev", "Std.Dev"]


def test_composition_is_printed_for_an_alloy_layer() -> None:
    with (
        running_xrf_telegram(model={"application": "Au/Ag925"}, clock=fixed_clock) as sim,
        opened(sim.address) as port,
    ):
        emission = sim.emit_series(n=5).wait()
        data = read_until(port, b"END\r\n")
    block = parse_generic(data)
    assert set(block.stats) == {"Au", "Au%"}
    assert block.readings == expected_rows(emission)
    assert all(57.0 < row["Au%"] < 60.0 for row in block.readings.values())
    check_statistics(block, decimals_of(emission))


def test_blocks_follow_each_other_and_parts_and_lots_count_up() -> None:
    model = {"parts_per_lot": 2}
    with running_xrf_telegram(model=model, clock=fixed_clock) as sim, opened(sim.address) as port:
        for _ in range(3):
            sim.emit_series(n=1)
        golden = sim.emit_series(golden=True, n=1).wait()
        data = read_until(port, b"END\r\n", count=4)
    blocks = [parse_generic(b"XRF RESULT" + part) for part in data.split(b"XRF RESULT")[1:]]
    assert [(b.header["Part"], b.header["Lot"]) for b in blocks] == [
        ("P0001", "1"),
        ("P0002", "1"),
        ("P0003", "2"),
        ("GOLDEN", "0"),
    ]
    assert golden.series.golden and golden.series.true_um == (1.0, 3.0)


def test_paced_link_delivers_a_block_at_the_configured_baud_rate() -> None:
    with running_xrf_telegram(baud=19200, clock=fixed_clock) as sim, opened(sim.address) as port:
        start = time.monotonic()
        emission = sim.emit_series(n=1)
        data = read_until(port, b"END\r\n")
        took = time.monotonic() - start
    expected = len(emission.data) * 10 / 19200
    assert data == emission.data
    assert took >= 0.8 * expected, f"{len(data)} bytes in {took:.3f} s, expected ~{expected:.3f} s"


def test_output_sent_before_the_reader_opens_the_port_is_not_received() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim:
        sim.emit_series(part_id="EARLY").wait()
        time.sleep(0.1)
        with opened(sim.address) as port:
            sim.emit_series(part_id="LATE")
            data = read_until(port, b"END\r\n")
    assert b"EARLY" not in data and b"Part: LATE" in data


# --- telegram faults, one test each --------------------------------------------------------------


def test_truncated_block_stops_part_way_without_an_end_marker() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("truncated", keep_fraction=0.4)
        cut = sim.emit_series(n=5).wait()
        first = read_quiet(port)
        sim.clear_faults()
        sim.emit_series(n=5)
        second = read_until(port, b"END\r\n")
    assert first == cut.sent and first == cut.data[: len(first)]
    assert len(first) == pytest.approx(0.4 * len(cut.data), abs=2)
    assert b"END" not in first and not first.endswith(b"\r\n")
    assert first.startswith(b"XRF RESULT\r\n")
    assert parse_generic(second).ended


def test_garbage_before_a_block_corrupts_its_first_line_only() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("garbage", count=24, position="before")
        emission = sim.emit_series(n=3).wait()
        data = read_until(port, b"END\r\n")
    noise, _, rest = data.partition(b"XRF RESULT\r\n")
    assert len(noise) == 24 and b"\r" not in noise and b"\n" not in noise
    assert data == emission.sent
    assert parse_generic(b"XRF RESULT\r\n" + rest).readings == expected_rows(emission)


def test_garbage_inside_a_block_corrupts_one_reading_line() -> None:
    with running_xrf_telegram(seed=5, clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("garbage", count=8, position="inside")
        emission = sim.emit_series(n=3).wait()
        data = read_until(port, b"END\r\n")
    good = emission.data.split(b"\r\n")
    got = data.split(b"\r\n")
    assert len(good) == len(got)
    changed = [i for i, (a, b) in enumerate(zip(good, got, strict=True)) if a != b]
    assert len(changed) == 1
    line = got[changed[0]]
    assert len(line) == len(good[changed[0]]) + 8
    assert changed[0] >= len(GENERIC.header), "garbage lands in a reading line, not the header"


def test_unknown_element_label_on_the_wire() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("unknown_element", element="Qq", layer=2)
        emission = sim.emit_series(n=2).wait()
        data = read_until(port, b"END\r\n")
    block = parse_generic(data)
    assert set(block.stats) == {"Au", "Qq"}
    assert emission.faults == ("unknown_element",)
    assert emission.series.application.name == "Au/Ni/CuZn", "the model is not changed"


def test_unit_switched_to_microinch() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("unit_uin")
        emission = sim.emit_series(n=4).wait()
        data = read_until(port, b"END\r\n")
    block = parse_generic(data)
    assert block.unit == "uin"
    assert b" um\r\n" not in data
    for number_, row in block.readings.items():
        micrometres = emission.series.readings[number_ - 1].thickness_um
        assert row["Au"] == pytest.approx(micrometres[0] / 0.0254, abs=0.051)
        assert row["Ni"] == pytest.approx(micrometres[1] / 0.0254, abs=0.051)
    check_statistics(block, {"Au": 1, "Ni": 1})


def test_wrong_decimal_separator_is_a_comma() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("wrong_decimal")
        emission = sim.emit_series(n=3).wait()
        data = read_until(port, b"END\r\n")
    reading_lines = [line for line in data.split(b"\r\n") if GENERIC_READING.match(line.decode())]
    assert reading_lines and all(b"," in line and b"." not in line for line in reading_lines)
    block = parse_generic(data, decimal=",")
    assert block.readings == expected_rows(emission)


def test_no_output_sends_nothing_and_the_next_series_comes_through() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("no_output")
        silent = sim.emit_series().wait()
        nothing = read_quiet(port, quiet=0.3)
        sim.clear_faults()
        sim.emit_series()
        data = read_until(port, b"END\r\n")
    assert nothing == b"" and silent.sent == b"" and silent.data
    assert b"Part: P0002" in data, "the silent series still counted as a part"


def test_clock_skew_shifts_the_printed_date_time() -> None:
    with running_xrf_telegram(clock=fixed_clock) as sim, opened(sim.address) as port:
        sim.set_fault("clock_skew", seconds=-90)
        sim.emit_series(n=1)
        data = read_until(port, b"END\r\n")
    assert parse_generic(data).header["Date"] == "2025-01-15 09:28:30"


def test_scripted_fault_window_applies_by_the_simulator_clock() -> None:
    scenario = Scenario(faults=(FaultEntry("unit_uin", start=0.3, duration=10.0),))
    with running_xrf_telegram(scenario=scenario, clock=fixed_clock) as sim:
        before = sim.emit_series(n=1).wait()
        wait_until(lambda: sim.elapsed() > 0.35, 2.0, "the fault window")
        during = sim.emit_series(n=1).wait()
    assert before.faults == () and b" um\r\n" in before.data
    assert during.faults == ("unit_uin",) and b" uin\r\n" in during.data


# --- export files --------------------------------------------------------------------------------


def test_english_csv_export(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, seed=2, clock=fixed_clock) as sim:
        emission = sim.emit_series(part_id="RING 7/a", n=7).wait()
    path = only_file(tmp_path)
    assert path.name == "20250115_093000_0001_RING_7_a.csv"
    assert emission.paths == [path]
    raw = path.read_bytes()
    assert raw == emission.data
    export = parse_export(raw)
    assert export.encoding == "utf-8" and export.delimiter == ","
    assert export.header == {
        "Instrument": "XRF-SIM 1",
        "Application": "Au/Ni/CuZn",
        "Product": "HM-RING-001",
        "Part": "RING 7/a",
        "Lot": "1",
        "Operator": "OP1",
        "Date": "2025-01-15",
        "Time": "09:30:00",
        "Measuring time [s]": "30",
    }
    assert export.columns == ["Reading", "X [mm]", "Y [mm]", "Au [µm]", "Ni [µm]"]
    assert [row[0] for row in export.rows] == [str(i) for i in range(1, 8)]
    assert [[float(v) for v in row[3:]] for row in export.rows] == [
        list(row) for row in emission.table.rows
    ]
    assert export.stats_title == "Statistics"
    assert list(export.stats) == ["n", "Mean", "Std. dev.", "CoV [%]", "Min", "Max"]
    au = [float(row[3]) for row in export.rows]
    assert float(export.stats["Mean"][0]) == pytest.approx(pystats.fmean(au), abs=0.00051)
    assert float(export.stats["Std. dev."][0]) == pytest.approx(pystats.stdev(au), abs=0.000051)


def test_german_semicolon_decimal_comma_windows_1252_export(tmp_path: Path) -> None:
    model = {"application": "Au/Ag925"}
    with running_xrf_export(tmp_path, style="de-txt", model=model, clock=fixed_clock) as sim:
        emission = sim.emit_series(n=5).wait()
    raw = only_file(tmp_path, "*.txt").read_bytes()
    assert raw.startswith("Gerät;".encode("cp1252")) and b"[\xb5m]" in raw  # µ is 0xB5
    export = parse_export(raw)
    assert export.encoding == "cp1252" and export.delimiter == ";"
    assert export.header["Anwendung"] == "Au/Ag925"
    assert export.header["Datum"] == "15.01.2025" and export.header["Uhrzeit"] == "09:30:00"
    assert export.columns == ["Messung", "X [mm]", "Y [mm]", "Au [µm]", "Au [%]"]
    assert export.stats_title == "Statistik"
    assert list(export.stats) == ["n", "Mittelwert", "Std.-Abw.", "VK [%]", "Min", "Max"]
    for row, expected in zip(export.rows, emission.table.rows, strict=True):
        assert all("." not in cell for cell in row)
        assert [number(cell, ",") for cell in row[3:]] == list(expected)


def test_utf16_export_has_a_bom_and_tabs(tmp_path: Path) -> None:
    model = {"application": "Rh/Pd/Ag925"}
    with running_xrf_export(tmp_path, style="utf16-txt", model=model, clock=fixed_clock) as sim:
        sim.emit_series(n=5).wait()
    raw = only_file(tmp_path).read_bytes()
    assert raw[:2] == b"\xff\xfe" and raw[2:4] == b"I\x00"
    export = parse_export(raw)
    assert export.encoding == "utf-16" and export.delimiter == "\t"
    assert export.columns[3:] == ["Rh [µm]", "Pd [µm]"]


@pytest.mark.parametrize(
    ("micro", "encoding", "expected"),
    [("u", "utf-8", b"Au [um]"), ("µ", "utf-8-sig", "Au [µm]".encode())],
)
def test_micro_sign_or_u_and_utf8_bom(
    tmp_path: Path, micro: str, encoding: str, expected: bytes
) -> None:
    model = {"micro": micro, "encoding": encoding}
    with running_xrf_export(tmp_path, model=model, clock=fixed_clock) as sim:
        sim.emit_series(n=2).wait()
    raw = only_file(tmp_path).read_bytes()
    assert expected in raw
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    if micro == "u":
        raw.decode("ascii")


def test_lf_line_endings_can_be_chosen(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, model={"line_ending": "lf"}, clock=fixed_clock) as sim:
        sim.emit_series(n=2).wait()
    raw = only_file(tmp_path).read_bytes()
    assert b"\r" not in raw and raw.count(b"\n") > 10


def test_series_every_interval(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, interval_s=0.1) as sim:
        wait_until(lambda: len(list(tmp_path.glob("*.csv"))) >= 3, 3.0, "three exports")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [name.split("_")[2] for name in names[:3]] == ["0001", "0002", "0003"]
    assert sim.address == str(tmp_path)


# --- export faults, one test each ----------------------------------------------------------------


def test_slow_write_grows_then_completes(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("slow_write", chunk_bytes=100, interval_s=0.04)
        emission = sim.emit_series(n=5)
        path = tmp_path / "20250115_093000_0001_P0001.csv"
        sizes: list[int] = []
        deadline = time.monotonic() + 5.0
        while not emission.done.is_set() and time.monotonic() < deadline:
            if path.exists():
                sizes.append(path.stat().st_size)
            time.sleep(0.005)
        emission.wait()
    partial = sorted({size for size in sizes if size < len(emission.data)})
    assert len(partial) >= 3, f"saw sizes {sorted(set(sizes))}"
    assert all(size % 100 == 0 for size in partial)
    assert path.read_bytes() == emission.data


def test_slow_write_that_stops_half_way_never_completes(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("slow_write", chunk_bytes=50, interval_s=0.01, stop_fraction=0.5)
        emission = sim.emit_series(n=5).wait()
        path = only_file(tmp_path)
        size = path.stat().st_size
        time.sleep(0.2)
        assert path.stat().st_size == size
    assert size == len(emission.data) // 2
    assert path.read_bytes() == emission.data[:size]


def test_rename_mode_shows_a_tmp_file_and_only_the_complete_file_by_its_name(
    tmp_path: Path,
) -> None:
    model = {"write_mode": "rename"}
    with running_xrf_export(tmp_path, model=model, clock=fixed_clock) as sim:
        sim.set_fault("slow_write", chunk_bytes=100, interval_s=0.03)
        emission = sim.emit_series(n=5)
        final = tmp_path / "20250115_093000_0001_P0001.csv"
        temp = tmp_path / "20250115_093000_0001_P0001.csv.tmp"
        seen_tmp = False
        deadline = time.monotonic() + 5.0
        while not emission.done.is_set() and time.monotonic() < deadline:
            if final.exists():
                assert final.read_bytes() == emission.data, "final name only when complete"
            seen_tmp = seen_tmp or temp.exists()
            time.sleep(0.005)
        emission.wait()
    assert seen_tmp
    assert not temp.exists() and final.read_bytes() == emission.data


def test_rename_mode_abandoned_write_leaves_only_the_tmp(tmp_path: Path) -> None:
    model = {"write_mode": "rename"}
    with running_xrf_export(tmp_path, model=model, clock=fixed_clock) as sim:
        sim.set_fault("slow_write", chunk_bytes=64, interval_s=0.001, stop_fraction=0.3)
        emission = sim.emit_series(n=3).wait()
    assert [p.name for p in tmp_path.iterdir()] == ["20250115_093000_0001_P0001.csv.tmp"]
    assert emission.paths == [tmp_path / "20250115_093000_0001_P0001.csv.tmp"]


def test_truncated_export_is_a_half_file(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("truncated", keep_fraction=0.5)
        emission = sim.emit_series(n=5).wait()
    raw = only_file(tmp_path).read_bytes()
    assert raw == emission.data[: len(emission.data) // 2]
    assert b"Max," not in raw
    with pytest.raises((AssertionError, ValueError)):
        parse_export(raw)


def test_duplicate_export_under_the_same_name(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("duplicate", delay_s=0.2)
        first = sim.emit_series(n=3)
        path = tmp_path / "20250115_093000_0001_P0001.csv"
        wait_until(path.exists, 2.0, "the first save")
        before = path.stat().st_mtime_ns
        first.wait()
    assert first.paths == [path, path]
    assert path.stat().st_mtime_ns > before
    assert path.read_bytes() == first.data
    assert len(list(tmp_path.iterdir())) == 1


def test_duplicate_export_under_a_new_name(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("duplicate", rename=True, delay_s=0.0)
        emission = sim.emit_series(n=3).wait()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["20250115_093000_0001_P0001 (2).csv", "20250115_093000_0001_P0001.csv"]
    a, b = (tmp_path / name for name in names)
    assert a.read_bytes() == b.read_bytes() == emission.data


def test_wrong_decimal_in_a_comma_csv_shifts_the_columns(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("wrong_decimal")
        sim.emit_series(n=2).wait()
    export = parse_export(only_file(tmp_path).read_bytes())
    assert len(export.columns) == 5
    assert all(len(row) == 1 + 2 * 4 for row in export.rows), "every decimal comma splits a cell"


def test_wrong_decimal_in_a_german_file_is_a_point(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, style="de-txt", clock=fixed_clock) as sim:
        sim.set_fault("wrong_decimal")
        emission = sim.emit_series(n=2).wait()
    export = parse_export(only_file(tmp_path).read_bytes())
    assert [[float(c) for c in row[3:]] for row in export.rows] == [
        list(r) for r in emission.table.rows
    ]


def test_unknown_element_column(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("unknown_element", element="Xx", layer=1)
        sim.emit_series(n=2).wait()
    assert parse_export(only_file(tmp_path).read_bytes()).columns[3:] == ["Xx [µm]", "Ni [µm]"]


def test_unit_uin_export(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("unit_uin")
        emission = sim.emit_series(n=3).wait()
    export = parse_export(only_file(tmp_path).read_bytes())
    assert export.columns[3:] == ["Au [µin]", "Ni [µin]"]
    for row, reading in zip(export.rows, emission.series.readings, strict=True):
        assert float(row[3]) == pytest.approx(reading.thickness_um[0] * 39.37008, abs=0.051)


def test_not_an_export_file_appears_beside_the_export(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("not_export", size_bytes=8 << 20)
        emission = sim.emit_series(n=2).wait(timeout=10)
    junk = tmp_path / "20250115_093000_0001_P0001-spectrum.csv"
    assert emission.paths == [junk, tmp_path / "20250115_093000_0001_P0001.csv"]
    assert junk.stat().st_size == 8 << 20
    with junk.open("rb") as stream:
        head = stream.read(4096)
    assert head.startswith(NOT_EXPORT_MAGIC)
    with pytest.raises(UnicodeDecodeError):
        head.decode("utf-8")


def test_no_output_writes_no_file(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("no_output")
        emission = sim.emit_series(n=2).wait()
    assert list(tmp_path.iterdir()) == [] and emission.paths == []


def test_clock_skew_shifts_the_header_and_the_file_name(tmp_path: Path) -> None:
    with running_xrf_export(tmp_path, clock=fixed_clock) as sim:
        sim.set_fault("clock_skew", seconds=3600)
        sim.emit_series(n=2).wait()
    path = only_file(tmp_path)
    assert path.name.startswith("20250115_103000_")
    assert parse_export(path.read_bytes()).header["Time"] == "10:30:00"


def test_stop_abandons_a_slow_write_within_bounds(tmp_path: Path) -> None:
    sim = ExportSimulator(tmp_path, clock=fixed_clock)
    sim.start()
    sim.set_fault("slow_write", chunk_bytes=1, interval_s=1.0)
    emission = sim.emit_series(n=5)
    queued = sim.emit_series(n=5)
    wait_until(lambda: any(tmp_path.iterdir()), 2.0, "the write to begin")
    start = time.monotonic()
    sim.stop()
    assert time.monotonic() - start < 1.0
    assert emission.done.is_set() and emission.error is None
    with pytest.raises(RuntimeError, match="simulator stopped first"):
        queued.wait(timeout=0)
    with pytest.raises(RuntimeError, match="not running"):
        sim.emit_series()


# --- the model: noise, drift, bias, determinism --------------------------------------------------


def pooled_relative_s(params: XrfModelParams, layer: int, series: int = 40, n: int = 10) -> float:
    """Mean within-series relative s of ``layer`` over ``series`` series (golden: no spread)."""
    model = XrfModel(params)
    values = []
    for seq in range(1, series + 1):
        result = model.measure(seq=seq, part_id="G", lot=0, n=n, golden=True, measured_at=FIXED)
        thickness = [r.thickness_um[layer] for r in result.readings]
        values.append(pystats.stdev(thickness) / pystats.fmean(thickness))
    return pystats.fmean(values)


def test_noise_shrinks_with_longer_measuring_time() -> None:
    short = pooled_relative_s(XrfModelParams(seed=1, measuring_time_s=10.0), layer=0)
    long = pooled_relative_s(XrfModelParams(seed=1, measuring_time_s=60.0), layer=0)
    assert short / long == pytest.approx(math.sqrt(6.0), rel=0.15)
    assert long == pytest.approx(0.015 * math.sqrt(30 / 60), rel=0.15)


def test_thin_flash_has_a_large_relative_sigma_and_underlayers_are_worse() -> None:
    thick = pooled_relative_s(XrfModelParams(seed=2), layer=0)
    flash = pooled_relative_s(XrfModelParams(seed=2, application="Au/CuZn"), layer=0)
    nickel = pooled_relative_s(XrfModelParams(seed=2), layer=1)
    assert flash / thick == pytest.approx(math.sqrt(1.0 / 0.08), rel=0.15)
    assert nickel / thick == pytest.approx(3.0, rel=0.15)


def lot_mean(model: XrfModel, lot: int, parts: int = 30) -> float:
    means = []
    for k in range(parts):
        series = model.measure(
            seq=lot * 1000 + k, part_id="P", lot=lot, n=5, golden=False, measured_at=FIXED
        )
        means.append(pystats.fmean(r.thickness_um[0] for r in series.readings))
    return pystats.fmean(means)


def test_drift_step_lowers_the_mean_by_the_configured_amount() -> None:
    params = XrfModelParams(seed=4, drift_start_lot=2, drift_step_pct=-20.0)
    model = XrfModel(params)
    assert lot_mean(model, 1) == pytest.approx(1.0, abs=0.01)
    assert lot_mean(model, 2) == pytest.approx(0.8, abs=0.01)
    assert lot_mean(model, 5) == pytest.approx(0.8, abs=0.01)


def test_drift_ramp_adds_per_lot_after_the_step() -> None:
    params = XrfModelParams(
        seed=4, drift_start_lot=2, drift_step_pct=-10.0, drift_ramp_pct_per_lot=-5.0
    )
    model = XrfModel(params)
    assert [model.drift_pct(lot) for lot in (1, 2, 3, 4)] == [0.0, -10.0, -15.0, -20.0]
    assert lot_mean(model, 4) == pytest.approx(0.8, abs=0.01)


def test_drift_across_lots_through_the_export_files(tmp_path: Path) -> None:
    model = {
        "parts_per_lot": 3,
        "drift_start_lot": 2,
        "drift_step_pct": -30.0,
        "part_sigma_pct": 0.0,
        "seed": 9,
    }
    with running_xrf_export(tmp_path, model=model, clock=fixed_clock) as sim:
        golden = sim.emit_series(golden=True, n=10)
        emissions = [sim.emit_series(n=10) for _ in range(6)]
        for emission in [golden, *emissions]:
            emission.wait()
    by_lot: dict[str, list[float]] = {}
    for path in sorted(tmp_path.glob("*_P*.csv")):
        export = parse_export(path.read_bytes())
        by_lot.setdefault(export.header["Lot"], []).append(float(export.stats["Mean"][0]))
    assert sorted(by_lot) == ["1", "2"] and all(len(v) == 3 for v in by_lot.values())
    lot1, lot2 = pystats.fmean(by_lot["1"]), pystats.fmean(by_lot["2"])
    assert lot2 / lot1 == pytest.approx(0.7, abs=0.02)
    golden_export = parse_export(only_file(tmp_path, "*GOLDEN*").read_bytes())
    assert float(golden_export.stats["Mean"][0]) == pytest.approx(1.0, abs=0.02)


def test_curvature_bias_reads_systematically_low() -> None:
    model = XrfModel(XrfModelParams(seed=6, curvature_bias_pct=-8.0, part_sigma_pct=0.0))
    assert lot_mean(model, 1) == pytest.approx(0.92, abs=0.01)


def test_same_seed_same_output_and_another_seed_differs(tmp_path: Path) -> None:
    def run(seed: int) -> list[bytes]:
        with running_xrf_telegram(seed=seed, clock=fixed_clock) as sim:
            return [sim.emit_series().wait().data for _ in range(3)]

    assert run(42) == run(42)
    assert run(42) != run(43)
    with running_xrf_export(tmp_path / "a", seed=42, clock=fixed_clock) as sim:
        a = sim.emit_series().wait().data
    with running_xrf_export(tmp_path / "b", seed=42, clock=fixed_clock) as sim:
        b = sim.emit_series().wait().data
    assert a == b


@settings(max_examples=40, deadline=None)
@given(
    application=st.sampled_from(sorted(APPLICATIONS)),
    template=st.sampled_from(sorted(TEMPLATES)),
    unit=st.sampled_from(["um", "uin"]),
    n=st.integers(min_value=1, max_value=12),
    time_s=st.sampled_from([5.0, 10.0, 12.5, 30.0, 60.0]),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_every_application_round_trips_through_both_templates(
    application: str, template: str, unit: str, n: int, time_s: float, seed: int
) -> None:
    params = XrfModelParams.model_validate(
        {"application": application, "seed": seed, "measuring_time_s": time_s}
    )
    series = XrfModel(params).measure(
        seq=1, part_id="P1", lot=1, n=n, golden=False, measured_at=FIXED
    )
    table = tabulate(series, unit)  # type: ignore[arg-type]
    data = render_telegram(series, TEMPLATES[template], unit=unit)  # type: ignore[arg-type]
    block = (parse_generic if template == "generic" else parse_fischer_like)(data)
    names = [c.element + ("%" if c.quantity == "composition" else "") for c in table.columns]
    assert block.readings == {
        i: dict(zip(names, row, strict=True)) for i, row in enumerate(table.rows, 1)
    }
    check_statistics(
        block, {name: c.decimals for name, c in zip(names, table.columns, strict=True)}
    )


@settings(max_examples=30, deadline=None)
@given(
    application=st.sampled_from(sorted(APPLICATIONS)),
    style=st.sampled_from(sorted(EXPORT_STYLES)),
    unit=st.sampled_from(["um", "uin"]),
    micro=st.sampled_from(["µ", "u"]),
    n=st.integers(min_value=1, max_value=12),
)
def test_every_application_round_trips_through_every_export_style(
    application: str, style: str, unit: str, micro: str, n: int
) -> None:
    fmt = replace(EXPORT_STYLES[style], micro=micro)  # type: ignore[arg-type]
    series = series_for(application, n=n)
    table = tabulate(series, unit)  # type: ignore[arg-type]
    export = parse_export(render_export(series, fmt, unit=unit))  # type: ignore[arg-type]
    assert len(export.rows) == n
    assert [[number(c, fmt.decimal) for c in row[3:]] for row in export.rows] == [
        list(r) for r in table.rows
    ]
    assert len(export.columns) == 3 + len(table.columns)


# --- scenarios and bad configuration -------------------------------------------------------------


def test_example_scenario_loads_with_both_vocabularies(tmp_path: Path) -> None:
    for vocabulary in (TELEGRAM_VOCABULARY, EXPORT_VOCABULARY):
        scenario = load_scenario(EXAMPLE_SCENARIO, vocabulary)
        assert scenario.model["drift_step_pct"] == -25.0
        assert {entry.kind for entry in scenario.faults} >= {"unit_uin", "truncated"}
    scenario = load_scenario(EXAMPLE_SCENARIO, EXPORT_VOCABULARY)
    sim = ExportSimulator(tmp_path, scenario=scenario)
    assert sim.model.drift_pct(3) == -25.0 and sim.model.drift_pct(4) == -30.0
    assert sim.params.seed == 11


def write_scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_export_only_fault_is_refused_by_the_telegram_vocabulary(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, "schema = 1\n[[fault]]\nkind = 'slow_write'\nstart = 0\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, TELEGRAM_VOCABULARY)
    message = str(caught.value)
    assert str(path) in message and "'slow_write'" in message and "garbage" in message


def test_bad_model_keys_are_all_reported(tmp_path: Path) -> None:
    path = write_scenario(
        tmp_path,
        "schema = 1\n[model]\napplication = 'Au/Fe'\nmeasuring_time_s = 0\nthikness = 1\n",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, EXPORT_VOCABULARY)
    message = str(caught.value)
    assert "application" in message and "unknown application 'Au/Fe'" in message
    assert "measuring_time_s" in message and "thikness" in message


def test_layer_beyond_the_application_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"layer3_um: application 'Au/Ni/CuZn' has 2"):
        TelegramSimulator(model={"layer3_um": 1.0})
    with pytest.raises(ScenarioError, match=r"drift_layer: application 'Rh/Ag' has 1"):
        TelegramSimulator(model={"application": "Rh/Ag", "drift_layer": 2})
    with pytest.raises(ScenarioError, match=r"layer: application 'Rh/Ag' has 1"):
        TelegramSimulator(model={"application": "Rh/Ag"}).set_fault("unknown_element", layer=2)


def test_ambiguous_export_format_and_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="delimiter and decimal"):
        ExportSimulator(tmp_path, model={"decimal": ","})
    with pytest.raises(ScenarioError, match="unknown style 'xlsx'"):
        ExportSimulator(tmp_path, style="xlsx")
    with pytest.raises(ScenarioError, match="unknown template 'hitachi'"):
        TelegramSimulator(template="hitachi")
    with pytest.raises(ScenarioError, match="keep_fraction"):
        TelegramSimulator().set_fault("truncated", keep_fraction=1.5)
    with pytest.raises(ScenarioError, match="unknown fault kind 'garbage'"):
        ExportSimulator(tmp_path).set_fault("garbage")


# --- the CLI-style servers -----------------------------------------------------------------------


@contextmanager
def run_server(code: str) -> Iterator[dict[str, object]]:
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
            yield json.loads(process.stdout.readline())
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0, process.stderr.read() if process.stderr else ""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)


def test_serve_telegram_prints_one_json_line_and_pushes_blocks() -> None:
    code = (
        "import sys; from simulators.xrf_telegram import serve_telegram; "
        "sys.exit(serve_telegram(seed=1, template='fischer-like', interval_s=0.2))"
    )
    with run_server(code) as info:
        assert info == {
            "family": "xrf",
            "model": "xrf_telegram",
            "transport": "serial-pty",
            "address": info["address"],
            "template": "fischer-like",
            "interval_s": 0.2,
        }
        assert str(info["address"]).startswith("/dev/")
        with opened(str(info["address"])) as port:
            data = read_until(port, b"=== END ===\r\n")
        assert parse_fischer_like(data[data.index(b"-" * 32) :]).ended


def test_serve_export_prints_one_json_line_and_writes_files(tmp_path: Path) -> None:
    code = (
        "import sys; from simulators.xrf_export import serve_export; "
        f"sys.exit(serve_export({str(tmp_path)!r}, style='de-txt', interval_s=0.1))"
    )
    with run_server(code) as info:
        assert info == {
            "family": "xrf",
            "model": "xrf_export",
            "transport": "directory",
            "address": str(tmp_path),
            "style": "de-txt",
            "encoding": "cp1252",
            "interval_s": 0.1,
        }
        wait_until(lambda: any(tmp_path.glob("*.txt")), 3.0, "an export")


def test_serve_rejects_a_bad_scenario_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, "schema = 1\n[[fault]]\nkind = 'nope'\nstart = 0\n")
    assert serve_telegram(scenario_path=path) == 2
    assert serve_export(tmp_path / "out", scenario_path=path) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2 and all(str(path) in line and "'nope'" in line for line in lines)


# --- fixtures ------------------------------------------------------------------------------------


def fixture_files() -> dict[str, bytes]:
    """Every file of tests/fixtures/xrf/, made by the simulator's pure renderers."""
    gold = series_for("Au/Ni/CuZn")
    vermeil = series_for("Au/Ag925", seq=2, part="V0001")
    vermeil = replace(vermeil, measured_at=FIXED + timedelta(minutes=10))
    rhodium = series_for("Rh/Pd/Ag925", seq=3, part="R0001")
    stack = series_for("Au/CuSn/Cu/CuZn", seq=4, part="N0001")
    en = EXPORT_STYLES["en-csv"]
    truncated = render_export(stack, en)
    files = {
        "export_en_utf8.csv": render_export(gold, en),
        "export_de_cp1252.txt": render_export(vermeil, EXPORT_STYLES["de-txt"]),
        "export_utf16_bom.txt": render_export(rhodium, EXPORT_STYLES["utf16-txt"]),
        "export_uin_ascii.csv": render_export(gold, replace(en, micro="u"), unit="uin"),
        "export_truncated.csv": truncated[: len(truncated) // 2],
        "export_en_wrong_decimal.csv": render_export(gold, en, faults={"wrong_decimal": {}}),
        "telegram_generic.bin": render_telegram(gold, GENERIC),
        "telegram_fischer_like.bin": render_telegram(gold, FISCHER_LIKE),
        "telegram_generic_vermeil.bin": render_telegram(vermeil, GENERIC),
    }
    faulty: list[dict[str, dict[str, ParamValue]]] = [
        {"truncated": {"keep_fraction": 0.4}},
        {"garbage": {"count": 12, "position": "before"}},
        {"unit_uin": {}},
        {"wrong_decimal": {}},
        {"unknown_element": {"element": "Xx", "layer": 1}},
        {},
    ]
    transcript = b""
    for index, faults in enumerate(faulty):
        series = series_for("Au/Ni/CuZn", seq=10 + index, n=3, part=f"P{index + 1:04d}")
        data = render_telegram(series, GENERIC, faults=faults)
        transcript += wire_bytes(data, GENERIC, faults, random.Random(f"fixture:{index}"))
    files["telegram_generic_faults.bin"] = transcript
    return files


def test_fixtures_are_what_the_simulator_writes() -> None:
    files = fixture_files()
    if os.environ.get("HALLMARK_REGEN_XRF_FIXTURES"):
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (FIXTURES / name).write_bytes(data)
    on_disk = {p.name for p in FIXTURES.iterdir() if p.name not in ("README.md", ".gitattributes")}
    assert on_disk == set(files)
    for name, data in files.items():
        assert (FIXTURES / name).read_bytes() == data, f"{name} differs; regenerate (see top)"


def test_hand_checked_fixture_values() -> None:
    # Read off the files by eye and worked by hand (see tests/fixtures/xrf/README.md).
    en = parse_export((FIXTURES / "export_en_utf8.csv").read_bytes())
    assert en.rows[0] == ["1", "9.99", "20.04", "1.040", "3.105"]
    # Au: (1.040 + 1.038 + 1.015 + 1.042 + 1.029) / 5 = 1.0328; s = 0.01112; CoV = 1.077 %
    assert [row[3] for row in en.rows] == ["1.040", "1.038", "1.015", "1.042", "1.029"]
    assert en.stats["Mean"] == ["1.033", "2.927"]
    assert en.stats["Std. dev."][0] == "0.0111" and en.stats["CoV [%]"][0] == "1.08"
    de = parse_export((FIXTURES / "export_de_cp1252.txt").read_bytes())
    assert de.header["Datum"] == "15.01.2025" and de.header["Uhrzeit"] == "09:40:00"
    # Au: 15.107 / 5 = 3.0214; Au %: 292.9 / 5 = 58.58
    assert de.stats["Mittelwert"] == ["3,021", "58,6"]
    uin = parse_export((FIXTURES / "export_uin_ascii.csv").read_bytes())
    assert uin.columns[3:] == ["Au [uin]", "Ni [uin]"]
    # 1.040 µm / 0.0254 = 40.94 µin; 3.105 µm / 0.0254 = 122.24 µin
    assert uin.rows[0][3:] == ["41.0", "122.2"]
    generic = parse_generic((FIXTURES / "telegram_generic.bin").read_bytes())
    assert generic.readings[1] == {"Au": 1.040, "Ni": 3.105}
    assert generic.stats["Au"]["mean"] == 1.033 and generic.stats["Ni"]["cov"] == 4.16
