"""Fuzzing the file loaders: bench config, SKU specs, register maps, XRF templates.

Each loader documents one error type: ``ConfigError`` (daq/config.py, daq/skuspec.py) or
``ValueError`` naming the file (drivers/modbus_map.py ``load_map``, drivers/xrf_parse.py
``load_template``). Inputs are the shipped files with line-level edits, and raw text.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from daq.config import load_config, parse_config
from daq.errors import ConfigError
from daq.skuspec import SpecLibrary, load_spec
from drivers.modbus_map import load_map
from drivers.registry import check_instrument
from drivers.xrf_parse import load_template
from tests.fuzz import fuzz_settings, mutated_toml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "config").glob("*.toml"))]
SPECS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "config/specs").glob("*.toml"))]
MAPS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "drivers/maps").glob("*.toml"))]
TEMPLATES = [
    p.read_text(encoding="utf-8") for p in sorted((ROOT / "drivers/xrf_templates").glob("*.toml"))
]

DEEP_TABLE = "a = " + "[" * 3000 + "]" * 3000 + "\n"
DEEP_INLINE = "a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n"
#: A "schema" key inside an instrument: its problem was filtered out with the top-level one,
#: and parse_config ended on an assert with no problem listed (found by the long fuzz run).
MISPLACED_SCHEMA = (
    'schema = 1\n[bench]\nid = "b"\n[[instrument]]\nschema = 1\nname = "g"\n'
    'driver = "mark10"\naddress = "/dev/ttyUSB0"\npoll_interval = 1.0\n'
)
HUGE_INT = "schema = 1" + "0" * 5000 + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-loaders")


def _write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_files_load():
    # The seeds are valid: a mutation is what makes the fuzzed inputs wrong.
    assert len(CONFIGS) >= 3 and len(SPECS) >= 3 and len(MAPS) >= 3 and len(TEMPLATES) >= 3


@given(mutated_toml(CONFIGS))
@example(DEEP_TABLE)
@example(DEEP_INLINE)
@example(HUGE_INT)
@example("schema = 1\n[bench]\nid = 'b'\n[[instrument]]\n" + "x = [" * 1500 + "\n")
@example(MISPLACED_SCHEMA)
@fuzz_settings(150)
def test_bench_config_gives_a_config_or_a_config_error(folder, text):
    path = _write(folder, "bench.toml", text)
    try:
        load_config(path, check_instrument)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError lists at least one problem"
        assert all(str(p).startswith(str(path)) for p in exc.problems)


@given(st.binary(max_size=300))
@example(b"\xff\xfe\x00")
@example(b"schema = 1\x00")
@fuzz_settings(100)
def test_bench_config_bytes(folder, data):
    path = _write(folder, "bytes.toml", data)
    try:
        load_config(path, check_instrument)
    except ConfigError as exc:
        assert exc.problems


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["modbus_tcp", "mark10", "imada", "xrf_export", "tcp://127.0.0.1:1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["name", "driver", "address", "poll_interval", "timeout", "options", "limits", "enabled",
     "calibration_due", "x"]
)  # fmt: skip


@given(
    st.dictionaries(
        st.sampled_from(["schema", "bench", "journal", "influx", "lot", "specs", "drift", "x"]),
        JSONISH,
        max_size=5,
    ),
    st.lists(st.dictionaries(KEYS, JSONISH, max_size=6), max_size=3),
)
@example({"schema": 1, "bench": {"id": "b"}}, [{"name": "a", "driver": "mark10", "address": 5}])
@example({"schema": 1, "bench": {"id": "b"}}, [{"schema": 1, "name": "a", "driver": "imada"}])
@fuzz_settings(120)
def test_parse_config_on_arbitrary_documents(raw, instruments):
    doc = dict(raw)
    if instruments:
        doc["instrument"] = instruments
    try:
        parse_config(doc, "bench.toml", check_instrument)
    except ConfigError as exc:
        assert exc.problems


@given(mutated_toml(SPECS))
@example(DEEP_TABLE)
@example(HUGE_INT)
@fuzz_settings(150)
def test_sku_spec_gives_a_spec_or_a_config_error(folder, text):
    path = _write(folder, "spec.toml", text)
    try:
        load_spec(path)
    except ConfigError as exc:
        assert exc.problems


@given(st.lists(mutated_toml(SPECS), min_size=1, max_size=3))
@fuzz_settings(30)
def test_spec_library_gives_a_library_or_a_config_error(tmp_path_factory, texts):
    lib = tmp_path_factory.mktemp("specs")
    for i, text in enumerate(texts):
        _write(lib, f"s{i}.toml", text)
    try:
        SpecLibrary.load(lib)
    except ConfigError as exc:
        assert exc.problems


@given(mutated_toml(MAPS))
@example(DEEP_TABLE)
@example(DEEP_INLINE)
@example(HUGE_INT)
@fuzz_settings(150)
def test_register_map_gives_a_map_or_a_value_error(folder, text):
    path = _write(folder, "map.toml", text)
    try:
        load_map(path)
    except ValueError as exc:
        assert str(path) in str(exc)


@given(mutated_toml(TEMPLATES))
@example(DEEP_TABLE)
@example(HUGE_INT)
@example('schema = 1\nextends = "export-default"\n[columns]\nlayer = ["(unclosed"]\n')
@example('schema = 1\nextends = ""\n')  # the error named only the parent, not this file
@example('schema = 1\nextends = "no-such-template"\n')
@fuzz_settings(150)
def test_xrf_template_gives_a_template_or_a_value_error(folder, text):
    path = _write(folder, "tpl.toml", text)
    try:
        load_template(path)
    except ValueError as exc:
        assert str(path) in str(exc)


def test_toml_nesting_that_crashes_tomllib_is_what_the_examples_cover():
    # The examples above are real hazards: tomllib itself overflows the stack on them.
    with pytest.raises(RecursionError):
        tomllib.loads(DEEP_TABLE)
    with pytest.raises(ValueError):
        tomllib.loads(HUGE_INT)
