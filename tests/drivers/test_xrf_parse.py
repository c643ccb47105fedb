"""XRF export/telegram parsers and templates (drivers/xrf_parse.py), on hand-written fixtures.

The fixtures follow INSTRUMENTS_AND_STANDARDS.md §6.3 (header block, readings table,
statistics; decimal commas with ';', Windows-1252 or UTF-16 with BOM, µ or u, German or
English headers, CR-LF). They are not vendor files: no vendor layout is public.
"""

import codecs
import contextlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daq.errors import ProtocolError, UnitError
from daq.units import Normalizer
from drivers.xrf_parse import (
    TEMPLATES_DIR,
    UncertaintyRule,
    decode,
    load_template,
    parse_export,
    parse_text,
    to_samples,
    uncertainty_pct,
)

EXPORT = load_template("export-default")
TELEGRAM = load_template("telegram-default")

# German WinFTM-like export: ';', decimal comma, Windows-1252 (µ is 0xB5), CR-LF, Au/Ni/Cu on
# brass, position in mm, Au composition, a full statistics block.
DE_CP1252 = (
    "FISCHERSCOPE X-RAY Messprotokoll\r\n"
    "Gerät;XDV-SDD 12345\r\n"
    "Anwendung;Au/Ni/Cu/CuZn 1234\r\n"
    "Produkt;KID-BRAC-007\r\n"
    "Teil;P-0042\r\n"
    "Bediener;M. Köhler\r\n"
    "Datum;14.03.2026\r\n"
    "Uhrzeit;10:22:05\r\n"
    "\r\n"
    "Messung;X [mm];Y [mm];Au [µm];Ni [µm];Cu [µm];Au [%]\r\n"
    "1;12,50;-3,20;0,512;2,05;5,10;99,9\r\n"
    "2;12,80;-3,10;0,498;2,11;4,95;99,8\r\n"
    "3;13,10;-3,00;0,505;2,08;5,02;99,9\r\n"
    "\r\n"
    "Mittelwert;;;0,505;2,080;5,023;99,87\r\n"
    "Std.abw.;;;0,007;0,030;0,075;0,06\r\n"
    "VK [%];;;1,39;1,44;1,49;0,06\r\n"
    "Min.;;;0,498;2,05;4,95;99,8\r\n"
    "Max.;;;0,512;2,11;5,10;99,9\r\n"
    "Anzahl;;;3;3;3;3\r\n"
)

# English export: tab-separated, decimal point, UTF-16 with BOM; vermeil (Au over sterling).
EN_UTF16 = (
    "Instrument\tXAN 250\r\n"
    "Application\tAu/Ag925 vermeil\r\n"
    "Product\tVRM-RING-001\r\n"
    "Part no.\tR-17\r\n"
    "Operator\tJ. Smith\r\n"
    "Date/Time\t2026-03-14 09:05:00\r\n"
    "Reading\tPosition\tAu [µm]\tAu [%]\r\n"
    "1\tshank\t2.61\t58.4\r\n"
    "2\thead\t2.74\t58.6\r\n"
    "Mean\t\t2.675\t58.5\r\n"
    "s\t\t0.092\t0.14\r\n"
    "n\t\t2\t2\r\n"
)

# ',' separator (decimal point only), UTF-8 with BOM, LF, micro-inches spelled 'uin'; rhodium
# over silver plating on brass.
EN_COMMA_UIN = (
    "Application,Rh/Ag/CuZn\n"
    "Operator,K. Lee\n"
    "Date,03/14/2026 02:15:00 PM\n"
    "No.,Rh [uin],Ag [uin]\n"
    "1,12.4,120.5\n"
    "2,11.9,118.0\n"
    "Mean,12.15,119.25\n"
)

# A print-out of one reading as key: value lines ('u' for µ, decimal comma).
KEY_VALUES = "Application: Au/CuZn flash\r\nReading: 7\r\nPosition: clasp\r\nAu [um]: 0,18\r\n"


