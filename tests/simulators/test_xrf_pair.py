"""The XRF export driver against the export simulator's faults, in a real folder: each fault
either reads correctly or is set aside with a reason; nothing crashes, nothing is read twice."""

import time

import pytest

from daq.errors import ProtocolError, UnitError
from daq.instrument import InstrumentSettings
from drivers.xrf_export import XrfExportOptions, build
from simulators.xrf_export import running_xrf_export

MODEL = {"application": "Au/Ni/CuZn", "readings_per_series": 3}


def driver_for(folder):
    options = XrfExportOptions(settle_s=0.3, scan_interval_s=0.05)
    d = build(InstrumentSettings("xrf", str(folder), 1.0), options)
    d.connect()
    return d


def collect(driver, seconds):
    """Everything the driver delivers within `seconds`, with the errors it raised."""
    samples, errors = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            samples += driver.receive(0.2)
        except (ProtocolError, UnitError) as exc:
            errors.append(str(exc))
    return samples, errors


@pytest.fixture
def pair(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    with running_xrf_export(folder, seed=2, model=MODEL) as sim:
        driver = driver_for(folder)
        yield sim, driver, folder
        driver.close()


def test_clean_series(pair):
    sim, driver, _ = pair
    sim.emit_series("P1").wait()
    samples, errors = collect(driver, 1.5)
    assert not errors
    assert [s.channel for s in samples] == ["layer_Au", "layer_Ni"] * 3


@pytest.mark.parametrize(
    ("fault", "params", "reason", "good"),
    [
        ("truncated", {"keep_fraction": 0.5}, "", 0),
        ("unknown_element", {"element": "Xx"}, "Xx", 0),
        # a spectrum file lands beside the series' export, which still reads
        ("not_export", {"size_bytes": 4096}, "", 6),
    ],
)
def test_bad_files_are_set_aside_with_a_reason(pair, fault, params, reason, good):
    sim, driver, folder = pair
    sim.set_fault(fault, **params)
    sim.emit_series("BAD").wait()
    samples, errors = collect(driver, 1.5)
    assert len(samples) == good
    assert errors and "set aside" in errors[0] and reason in errors[0]
    notes = list((folder / "rejected").glob("*.reason.txt"))
    assert len(notes) == 1 and notes[0].read_text().strip()
    sim.clear_faults()
    sim.emit_series("GOOD").wait()
    samples, errors = collect(driver, 1.5)
    assert len(samples) == 6 and not errors  # the bench goes on


def test_micro_inch_is_read_in_its_unit(pair):
    sim, driver, _ = pair
    sim.set_fault("unit_uin")
    sim.emit_series("U1").wait()
    samples, _ = collect(driver, 1.5)
    assert {s.unit for s in samples} == {"µin"}
    assert 30 < samples[0].value < 50  # ~1 µm of gold


def test_a_file_still_being_written_is_read_once_complete(pair):
    sim, driver, _ = pair
    sim.set_fault("slow_write", chunk_bytes=40, interval_s=0.1)
    emission = sim.emit_series("SLOW")
    samples, errors = collect(driver, 4.0)
    emission.wait()
    assert not errors
    assert len(samples) == 6


def test_a_re_export_is_not_read_twice(pair):
    sim, driver, _ = pair
    sim.set_fault("duplicate", rename=True, delay_s=0.3)
    sim.emit_series("D1").wait()
    samples, errors = collect(driver, 2.0)
    assert not errors
    assert len(samples) == 6
