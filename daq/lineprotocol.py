"""InfluxDB line protocol, encoded by one pure function.

Escaping follows the line-protocol reference: measurement names escape commas and spaces; tag
keys, tag values and field keys escape commas, equals signs and spaces; string field values
escape double quotes and backslashes. Integers carry the ``i`` suffix, booleans are ``true`` /
``false``. Tags are sorted, as InfluxDB recommends for write performance. Empty tag values are
left out (line protocol has no empty tag). Non-finite floats cannot be written and are dropped;
a point left with no field raises ``ValueError``.

What line protocol cannot carry exactly (checked against InfluxDB 1.6): a newline, which the
line protocol reference does not allow in any value, is written as the two characters ``\\n``
(in a string field a literal newline happens to work on InfluxDB 1.x, but VictoriaMetrics then
drops the whole point). A tag key or value cannot end with a backslash: it would escape the
separator after it and break the line (HTTP 400 for the whole batch), so trailing backslashes
are dropped, as Telegraf does. Measurement names and field keys come from the schema and must
not end with one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

from daq.model import FieldValue, Point

__all__ = ["encode", "encode_many"]

_MEAS = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def _field(value: FieldValue) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(value)
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


@lru_cache(maxsize=8192)
def _head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    """Measurement and tag set, escaped and sorted. Cached: a bench has few distinct series."""
    # A trailing backslash would escape the separator after it (see the module docstring).
    pairs = ((k.rstrip("\\"), v.rstrip("\\")) for k, v in sorted(tags))
    tagtext = "".join(f",{k.translate(_KEY)}={v.translate(_KEY)}" for k, v in pairs if k and v)
    return measurement.translate(_MEAS) + tagtext


@lru_cache(maxsize=1024)
def _key(name: str) -> str:
    return name.translate(_KEY)


def encode(point: Point) -> str:
    """One point as one line of line protocol (no trailing newline)."""
    fields = []
    for key, value in point.fields.items():
        if type(value) is float:  # the common case first
            if not math.isfinite(value):
                continue
            encoded: str | None = repr(value)
        else:
            encoded = _field(value)
            if encoded is None:
                continue
        fields.append(f"{_key(key)}={encoded}")
    if not fields:
        raise ValueError(f"point {point.measurement!r} has no writable field")
    head = _head(point.measurement, tuple(point.tags.items()))
    return f"{head} {','.join(fields)} {point.time_ns}"


def encode_many(points: Iterable[Point]) -> str:
    """Points as newline-separated line protocol."""
    return "\n".join(encode(p) for p in points)