def test_german_cp1252_semicolon_decimal_comma_three_layers():
    data = DE_CP1252.encode("cp1252")
    assert b"\xb5m" in data  # the µ of Windows-1252
    (series,) = parse_export(data, EXPORT)
    assert series.encoding == "cp1252"
    assert series.separator == ";"
    assert series.application == "Au/Ni/Cu/CuZn 1234"
    assert series.product == "KID-BRAC-007"
    assert series.part == "P-0042"
    assert series.operator == "M. Köhler"
    assert series.instrument == "XDV-SDD 12345"
    assert series.instrument_time == "2026-03-14T10:22:05"
    assert [r.number for r in series.readings] == [1, 2, 3]
    first = series.readings[0]
    assert [(lv.element, lv.value, lv.unit) for lv in first.layers] == [
        ("Au", 0.512, "µm"),
        ("Ni", 2.05, "µm"),
        ("Cu", 5.10, "µm"),
    ]
    assert first.composition == (("Au", 99.9),)
    assert first.position == "x=12.50 y=-3.20"
    stats = {(s.element, s.kind): s.value for s in series.statistics}
    assert stats[("Au", "mean")] == 0.505
    assert stats[("Ni", "s")] == 0.030
    assert stats[("Cu", "cov")] == 1.49
    assert stats[("Au", "n")] == 3
    assert series.mismatches == ()


def test_utf16_bom_tab_english_vermeil():
    data = codecs.BOM_UTF16_LE + EN_UTF16.encode("utf-16-le")
    (series,) = parse_export(data, EXPORT)
    assert series.encoding == "utf-16"
    assert series.separator == "tab"
    assert series.part == "R-17"
    assert series.instrument_time == "2026-03-14T09:05:00"
    assert [r.position for r in series.readings] == ["shank", "head"]
    assert [r.layers[0].value for r in series.readings] == [2.61, 2.74]
    assert series.readings[1].composition == (("Au", 58.6),)


def test_utf16_big_endian_and_without_bom():
    (be,) = parse_export(EN_UTF16.encode("utf-16"), EXPORT)  # BOM, native order
    (no_bom,) = parse_export(EN_UTF16.encode("utf-16-le"), EXPORT)
    (big,) = parse_export(EN_UTF16.encode("utf-16-be"), EXPORT)
    assert be.readings == no_bom.readings == big.readings
    assert no_bom.encoding == "utf-16-le"
    assert big.encoding == "utf-16-be"


def test_comma_separator_utf8_bom_micro_inches():
    data = codecs.BOM_UTF8 + EN_COMMA_UIN.encode("utf-8")
    (series,) = parse_export(data, EXPORT)
    assert series.encoding == "utf-8-sig"
    assert series.separator == ","
    assert series.instrument_time == "2026-03-14T14:15:00"
    assert [(lv.element, lv.value, lv.unit) for lv in series.readings[0].layers] == [
        ("Rh", 12.4, "µin"),
        ("Ag", 120.5, "µin"),
    ]


def test_plain_utf8_and_greek_mu_and_lf_or_cr_line_ends():
    text = DE_CP1252.replace("µm", "μm")  # U+03BC, as some Windows exports write it
    for ends in ("\n", "\r"):
        (series,) = parse_export(text.replace("\r\n", ends).encode("utf-8"), EXPORT)
        assert series.encoding == "utf-8"
        assert series.readings[2].layers[2].value == 5.02
        assert {lv.unit for lv in series.readings[0].layers} == {"µm"}


def test_key_value_reading():
    (series,) = parse_export(KEY_VALUES.encode("cp1252"), EXPORT)
    (reading,) = series.readings
    assert reading.number == 7
    assert reading.position == "clasp"
    assert reading.layers[0].element == "Au"
    assert reading.layers[0].value == 0.18
    assert reading.layers[0].unit == "µm"
    assert series.application == "Au/CuZn flash"


def test_key_value_readings_numbered_in_turn():
    text = "Reading: 1\nAu [µm]: 2.5\nNi [µm]: 3.0\nReading: 2\nAu [µm]: 2.6\nNi [µm]: 3.1\n"
    (series,) = parse_text(text, EXPORT)
    assert [r.number for r in series.readings] == [1, 2]
    assert [lv.value for lv in series.readings[1].layers] == [2.6, 3.1]


