"""Byte transcripts of an instrument session: the file format and the replay matching logic.

A transcript is what passed on the wire between the host (the daemon, a driver) and an
instrument, in both directions, with the time of each chunk. ``daq record`` writes one while
proxying a real session (daq/recorder.py); ``daq replay`` serves it back from the instrument's
side (simulators/replay.py), so a session captured at a bench replays in CI to the same driver
code paths. This module holds the pure parts: reading and writing the format, turning a
transcript into request/reply exchanges, and matching what a host sends against them.

File format (JSON Lines, UTF-8, one object per line; version 1):

- line 1, the header::

    {"format": "hallmark-transcript", "version": 1, "transport": "tcp" | "serial",
     "protocol": "modbus-tcp" | "raw", "target": "127.0.0.1:5020", "recorded_at": ISO-8601,
     "note": "free text"}

- then one line per chunk, in the order seen::

    {"t": 0.0123, "dir": "tx", "hex": "3f430d0a", "text": "?C\\r\\n"}

  ``t`` is seconds since the recording started; ``dir`` is ``tx`` (host to instrument) or
  ``rx`` (instrument to host); ``hex`` holds the bytes and is the record. ``text`` is written
  when every byte is printable ASCII, CR, LF or TAB, only to make files readable; when present
  it must equal the bytes (a hand edit of one without the other is refused).
- and event lines ``{"t": 1.5, "event": "connect"}`` / ``{"t": 9.1, "event": "disconnect",
  "by": "host" | "instrument"}`` for TCP connections (who closed first).

Matching (:class:`ReplayMatcher`): the transcript becomes a list of :class:`Exchange` — the tx
bytes the host sent, followed by the rx bytes the instrument answered (and their timing). What
a replaying host sends is matched as a byte stream against the next recorded request, so the
host may cut its writes differently from the recording. With protocol ``modbus-tcp`` the 2-byte
transaction id that opens every MBAP header (Modbus Messaging on TCP/IP Implementation Guide
v1.0b §3.1.3: transaction id, protocol id 0, length, unit id) is a wildcard in requests and is
written into the matching reply, since a client numbers its requests afresh on every run; the
MBAP length field (bytes 4-5) gives each frame's size.

A request that differs from the transcript is a :class:`Mismatch`, described in words (which
request, at which byte, expected and received bytes as hex and text). Not strict, the matcher
then answers nothing (the host times out, as with a silent instrument), drops the odd bytes
(a whole MBAP frame for Modbus TCP; byte by byte for raw streams, until the input again looks
like the start of a recorded request) and goes on with the current or a later recorded request.
Strict, the first mismatch stops the replay.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal, cast

from daq.errors import HallmarkError

__all__ = [
    "FORMAT",
    "PROTOCOLS",
    "TRANSPORTS",
    "VERSION",
    "Chunk",
    "Direction",
    "Entry",
    "Event",
    "Exchange",
    "Header",
    "Mismatch",
    "ReplayMatcher",
    "ReplySegment",
    "Send",
    "Side",
    "Transcript",
    "TranscriptError",
    "TranscriptWriter",
    "WireProtocol",
    "build_exchanges",
    "encode_entry",
    "encode_header",
    "parse_transcript",
    "printable_text",
    "read_transcript",
    "show_bytes",
]

FORMAT = "hallmark-transcript"
VERSION = 1
TRANSPORTS = ("tcp", "serial")
PROTOCOLS = ("modbus-tcp", "raw")

Direction = Literal["tx", "rx"]
Transport = Literal["tcp", "serial"]
WireProtocol = Literal["modbus-tcp", "raw"]
EventKind = Literal["connect", "disconnect"]
Side = Literal["host", "instrument"]

#: MBAP header: transaction id (2), protocol id (2), length (2); the length counts the unit id
#: and the PDU that follow (Modbus Messaging on TCP/IP Implementation Guide v1.0b §3.1.3).
_MBAP_PREFIX = 6
#: A Modbus TCP ADU is at most 260 bytes (same guide, §3.1.3), so a length beyond 254 is garbage.
_MBAP_MAX_LENGTH = 254
#: Bytes shown on each side of a mismatch report.
_SHOW = 16
_TEXT_EXTRA = frozenset(b"\r\n\t")


class TranscriptError(HallmarkError):
    """A transcript file cannot be read: not a transcript, a newer version, a malformed line."""


@dataclass(frozen=True, slots=True)
class Header:
    """The first line of a transcript: what was recorded, how, and when."""

    transport: Transport
    protocol: WireProtocol
    target: str
    recorded_at: str
    note: str = ""
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes seen in one direction at ``t`` seconds after the recording started."""

    t: float
    direction: Direction
    data: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """A TCP connection opened or closed (``by`` names the side that closed first)."""

    t: float
    event: EventKind
    by: Side | None = None


