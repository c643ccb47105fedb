"""The security checklist (docs/security.md), one test (or more) per item.

1. No secret in the logs, the journal or the status file.
2. TLS verification is on by default; a self-signed server is refused in words.
3. Files Hallmark creates are private: 0600 files in 0700 folders.
4. Config paths: relative ones start at the config's folder; names meant to stay inside a
   folder cannot leave it.
5. Hostile XRF export files are refused with a reason and moved to rejected/.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daq.app import run_bench
from daq.config import InfluxConfig, load_config, parse_config
from daq.errors import ConfigError, ProtocolError
from daq.instrument import InstrumentSettings
from daq.status import status_path
from drivers.registry import check_instrument
from drivers.xrf_export import XrfExport, XrfExportOptions, build
from simulators.watlow_f4t import running_chamber
from tests.servers import InfluxServer, VictoriaMetricsServer, make_self_signed_cert

TOKEN = "hmk-tok-7f3a9c1e5b2d4680aa55"  # a value that appears nowhere else
PASSWORD = InfluxServer.admin_password


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def bench(tmp_path: Path, chamber: str, influx: dict | None, journal: Path | None = None):
    raw: dict = {
        "schema": 1,
        "bench": {"id": "sec-1", "health_interval": 0.5, "reconnect_max": 0.5},
        "journal": {"path": str(journal or tmp_path / "j.db"), "synchronous": "normal"},
        "instrument": [
            {"name": "chamber-1", "driver": "watlow_f4t", "address": chamber,
             "poll_interval": 0.2, "timeout": 0.5},
        ],
    }  # fmt: skip
    if influx is not None:
        raw["influx"] = {"flush_interval": 0.2, "timeout": 2.0, **influx}
    return parse_config(raw, "bench.toml", check_instrument)


def files_below(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def every_byte_mentioning(secrets: list[str], folder: Path, log: str) -> list[str]:
    """Where any form of a secret appears: the log text, or a file below ``folder``."""
    forms = set(secrets)
    for s in secrets:
        forms.add(base64.b64encode(s.encode()).decode())
        forms.add(base64.b64encode(f"{InfluxServer.admin_user}:{s}".encode()).decode())
    found = [f"log: {f}" for f in forms if f in log]
    for path in files_below(folder):
        data = path.read_bytes()
        found += [f"{path}: {f}" for f in forms if f.encode() in data]
    return found


# -- 1. secrets ------------------------------------------------------------------------------


async def test_secrets_stay_out_of_logs_journal_and_status(tmp_path, caplog, env_var):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()
    (secret_dir / "password").write_text(PASSWORD + "\n", encoding="utf-8")
    (secret_dir / "token").write_text(TOKEN + "\n", encoding="utf-8")
    env_var("HALLMARK_TEST_TOKEN", TOKEN)
    influxd = InfluxServer(tmp_path / "influxd", auth_enabled=True)
    vm = VictoriaMetricsServer(tmp_path / "vm")
    vm_auth = VictoriaMetricsServer(tmp_path / "vm-auth", http_auth=("hallmark", "other-pw-1"))
    for d in (influxd.base_dir, vm.base_dir, vm_auth.base_dir):
        d.mkdir()
    influxd.start()
    vm.start()
    vm_auth.start()
    try:
        influxd.create_database("lab")
        targets = {
            # v1, password from a file, accepted by an InfluxDB with authentication on
            "v1": {"url": influxd.url, "database": "lab", "username": influxd.admin_user,
                   "password_file": str(secret_dir / "password")},
            # v2, token from an environment variable, accepted (VictoriaMetrics takes any)
            "v2-env": {"url": vm.url, "api": "v2", "bucket": "lab", "org": "qc",
                       "token_env": "HALLMARK_TEST_TOKEN"},
            # v2, token from a file, refused with 401: the error path must not repeat it
            "v2-refused": {"url": vm_auth.url, "api": "v2", "bucket": "lab", "org": "qc",
                           "token_file": str(secret_dir / "token")},
        }  # fmt: skip
        with running_chamber(seed=3) as chamber:
            for name, influx in targets.items():
                journal = run_dir / name / "j.db"
                config = bench(tmp_path, chamber.address, influx, journal)
                await run_bench(config, run_dir / name, duration=2.5)
        assert influxd.count("chamber", "lab") > 0  # the password was used and accepted
        assert exported_points(vm) > 0  # and the token
        log = "\n".join(
            f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
        )
        assert "refused the credentials" in log  # the 401 was met and reported...
        assert every_byte_mentioning([TOKEN, PASSWORD], run_dir, log) == []  # ...without it
        for name in targets:
            assert status_path(run_dir / name / "j.db").is_file()
        # the search can fail: a secret planted in a file or the log is found
        (run_dir / "canary.bin").write_bytes(b"\x00" + TOKEN.encode() + b"\x00")
        assert every_byte_mentioning([TOKEN], run_dir, "") == [f"{run_dir / 'canary.bin'}: {TOKEN}"]
        assert every_byte_mentioning([PASSWORD], tmp_path / "nothing", f"x {PASSWORD} y")
    finally:
        for server in (influxd, vm, vm_auth):
            server.stop()


def exported_points(vm: VictoriaMetricsServer, limit_s: float = 20.0) -> int:
    """Points VictoriaMetrics holds (it shows new data about a second after a flush)."""
    deadline = time.monotonic() + limit_s
    while True:
        vm.force_flush()
        count = sum(len(s["values"]) for s in vm.export('{__name__=~"chamber.*"}'))
        if count or time.monotonic() > deadline:
            return count
        threading.Event().wait(0.25)


@pytest.fixture
def env_var():
    """Set environment variables for one test and put the old values back after it."""
    saved: dict[str, str | None] = {}

    def put(name: str, value: str) -> None:
        saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    try:
        yield put
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


# -- 2. TLS ----------------------------------------------------------------------------------


def test_tls_verification_is_on_by_default():
    assert InfluxConfig.model_fields["verify_tls"].default is True
    config = parse_config(
        {"schema": 1, "bench": {"id": "b"}, "influx": {"url": "https://db:8086", "database": "x"}},
        "bench.toml",
    )
    assert config.influx is not None and config.influx.verify_tls is True


async def test_a_self_signed_server_is_refused_in_words_unless_verify_tls_is_false(
    tmp_path, caplog
):
    caplog.set_level(logging.WARNING)
    pem = make_self_signed_cert(tmp_path)
    server_dir = tmp_path / "influxd"
    server_dir.mkdir()
    with InfluxServer(server_dir, tls_cert=pem) as server, running_chamber(seed=4) as chamber:
        assert server.url.startswith("https://")
        server.create_database("tls")
        strict = bench(tmp_path, chamber.address, {"url": server.url, "database": "tls"},
                       tmp_path / "strict" / "j.db")  # fmt: skip
        await run_bench(strict, tmp_path, duration=2.0)
        log = "\n".join(r.getMessage() for r in caplog.records)
        assert "certificate" in log and "verify_tls = false" in log, log
        assert server.count("chamber", "tls") == 0
        trusting = bench(
            tmp_path,
            chamber.address,
            {"url": server.url, "database": "tls", "verify_tls": False},
            tmp_path / "trusting" / "j.db",
        )
        await run_bench(trusting, tmp_path, duration=2.0)
        assert server.count("chamber", "tls") > 0


# -- 3. private files ------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_journal_status_and_xrf_state_are_private(tmp_path):
    exports = tmp_path / "xrf-share"
    exports.mkdir(mode=0o777)
    (exports / "a.csv").write_bytes(b"Application;Au\nReading;Au [\xc2\xb5m]\n1;2,61\n")
    with umask(0o022), running_chamber(seed=5) as chamber:  # a usual, permissive umask
        config = bench(tmp_path, chamber.address, None, tmp_path / "var" / "hallmark" / "j.db")
        config = config.model_copy(
            update={
                "instrument": [
                    *config.instrument,
                    *parse_config(
                        {"schema": 1, "bench": {"id": "b"}, "instrument": [
                            {"name": "xrf-1", "driver": "xrf_export", "address": str(exports),
                             "options": {"settle_s": 0.1, "scan_interval_s": 0.05}}]},
                        "bench.toml",
                        check_instrument,
                    ).instrument,
                ]
            }
        )  # fmt: skip
        await run_bench(config, tmp_path, duration=2.0)
    journal_dir = tmp_path / "var" / "hallmark"
    assert mode(journal_dir) == 0o700
    created = files_below(journal_dir)
    assert {p.name for p in created} >= {"j.db", "j.db.status.json"}
    for path in created:  # the journal, its -wal / -shm, the status file
        assert mode(path) == 0o600, f"{path} is {oct(mode(path))}"
    state_dir = exports / ".hallmark"
    assert mode(state_dir) == 0o700
    assert [mode(p) for p in files_below(state_dir)] == [0o600]
    assert (exports / "processed" / "a.csv").is_file()  # the file was really ingested


# -- 4. config paths -------------------------------------------------------------------------


def test_relative_secret_files_start_at_the_config_folder(tmp_path):
    etc = tmp_path / "etc" / "hallmark"
    etc.mkdir(parents=True)
    (etc / "influx-token").write_text(TOKEN + "\n", encoding="utf-8")
    (etc / "bench.toml").write_text(
        'schema = 1\n[bench]\nid = "b"\n[influx]\nurl = "http://127.0.0.1:8086"\napi = "v2"\n'
        'bucket = "lab"\norg = "qc"\ntoken_file = "influx-token"\n',
        encoding="utf-8",
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    cwd = Path.cwd()
    os.chdir(elsewhere)  # as systemd would start it: not from the config's folder
    try:
        config = load_config(etc / "bench.toml", check_instrument)
    finally:
        os.chdir(cwd)
    assert config.influx is not None
    assert config.influx.token_file == etc / "influx-token"
    assert config.journal_path(etc) == etc / "hallmark-journal.db"
    assert config.specs_path(etc) == etc / "specs"


def test_a_missing_relative_secret_file_is_named_with_its_full_path(tmp_path):
    (tmp_path / "bench.toml").write_text(
        'schema = 1\n[bench]\nid = "b"\n[influx]\nurl = "http://127.0.0.1:8086"\n'
        'database = "lab"\nusername = "u"\npassword_file = "nope/secret"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bench.toml")
    assert f"no such file: {tmp_path / 'nope' / 'secret'}" in str(info.value)


@pytest.mark.parametrize("name", ["..", "../elsewhere", "/tmp/x", ".hidden", "a/b", ""])
@pytest.mark.parametrize("key", ["processed_dir", "rejected_dir"])
def test_xrf_folders_cannot_leave_the_watched_folder(key, name):
    with pytest.raises(ValueError):
        XrfExportOptions.model_validate({key: name})


def test_xrf_state_file_must_be_absolute():
    with pytest.raises(ValueError, match="absolute"):
        XrfExportOptions.model_validate({"state_file": "../state.json"})


def test_xrf_export_folder_must_be_absolute():
    problems = check_instrument(
        parse_config(
            {"schema": 1, "bench": {"id": "b"}, "instrument": [
                {"name": "xrf-1", "driver": "xrf_export", "address": "../exports"}]},
            "bench.toml",
        ).instrument[0]
    )  # fmt: skip
    assert problems and problems[0][0] == "address" and "absolute" in problems[0][1]


# -- 5. hostile XRF export files -------------------------------------------------------------

GOOD = b"Application;Au/Ag925\nReading;Au [\xc2\xb5m]\n1;2.61\n2;2.70\n"


def xrf(folder: Path, **options) -> XrfExport:
    opts = XrfExportOptions.model_validate({"settle_s": 0.0, "scan_interval_s": 0.02, **options})
    driver = build(InstrumentSettings("xrf-1", f"dir://{folder}"), opts)
    driver.connect()
    return driver


def drain(driver: XrfExport, seconds: float = 2.0) -> tuple[int, list[str]]:
    """Receive until quiet: (samples ingested, errors raised)."""
    samples, errors = 0, []
    deadline = time.monotonic() + seconds
    quiet = 0
    while time.monotonic() < deadline and quiet < 5:
        try:
            got = driver.receive(0.05)
        except ProtocolError as exc:
            errors.append(str(exc))
            quiet = 0
            continue
        samples += len(got)
        quiet = 0 if got else quiet + 1
    return samples, errors


@pytest.fixture
def share(tmp_path):
    folder = tmp_path / "share"
    folder.mkdir()
    return folder


def test_a_huge_file_is_refused_without_being_read(share):
    with open(share / "huge.csv", "wb") as fh:
        fh.truncate(50_000_000)  # sparse: 50 MB on paper, nothing on disk
    driver = xrf(share, max_bytes=1_000_000)
    try:
        samples, errors = drain(driver)
    finally:
        driver.close()
    assert samples == 0
    assert len(errors) == 1 and "larger than max_bytes" in errors[0]
    assert (share / "rejected" / "huge.csv").is_file()
    assert "larger than max_bytes" in (share / "rejected" / "huge.csv.reason.txt").read_text()


def test_a_binary_file_is_refused(share):
    (share / "scan.csv").write_bytes(bytes(range(256)) * 8)
    driver = xrf(share)
    try:
        samples, errors = drain(driver)
    finally:
        driver.close()
    assert samples == 0 and len(errors) == 1 and "binary" in errors[0]
    assert (share / "rejected" / "scan.csv").is_file()


def test_a_symlink_leaving_the_folder_is_refused_and_its_target_left_alone(share, tmp_path):
    secret = tmp_path / "outside" / "passwd.csv"
    secret.parent.mkdir()
    secret.write_bytes(GOOD)
    (share / "link.csv").symlink_to(secret)
    driver = xrf(share)
    try:
        samples, errors = drain(driver)
    finally:
        driver.close()
    assert samples == 0
    assert len(errors) == 1 and "symbolic link" in errors[0] and "outside" in errors[0]
    moved = share / "rejected" / "link.csv"
    assert moved.is_symlink() and secret.read_bytes() == GOOD  # the link moved, not the target


def test_a_fifo_is_refused_without_blocking(share):
    os.mkfifo(share / "pipe.csv")
    driver = xrf(share)
    try:
        samples, errors = drain(driver)
    finally:
        driver.close()
    assert samples == 0 and len(errors) == 1 and "not a regular file" in errors[0]
    assert stat.S_ISFIFO(os.lstat(share / "rejected" / "pipe.csv").st_mode)


@pytest.mark.parametrize("name", ["..csv", "...csv", "..\\..\\x.csv", ".~lock.a.csv#"])
def test_hidden_names_are_left_alone(share, name):
    # A directory entry never holds a "/", so "../x.csv" cannot be a name here; names starting
    # with a dot are hidden files (the ignore list) and are not touched at all.
    (share / name).write_bytes(GOOD)
    driver = xrf(share)
    try:
        samples, errors = drain(driver, 0.5)
    finally:
        driver.close()
    assert samples == 0 and errors == []
    assert (share / name).read_bytes() == GOOD


@pytest.mark.parametrize(
    "name", ["-rf.csv", "a..\\..\\x.csv", "a b;c'd\".csv", "ünï©ødé.csv", "x" * 250 + ".csv"]
)
def test_odd_names_stay_inside_the_folder(share, name):
    (share / name).write_bytes(GOOD)
    driver = xrf(share)
    try:
        samples, errors = drain(driver)
    finally:
        driver.close()
    assert samples == 2 and errors == []
    assert (share / "processed" / name).is_file()
    assert sorted(p.name for p in share.parent.iterdir()) == ["share"]  # nothing written beside


def test_a_name_with_a_newline_cannot_forge_log_lines(share, caplog):
    caplog.set_level(logging.INFO)
    name = "bad\nWARNING forged: all good.csv"
    (share / name).write_bytes(b"\x00\x01binary")
    driver = xrf(share)
    try:
        samples, errors = drain(driver)
    finally:
        driver.close()
    assert samples == 0 and len(errors) == 1
    assert "\n" not in errors[0] and "bad\\nWARNING" in errors[0]
    for record in caplog.records:
        assert "\n" not in record.getMessage(), record.getMessage()
    assert (share / "rejected" / name).is_file()
    reason = (share / "rejected" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert "File:        'bad\\nWARNING forged: all good.csv'" in reason
