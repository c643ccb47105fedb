"""A salt-spray run accounted by the running daemon: a simulated F4T chamber polled over Modbus
TCP, a run with a specimen, and an operator's pH entry made by `daq chamber solution` while the
daemon runs; the daemon's `exposure` points per run and specimen agree with a replay."""

import asyncio
import time

import pytest

from daq.app import run_bench
from daq.cli import main
from daq.config import parse_config
from daq.journal import Journal
from daq.runs import RunAccount, RunStore, cabinets, max_gap_s
from drivers.registry import check_instrument
from simulators.watlow_f4t import running_chamber


def config(tmp_path, address):
    raw = {
        "schema": 1,
        "bench": {"id": "salt-spray-room", "health_interval": 0.5, "reconnect_max": 0.4},
        "journal": {"path": str(tmp_path / "j.db"), "synchronous": "normal"},
        "instrument": [
            {
                "name": "zone",
                "driver": "watlow_f4t",
                "address": address,
                "poll_interval": 0.1,
                "timeout": 0.5,
                "limits": {
                    "temperature": {"low": 33.0, "high": 37.0},
                    "ph": {"low": 6.5, "high": 7.2},
                },
            }
        ],
        "cabinet": [{"name": "nss-1", "zone": "zone", "max_gap_s": 1.0}],
    }
    path = tmp_path / "bench.toml"  # the same bench, for the operator's `daq chamber`
    path.write_text(
        'schema = 1\n[bench]\nid = "salt-spray-room"\n'
        + f'[journal]\npath = "{tmp_path / "j.db"}"\nsynchronous = "normal"\n'
        + f'[[instrument]]\nname = "zone"\ndriver = "watlow_f4t"\naddress = "{address}"\n'
        + "poll_interval = 0.1\n[instrument.limits.temperature]\nlow = 33.0\nhigh = 37.0\n"
        + "[instrument.limits.ph]\nlow = 6.5\nhigh = 7.2\n"
        + '[[cabinet]]\nname = "nss-1"\nzone = "zone"\nmax_gap_s = 1.0\n'
    )
    return parse_config(raw, "test.toml", check_instrument), path


async def test_the_daemon_accounts_runs_and_specimens(tmp_path, capsys):
    with running_chamber(seed=11) as chamber:
        cfg, path = config(tmp_path, chamber.address)
        with RunStore(tmp_path / "j.db") as runs:
            runs.start("R-1", "nss-1", "ASTM B117", 24.0, time.time_ns())
            runs.load("R-1", "S1", "VRM-RING-001", "B-7", now_ns=time.time_ns(), valid_s=0.0)

        async def operator():
            await asyncio.sleep(2.0)
            code = await asyncio.to_thread(
                main, ["chamber", "solution", "--cabinet", "nss-1", "--ph", "7.6",
                       "--config", str(path), "--by", "tech"],
            )  # fmt: skip
            assert code == 0

        entry = asyncio.create_task(operator())
        await run_bench(cfg, tmp_path, duration=4.0)
        await entry
    assert "ph = 7.6 pH: FAIL" in capsys.readouterr().out

    with Journal(tmp_path / "j.db", readonly=True) as j:
        exposure = j.latest(1000, "exposure")
        run_points = [
            p for p in exposure if p.tags.get("run") == "R-1" and "specimen" not in p.tags
        ]
        specimen = [p for p in exposure if p.tags.get("specimen") == "S1"]
        assert len(run_points) >= 4 and specimen
        assert specimen[-1].tags["sku"] == "VRM-RING-001" and specimen[-1].tags["lot"] == "B-7"
        hours = [p.fields["valid_hours"] for p in run_points]
        assert hours == sorted(hours) and hours[-1] > 0
        # After the bad pH nothing more counts, and the loss is put down to the pH.
        assert run_points[-1].fields["lost_hours_ph"] > 0
        assert run_points[-1].fields["valid_hours"] < 2.5 / 3600

    with Journal(tmp_path / "j.db", readonly=True) as j, RunStore(tmp_path / "j.db") as runs:
        (run,) = runs.runs(active_only=True)
        cab = cabinets(cfg)["nss-1"]
        replay = RunAccount.of(run, cab, max_gap_s(cfg, cab))
        replay.update(j)
    # The daemon's last figure was taken before its last readings: never more than the replay.
    assert run_points[-1].fields["valid_hours"] == pytest.approx(replay.valid_s / 3600, abs=1e-4)