Entry = Chunk | Event


@dataclass(frozen=True, slots=True)
class Transcript:
    """A whole transcript: its header and its chunks and events in recorded order."""

    header: Header
    entries: tuple[Entry, ...]

    def chunks(self, direction: Direction | None = None) -> list[Chunk]:
        """The chunks, optionally of one direction only."""
        return [
            e
            for e in self.entries
            if isinstance(e, Chunk) and (direction is None or e.direction == direction)
        ]

    def bytes_sent(self, direction: Direction) -> bytes:
        """Every byte of one direction, joined."""
        return b"".join(c.data for c in self.chunks(direction))


# --- encoding ----------------------------------------------------------------------------------


def printable_text(data: bytes) -> str | None:
    """``data`` as text when every byte is printable ASCII, CR, LF or TAB; else ``None``."""
    if all(0x20 <= b < 0x7F or b in _TEXT_EXTRA for b in data):
        return data.decode("ascii")
    return None


def show_bytes(data: bytes) -> str:
    """Bytes for a person: ``3f 43 0d 0a ('?C\\r\\n')`` (hex, then text with escapes)."""
    if not data:
        return "nothing"
    text = "".join(
        "\\r"
        if b == 0x0D
        else "\\n"
        if b == 0x0A
        else "\\t"
        if b == 0x09
        else chr(b)
        if 0x20 <= b < 0x7F
        else f"\\x{b:02x}"
        for b in data
    )
    return f"{data.hex(' ')} ('{text}')"


def encode_header(header: Header) -> str:
    """The header as its JSON line (no newline)."""
    return json.dumps(
        {
            "format": FORMAT,
            "version": header.version,
            "transport": header.transport,
            "protocol": header.protocol,
            "target": header.target,
            "recorded_at": header.recorded_at,
            "note": header.note,
        },
        ensure_ascii=False,
    )


def encode_entry(entry: Entry) -> str:
    """A chunk or event as its JSON line (no newline)."""
    if isinstance(entry, Event):
        obj: dict[str, object] = {"t": round(entry.t, 6), "event": entry.event}
        if entry.by is not None:
            obj["by"] = entry.by
        return json.dumps(obj)
    obj = {"t": round(entry.t, 6), "dir": entry.direction, "hex": entry.data.hex()}
    text = printable_text(entry.data)
    if text is not None:
        obj["text"] = text
    return json.dumps(obj)


def _header_from(obj: object, where: str) -> Header:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise TranscriptError(
            f'{where}: not a Hallmark transcript (the first line has no "format": "{FORMAT}")'
        )
    version = obj.get("version")
    if version != VERSION:
        raise TranscriptError(
            f"{where}: transcript version {version!r}; this Hallmark reads version {VERSION}"
        )
    transport = obj.get("transport")
    if transport not in TRANSPORTS:
        raise TranscriptError(f"{where}: transport must be one of {TRANSPORTS} (got {transport!r})")
    protocol = obj.get("protocol")
    if protocol not in PROTOCOLS:
        raise TranscriptError(f"{where}: protocol must be one of {PROTOCOLS} (got {protocol!r})")
    return Header(
        transport=cast(Transport, transport),
        protocol=cast(WireProtocol, protocol),
        target=str(obj.get("target", "")),
        recorded_at=str(obj.get("recorded_at", "")),
        note=str(obj.get("note", "")),
    )


