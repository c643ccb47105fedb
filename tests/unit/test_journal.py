import os
import stat

import pytest

from daq.journal import Journal, JournalError
from daq.lineprotocol import encode
from daq.model import Point


def pt(i, m="chamber"):
    return Point(m, {"bench": "b", "instrument": "c1"}, {"value": float(i), "status": "pass"}, i)


def test_append_pending_ack(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        assert j.append([pt(1), pt(2), pt(3)]) == 3
        assert [r for r, _ in j.pending_lines("s", 10)] == [1, 2, 3]
        assert j.backlog("s") == 3
        j.ack("s", 2)
        assert [line for _, line in j.pending_lines("s", 10)] == [encode(pt(3))]
        j.ack("s", 1)  # cursors never move back
        assert j.cursor("s") == 2
        assert j.backlog("other") == 3


def test_survives_reopen_and_is_private(tmp_path):
    path = tmp_path / "sub" / "j.db"
    with Journal(path) as j:
        j.append([pt(1)])
        j.ack("s", 1)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Journal(path, readonly=True) as j:
        assert j.count() == 1
        assert j.cursor("s") == 1
        assert j.latest(5)[0] == pt(1)


def test_ids_never_reused_after_retention(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        j.append([pt(1), pt(2)])
        j.ack("s", 2)
        assert j.prune(older_than_ns=100, sinks=["s"]) == 2
        assert j.append([pt(500)]) == 3
        assert [r for r, _ in j.pending_lines("s", 10)] == [3]


def test_prune_keeps_unforwarded_rows(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        j.append([pt(1), pt(2), pt(3)])
        j.ack("s", 1)
        assert j.prune(older_than_ns=100, sinks=["s", "never-seen"]) == 0
        assert j.prune(older_than_ns=100, sinks=["s"]) == 1
        assert j.count() == 2


def test_quarantine_is_listed(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        j.quarantine("s", [(7, "bad line")], "unable to parse")
        (row,) = j.quarantined()
        assert (row.sink, row.row_id, row.line, row.message) == (
            "s",
            7,
            "bad line",
            "unable to parse",
        )


def test_unicode_and_types_roundtrip(tmp_path):
    p = Point(
        "thickness", {"feature": "layer_Au"}, {"value": 2.5, "unit": "µm", "n": 3, "ok": True}, 9
    )
    with Journal(tmp_path / "j.db") as j:
        j.append([p])
        assert list(j.iter_points()) == [p]


def test_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(blocker / "j.db")


def test_missing_journal_readonly(tmp_path):
    with pytest.raises(JournalError, match="no journal at"):
        Journal(tmp_path / "none.db", readonly=True)


def test_unwritable_point_has_no_line(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        j.append([Point("chamber", {"bench": "b"}, {"value": float("nan")}, 1)])
        assert j.pending_lines("s", 10) == [(1, None)]


def test_lot_store_creates_a_private_file(tmp_path):
    from daq.lots import LotStore

    path = tmp_path / "new" / "j.db"
    with LotStore(path):
        pass
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
