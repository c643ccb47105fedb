"""Property-based fuzzing of every parser and loader (hypothesis).

Each test feeds generated or mutated input to one parser and accepts only a result or one of
the errors that parser documents (daq/errors.py). Example counts are small by default so the
whole folder runs in well under a minute; set ``HALLMARK_FUZZ_EXAMPLES`` to a number to run
every test with that many examples instead (docs/security.md lists the long-run figures).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["TOML_LINES", "TOML_VALUES", "fuzz_settings", "mutated_toml"]


def fuzz_settings(default: int) -> settings:
    """Hypothesis settings: ``default`` examples, or ``HALLMARK_FUZZ_EXAMPLES`` when set."""
    override = os.environ.get("HALLMARK_FUZZ_EXAMPLES", "").strip()
    count = int(override) if override.isdigit() and int(override) > 0 else default
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# -- mutated TOML --------------------------------------------------------------------------------

#: Values a hand edit (or a hostile file) might put after ``key =``.
TOML_VALUES = [
    '""', '"x"', "-1", "0", "1", "0.5", "-0.0", "inf", "-inf", "nan", "1e308", "true",
    "1" + "0" * 5000, "[" * 2000 + "]" * 2000, "{ a = 1 }", '[1, "a"]', "[]", "{}",
    "2026-01-01", "2026-13-45", '"../../../etc/passwd"', '"/dev/zero"', '"\\u0000"',
    '"' + "a" * 10000 + '"', '"µm"', '"N·m"', '"lbF"', '"°C"', '"2 in-lbf"', '"5 µm"',
    '"1e999 N"', '"-3 N"', '"0 N"', '"ABCD"', '"float32"', '"display"', "0x10", "'''a'''",
]  # fmt: skip

#: Whole lines a fuzzer inserts.
TOML_LINES = [
    "[x]", "[[instrument]]", "[[point]]", "[[layer]]", "schema = 1", "schema = 2", "a.b.c = 1",
    "= 1", "[", "key = ", '"quoted key" = 1', "a = 1\na = 2", "\x00", "\ufeff", "#", "[[ ]]",
    "x = [" * 1500, "[" + "a." * 300 + "b]", "[instrument]", "[influx]", "[journal]",
]  # fmt: skip


@st.composite
def mutated_toml(draw: st.DrawFn, seeds: list[str]) -> str:
    """A real file from ``seeds`` with a few line-level edits: values swapped for odd ones,
    lines deleted, duplicated, inserted or cut short."""
    lines = draw(st.sampled_from(seeds)).splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        op = draw(st.sampled_from(["value", "value", "delete", "dup", "insert", "cut"]))
        i = draw(st.integers(min_value=0, max_value=max(0, len(lines) - 1))) if lines else 0
        if op == "insert" or not lines:
            lines.insert(i, draw(st.sampled_from(TOML_LINES) | st.text(max_size=40)))
        elif op == "value" and "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {draw(st.sampled_from(TOML_VALUES))}"
        elif op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        else:
            cut = draw(st.integers(min_value=0, max_value=len(lines[i])))
            lines[i] = lines[i][:cut]
    return "\n".join(lines) + "\n"
