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

import json
import math
from collections.abc import Iterable
from functools import lru_cache
from json.encoder import encode_basestring

from daq.model import FieldValue, Point

__all__ = ["encode", "encode_many", "encode_with_json"]

_MEAS = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def _field(value: FieldValue) -> str | None:
    if type(value) is str:  # the common case after floats
        text = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{text}"'
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


#: Escaped field keys seen so far (the schema has few); filled by ``encode``.
_KEYS: dict[str, str] = {}
_isfinite = math.isfinite


def encode(point: Point) -> str:
    """One point as one line of line protocol (no trailing newline)."""
    fields = []
    keys = _KEYS
    for key, value in point.fields.items():
        k = keys.get(key)
        if k is None:
            k = _key(key)
            if len(keys) < 4096:
                keys[key] = k
        if type(value) is float:  # the common case first
            if _isfinite(value):
                fields.append(f"{k}={value!r}")
            continue
        encoded = _field(value)
        if encoded is not None:
            fields.append(f"{k}={encoded}")
    if not fields:
        raise ValueError(f"point {point.measurement!r} has no writable field")
    head = _head(point.measurement, tuple(point.tags.items()))
    return f"{head} {','.join(fields)} {point.time_ns}"


_json_fields = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: Field keys seen so far: (escaped for line protocol, as json.dumps writes a key).
_BOTH_KEYS: dict[str, tuple[str, str]] = {}
_JSON_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def encode_with_json(point: Point) -> tuple[str | None, str]:
    """The point's line (None when it has no writable field) and its fields as compact JSON.

    The JSON is exactly ``json.dumps(point.fields, ensure_ascii=False, separators=(",", ":"))``
    (the journal's ``fields`` column), written in the same pass as the line so each value is
    formatted once: a float's ``repr`` is what both line protocol and the json module write.
    """
    both = _BOTH_KEYS
    line: list[str] = []
    doc: list[str] = []
    for key, value in point.fields.items():
        pair = both.get(key)
        if pair is None:
            if type(key) is not str:
                break  # not a schema field: the general encoders below
            pair = (_key(key), encode_basestring(key))
            if len(both) < 4096:
                both[key] = pair
        k, jk = pair
        t = type(value)
        if t is float and isinstance(value, float):  # exactly a float (isinstance for mypy)
            if _isfinite(value):
                text = repr(value)
                line.append(f"{k}={text}")
                doc.append(f"{jk}:{text}")
            else:
                doc.append(f"{jk}:{_JSON_NONFINITE.get(value, 'NaN')}")
        elif t is str and isinstance(value, str):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            line.append(f'{k}="{escaped}"')
            doc.append(f"{jk}:{encode_basestring(value)}")
        elif t is bool:
            text = "true" if value else "false"
            line.append(f"{k}={text}")
            doc.append(f"{jk}:{text}")
        elif t is int:
            text = repr(value)
            line.append(f"{k}={text}i")
            doc.append(f"{jk}:{text}")
        else:
            break  # a subclass or another type: the general encoders below
    else:
        if not line:
            return None, "{" + ",".join(doc) + "}"
        head = _head(point.measurement, tuple(point.tags.items()))
        return f"{head} {','.join(line)} {point.time_ns}", "{" + ",".join(doc) + "}"
    try:
        encoded: str | None = encode(point)
    except ValueError:
        encoded = None
    return encoded, _json_fields(point.fields)


def encode_many(points: Iterable[Point]) -> str:
    """Points as newline-separated line protocol."""
    return "\n".join(encode(p) for p in points)
