"""A small SCPI-over-TCP line server shared by Hallmark's SCPI instrument simulators.

Instruments such as the Watlow F4T (SCPI on Ethernet port 5025, TestEquity 101H manual ch. 6
p. 62; ``EspecNorthAmerica/WatlowF4T-SCPI-Lib`` → ``f4tscpi/f4t_class.py``) and the Keysight
34970A/DAQ970A take ASCII program messages terminated by a line feed over a raw TCP socket and
answer each query with one line ending in a line feed. This module gives a simulator:

- header matching by SCPI rules (IEEE 488.2 / SCPI-99 vol. 1 §6.2): each mnemonic is written as
  in the manuals, upper case for the short form (``SOURce`` accepts ``SOUR`` and ``SOURCE``, any
  case, nothing in between), ``#`` for a numeric suffix (``CLOop#`` accepts ``CLO2``, ``CLOOP2``;
  no digits means 1), ``[...]`` for an optional node (``PROGram[:SELected]:STATe``);
- parameter helpers: numbers, booleans (``ON|OFF|1|0``), quoted strings and 34970A channel lists
  (``(@101:103,105)``; 34970A User's Guide ch. 4 "Rules for Using a Channel List");
- an error queue answered by ``SYSTem:ERRor?`` as ``-113,"Undefined header"`` and
  ``+0,"No error"`` when empty, with the SCPI-99 standard error numbers below; 20 entries, the
  last one replaced by ``-350,"Queue overflow"`` when full (the 34970A's queue size);
- the common commands ``*IDN?``, ``*RST``, ``*CLS`` and ``*OPC?``;
- several program message units in one line separated by ``;``, their query answers joined by
  ``;`` on one line (IEEE 488.2 §8.4). Simplification: every unit is parsed from the root, so the
  "compound header" shortcut (a unit relative to the previous one's branch) is not supported;
- link faults shared by every SCPI simulator (a fault timeline from :mod:`simulators.scenario`,
  parameters in :data:`LINK_FAULTS`):

  - ``no_reply``: commands are still executed (a set point write takes effect), answers are
    dropped;
  - ``late_reply`` (``delay_s``): each answer is held back ``delay_s`` seconds;
  - ``garbage`` (``count``): ``count`` seeded non-printable bytes (never ``\n``) before each
    answer;
  - ``partial_line`` (``delay_s``): the first half of each answer, without terminator, then the
    rest ``delay_s`` seconds later;
  - ``disconnect`` (``seconds``): every connection is closed and the listening socket too, so
    connecting is refused (ECONNREFUSED) for ``seconds`` (or the scenario window's duration);
    then the same port listens again;
  - ``reboot`` (``boot_s``): a one-off event at the window's start: connections dropped, the
    device's :meth:`ScpiDevice.power_on` runs (defaults back), the error queue is emptied and
    connecting is refused for ``boot_s`` seconds;
  - ``scpi_error`` (``command``, ``code``, ``message``): the command whose header equals
    ``command`` (case-insensitive, leading colon ignored, compared literally so short and long
    forms are different commands; empty = every command but ``SYST:ERR?`` and ``*CLS``) is not
    executed and ``code`` is queued for ``SYSTem:ERRor?``.

  :meth:`ScpiSimulator.set_fault` and :meth:`ScpiSimulator.clear_faults` return once the server
  has applied a disconnect or reboot, so a test can check the refusal right away.

Lines are split on ``\\n``; a trailing ``\\r`` is dropped. A line longer than 64 KiB is discarded
with error -223 "Too much data".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from simulators.scenario import (
    FaultTimeline,
    FaultWindow,
    ParamValue,
    ScenarioError,
    ScenarioVocabulary,
    load_scenario,
)

__all__ = [
    "ERROR_MESSAGES",
    "LINK_FAULTS",
    "Call",
    "CommandSet",
    "ErrorQueue",
    "LinkFaults",
    "ScpiDevice",
    "ScpiError",
    "ScpiSimulator",
    "ScpiTcpServer",
    "compile_header",
    "definite_block",
    "format_nr3",
    "match_header",
    "parse_bool",
    "parse_channel_list",
    "parse_number",
    "running_device",
    "running_simulator",
    "serve_device",
    "serve_simulator",
    "split_params",
    "split_units",
    "unquote",
]

#: SCPI-99 vol. 2 ch. 21 standard error numbers and messages used by the simulators.
ERROR_MESSAGES: Final[Mapping[int, str]] = {
    0: "No error",
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -114: "Header suffix out of range",
    -151: "Invalid string data",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -223: "Too much data",
    -224: "Illegal parameter value",
    -230: "Data corrupt or stale",
    -350: "Queue overflow",
}

ERROR_QUEUE_SIZE = 20
MAX_LINE_BYTES = 65536


class ScpiError(Exception):
    """A command the instrument refuses: ``code`` goes into the error queue."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(
            f"{code},{ERROR_MESSAGES.get(code, 'Error')}{'; ' + detail if detail else ''}"
        )


