"""Data-only config cases: tests/cases/config/<case>/{bench.toml, expected.err}."""

from pathlib import Path

import pytest

from daq.cli import main
from daq.config import load_config
from daq.errors import ConfigError
from drivers.registry import check_instrument

CASES = sorted((Path(__file__).parent.parent / "cases" / "config").iterdir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_config_case(case, monkeypatch):
    monkeypatch.chdir(case)
    expected = (case / "expected.err").read_text(encoding="utf-8").strip()
    with pytest.raises(ConfigError) as info:
        load_config(Path("bench.toml"), check_instrument)
    assert str(info.value) == expected


def test_daq_check_lists_every_problem(monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).parent.parent / "cases" / "config" / "many_problems")
    assert main(["check", "bench.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bench.toml: 3 problems found:")
    assert "instrument 'chamber-2': options.colour: is not an option" in err


def test_daq_check_accepts_the_shipped_examples(capsys):
    root = Path(__file__).parent.parent.parent / "config"
    examples = sorted(root.glob("*.toml"))
    assert examples, "config/ ships no example bench config"
    for example in examples:
        assert main(["check", str(example)]) == 0, capsys.readouterr().err
        assert "OK" in capsys.readouterr().out


def test_missing_file():
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(Path("/nonexistent/bench.toml"))