def test_whitespace_aligned_print_out_with_statistics_under_blank_columns():
    text = (
        "Application:  Au/Ni/CuZn\n"
        "Operator:     M. Keller\n"
        "Date/Time:    14.03.2026 10:22\n"
        "n    X [mm]   Au [µm]   Ni [µm]\n"
        "1    12.5     2.61      3.05\n"
        "2    12.8     2.58      3.11\n"
        "Mean          2.595     3.08\n"
    )
    (series,) = parse_text(text, TELEGRAM)
    assert series.separator == "whitespace"
    assert series.operator == "M. Keller"
    assert series.instrument_time == "2026-03-14T10:22:00"
    assert [r.layers[1].value for r in series.readings] == [3.05, 3.11]
    assert {(s.element, s.kind): s.value for s in series.statistics} == {
        ("Au", "mean"): 2.595,
        ("Ni", "mean"): 3.08,
    }


def test_two_series_in_one_file_carry_the_header_over():
    text = (
        "Application;Au/Ni/CuZn\nPart;A-1\n"
        "Reading;Au [µm];Ni [µm]\n1;2,5;3,0\n2;2,6;3,1\n\n"
        "Part;A-2\n"
        "Reading;Au [µm];Ni [µm]\n1;2,4;2,9\n"
    )
    first, second = parse_text(text, EXPORT)
    assert (first.part, second.part) == ("A-1", "A-2")
    assert second.application == "Au/Ni/CuZn"
    assert len(first.readings) == 2
    assert second.readings[0].layers[0].value == 2.4


def test_out_of_range_markers_and_blank_cells():
    text = "Reading;Au [µm];Ni [µm]\n1;<0,05;3,0\n2;2,61*;---\n3;>50;\n"
    (series,) = parse_text(text, EXPORT)
    r1, r2, r3 = series.readings
    assert (r1.layers[0].value, r1.layers[0].flag) == (0.05, "below_range")
    assert (r2.layers[0].value, r2.layers[0].flag) == (2.61, "flagged")
    assert [lv.element for lv in r2.layers] == ["Au"]  # Ni blank: left out
    assert (r3.layers[0].value, r3.layers[0].flag) == (50.0, "above_range")


def test_statistics_that_disagree_are_reported_not_refused():
    text = "Reading;Au [µm];Ni [µm]\n1;2,50;3,0\n2;2,60;3,1\nMean;2,70;3,05\nn;3;2\n"
    (series,) = parse_text(text, EXPORT)
    elements = [e for e, _ in series.mismatches]
    assert elements == ["Au", "Au"]
    assert "mean 2.7" in series.mismatches[0][1]
    assert "n is 3" in series.mismatches[1][1]
    samples = to_samples(series, instrument="xrf", time_ns=0)
    au = [s for s in samples if s.channel == "layer_Au"]
    ni = [s for s in samples if s.channel == "layer_Ni"]
    assert all("statistics_mismatch" in s.flags for s in au)
    assert not any(s.flags for s in ni)


def test_statistics_within_rounding_agree():
    # mean of 2.61, 2.58, 2.58 is 2.59 exactly; printed as 2.6 it is within half a digit
    text = "Reading;Au [µm]\n1;2,61\n2;2,58\n3;2,58\nMean;2,6\nMin;2,58\nMax;2,61\nn;3\n"
    (series,) = parse_text(text, EXPORT)
    assert series.mismatches == ()


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("Reading;Xx [µm]\n1;2,5\n", ProtocolError, "unknown element 'Xx'"),
        ("Reading;Au [µm];Qq [%]\n1;2,5;3\n", ProtocolError, "'Qq' is not a chemical element"),
        ("Reading;Au [mg/cm²]\n1;2,5\n", UnitError, "'mg/cm²' is not a thickness unit"),
        ("Au [g/m2]: 12\n", UnitError, "is not a thickness unit"),
        ("Reading;Au [µm];Ni [µm]\n1;2,5;3,0\n2;2,6\n", ProtocolError, "cut short"),
        ("Reading;Au [µm];Ni [µm]\n1;2,5;3,\n", ProtocolError, "'3,' is not a number"),
        ("Reading;Au [µm]\n1;2,5x\n", ProtocolError, "'2,5x' is not a number"),
        ("Reading;Au [µm]\nx;2,5\n", ProtocolError, "not a whole number"),
        ("Au [µm];Reading\n1\n", ProtocolError, "not a whole number"),  # found by fuzzing
        ("Reading;Au [µm];Au [µm]\n1;2;3\n", ProtocolError, "layer Au has two columns"),
        ("Reading;Au [µm]\n\nMean;2,5\n", ProtocolError, "no reading rows"),
        ("Application;Au/Ni\nOperator;X\n", ProtocolError, "no readings"),
        ("Reading,Au [µm]\n1,2,5\n", ProtocolError, "has 3 cells"),
        ("Reading;Au [µm]\n1;1e999\n", ProtocolError, "not a finite number"),
        ("", ProtocolError, "no readings"),
    ],
)
def test_bad_content_is_refused_with_a_reason(text, error, words):
    with pytest.raises(error) as info:
        parse_text(text, EXPORT)
    assert words in str(info.value)
    assert type(info.value) is error