# --- header matching ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    suffix: bool
    optional: bool


_TOKEN = re.compile(r"^([A-Za-z_*]+)(\d*)$")


def compile_header(pattern: str) -> tuple[tuple[_Node, ...], bool]:
    """Compile a header written as in a manual (``:SOURce:CLOop#:PVALue?``): (nodes, is_query)."""
    text = pattern.strip()
    query = text.endswith("?")
    text = text.rstrip("?").lstrip(":")
    nodes: list[_Node] = []
    for part in re.findall(r"\[:?[^\]]+\]|[^:\[]+", text):
        optional = part.startswith("[")
        name = part.strip("[]").lstrip(":")
        suffix = name.endswith("#")
        name = name.rstrip("#")
        short = "".join(ch for ch in name if ch.isupper() or ch in "*_" or ch.isdigit())
        nodes.append(_Node(short.upper(), name.upper(), suffix, optional))
    return tuple(nodes), query


def match_header(nodes: Sequence[_Node], tokens: Sequence[str]) -> tuple[int, ...] | None:
    """The numeric suffixes of a header's tokens matched against ``nodes``, or None."""
    if not nodes:
        return () if not tokens else None
    node, rest = nodes[0], nodes[1:]
    if tokens:
        found = _TOKEN.match(tokens[0])
        if found is not None:
            letters, digits = found.group(1).upper(), found.group(2)
            if letters in (node.short, node.long) and (node.suffix or not digits):
                tail = match_header(rest, tokens[1:])
                if tail is not None:
                    return ((int(digits) if digits else 1), *tail) if node.suffix else tail
    if node.optional:
        skipped = match_header(rest, tokens)
        if skipped is not None:
            return (1, *skipped) if node.suffix else skipped
    return None


@dataclass(frozen=True)
class Call:
    """One program message unit as a handler sees it."""

    header: str
    suffixes: tuple[int, ...]
    params: tuple[str, ...]
    query: bool

    def param(self, index: int) -> str:
        """Parameter ``index`` or error -109 "Missing parameter"."""
        if index >= len(self.params) or not self.params[index]:
            raise ScpiError(-109, self.header)
        return self.params[index]

    def at_most(self, count: int) -> None:
        """Error -108 "Parameter not allowed" when more than ``count`` parameters came."""
        if len(self.params) > count:
            raise ScpiError(-108, self.header)


Handler = Callable[[Call], str | None]


