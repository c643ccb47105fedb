"""The watched-folder XRF driver (drivers/xrf_export.py) on real temporary folders."""

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from daq.config import InstrumentConfig
from daq.errors import ProtocolError, TransportError, UnitError
from daq.instrument import InstrumentSettings
from drivers.registry import REGISTRY, build_driver, check_instrument
from drivers.xrf_export import XrfExport, XrfExportOptions, build, parse_dir_address

# A German export: ';', decimal comma, Windows-1252, CR-LF, Au over Ni over brass.
EXPORT = (
    "Anwendung;Au/Ni/CuZn\r\n"
    "Produkt;VRM-RING-001\r\n"
    "Bediener;M. Keller\r\n"
    "Datum;14.03.2026\r\n"
    "Uhrzeit;10:22:05\r\n"
    "\r\n"
    "Messung;X [mm];Y [mm];Au [µm];Ni [µm]\r\n"
    "1;12,50;-3,20;2,61;3,05\r\n"
    "2;12,80;-3,10;2,58;3,11\r\n"
    "3;13,10;-3,00;2,64;3,02\r\n"
    "\r\n"
    "Mittelwert;;;2,61;3,06\r\n"
    "Anzahl;;;3;3\r\n"
).encode("cp1252")


def export(part: str, au: float = 2.61) -> bytes:
    """A small English export whose content differs by part and value."""
    return (
        f"Application;Au/Ag925\nPart;{part}\nReading;Au [µm]\n1;{au:.2f}\n2;{au + 0.1:.2f}\n"
    ).encode()


FAST = {"settle_s": 0.2, "scan_interval_s": 0.02}


def make(folder: Path, name: str = "xrf-1", **options) -> XrfExport:
    opts = XrfExportOptions.model_validate({**FAST, **options})
    driver = build(InstrumentSettings(name, f"dir://{folder}"), opts)
    driver.connect()
    return driver