def test_truncated_file_is_refused():
    data = DE_CP1252.encode("cp1252")
    cut = data[: data.index(b"2;12,80") + 12]  # in the middle of the second reading
    with pytest.raises(ProtocolError, match="cut short"):
        parse_export(cut, EXPORT)


def test_truncated_utf16_is_refused():
    data = codecs.BOM_UTF16_LE + EN_UTF16.encode("utf-16-le")
    with pytest.raises(ProtocolError, match="not utf-16 text"):
        parse_export(data[:-1], EXPORT)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
        b"PK\x03\x04" + bytes(200),
        bytes(range(1, 32)) * 20,
    ],
)
def test_binary_is_refused(data):
    with pytest.raises(ProtocolError, match=r"binary|not .* text"):
        parse_export(data, EXPORT)


def test_decode_cp1252_fallback_and_explicit_encoding():
    text, used = decode("Au [µm]".encode("cp1252"))
    assert (text, used) == ("Au [µm]", "cp1252")
    text, used = decode("Au [µm]".encode(), "utf-8")
    assert text == "Au [µm]"
    with pytest.raises(ProtocolError, match="unknown encoding"):
        decode(b"x", "klingon")


# -- samples ---------------------------------------------------------------------------------


def test_one_sample_per_layer_with_context_uncertainty_and_series_stats():
    (series,) = parse_export(DE_CP1252.encode("cp1252"), EXPORT)
    samples = to_samples(series, instrument="xrf-1", time_ns=1_000, extra=[("source", "a.csv")])
    assert len(samples) == 9
    au1, ni1, cu1 = samples[:3]
    assert (au1.measurement, au1.channel, au1.quantity) == ("thickness", "layer_Au", "length")
    assert (au1.value, au1.unit) == (0.512, "µm")
    assert au1.instrument == "xrf-1"
    assert au1.instrument_time == "2026-03-14T10:22:05"
    assert au1.raw == "1;12,50;-3,20;0,512;2,05;5,10;99,9"
    extra = dict(au1.extra)
    assert extra == {
        "application": "Au/Ni/Cu/CuZn 1234",
        "product": "KID-BRAC-007",
        "part": "P-0042",
        "operator": "M. Köhler",
        "xrf_instrument": "XDV-SDD 12345",
        "reading": 1,
        "stack": "Au/Ni/Cu",
        "layer_index": 1,
        "uncertainty_pct": 10.0,
        "position": "x=12.50 y=-3.20",
        "comp_Au_pct": 99.9,
        "series_n": 3,
        "series_cov_pct": 1.39,
        "source": "a.csv",
    }
    scaled = dict(au1.scaled)
    assert scaled["uncertainty"] == pytest.approx(0.0512)  # top of a stack: 10 %
    assert scaled["series_mean"] == 0.505
    assert scaled["series_s"] == 0.007
    assert dict(ni1.scaled)["uncertainty"] == pytest.approx(2.05 * 0.30)  # underlayer
    assert dict(cu1.extra)["layer_index"] == 3
    # readings one nanosecond apart (one InfluxDB point per series and time), layers together
    assert [s.time_ns for s in samples] == [1000] * 3 + [1001] * 3 + [1002] * 3


def test_micro_inches_convert_with_their_uncertainty():
    (series,) = parse_export(EN_COMMA_UIN.encode(), EXPORT)
    samples = to_samples(series, instrument="xrf", time_ns=0)
    rh = samples[0]
    assert (rh.channel, rh.value, rh.unit) == ("layer_Rh", 12.4, "µin")
    reading = Normalizer().normalize(rh)
    assert reading.unit == "µm"
    assert reading.value == pytest.approx(12.4 * 0.0254)
    assert dict(reading.scaled)["uncertainty"] == pytest.approx(12.4 * 0.10 * 0.0254)
    assert dict(reading.scaled)["series_mean"] == pytest.approx(12.15 * 0.0254)


