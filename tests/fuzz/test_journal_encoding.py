"""What the journal stores for a point reads back as the point, and is sent as ``encode`` says.

The journal writes each point's fields JSON and its line protocol in one pass
(daq/lineprotocol.py ``encode_with_json``, which formats each value once). For any fields:
``json.loads`` of the stored text gives the values ``json.dumps`` would have given (NaN and
±inf included), and the line a sink gets is exactly ``encode(point)`` (None when the point has
no field with a finite value).
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from daq.journal import Journal
from daq.lineprotocol import encode
from daq.model import FieldValue, Point


class Text(str):
    """A str subclass, as a field value may be."""


keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
values: st.SearchStrategy[FieldValue] = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.text(max_size=5).map(Text),
    st.sampled_from(["null", 'say "null"', "a\\b", "x\ny", "µm", "\x00\x1f"]),
)
fieldsets = st.dictionaries(keys, values, max_size=8)


def same(a: object, b: object) -> bool:
    """Equal, counting NaN equal to NaN and telling 0.0 from -0.0 as JSON does."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or repr(a) == repr(b)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(fieldsets, min_size=1, max_size=5))
def test_stored_fields_and_sent_lines(tmp_path_factory, fields):
    folder: Path = tmp_path_factory.mktemp("j")
    points = [
        Point("m e,a", {"bench": "b 1", "instrument": "i=1"}, f, 1_700_000_000_000_000_000 + i)
        for i, f in enumerate(fields)
    ]
    with Journal(folder / "j.db") as journal:
        journal.append(points)
        sent = journal.pending_lines("sink", 100)
    with sqlite3.connect(folder / "j.db") as db:
        stored = [row[0] for row in db.execute("SELECT fields FROM points ORDER BY id")]
    for point, text, (_, line) in zip(points, stored, sent, strict=True):
        assert same(json.loads(text), json.loads(json.dumps(point.fields)))
        try:
            expected: str | None = encode(point)
        except ValueError:
            expected = None
        assert line == expected
