"""The demo's parts that do not need the simulators: the generated bench config is valid, the
scenarios scale with --duration, the operator's steps are real commands, the live view draws."""

import argparse
import shlex
import tomllib

from rich.console import Console

from daq import demo
from daq.cli import _parser
from daq.config import parse_config
from daq.model import LotContext, Measurement, Reading, Sample, Verdict
from drivers.registry import check_instrument


def args(**kw):
    base = {"influx": None, "bucket": None, "org": None, "token_env": None,
            "influx_db": "hallmark"}  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


ADDRESSES = {"xrf": "/dev/pts/91", "pull": "/dev/pts/92", "prong": "/dev/pts/93",
             "torque": "/dev/pts/94", "chamber": "tcp://127.0.0.1:15020"}  # fmt: skip


def test_the_generated_bench_is_a_valid_config(tmp_path):
    text = demo._config_text(args(influx="http://127.0.0.1:8086"), tmp_path / "j.db", ADDRESSES)
    config = parse_config(tomllib.loads(text), "demo.toml", check_instrument)
    assert [i.driver for i in config.instrument] == [
        "xrf_telegram", "mark10", "mark10", "mark10", "watlow_f4t"]  # fmt: skip
    assert config.cabinet[0].zone == "salt-spray-1"
    assert config.influx is not None and config.influx.database == "hallmark"


def test_scenarios_scale_with_the_duration():
    text = demo._scenario("x", {"profile": "M5-100"}, demo._pull_faults(), 0.5)
    faults = tomllib.loads(text)["fault"]
    assert [f["start"] for f in faults][:2] == [3.0, 7.0]
    assert {f["soldered"] for f in faults} == {True, False}
    chamber = tomllib.loads(demo._scenario("c", {}, demo._chamber_faults(), 0.5))["fault"]
    assert chamber[0] == {"kind": "excursion", "start": 44.0, "duration": 3.0, "delta": -7.0}


def test_every_operator_step_is_a_command_the_cli_accepts():
    parser = _parser()
    steps = demo._steps(1.0)
    assert [t for t, _ in steps] == sorted(t for t, _ in steps)
    assert steps[-1][0] < demo.STORY_S
    for _, command in steps:
        parser.parse_args(
            [*shlex.split(command), "--config", "bench.toml"]
        )  # raises SystemExit on anything it does not know


def test_the_live_view_shows_readings_and_verdicts():
    story = demo._Story(60.0)
    sample = Sample("xrf-1", "thickness", "layer_Au", "length", 0.78, "µm", 1)
    verdict = Verdict("pass", 0.28, 18.7, 0.5, 2.0)
    m = Measurement("demo", Reading(sample, 0.78, "µm"), verdict, LotContext(), baseline_z=-9.8)
    story.observe(m)
    story.say("$ daq lot close")
    console = Console(record=True, width=140, color_system=None)
    console.print(story.render())
    text = console.export_text()
    assert "xrf-1" in text and "layer_Au" in text and "PASS" in text and "-9.8" in text
    assert "$ daq lot close" in text