def test_single_layer_uncertainty_and_rules_by_application():
    (series,) = parse_export(EN_UTF16.encode("utf-16"), EXPORT)
    (au,) = to_samples(series, instrument="x", time_ns=0)[:1]
    assert dict(au.extra)["uncertainty_pct"] == 5.0
    rules = [
        UncertaintyRule(application="au/ag925*", single_pct=4.0),
        UncertaintyRule(application="*", single_pct=9.0),
    ]
    (au,) = to_samples(series, instrument="x", time_ns=0, rules=rules)[:1]
    assert dict(au.extra)["uncertainty_pct"] == 4.0
    assert dict(au.scaled)["uncertainty"] == pytest.approx(2.61 * 0.04)
    assert uncertainty_pct(rules, "Rh/Ag", "Rh", 0, 1) == 9.0
    assert uncertainty_pct([UncertaintyRule(layer_pct={"Ni": 20})], None, "Ni", 1, 2) == 20.0
    assert uncertainty_pct([UncertaintyRule(application="Au*")], "Rh", "Rh", 0, 2) == 10.0


def test_flags_ride_on_the_samples():
    (series,) = parse_text("Reading;Au [µm]\n1;<0,05\n", EXPORT)
    (s,) = to_samples(series, instrument="x", time_ns=0)
    assert s.flags == ("below_range",)


# -- templates -------------------------------------------------------------------------------


def test_builtin_templates():
    assert {p.stem for p in TEMPLATES_DIR.glob("*.toml")} == {
        "export-default",
        "telegram-default",
        "telegram-per-line",
    }
    assert EXPORT.telegram_start is None
    assert TELEGRAM.telegram_start is not None
    assert TELEGRAM.telegram_start.match("RESULT 0042")
    assert TELEGRAM.telegram_end is not None
    assert TELEGRAM.telegram_end.match("ENDE")


def test_a_customer_template_extends_the_default(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(
        'schema = 1\nextends = "export-default"\nname = "lab"\n'
        '[fields]\noperator = ["Prüfer-Kürzel"]\n'
        '[columns]\nreading = ["Punkt"]\n'
        '[format]\nseparator = ";"\ndecimal = ","\n',
        encoding="utf-8",
    )
    tpl = load_template(str(path))
    text = "Prüfer-Kürzel;AB\nPunkt;Au [µm]\n1;2,5\n"
    (series,) = parse_text(text, tpl)
    assert series.operator == "AB"
    assert series.readings[0].number == 1
    with pytest.raises(ProtocolError, match="not a number"):
        parse_text("Punkt;Au [µm]\n1;2.5\n", tpl)  # decimal fixed to ','


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('extends = "export-default"\n[columns]\nthickness = ["(x"]\n', "not a regular"),
        ('extends = "export-default"\n[columns]\nthickness = ["^(?P<element>Au)$"]\n', "unit"),
        ('extends = "export-default"\n[units]\n"lbf" = ["lbf"]\n', "units.lbf"),
        ('schema = 2\nextends = "export-default"\n', "schema 2"),
        ('extends = "export-default"\ncolour = "red"\n', "colour"),
        ('extends = "self.toml"\n', "circle"),
        ('extends = "no-such-template"\n', "cannot read"),
        ("", "fields"),
    ],
)
def test_bad_templates_are_refused_with_file_and_key(tmp_path, body, words):
    path = tmp_path / "self.toml"
    head = "name = 'x'\n" if body.startswith("schema") else "schema = 1\nname = 'x'\n"
    path.write_text(head + body)
    with pytest.raises(ValueError, match="XRF template") as info:
        load_template(path)
    assert words in str(info.value)


# -- one layer per line ([lines] patterns) -----------------------------------------------------

LINES_TEMPLATE = r"""
schema = 1
extends = "export-default"
name = "lines"
[lines]
number = ['^\s*(?i:reading|messung)\s+(?P<reading>\d+)\s*$']
layer = [
    '^\s*(?P<reading>\d+)\s+(?P<element>[A-Z][a-z]?)\s+(?P<value>\S+)\s+(?P<unit>\S+)(?:\s+(?P<composition>\S+)\s*%)?\s*$',
    '^\s+(?P<element>[A-Z][a-z]?)\s*=\s*(?P<value>\S+)\s*(?P<unit>\S+)\s*$',
]
statistic = ['^(?P<stat>[A-Za-z.]+)\s+(?P<element>[A-Z][a-z]?%?)\s*=\s*(?P<value>\S+)']
"""