class CommandSet:
    """Headers (as written in the manuals) mapped to handlers; the first match wins."""

    def __init__(self) -> None:
        self._entries: list[tuple[tuple[_Node, ...], bool, Handler]] = []

    def add(self, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``pattern`` (a query pattern ends in ``?``)."""
        nodes, query = compile_header(pattern)
        self._entries.append((nodes, query, handler))

    def dispatch(self, unit: str) -> str | None:
        """Run one program message unit; raise :class:`ScpiError` when it is refused."""
        text = unit.strip()
        header, _, rest = text.partition(" ")
        if "\t" in header:
            header, _, more = header.partition("\t")
            rest = f"{more} {rest}".strip()
        query = header.endswith("?")
        bare = header.rstrip("?")
        if not bare or bare.count("?"):
            raise ScpiError(-102, header)
        tokens = bare.lstrip(":").split(":") if not bare.startswith("*") else [bare]
        params = tuple(split_params(rest)) if rest.strip() else ()
        for nodes, is_query, handler in self._entries:
            if is_query != query:
                continue
            suffixes = match_header(nodes, tokens)
            if suffixes is not None:
                return handler(Call(header, suffixes, params, query))
        raise ScpiError(-113, header)


# --- parameter helpers --------------------------------------------------------------------------


def _split_outside(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    depth = 0
    for ch in text:
        if quote is not None:
            current.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def split_units(line: str) -> list[str]:
    """Program message units of one line (``;`` outside quotes), empty units dropped."""
    return [unit for unit in _split_outside(line, ";") if unit]


def split_params(text: str) -> list[str]:
    """Parameters separated by commas outside quotes and parentheses."""
    return _split_outside(text, ",")


def parse_number(text: str) -> float:
    """A decimal numeric parameter; -104 "Data type error" when it is not a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise ScpiError(-104, text) from None
    if not math.isfinite(value):
        raise ScpiError(-104, text)
    return value


def parse_bool(text: str) -> bool:
    """A boolean parameter: ``ON``/``OFF``/``1``/``0``; -224 "Illegal parameter value" else."""
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise ScpiError(-224, text)


def unquote(text: str) -> str:
    """A quoted string parameter (``"…"`` or ``'…'``); -151 "Invalid string data" else."""
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        quote = value[0]
        return value[1:-1].replace(quote * 2, quote)
    raise ScpiError(-151, text)


_CHANNEL_LIST = re.compile(r"^\(\s*@\s*(.*?)\s*\)$")


def parse_channel_list(text: str) -> list[int]:
    """``(@101:103,105)`` → ``[101, 102, 103, 105]`` in the order given; -104 when malformed."""
    found = _CHANNEL_LIST.match(text.strip())
    if found is None:
        raise ScpiError(-104, f"channel list {text!r}")
    body = found.group(1)
    if not body:
        return []
    channels: list[int] = []
    for item in body.split(","):
        first, sep, last = item.strip().partition(":")
        if not first.isdigit() or (sep and not last.strip().isdigit()):
            raise ScpiError(-104, f"channel list {text!r}")
        start = int(first)
        end = int(last) if sep else start
        if end < start:
            raise ScpiError(-222, f"channel range {item.strip()!r}")
        channels.extend(range(start, end + 1))
    return channels


def definite_block(payload: str) -> str:
    """IEEE 488.2 definite-length block: ``#`` + digits of the length + length + payload."""
    length = str(len(payload.encode("ascii")))
    return f"#{len(length)}{length}{payload}"


def format_nr3(value: float) -> str:
    """The 34970A reading format, ``+3.50123000E+01`` (sign, 8 decimals, two-digit exponent)."""
    return f"{value:+.8E}"


# --- error queue --------------------------------------------------------------------------------


class ErrorQueue:
    """The instrument's error queue, read oldest first by ``SYSTem:ERRor?``. Not thread-safe."""

    def __init__(self, size: int = ERROR_QUEUE_SIZE) -> None:
        self._size = size
        self._items: deque[tuple[int, str]] = deque()

    def push(self, code: int, message: str | None = None) -> None:
        """Queue an error; a full queue keeps its oldest entries and ends in -350."""
        text = message if message is not None else ERROR_MESSAGES.get(code, "Error")
        if len(self._items) >= self._size:
            self._items[-1] = (-350, ERROR_MESSAGES[-350])
            return
        self._items.append((code, text))

    def pop(self) -> str:
        """``-113,"Undefined header"`` for the oldest error, ``+0,"No error"`` when empty."""
        if not self._items:
            return '+0,"No error"'
        code, text = self._items.popleft()
        return f'{code:+d},"{text}"'

    def clear(self) -> None:
        """Empty the queue (``*CLS``)."""
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# --- link faults --------------------------------------------------------------------------------


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _LateReplyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds between the command and its answer.
    delay_s: float = Field(default=2.0, gt=0.0, le=600.0)


class _GarbageParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: How many non-printable bytes come before each answer.
    count: int = Field(default=4, ge=1, le=256)


class _PartialLineParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds between the first half of an answer (no terminator) and the rest.
    delay_s: float = Field(default=0.5, ge=0.0, le=600.0)


class _DisconnectParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Refuse connections this many seconds (left out: as long as the fault window lasts).
    seconds: float | None = Field(default=None, gt=0.0)


class _RebootParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds the controller takes to boot, refusing connections meanwhile.
    boot_s: float = Field(default=0.0, ge=0.0, le=600.0)


class _ScpiErrorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Header the error applies to, compared without case and leading colon ("" = every one).
    command: str = ""
    code: int = Field(default=-221, ge=-999, le=999)
    #: Error text; empty takes the standard SCPI message for ``code``.
    message: str = ""


#: Fault kinds every SCPI simulator understands, with their parameters.
LINK_FAULTS: Final[Mapping[str, type[BaseModel]]] = {
    "no_reply": _NoParams,
    "late_reply": _LateReplyParams,
    "garbage": _GarbageParams,
    "partial_line": _PartialLineParams,
    "disconnect": _DisconnectParams,
    "reboot": _RebootParams,
    "scpi_error": _ScpiErrorParams,
}


@dataclass(frozen=True)
class LinkFaults:
    """What the link does with the answers at one moment."""

    no_reply: bool = False
    delay_s: float = 0.0
    garbage: int = 0
    partial_delay_s: float | None = None
    refuse: bool = False


def _last(windows: Sequence[FaultWindow], kind: str) -> FaultWindow | None:
    matching = [window for window in windows if window.kind == kind]
    return matching[-1] if matching else None


# --- the device base ----------------------------------------------------------------------------


class ScpiDevice:
    """Instrument state behind a SCPI link: commands, error queue, clock and fault timeline.

    Subclasses register their commands in ``self.commands`` and override :meth:`identity`,
    :meth:`reset` (``*RST``) and :meth:`power_on` (a reboot). Every public method takes the
    device lock, so the TCP server and a test thread can use one device at once.
    """

    def __init__(self, timeline: FaultTimeline, *, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.timeline = timeline
        self.seed = seed
        self.errors = ErrorQueue()
        self.commands = CommandSet()
        self._t0: float | None = None
        self._applied_reboots: set[tuple[float, int]] = set()
        self._garbage_count = 0
        self.commands.add("*IDN?", self._idn)
        self.commands.add("*RST", self._rst)
        self.commands.add("*CLS", self._cls)
        self.commands.add("*OPC?", lambda call: "1")
        self.commands.add("SYSTem:ERRor[:NEXT]?", lambda call: self.errors.pop())

    # identity and resets (overridden)

    def identity(self) -> str:
        """The ``*IDN?`` answer: manufacturer, model, serial number, firmware."""
        return "Hallmark,SCPI simulator,0,0"

    def reset(self) -> None:
        """``*RST``: back to the factory settings the instrument documents."""

    def power_on(self, t: float) -> None:
        """A reboot at ``t``: everything a power cycle loses."""
        self.reset()

    # clock and faults

    def start_clock(self) -> None:
        """Start the simulator clock (the scenario's time base)."""
        with self.lock:
            self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since :meth:`start_clock` (0 before)."""
        t0 = self._t0
        return 0.0 if t0 is None else time.monotonic() - t0

    def set_fault(self, kind: str, params: Mapping[str, ParamValue]) -> None:
        """Open a hand-set fault now (parameters already validated)."""
        with self.lock:
            t = self.elapsed()
            self.timeline.start_manual(kind, t, params)
            self.apply_due(t)

    def clear_faults(self) -> None:
        """End every hand-set fault; scripted windows keep their schedule."""
        with self.lock:
            self.timeline.stop_manual(self.elapsed())

    def apply_due(self, t: float) -> int:
        """Apply reboots whose time has come; returns how many reboots happened so far."""
        with self.lock:
            for index, window in enumerate(self.timeline.windows("reboot")):
                key = (window.start, index)
                if window.start <= t and key not in self._applied_reboots:
                    self._applied_reboots.add(key)
                    self.errors.clear()
                    self.power_on(window.start)
            return len(self._applied_reboots)

    def link_faults(self) -> LinkFaults:
        """The link faults in force now."""
        with self.lock:
            t = self.elapsed()
            active = self.timeline.active(t)
            late = _last(active, "late_reply")
            garbage = _last(active, "garbage")
            partial = _last(active, "partial_line")
            return LinkFaults(
                no_reply=_last(active, "no_reply") is not None,
                delay_s=0.0 if late is None else float(late.params["delay_s"]),
                garbage=0 if garbage is None else int(garbage.params["count"]),
                partial_delay_s=None if partial is None else float(partial.params["delay_s"]),
                refuse=self._refusing(t),
            )

    def _refusing(self, t: float) -> bool:
        for window in self.timeline.windows("disconnect"):
            seconds = window.params.get("seconds")
            end = window.end if seconds is None else min(window.end, window.start + float(seconds))
            if window.start <= t < end:
                return True
        for window in self.timeline.windows("reboot"):
            if window.start <= t < window.start + float(window.params.get("boot_s", 0.0)):
                return True
        return False

    def next_event_after(self, t: float) -> float | None:
        """The next moment a disconnect or reboot window starts or a refusal ends."""
        with self.lock:
            moments: list[float] = []
            for window in self.timeline.windows("disconnect"):
                seconds = window.params.get("seconds")
                end = window.end if seconds is None else window.start + float(seconds)
                moments.extend((window.start, end))
            for window in self.timeline.windows("reboot"):
                moments.extend((window.start, window.start + float(window.params["boot_s"])))
            later = [m for m in moments if m > t and math.isfinite(m)]
            return min(later, default=None)

    def garbage_bytes(self, count: int) -> bytes:
        """``count`` seeded non-printable bytes (never a line feed)."""
        with self.lock:
            self._garbage_count += 1
            # Not cryptographic: reproducible junk per (seed, answer number).
            rng = random.Random(f"{self.seed}:garbage:{self._garbage_count}")  # noqa: S311
        pool = [b for b in range(256) if (b < 0x20 or b >= 0x7F) and b != 0x0A]
        return bytes(rng.choice(pool) for _ in range(count))

    # execution

    def execute(self, line: str) -> str | None:
        """Run one line of program message units; the joined query answers or None."""
        with self.lock:
            t = self.elapsed()
            self.apply_due(t)
            answers: list[str] = []
            for unit in split_units(line):
                injected = self._injected_error(unit, t)
                if injected is not None:
                    self.errors.push(*injected)
                    continue
                try:
                    answer = self.commands.dispatch(unit)
                except ScpiError as exc:
                    self.errors.push(exc.code)
                    continue
                if answer is not None:
                    answers.append(answer)
            return ";".join(answers) if answers else None

    def _injected_error(self, unit: str, t: float) -> tuple[int, str] | None:
        header = unit.strip().split(" ", 1)[0].lstrip(":").upper()
        if header in ("SYST:ERR?", "SYSTEM:ERROR?", "*CLS", "SYST:ERR:NEXT?"):
            return None
        window = _last(self.timeline.active(t), "scpi_error")
        if window is None:
            return None
        wanted = str(window.params["command"]).strip().lstrip(":").upper()
        if wanted and wanted != header:
            return None
        code = int(window.params["code"])
        message = str(window.params["message"]) or ERROR_MESSAGES.get(code, "Execution error")
        return code, message

    def _idn(self, call: Call) -> str:
        call.at_most(0)
        return self.identity()

    def _rst(self, call: Call) -> None:
        call.at_most(0)
        self.reset()

    def _cls(self, call: Call) -> None:
        call.at_most(0)
        self.errors.clear()


# --- TCP server ---------------------------------------------------------------------------------


class ScpiTcpServer:
    """Serves a :class:`ScpiDevice` over raw TCP (one line in, one line out), with link faults."""

    def __init__(self, device: ScpiDevice, *, name: str, host: str, port: int) -> None:
        self._device = device
        self._name = name
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._reboots = 0
        self._step_lock = asyncio.Lock()

    @property
    def port(self) -> int:
        """The bound port (the requested one before :meth:`start`)."""
        return self._port

    async def start(self) -> tuple[str, int]:
        """Listen; port 0 picks a free port. Returns ``(host, port)``."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._reboots = self._device.apply_due(self._device.elapsed())
        await self._listen()
        self._watcher = asyncio.create_task(self._watch(), name=f"{self._name}-watch")
        return self._host, self._port

    async def stop(self) -> None:
        """Close the listener and every connection; safe to call twice."""
        self._stopping = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self._unlisten()
        self.drop_connections()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """Ask the watcher to look at the fault timeline now (thread-safe)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    def drop_connections(self) -> None:
        """Close every open connection."""
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, reuse_address=True
        )
        sockets = self._server.sockets
        if sockets:
            self._port = int(sockets[0].getsockname()[1])

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _step(self) -> None:
        """Follow the timeline once: drop connections on a reboot, refuse while told to."""
        async with self._step_lock:
            count = self._device.apply_due(self._device.elapsed())
            refuse = self._device.link_faults().refuse
            if count != self._reboots or refuse:
                self._reboots = count
                self.drop_connections()
            if refuse and self._server is not None:
                await self._unlisten()
            elif not refuse and self._server is None and not self._stopping:
                # The port may be taken meanwhile: try again on the next step.
                with contextlib.suppress(OSError):
                    await self._listen()

    def sync(self, timeout: float = 5.0) -> None:
        """Apply the fault timeline now and wait for it, from a thread other than the loop's.

        From the loop's own thread (or before :meth:`start`) it only wakes the watcher.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.wake()
            return
        asyncio.run_coroutine_threadsafe(self._step(), loop).result(timeout)

    async def _watch(self) -> None:
        """Run :meth:`_step` whenever woken, and at least every 50 ms or at the next event."""
        wake = self._wake
        if wake is None:
            return
        while not self._stopping:
            await self._step()
            t = self._device.elapsed()
            following = self._device.next_event_after(t)
            timeout = 0.05 if following is None else min(0.05, max(0.0, following - t))
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._device.link_faults().refuse:
            writer.close()
            return
        self._writers.add(writer)
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    await self._handle(raw.rstrip(b"\r"), writer)
                if len(buffer) > MAX_LINE_BYTES:
                    buffer = b""
                    with self._device.lock:
                        self._device.errors.push(-223)
        except (ConnectionError, OSError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _handle(self, raw: bytes, writer: asyncio.StreamWriter) -> None:
        faults = self._device.link_faults()
        if faults.refuse:
            writer.close()
            return
        answer = self._device.execute(raw.decode("ascii", errors="replace"))
        if answer is None or faults.no_reply:
            return
        if faults.delay_s > 0:
            await asyncio.sleep(faults.delay_s)
        data = answer.encode("ascii", errors="replace") + b"\n"
        if faults.garbage:
            data = self._device.garbage_bytes(faults.garbage) + data
        if faults.partial_delay_s is not None:
            cut = max(1, (len(data) - 1) // 2)
            writer.write(data[:cut])
            await writer.drain()
            await asyncio.sleep(faults.partial_delay_s)
            data = data[cut:]
        if writer.is_closing():
            return
        writer.write(data)
        await writer.drain()


# --- the simulator wrapper ----------------------------------------------------------------------


class ScpiSimulator:
    """A :class:`ScpiDevice` served on TCP, with fault knobs checked against a vocabulary."""

    def __init__(
        self,
        device: ScpiDevice,
        vocabulary: ScenarioVocabulary,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.device = device
        self.vocabulary = vocabulary
        self.name = name
        self._host = host
        self._server = ScpiTcpServer(device, name=name, host=host, port=port)
        self._started = False

    async def start(self) -> tuple[str, int]:
        """Start the clock and listen. Returns ``(host, port)``."""
        if self._started:
            raise RuntimeError(f"the {self.name} starts once; make a new one to start again")
        self._started = True
        self.device.start_clock()
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving; safe to call twice."""
        await self._server.stop()

    def set_fault(self, kind: str, **params: ParamValue) -> None:
        """Activate a fault from now until :meth:`clear_faults` (or another of the same kind)."""
        checked = self.vocabulary.fault_params(kind, params)
        self.device.set_fault(kind, checked)
        self._server.sync()

    def clear_faults(self) -> None:
        """End every hand-set fault; the scenario's windows keep their schedule."""
        self.device.clear_faults()
        self._server.sync()

    def elapsed(self) -> float:
        """Seconds on the simulator clock."""
        return self.device.elapsed()

    @property
    def host(self) -> str:
        """The host listened on."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (the real one once started)."""
        return self._server.port

    @property
    def address(self) -> str:
        """The VISA resource string ``TCPIP::127.0.0.1::<port>::SOCKET``."""
        return f"TCPIP::{self._host}::{self.port}::SOCKET"


_THREAD_TIMEOUT_S = 10.0


@contextlib.contextmanager
def running_simulator(simulator: ScpiSimulator) -> Iterator[ScpiSimulator]:
    """Run ``simulator`` on its own event loop in a background thread (bounded start and stop)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=simulator.name, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(_THREAD_TIMEOUT_S)
        yield simulator
    finally:
        try:
            asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(_THREAD_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_THREAD_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()


def serve_simulator(simulator: ScpiSimulator, describe: Mapping[str, Any]) -> int:
    """Serve until SIGTERM/SIGINT, printing one JSON line (``describe`` + address, port)."""

    async def main() -> int:
        host, port = await simulator.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT)
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        try:
            line = {**describe, "host": host, "port": port, "address": simulator.address}
            print(json.dumps(line), flush=True)
            await stop.wait()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
            await simulator.stop()
        return 0

    return asyncio.run(main())


_S = TypeVar("_S", bound=ScpiSimulator)


@contextlib.contextmanager
def running_device(make: Callable[..., _S], /, **kwargs: Any) -> Iterator[_S]:
    """Make a simulator with ``make(**kwargs)`` and run it as :func:`running_simulator` does."""
    simulator = make(**kwargs)
    with running_simulator(simulator):
        yield simulator


def serve_device(
    make: Callable[..., _S],
    vocabulary: ScenarioVocabulary,
    describe: Callable[[_S], Mapping[str, Any]],
    *,
    host: str,
    port: int,
    seed: int,
    scenario_path: Path | None,
) -> int:
    """A simulator's ``serve``: load the scenario, make the simulator and serve it until stopped.

    ``make(host=, port=, seed=, scenario=)`` builds the simulator; the JSON line printed once
    listening is ``describe(simulator)`` plus the address (:func:`serve_simulator`). Returns 0
    after a clean stop, 2 for a bad scenario file, 1 when the address cannot be bound.
    """
    try:
        scenario = None if scenario_path is None else load_scenario(scenario_path, vocabulary)
        simulator = make(host=host, port=port, seed=seed, scenario=scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line = describe(simulator)
    try:
        return serve_simulator(simulator, line)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
