"""Fuzzing the XRF parsers beyond tests/drivers/test_xrf_parse.py: every decoding a template
can name, numbers at the edges of a float, statistics and uncertainty rules on any values."""

from __future__ import annotations

import contextlib
import math

from hypothesis import example, given
from hypothesis import strategies as st

from daq.errors import ProtocolError, UnitError
from drivers.xrf_parse import (
    LayerValue,
    Statistic,
    UncertaintyRule,
    XrfReading,
    decode,
    load_template,
    parse_export,
    to_samples,
    uncertainty_pct,
    verify_statistics,
)
from tests.fuzz import fuzz_settings

EXPORT = load_template("export-default")
TELEGRAM = load_template("telegram-default")
PER_LINE = load_template("telegram-per-line")
ENCODINGS = ["auto", "utf-8", "utf-16", "cp1252", "latin-1", "ascii", "utf-7", "idna",
             "punycode", "undefined", "hex", "rot13", "zlib", "no-such-codec"]  # fmt: skip


@given(st.binary(max_size=400), st.sampled_from(ENCODINGS))
@example(b"a" * 100, "idna")  # UnicodeError (not UnicodeDecodeError) from the idna codec
@example(b"abc", "undefined")  # UnicodeError: undefined encoding
@example(b"\xff", "punycode")
@fuzz_settings(300)
def test_decode_with_any_encoding_a_template_names(data, encoding):
    try:
        text, used = decode(data, encoding)
    except ProtocolError:
        return
    assert isinstance(text, str) and "\x00" not in text and used


NUMBER_CELLS = st.sampled_from(
    ["9e999", "-9e999", "1e-999", "9" * 400, "0", "-0", "1,5", "1.5", "<0,05", "2,6*", "---", "",
     "nan", "inf", "1e308", "1,7976931348623157e308"]
)  # fmt: skip


@given(
    st.lists(st.lists(NUMBER_CELLS, min_size=2, max_size=2), min_size=1, max_size=5),
    st.sampled_from([";", "\t"]),
)
@example([["9e999", "1"]], ";")
@example([["1e308", "1e308"], ["1e308", "1e308"]], ";")
@fuzz_settings(300)
def test_numbers_at_the_edges_of_a_float(rows, sep):
    lines = ["Application" + sep + "Au/Ni", sep.join(["Reading", "Au [µm]", "Ni [µm]"])]
    lines += [sep.join([str(i), *row]) for i, row in enumerate(rows, start=1)]
    lines += [sep.join(["Mean", *rows[0]])]
    data = "\r\n".join(lines).encode("utf-8")
    try:
        series = parse_export(data, EXPORT)
    except (ProtocolError, UnitError):
        return
    for one in series:
        for reading in one.readings:
            assert all(math.isfinite(lv.value) for lv in reading.layers)
        for sample in to_samples(one, instrument="xrf-1", time_ns=0):
            assert math.isfinite(sample.value)
            assert all(math.isfinite(v) for _, v in sample.scaled)


VALUES = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@given(
    st.lists(st.lists(VALUES, min_size=1, max_size=3), min_size=0, max_size=5),
    st.lists(
        st.tuples(
            st.sampled_from(["Au", "Ni", "Cu"]),
            st.sampled_from(["n", "mean", "s", "min", "max", "cov", "range"]),
            VALUES,
            st.integers(min_value=0, max_value=12),
        ),
        max_size=6,
    ),
)
@fuzz_settings(120)
def test_statistics_check_on_any_values(rows, stats):
    elements = ["Au", "Ni", "Cu"]
    readings = [
        XrfReading(
            number=i,
            layers=tuple(
                LayerValue(el, v, "µm", None, 3) for el, v in zip(elements, row, strict=False)
            ),
        )
        for i, row in enumerate(rows, start=1)
    ]
    statistics = [Statistic(el, kind, value, decimals) for el, kind, value, decimals in stats]
    for element, words in verify_statistics(readings, statistics):
        assert element in elements and element in words


@given(
    st.lists(
        st.builds(
            UncertaintyRule,
            application=st.text(max_size=8) | st.sampled_from(["*", "Au/*", "[", "**"]),
            single_pct=st.floats(min_value=0, max_value=100),
        ),
        max_size=3,
    ),
    st.none() | st.text(max_size=12),
    st.sampled_from(["Au", "Ni", "Xx"]),
    st.integers(min_value=0, max_value=5),
    st.integers(min_value=0, max_value=6),
)
@fuzz_settings(80)
def test_uncertainty_rules_on_any_application(rules, application, element, index, stack):
    pct = uncertainty_pct(rules, application, element, index, stack)
    assert 0 <= pct <= 100


@given(st.binary(max_size=1500), st.sampled_from([EXPORT, TELEGRAM, PER_LINE]))
@example(b"\xef\xbb\xbf" + b"Reading;Au [\xc2\xb5m]\r\n1;9e999", EXPORT)
@example(("Reading;Au [µm]\n" + "1;1\n" * 2000).encode(), EXPORT)
@fuzz_settings(200)
def test_export_bytes_with_every_template(data, template):
    with contextlib.suppress(ProtocolError, UnitError):
        for series in parse_export(data, template):
            for sample in to_samples(series, instrument="xrf-1", time_ns=0):
                assert math.isfinite(sample.value)