@pytest.fixture(scope="module")
def lines_tpl(tmp_path_factory):
    path = tmp_path_factory.mktemp("tpl") / "lines.toml"
    path.write_text(LINES_TEMPLATE, encoding="utf-8")
    return load_template(path)


def test_layer_per_line_with_number_lines(lines_tpl):
    text = (
        "Application: Au/Ni/CuZn\r\nOperator: M. Keller\r\n"
        "Reading 1\r\n  Au = 2,61 µm\r\n  Ni = 3,05 µm\r\n"
        "Reading 2\r\n  Au = 2,58 µm\r\n  Ni = 3,11 µm\r\n"
        "Mean Au = 2,595\r\nMean Ni = 3,08\r\nMean Au% = 75,0\r\nAu%  Mean  75,0 %\r\n"
    )
    (series,) = parse_text(text, lines_tpl)
    assert series.operator == "M. Keller"
    assert [r.number for r in series.readings] == [1, 2]
    assert [(lv.element, lv.value, lv.unit) for lv in series.readings[1].layers] == [
        ("Au", 2.58, "µm"),
        ("Ni", 3.11, "µm"),
    ]
    assert {(s.element, s.kind) for s in series.statistics} == {("Au", "mean"), ("Ni", "mean")}
    assert series.mismatches == ()


def test_layer_per_line_with_reading_numbers_and_composition(lines_tpl):
    text = "Application: Au/Ag925\n 1 Au  3.084 um  58.6 %\n 2 Au  3.032 um  58.6 %\n"
    (series,) = parse_text(text, lines_tpl)
    assert [(r.number, r.layers[0].value, r.composition) for r in series.readings] == [
        (1, 3.084, (("Au", 58.6),)),
        (2, 3.032, (("Au", 58.6),)),
    ]


def test_layer_per_line_without_numbers_a_repeated_element_starts_the_next_reading(lines_tpl):
    text = "  Au = 1.0 uin\n  Ni = 2.0 uin\n  Au = 1.1 uin\n  Ni = 2.1 uin\n"
    (series,) = parse_text(text, lines_tpl)
    assert [[lv.value for lv in r.layers] for r in series.readings] == [[1.0, 2.0], [1.1, 2.1]]
    assert series.readings[0].layers[0].unit == "µin"


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        (" 1 Xx 2.0 um\n", ProtocolError, "unknown element 'Xx'"),
        (" 1 Au 2.0 mg\n", UnitError, "'mg' of Au is not a thickness unit"),
        (" 1 Au 2.0x um\n", ProtocolError, "'2.0x' is not a number"),
        (" 1 Au 2.0 um\n 1 Au 2.1 um\n", ProtocolError, "gives Au twice"),
    ],
)
def test_layer_lines_refused_with_a_reason(lines_tpl, text, error, words):
    with pytest.raises(error) as info:
        parse_text(text, lines_tpl)
    assert words in str(info.value)


def test_lines_patterns_need_their_groups(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        "schema = 1\nextends = 'export-default'\nname = 'b'\n"
        "[lines]\nlayer = ['^(?P<element>Au) (?P<value>\\S+)$']\n"
    )
    with pytest.raises(ValueError, match=r"lines\.layer: .*needs \(\?P<unit>"):
        load_template(path)


# -- round trip and fuzzing -----------------------------------------------------------------

ELEMENT_POOL = ["Au", "Ni", "Cu", "Rh", "Ag", "Pd", "NiP"]