def _seconds(value: object) -> float | None:
    """A JSON number as finite, non-negative seconds, or None. JSON allows NaN, Infinity and
    integers too large for a float (found by fuzzing), none of which is a time."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _entry_from(obj: object, where: str) -> Entry:
    if not isinstance(obj, dict):
        raise TranscriptError(f"{where}: expected a JSON object")
    t = _seconds(obj.get("t"))
    if t is None:
        shown = str(obj.get("t"))
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise TranscriptError(f"{where}: 't' must be seconds since the start (got {shown})")
    if "event" in obj:
        kind = obj["event"]
        if kind not in ("connect", "disconnect"):
            raise TranscriptError(f"{where}: unknown event {kind!r} (connect or disconnect)")
        by = obj.get("by")
        if by not in (None, "host", "instrument"):
            raise TranscriptError(f"{where}: 'by' must be host or instrument (got {by!r})")
        return Event(t, cast(EventKind, kind), cast(Side | None, by))
    direction = obj.get("dir")
    if direction not in ("tx", "rx"):
        raise TranscriptError(f"{where}: 'dir' must be tx or rx (got {direction!r})")
    raw = obj.get("hex")
    try:
        data = bytes.fromhex(raw) if isinstance(raw, str) else None
    except ValueError:
        data = None
    if data is None:
        raise TranscriptError(f"{where}: 'hex' must be the chunk's bytes in hex (got {raw!r})")
    text = obj.get("text")
    if text is not None and (
        not isinstance(text, str) or text.encode("latin-1", "replace") != data
    ):
        raise TranscriptError(
            f"{where}: 'text' and 'hex' disagree; 'hex' is the record: fix it or remove 'text'"
        )
    return Chunk(t, cast(Direction, direction), data)


def parse_transcript(text: str, source: str = "transcript") -> Transcript:
    """Parse a transcript's text; errors name ``source`` and the line. Blank lines are skipped."""
    header: Header | None = None
    entries: list[Entry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TranscriptError(f"{where}: not JSON ({exc.msg})") from exc
        except RecursionError as exc:  # json recurses once per nesting level
            raise TranscriptError(f"{where}: not a transcript line (nested too deep)") from exc
        except ValueError as exc:  # an integer longer than int()'s 4300-digit limit
            raise TranscriptError(f"{where}: not JSON ({str(exc).split(':')[0]})") from exc
        if header is None:
            header = _header_from(obj, where)
        else:
            entries.append(_entry_from(obj, where))
    if header is None:
        raise TranscriptError(f"{source}: empty file, not a transcript")
    return Transcript(header, tuple(entries))


def read_transcript(path: Path) -> Transcript:
    """Read a transcript file. Raises :class:`TranscriptError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"cannot read transcript {path}: {exc}") from exc
    return parse_transcript(text, str(path))


class TranscriptWriter:
    """Append a transcript to a text stream, one flushed line per chunk (thread-safe).

    Times are taken on :func:`time.monotonic` from the writer's creation; ``recorded_at`` is the
    UTC wall-clock time then. The stream is the caller's: :meth:`close` only stops writing.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        transport: Transport,
        protocol: WireProtocol,
        target: str,
        note: str = "",
    ) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._closed = False
        self.chunks = 0
        self.bytes = {"tx": 0, "rx": 0}
        self.header = Header(
            transport=transport,
            protocol=protocol,
            target=target,
            recorded_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            note=note,
        )
        self._line(encode_header(self.header))

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _line(self, line: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._stream.write(line + "\n")
            self._stream.flush()

    def chunk(self, direction: Direction, data: bytes) -> None:
        """Record ``data`` seen now going ``direction``."""
        if not data:
            return
        self._line(encode_entry(Chunk(self._now(), direction, bytes(data))))
        self.chunks += 1
        self.bytes[direction] += len(data)

    def event(self, kind: EventKind, by: Side | None = None) -> None:
        """Record a connection opened or closed now."""
        self._line(encode_entry(Event(self._now(), kind, by)))

    def close(self) -> None:
        """Write nothing more (idempotent)."""
        with self._lock:
            self._closed = True


# --- exchanges ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplySegment:
    """Reply bytes to send ``delay`` s after the previous segment (or after the request)."""

    delay: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded request (tx bytes, maybe empty) and the reply that followed it."""

    number: int  # 1-based, for messages
    t: float  # when the request started (or the reply, for an empty request)
    request: bytes
    reply: tuple[ReplySegment, ...]
    close_after: bool = False  # the instrument closed the connection after replying

    @property
    def reply_bytes(self) -> bytes:
        return b"".join(s.data for s in self.reply)


@dataclass(slots=True)
class _Building:
    t: float | None = None
    request: bytearray = field(default_factory=bytearray)
    reply: list[ReplySegment] = field(default_factory=list)
    last_t: float = 0.0

    def empty(self) -> bool:
        return not self.request and not self.reply


def build_exchanges(entries: Iterable[Entry]) -> list[Exchange]:
    """Cut a transcript into exchanges: tx bytes up to the first rx, then rx up to the next tx.

    A connection closed by the instrument ends an exchange with ``close_after``; any connect or
    disconnect ends the exchange in progress. rx bytes with no tx before them (a greeting, a
    stream) form an exchange with an empty request, sent without waiting.
    """
    done: list[Exchange] = []
    cur = _Building()

    def finish(close_after: bool = False) -> None:
        nonlocal cur
        if not cur.empty():
            done.append(
                Exchange(
                    number=len(done) + 1,
                    t=cur.t or 0.0,
                    request=bytes(cur.request),
                    reply=tuple(cur.reply),
                    close_after=close_after,
                )
            )
        elif close_after and done:
            last = done[-1]
            done[-1] = Exchange(last.number, last.t, last.request, last.reply, True)
        cur = _Building()

    for entry in entries:
        if isinstance(entry, Event):
            finish(close_after=entry.event == "disconnect" and entry.by == "instrument")
            continue
        if entry.direction == "tx":
            if cur.reply:
                finish()
            if cur.t is None:
                cur.t = entry.t
            cur.request += entry.data
        else:
            if cur.t is None:
                cur.t = entry.t
                cur.last_t = entry.t
            cur.reply.append(ReplySegment(max(0.0, entry.t - cur.last_t), entry.data))
        cur.last_t = entry.t
    finish()
    return done


# --- matching ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send these reply segments now (their delays apply with real-time replay)."""

    exchange: int
    segments: tuple[ReplySegment, ...]
    close_after: bool = False

    @property
    def data(self) -> bytes:
        return b"".join(s.data for s in self.segments)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The host sent something the transcript does not have where it was expected."""

    exchange: int  # 1-based number of the recorded request expected; 0 after the end
    exchanges: int  # how many exchanges the transcript has
    offset: int  # byte of the request where it differs
    stream_offset: int  # byte of everything the host sent where it differs
    expected: bytes
    got: bytes

    def describe(self) -> str:
        """One sentence for a technician."""
        if self.exchange == 0:
            return (
                f"the transcript has ended ({self.exchanges} exchanges), but the host sent"
                f" {show_bytes(self.got)} at byte {self.stream_offset} of its stream"
            )
        return (
            f"request {self.exchange} of {self.exchanges} differs from the transcript at byte"
            f" {self.offset} of the request (byte {self.stream_offset} of the host's stream):"
            f" expected {show_bytes(self.expected)}, got {show_bytes(self.got)}"
        )


Action = Send | Mismatch


def _mbap_frames(data: bytes) -> list[int]:
    """Offsets of the MBAP frames a Modbus TCP byte string holds, walking the length fields."""
    starts: list[int] = []
    pos = 0
    while pos + _MBAP_PREFIX <= len(data):
        starts.append(pos)
        pos += _MBAP_PREFIX + int.from_bytes(data[pos + 4 : pos + 6], "big")
    return starts


def _first_difference(got: bytes, expected: bytes, wild: frozenset[int]) -> int:
    """The first offset where ``got`` and ``expected`` differ outside ``wild``; -1 if none."""
    for i in range(min(len(got), len(expected))):
        if i not in wild and got[i] != expected[i]:
            return i
    return -1


class ReplayMatcher:
    """Match the bytes a host sends against a transcript's exchanges (see module docstring).

    Feed it what arrives (:meth:`feed`) and act on what it returns, in order: :class:`Send`
    (reply bytes) and :class:`Mismatch` (a report). :meth:`start` returns the replies due before
    any request. Not thread-safe: one connection or port thread drives it.
    """

    def __init__(
        self,
        exchanges: Sequence[Exchange],
        *,
        protocol: WireProtocol = "raw",
        strict: bool = False,
    ) -> None:
        self._exchanges = list(exchanges)
        self.protocol = protocol
        self.strict = strict
        self._wild = [self._wildcards(e.request) for e in self._exchanges]
        self._next = 0
        self._buf = bytearray()
        self._buf_offset = 0  # stream offset of self._buf[0]
        self._discard = 0
        self._in_sync = True
        #: True once a strict replay met a mismatch: nothing more is matched.
        self.stopped = False
        #: Bytes dropped while looking for the next recorded request.
        self.dropped = 0
        #: How many recorded exchanges were answered.
        self.answered = 0

    @property
    def exchanges(self) -> int:
        return len(self._exchanges)

    @property
    def position(self) -> int:
        """Index of the next exchange expected (== :attr:`exchanges` at the end)."""
        return self._next

    @property
    def finished(self) -> bool:
        """Every recorded exchange has been passed (answered or skipped)."""
        return self._next >= len(self._exchanges)

    def _wildcards(self, request: bytes) -> frozenset[int]:
        if self.protocol != "modbus-tcp":
            return frozenset()
        return frozenset(o for start in _mbap_frames(request) for o in (start, start + 1))

    def start(self) -> list[Action]:
        """Replies the transcript sends before the host asks anything (empty requests)."""
        return self._unasked()

    def _unasked(self) -> list[Action]:
        actions: list[Action] = []
        while self._next < len(self._exchanges) and not self._exchanges[self._next].request:
            exchange = self._exchanges[self._next]
            self._next += 1
            self.answered += 1
            actions.append(Send(exchange.number, exchange.reply, exchange.close_after))
        return actions

    def _drop(self, count: int) -> None:
        del self._buf[:count]
        self._buf_offset += count
        self.dropped += count

    def feed(self, data: bytes) -> list[Action]:
        """Take bytes the host sent; return what to do, in order."""
        actions: list[Action] = []
        if self.stopped:
            return actions
        self._buf += data
        while self._buf and not self.stopped:
            if self._discard:
                count = min(self._discard, len(self._buf))
                self._discard -= count
                self._drop(count)
                continue
            found = self._candidate()
            if found is None:
                self._no_candidate(actions)
                continue
            exchange = self._exchanges[found]
            if len(self._buf) < len(exchange.request):
                self._in_sync = True
                break  # a prefix of a recorded request: wait for the rest
            actions.append(self._answer(found))
            actions += self._unasked()
        return actions

    def _candidate(self) -> int | None:
        """The first exchange from the next one on whose request fits the buffer's head."""
        last = self._next + 1 if self.strict else len(self._exchanges)
        for i in range(self._next, min(last, len(self._exchanges))):
            request = self._exchanges[i].request
            if request and _first_difference(bytes(self._buf), request, self._wild[i]) < 0:
                return i
        return None

    def _answer(self, index: int) -> Send:
        exchange = self._exchanges[index]
        size = len(exchange.request)
        got = bytes(self._buf[:size])
        del self._buf[:size]
        self._buf_offset += size
        self._next = index + 1
        self._in_sync = True
        self.answered += 1
        segments = exchange.reply
        if self.protocol == "modbus-tcp":
            segments = _rewrite_ids(exchange.request, got, segments)
        return Send(exchange.number, segments, exchange.close_after)

    def _no_candidate(self, actions: list[Action]) -> None:
        buf = bytes(self._buf)
        if self._in_sync:
            if self._next < len(self._exchanges):
                exchange = self._exchanges[self._next]
                offset = max(0, _first_difference(buf, exchange.request, self._wild[self._next]))
                expected = exchange.request[offset : offset + _SHOW]
                number = exchange.number
            else:
                offset, expected, number = 0, b"", 0
            actions.append(
                Mismatch(
                    exchange=number,
                    exchanges=len(self._exchanges),
                    offset=offset,
                    stream_offset=self._buf_offset + offset,
                    expected=expected,
                    got=buf[offset : offset + _SHOW],
                )
            )
            if self.strict:
                self.stopped = True
                return
            self._in_sync = False
            if self.protocol == "modbus-tcp" and len(buf) >= _MBAP_PREFIX:
                length = int.from_bytes(buf[4:6], "big")
                if length <= _MBAP_MAX_LENGTH:
                    self._discard = _MBAP_PREFIX + length
                    return
        self._drop(1)


def _rewrite_ids(
    recorded: bytes, got: bytes, segments: tuple[ReplySegment, ...]
) -> tuple[ReplySegment, ...]:
    """Put the host's transaction ids into the recorded reply, frame by frame (MBAP)."""
    ids = {recorded[s : s + 2]: got[s : s + 2] for s in _mbap_frames(recorded)}
    reply = bytearray(b"".join(s.data for s in segments))
    for start in _mbap_frames(bytes(reply)):
        new = ids.get(bytes(reply[start : start + 2]))
        if new is not None:
            reply[start : start + 2] = new
    out: list[ReplySegment] = []
    pos = 0
    for segment in segments:
        size = len(segment.data)
        out.append(ReplySegment(segment.delay, bytes(reply[pos : pos + size])))
        pos += size
    return tuple(out)