def receive_until(driver: XrfExport, seconds: float = 3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples = driver.receive(0.1)
        if samples:
            return samples
    return []


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "exports"
    path.mkdir()
    return path


def test_ingests_an_export_and_moves_it_to_processed(folder):
    (folder / "a.csv").write_bytes(EXPORT)
    driver = make(folder)
    samples = receive_until(driver)
    assert [(s.channel, s.value, s.unit) for s in samples[:2]] == [
        ("layer_Au", 2.61, "µm"),
        ("layer_Ni", 3.05, "µm"),
    ]
    assert len(samples) == 6
    extra = dict(samples[0].extra)
    assert extra["source"] == "a.csv"
    assert len(str(extra["file_sha256"])) == 16
    assert extra["application"] == "Au/Ni/CuZn"
    assert samples[0].instrument == "xrf-1"
    assert samples[0].instrument_time == "2026-03-14T10:22:05"
    assert len({s.time_ns for s in samples}) == 3  # one time per reading
    # Recorded as ingested only when the runtime comes back for more (it has the samples then):
    assert (folder / "a.csv").exists()
    assert driver.receive(0.1) == []
    assert not (folder / "a.csv").exists()
    assert (folder / "processed" / "a.csv").read_bytes() == EXPORT
    driver.close()
    driver.close()


def test_a_half_written_file_is_read_only_once_it_has_settled(folder):
    half = len(EXPORT) // 2
    path = folder / "slow.csv"
    driver = make(folder, settle_s=0.3)

    def write_slowly():
        with path.open("wb") as fh:
            for i in range(half, len(EXPORT) + 1, 40):
                fh.seek(0)
                fh.write(EXPORT[:i])
                fh.flush()
                time.sleep(0.1)
            fh.seek(0)
            fh.write(EXPORT)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        samples = receive_until(driver, 5.0)
    finally:
        writer.join()
    assert len(samples) == 6  # the whole file, never a half
    assert not (folder / "rejected").exists()


def test_a_file_growing_is_not_ready(folder):
    path = folder / "grow.csv"
    path.write_bytes(EXPORT[:40])
    driver = make(folder, settle_s=0.3)
    assert driver.receive(0.2) == []
    path.write_bytes(EXPORT[:90])  # changed: settling starts again
    assert driver.receive(0.2) == []
    path.write_bytes(EXPORT)
    assert len(receive_until(driver)) == 6


def test_rename_into_place_with_settle_zero(folder):
    driver = make(folder, settle_s=0)
    tmp = folder / "b.csv.tmp"
    tmp.write_bytes(EXPORT[:50])  # a temporary name is never touched
    assert driver.receive(0.1) == []
    tmp.write_bytes(EXPORT)
    tmp.rename(folder / "b.csv")
    started = time.monotonic()
    assert len(driver.receive(1.0)) == 6
    assert time.monotonic() - started < 0.5


def test_a_copy_under_another_name_is_a_duplicate(folder, caplog):
    caplog.set_level(logging.INFO, logger="drivers.xrf_export")
    driver = make(folder)
    (folder / "a.csv").write_bytes(export("P1"))
    assert len(receive_until(driver)) == 2
    (folder / "a (copy).csv").write_bytes(export("P1"))
    assert receive_until(driver, 1.0) == []
    assert (folder / "processed" / "a (copy).csv").exists()
    assert "duplicate of a.csv" in caplog.text
    (folder / "a.csv").write_bytes(export("P1", au=2.0))  # same name, new content: new
    samples = receive_until(driver)
    assert [s.value for s in samples] == [2.0, 2.1]
    driver.close()
    assert (folder / "processed" / "a-1.csv").exists()


def test_a_restart_does_not_ingest_again(folder):
    (folder / "a.csv").write_bytes(export("P1"))
    driver = make(folder, after="mark")
    assert len(receive_until(driver)) == 2
    assert (folder / "a.csv").exists()  # marked, left in place
    assert receive_until(driver, 0.5) == []
    driver.close()
    again = make(folder, after="mark")
    assert receive_until(again, 0.6) == []


def test_a_restart_in_move_mode_skips_the_same_content_put_back(folder):
    (folder / "a.csv").write_bytes(export("P1"))
    driver = make(folder)
    assert len(receive_until(driver)) == 2
    driver.close()
    (folder / "again.csv").write_bytes(export("P1"))
    restarted = make(folder)
    assert receive_until(restarted, 0.6) == []
    assert (folder / "processed" / "again.csv").exists()


def test_mark_mode_ingests_a_resave_with_new_content(folder):
    path = folder / "a.csv"
    path.write_bytes(export("P1"))
    driver = make(folder, after="mark")
    assert len(receive_until(driver)) == 2
    path.write_bytes(export("P1", au=3.0))
    assert [s.value for s in receive_until(driver)] == [3.0, 3.1]


def test_state_file_is_private_and_survives(folder):
    (folder / "a.csv").write_bytes(export("P1"))
    driver = make(folder)
    receive_until(driver)
    driver.close()
    state_dir = folder / ".hallmark"
    state = state_dir / "xrf-export-state.json"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    data = json.loads(state.read_text())
    assert data["schema"] == 1
    assert [v["name"] for v in data["hashes"].values()] == ["a.csv"]


def test_a_state_file_elsewhere(folder, tmp_path):
    state = tmp_path / "var" / "xrf.json"
    (folder / "a.csv").write_bytes(export("P1"))
    driver = make(folder, state_file=str(state))
    receive_until(driver)
    driver.close()
    assert state.exists()
    assert not (folder / ".hallmark").exists()


def test_a_corrupt_state_file_is_set_aside(folder, caplog):
    state_dir = folder / ".hallmark"
    state_dir.mkdir()
    (state_dir / "xrf-export-state.json").write_text("{not json")
    (folder / "a.csv").write_bytes(export("P1"))
    driver = make(folder)
    assert len(receive_until(driver)) == 2
    assert list(state_dir.glob("xrf-export-state.json.corrupt-*"))
    assert "unreadable" in caplog.text


def test_a_bad_file_is_set_aside_with_a_reason(folder):
    (folder / "bad.csv").write_bytes(b"Reading;Au [\xb5m]\r\n1;2,6x\r\n")
    driver = make(folder)
    with pytest.raises(ProtocolError, match=r"bad.csv: set aside: .*'2,6x' is not a number"):
        receive_until(driver)
    assert (folder / "rejected" / "bad.csv").exists()
    reason = (folder / "rejected" / "bad.csv.reason.txt").read_text()
    assert "'2,6x' is not a number" in reason
    assert "Nothing from this file was recorded" in reason
    assert driver.receive(0.3) == []  # carries on
    (folder / "good.csv").write_bytes(export("P2"))
    assert len(receive_until(driver)) == 2


def test_a_file_in_an_unknown_unit_is_set_aside(folder):
    (folder / "mass.csv").write_bytes("Reading;Au [mg/cm²]\n1;12,1\n".encode())
    driver = make(folder)
    with pytest.raises(UnitError, match="not a thickness unit"):
        receive_until(driver)
    assert (folder / "rejected" / "mass.csv.reason.txt").exists()


def test_binary_and_huge_files_are_refused(folder):
    (folder / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (folder / "huge.txt").write_bytes(export("P1") + b"x" * 5000)
    driver = make(folder, max_bytes=4000)
    reasons = []
    for _ in range(2):
        with pytest.raises(ProtocolError) as info:
            receive_until(driver)
        reasons.append(str(info.value))
    assert any("binary" in r for r in reasons)
    assert any("larger than max_bytes" in r for r in reasons)
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == [
        "huge.txt",
        "huge.txt.reason.txt",
        "photo.csv",
        "photo.csv.reason.txt",
    ]


def test_a_symlink_out_of_the_folder_is_refused_and_its_target_untouched(folder, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_bytes(export("P1"))
    os.symlink(secret, folder / "evil.csv")
    driver = make(folder)
    with pytest.raises(ProtocolError, match=r"symbolic link .*outside the watched folder"):
        receive_until(driver)
    assert secret.read_bytes() == export("P1")
    assert (folder / "rejected" / "evil.csv").is_symlink()
    assert "symbolic link" in (folder / "rejected" / "evil.csv.reason.txt").read_text()
    assert receive_until(driver, 0.5) == []


def test_a_fifo_is_refused_without_blocking(folder):
    os.mkfifo(folder / "pipe.csv")
    driver = make(folder)
    started = time.monotonic()
    with pytest.raises(ProtocolError, match="not a regular file"):
        driver.receive(1.0)
    assert time.monotonic() - started < 1.0
    assert (folder / "rejected" / "pipe.csv.reason.txt").exists()


def test_mark_mode_leaves_bad_files_and_writes_the_reason_aside(folder):
    (folder / "bad.csv").write_bytes(b"hello")
    driver = make(folder, after="mark")
    with pytest.raises(ProtocolError, match="no readings"):
        receive_until(driver)
    assert (folder / "bad.csv").exists()
    assert (folder / ".hallmark" / "rejected" / "bad.csv.reason.txt").exists()
    assert receive_until(driver, 0.5) == []  # not refused again and again


def test_a_vanished_share_raises_transport_error_then_its_backlog_comes_in_order(folder):
    driver = make(folder)
    assert driver.receive(0.05) == []
    away = folder.with_name("unmounted")
    folder.rename(away)
    with pytest.raises(TransportError, match=r"not there|cannot list"):
        driver.receive(0.2)
    driver.close()
    with pytest.raises(TransportError, match="is the share mounted"):
        driver.connect()
    # the XRF PC kept exporting into the share meanwhile; names sort against time order
    now = time.time()
    for i, name in enumerate(["c.csv", "a.csv", "b.csv"]):
        (away / name).write_bytes(export(name))
        os.utime(away / name, (now - 100 + i, now - 100 + i))
    away.rename(folder)
    driver.connect()
    parts = []
    for _ in range(3):
        samples = receive_until(driver)
        parts.append(dict(samples[0].extra)["part"])
    assert parts == ["c.csv", "a.csv", "b.csv"]


def test_receive_keeps_its_time_bound(folder):
    driver = make(folder, scan_interval_s=0.5)
    for timeout in (0.0, 0.05, 0.3):
        started = time.monotonic()
        assert driver.receive(timeout) == []
        assert time.monotonic() - started < timeout + 0.1


def test_receive_before_connect_is_a_transport_error(folder):
    opts = XrfExportOptions()
    driver = build(InstrumentSettings("x", str(folder)), opts)
    with pytest.raises(TransportError, match="not connected"):
        driver.receive(0.1)


def test_a_file_with_two_series_says_which(folder):
    text = "Part;A\nReading;Au [µm]\n1;2,5\n\nPart;B\nReading;Au [µm]\n1;2,4\n"
    (folder / "two.csv").write_bytes(text.encode())
    samples = receive_until(make(folder))
    assert [(dict(s.extra)["part"], dict(s.extra)["series"]) for s in samples] == [
        ("A", 1),
        ("B", 2),
    ]
    assert samples[0].time_ns < samples[1].time_ns


def test_a_unit_switch_is_flagged(folder):
    driver = make(folder)
    (folder / "a.csv").write_bytes(b"Reading;Au [um]\n1;2,5\n")
    assert receive_until(driver)[0].flags == ()
    (folder / "b.csv").write_bytes(b"Reading;Au [uin]\n1;98\n")
    (s,) = receive_until(driver)
    assert (s.value, s.unit, s.flags) == (98.0, "µin", ("unit_changed:µm->µin",))


# -- address, options, registry ----------------------------------------------------------------


def test_address_forms():
    assert parse_dir_address("dir:///srv/xrf-exports") == Path("/srv/xrf-exports")
    assert parse_dir_address("dir:///mnt/XRF%20Exports") == Path("/mnt/XRF Exports")
    assert parse_dir_address("/srv/xrf") == Path("/srv/xrf")
    for bad in ("exports", "dir://srv/x", "smb://host/share", ""):
        with pytest.raises(ValueError, match=r"absolute|dir:///"):
            parse_dir_address(bad)


def instrument(**fields) -> InstrumentConfig:
    base = {"name": "xrf-1", "driver": "xrf_export", "address": "dir:///srv/xrf"}
    return InstrumentConfig.model_validate({**base, **fields})


def test_registry_entry_and_config_checks(folder):
    entry = REGISTRY["xrf_export"]
    assert (entry.family, entry.mode) == ("thickness", "push")
    assert check_instrument(instrument()) == []
    problems = dict(
        check_instrument(
            instrument(
                address="exports",
                poll_interval=1.0,
                options={"after": "delete", "template": "nope", "colour": 1},
            )
        )
    )
    assert "absolute" in problems["address"]
    assert "pushes its results" in problems["poll_interval"]
    assert "options.after" in problems
    assert "misspelt" in problems["options.colour"]
    problems = dict(check_instrument(instrument(options={"template": "nope"})))
    assert "cannot read" in problems["options.template"]
    driver = build_driver(instrument(address=str(folder), options=FAST))
    driver.connect()
    (folder / "a.csv").write_bytes(export("P1"))
    assert len(receive_until(driver)) == 2  # type: ignore[arg-type]
    driver.close()


def test_a_crash_before_the_samples_are_taken_reads_the_file_again(folder):
    (folder / "a.csv").write_bytes(export("P1"))
    first = make(folder)
    assert len(receive_until(first)) == 2
    # the daemon dies here: the samples were handed out but never came back for more
    second = make(folder)
    assert len(receive_until(second)) == 2
    second.close()
    assert (folder / "processed" / "a.csv").exists()