@st.composite
def exports(draw):
    layers = draw(st.lists(st.sampled_from(ELEMENT_POOL), min_size=1, max_size=3, unique=True))
    unit = draw(st.sampled_from(["µm", "um", "μm", "µin", "uin"]))
    rows = draw(
        st.lists(
            st.lists(
                st.integers(min_value=0, max_value=99_999), min_size=len(layers), max_size=3
            ).map(lambda v: v[: len(layers)]),
            min_size=1,
            max_size=6,
        )
    )
    sep = draw(st.sampled_from([";", "\t", ","]))
    comma = sep != "," and draw(st.booleans())
    german = draw(st.booleans())
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    if encoding == "cp1252" and unit == "μm":
        unit = "µm"
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    head = ["Messung" if german else "Reading", *(f"{e} [{unit}]" for e in layers)]
    lines = [f"{'Anwendung' if german else 'Application'}{sep}{'/'.join(layers)}", sep.join(head)]
    for i, row in enumerate(rows, start=1):
        cells = [f"{v / 1000:.3f}" for v in row]
        if comma:
            cells = [c.replace(".", ",") for c in cells]
        lines.append(sep.join([str(i), *cells]))
    data = newline.join(lines).encode(encoding)
    return data, layers, rows, unit


@given(exports())
@settings(max_examples=150, deadline=None)
def test_generated_exports_round_trip(case):
    data, layers, rows, unit = case
    (series,) = parse_export(data, EXPORT)
    assert series.application == "/".join(layers)
    expected_unit = "µin" if "in" in unit else "µm"
    for reading, row in zip(series.readings, rows, strict=True):
        assert [lv.element for lv in reading.layers] == layers
        assert [lv.value for lv in reading.layers] == [v / 1000 for v in row]
        assert {lv.unit for lv in reading.layers} == {expected_unit}
    samples = to_samples(series, instrument="x", time_ns=0)
    assert len(samples) == len(rows) * len(layers)
    assert all(math.isfinite(dict(s.scaled)["uncertainty"]) for s in samples)


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_fuzz_bytes_give_results_or_a_documented_error(lines_tpl, data):
    for tpl in (EXPORT, TELEGRAM, lines_tpl):
        try:
            for series in parse_export(data, tpl):
                to_samples(series, instrument="x", time_ns=0)
        except (ProtocolError, UnitError):
            pass


TOKENS = [
    "Reading", "Messung", "Mean", "Mittelwert", "n", "s", "Min", "Max", "Anzahl", "Au [µm]",
    "Ni [um]", "Rh [µin]", "Xx [µm]", "Au [%]", "Au [mg/cm²]", "X [mm]", "Position", "1", "2",
    "2,61", "3.05", "-0,5", "<0,05", "2,6*", "---", "", "Application", "Date", "14.03.2026",
    "Operator", ":", "U [kV]", "1e5", "abc", "#3", "Date/Time", "Reading 1", " 1 Au 2.0 um",
    "  Ni = 2,0 µm", "Mean Au = 2", " 2 Xx 1 um", "58.6 %", "=",
]  # fmt: skip


@given(
    st.lists(
        st.lists(st.sampled_from(TOKENS), max_size=7).flatmap(
            lambda cells: st.sampled_from([";", "\t", ",", "   ", ": "]).map(
                lambda sep: sep.join(cells)
            )
        ),
        max_size=12,
    )
)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_structured_text_gives_results_or_a_documented_error(lines_tpl, lines):
    text = "\r\n".join(lines)
    for tpl in (EXPORT, TELEGRAM, lines_tpl):
        try:
            for series in parse_text(text, tpl):
                to_samples(series, instrument="x", time_ns=0)
        except (ProtocolError, UnitError):
            pass


@given(st.text(max_size=800))
@settings(max_examples=200, deadline=None)
def test_fuzz_text_gives_results_or_a_documented_error(lines_tpl, text):
    for tpl in (EXPORT, lines_tpl):
        with contextlib.suppress(ProtocolError, UnitError):
            parse_text(text, tpl)


def test_per_line_template_reads_one_layer_per_line():
    tpl = load_template("telegram-per-line")
    text = (
        "XRF RESULT\r\nApplication: Au/Ni/CuZn\r\nOperator: OP1\r\n"
        "Date: 2025-01-15 09:30:00\r\n  1 Au       1.040 um\r\n  1 Ni       3.105 um\r\n"
        "  2 Au       1.038 um\r\n  2 Ni       2.800 um\r\nStatistics\r\n"
        "Au   Mean     1.039 um\r\nEND\r\n"
    )
    (series,) = parse_text(text, tpl)
    assert series.application == "Au/Ni/CuZn"
    assert [(la.element, la.value, la.unit) for la in series.readings[1].layers] == [
        ("Au", 1.038, "µm"),
        ("Ni", 2.8, "µm"),
    ]
