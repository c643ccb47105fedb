"""The project's layering and pairing rules, checked on the source tree."""

import ast
from pathlib import Path

import pytest

from drivers.registry import REGISTRY

ROOT = Path(__file__).resolve().parent.parent.parent
#: The composition root may know the drivers; nothing else in the core may.
COMPOSITION = {"daq/app.py", "daq/cli.py", "daq/demo.py", "daq/transcripttest.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def simulated_by(name: str) -> list[Path]:
    """The simulator modules of a driver: simulators/<name>.py, or one that lists the driver
    in its SIMULATES tuple (one module may serve several controllers on one line)."""
    same_stem = ROOT / "simulators" / f"{name}.py"
    if same_stem.is_file():
        return [same_stem]
    return [
        p
        for p in (ROOT / "simulators").glob("*.py")
        if "SIMULATES" in p.read_text() and f'"{name}"' in p.read_text()
    ]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_driver_has_simulator_config_and_tests(name):
    assert simulated_by(name), f"no simulator for {name} (simulators/{name}.py or SIMULATES)"
    configs = [p for p in (ROOT / "config").glob("*.toml") if f'driver = "{name}"' in p.read_text()]
    assert configs, f"no config/*.toml uses driver {name}"
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if name in p.read_text()]
    assert len(tests) >= 2, f"driver {name} needs a simulator test and a driver test"


def test_core_never_imports_drivers_or_simulators():
    for path in modules("daq"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in COMPOSITION:
            continue
        bad = {m for m in imports(path) if m.split(".")[0] in ("drivers", "simulators", "tests")}
        assert not bad, f"{rel} imports {bad}"


def test_simulators_never_import_drivers():
    for path in modules("simulators"):
        bad = {m for m in imports(path) if m.split(".")[0] in ("drivers", "tests")}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_drivers_know_nothing_of_storage_or_specs():
    forbidden = (
        "daq.journal",
        "daq.sinks",
        "daq.specs",
        "daq.quality",
        "daq.forwarder",
        "daq.runtime",
        "influxdb_client",
    )
    for path in modules("drivers"):
        bad = {m for m in imports(path) if m.startswith(forbidden)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
