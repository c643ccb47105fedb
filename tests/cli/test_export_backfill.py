"""Long work with progress: `daq export --out`, `daq backfill` into a real influxd, and the
progress reporter itself."""

import io
import shlex

from daq.cli import main
from daq.journal import Journal
from daq.model import Point
from daq.progress import Progress


def fill(path, n):
    with Journal(path) as j:
        tags = {"bench": "b1", "instrument": "c1", "feature": "temperature"}
        t0 = 1_700_000_000 * 10**9
        j.append([
            Point("chamber", tags, {"value": 35.0 + i / 1000, "unit": "°C", "status": "pass"},
                  t0 + i)
            for i in range(n)
        ])  # fmt: skip


def test_plain_progress_reports_each_tenth_once():
    out = io.StringIO()
    with Progress("export", 200, mode="on", stream=out) as p:
        for _ in range(200):
            p.advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "export: 10 % (20 of 200 rows)"
    assert lines[-1] == "export: 100 % (200 of 200 rows)"
    assert len(lines) == 10


def test_progress_is_silent_off_a_terminal_unless_asked():
    out = io.StringIO()
    with Progress("export", 10, stream=out) as p:
        p.advance(10)
    assert out.getvalue() == ""


def test_export_to_a_file_with_progress(tmp_path, capsys):
    fill(tmp_path / "j.db", 1234)
    target = tmp_path / "out.lp"
    cmd = f"export --journal {tmp_path / 'j.db'} --format lp --out {target} --progress"
    assert main(shlex.split(cmd)) == 0
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1234
    err = capsys.readouterr().err
    assert "export: 100 % (1234 of 1234 rows)" in err


def test_export_to_an_unwritable_place_says_so(tmp_path, capsys):
    fill(tmp_path / "j.db", 3)
    cmd = f"export --journal {tmp_path / 'j.db'} --format lp --out {tmp_path / 'no' / 'x.lp'}"
    assert main(shlex.split(cmd)) == 1
    assert "cannot write" in capsys.readouterr().err


def bench(tmp_path, influx=""):
    config = tmp_path / "bench.toml"
    config.write_text(f'schema = 1\n[bench]\nid = "b1"\n[journal]\npath = "j.db"\n{influx}')
    return config


def test_backfill_sends_the_backlog_and_copies_to_another_database(tmp_path, influxd, capsys):
    fill(tmp_path / "j.db", 3000)
    config = bench(tmp_path, f'[influx]\nurl = "{influxd.url}"\ndatabase = "bf_main"\n')
    assert main(["backfill", str(config), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "3000 row(s) to send" in err and "backfill: 100 %" in err
    assert influxd.count("chamber", "bf_main") == 3000
    assert main(["backfill", str(config)]) == 0  # nothing left: a second run sends nothing
    assert "0 row(s) to send" in capsys.readouterr().err
    # The whole journal into a new central database: its own cursor starts at the first row.
    assert main(["backfill", str(config), "--to", influxd.url, "--database", "bf_copy"]) == 0
    assert influxd.count("chamber", "bf_copy") == 3000
    influxd.drop_database("bf_main")
    influxd.drop_database("bf_copy")


def test_backfill_to_a_database_that_is_down_loses_nothing(tmp_path, capsys):
    fill(tmp_path / "j.db", 10)
    config = bench(tmp_path)
    cmd = ["backfill", str(config), "--to", "http://127.0.0.1:9", "--database", "x",
           "--give-up-after", "0.5"]  # fmt: skip
    assert main(cmd) == 1
    err = capsys.readouterr().err
    assert "10 row(s) still wait in the journal, nothing is lost" in err
    assert main(["backfill", str(config)]) == 1
    assert "names no database" in capsys.readouterr().err
