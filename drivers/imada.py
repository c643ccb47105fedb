"""Imada digital force and torque gauges (DS2, DST/DSV, ZT, HTG2 style) over RS-232/USB.

Transport: a serial line (drivers/transport/serial.py), 19200 8N1 by default.

Protocol. The Imada manuals were not retrieved (docs: INSTRUMENTS_AND_STANDARDS.md §1.2, §6.2,
§7 item 4); what follows is taken from public drivers that work against real gauges
(``sktometometo/imada_forcegauge`` for a DS2-500N, the cranio HTG2-4 interface, and a DST-44A
driver):

- Request ``D`` + CR. The reply is fixed width and ends in CR alone (no LF): sign and digits,
  then three characters: **unit, mode, judgement** (``+012.34NTO`` + CR). The reference drivers
  slice by position, and so does this one: the last three characters are the letters, the rest
  is the number.
- **The letters' meanings are an assumption, not confirmed in any manual.** The defaults below
  come from the third-party DST-44A driver: unit ``N`` newton, ``K`` kgf, ``O`` lbf (one Arduino
  sketch calls ``O`` "lbf/ozf", so a low-capacity gauge may mean ozf); mode ``T`` real time
  (track), ``P`` peak; judgement ``O`` between the set points, ``H`` above the high set point,
  ``L`` below the low one, ``E`` overload. Check them against the Imada manual of the model in
  use and set ``unit_letters`` / ``mode_letters`` / ``judgement_letters``. There is no default
  for a torque gauge: ``unit_letters`` must be given.
- A reply whose unit letter is not in ``unit_letters`` is a ``ProtocolError`` (the value cannot
  be trusted without its unit); an unknown mode or judgement letter is kept as it is.
- A judgement meaning ``overload`` flags the sample ``overload``.

Modes (option ``mode``): ``poll`` sends one ``D`` per poll; ``push`` polls ``D`` at ``rate_hz``
inside ``receive`` and turns the curve into one sample per test (drivers/forcetest.py), exactly
as the Mark-10 driver does with its stream. A reply that never gets its CR is an
``InstrumentTimeout`` after the instrument's ``timeout``, never a hang; a partial reply is thrown
away before the next request.

Quirks: baud rates seen in public drivers: 19200 (DS2, HTG2), 256000 (DST-44A); set
``baudrate``. In push mode ``receive`` may overrun its timeout by one reply's latency, since it
does not abandon a request in flight.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, model_validator

from daq.errors import InstrumentError, InstrumentTimeout, ProtocolError, UnitError
from daq.instrument import InstrumentSettings, Mode
from daq.model import FieldValue, Sample
from daq.units import convert
from drivers.forcetest import ForceTestSession, GaugeOptions, parse_level
from drivers.transport.serial import LineLink, SerialSettings, open_line_link

__all__ = [
    "DEFAULT_JUDGEMENT_LETTERS",
    "DEFAULT_MODE_LETTERS",
    "DEFAULT_UNIT_LETTERS",
    "Imada",
    "ImadaOptions",
    "ImadaReply",
    "parse_reply",
]

log = logging.getLogger(__name__)

#: ASSUMED (third-party DST-44A driver, not a manual): unit letter -> unit.
DEFAULT_UNIT_LETTERS = {"N": "N", "K": "kgF", "O": "lbF"}
#: ASSUMED: mode letter -> meaning.
DEFAULT_MODE_LETTERS = {"T": "track", "P": "peak"}
#: ASSUMED: judgement letter -> meaning; ``overload`` flags the sample.
DEFAULT_JUDGEMENT_LETTERS = {"O": "ok", "H": "high", "L": "low", "E": "overload"}

_NUMBER = re.compile(r"^([-+]?)\s*(\d+\.?\d*|\.\d+)$")
_TERMINATORS = (b"\r",)
_COMMAND_END = b"\r"
DEFAULT_SERIAL = SerialSettings(19200, 8, "N", 1.0)


@dataclass(frozen=True, slots=True)
class ImadaReply:
    """A ``D`` reply split by position."""

    value: float
    unit_letter: str
    mode_letter: str
    judgement_letter: str
    text: str


def parse_reply(line: str) -> ImadaReply:
    """Split ``+012.34NTO`` into its value and three letters. Raises ProtocolError."""
    text = line.strip()
    if len(text) < 4:
        raise ProtocolError(f"reply {text!r} is too short for <number><unit><mode><judgement>")
    number, letters = text[:-3], text[-3:]
    m = _NUMBER.match(number.strip())
    if m is None or any(c.isspace() for c in letters):
        raise ProtocolError(
            f"reply {text!r} is not <sign><digits><unit><mode><judgement> (e.g. '+012.34NTO')"
        )
    value = float(m.group(2))
    sign = -1.0 if m.group(1) == "-" else 1.0
    return ImadaReply(sign * value, letters[0], letters[1], letters[2], text)


class ImadaOptions(GaugeOptions):
    """Options under ``[instrument.options]`` for an Imada gauge (see GaugeOptions too)."""

    #: Unit letter -> unit. Default (force only) N, K = kgF, O = lbF: an ASSUMPTION to check.
    unit_letters: dict[Annotated[str, Field(min_length=1, max_length=1)], str] | None = None
    #: Mode letter -> meaning, recorded as ``gauge_mode``. Default T = track, P = peak (assumed).
    mode_letters: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODE_LETTERS))
    #: Judgement letter -> meaning, recorded as ``judgement``; ``overload`` flags the sample.
    judgement_letters: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_JUDGEMENT_LETTERS)
    )
    #: Requests per second in push mode.
    rate_hz: Annotated[float, Field(gt=0, le=100)] = 10.0

    @model_validator(mode="after")
    def _check_letters(self) -> ImadaOptions:
        if self.unit_letters is None:
            if self.quantity == "torque":
                raise ValueError(
                    "unit_letters: give the unit letters of this torque gauge"
                    ' (e.g. { N = "Ncm" }); they are not documented'
                )
            return self
        for letter, unit in self.unit_letters.items():
            try:
                convert(1.0, unit, self.quantity)
            except UnitError as exc:
                raise ValueError(f"unit_letters.{letter}: {exc}") from exc
        return self

    @property
    def units(self) -> dict[str, str]:
        return DEFAULT_UNIT_LETTERS if self.unit_letters is None else self.unit_letters

    def serial_settings(self) -> SerialSettings:
        return SerialSettings(self.baudrate, self.bytesize, self.parity, self.stopbits)


class Imada:
    """An Imada gauge, polled with ``D``. The constructor does no I/O."""

    def __init__(
        self, settings: InstrumentSettings, options: ImadaOptions, link: LineLink | None = None
    ) -> None:
        self.name = settings.name
        self.mode: Mode = options.mode
        self.settings = settings
        self.options = options
        self.link: LineLink = link or open_line_link(
            settings.address,
            settings=options.serial_settings(),
            defaults=DEFAULT_SERIAL,
            timeout=settings.timeout,
        )
        self._unit: str | None = None
        self._session = ForceTestSession(self.name, options)
        self._next_at = 0.0
        #: Stale lines thrown away before a request (late or duplicated replies).
        self.stale_lines = 0

    def connect(self) -> None:
        """Open the port and prove a gauge answers ``D`` in a unit of the right quantity."""
        self.link.open()
        # self._unit is kept: a unit changed while the link was down is flagged on the next poll.
        self._session = ForceTestSession(self.name, self.options)
        try:
            reply, unit, when = self._request()
            if self.mode == "push":
                self._session.feed(when, reply.value, unit, reply.text, time.time_ns())
            self._next_at = time.monotonic()
        except BaseException:
            self.link.close()
            raise

    def close(self) -> None:
        self.link.close()

    def _request(self) -> tuple[ImadaReply, str, float]:
        stale = self.link.discard_input(_TERMINATORS)
        if stale:
            self.stale_lines += len(stale)
            log.debug("%s: threw away %d stale line(s) %r", self.name, len(stale), stale)
        try:
            line = self.link.query("D", self.settings.timeout, _COMMAND_END, _TERMINATORS)
        except InstrumentTimeout as exc:
            raise InstrumentTimeout(f"{self.name}: no reply to 'D' ({exc})") from exc
        when = time.monotonic()
        reply = parse_reply(line)
        unit = self.options.units.get(reply.unit_letter)
        if unit is None:
            known = ", ".join(f"{k}={v}" for k, v in self.options.units.items())
            raise ProtocolError(
                f"{self.name}: unit letter {reply.unit_letter!r} in {reply.text!r} is not in"
                f" unit_letters ({known}); check the Imada manual and set options.unit_letters"
            )
        convert(1.0, unit, self.options.quantity)  # UnitError when it does not fit
        return reply, unit, when

    def poll(self) -> list[Sample]:
        if self.mode != "poll":
            raise InstrumentError(f"{self.name} records tests (mode = push); it is not polled")
        reply, unit, _ = self._request()
        flags: list[str] = []
        if self._unit is not None and unit != self._unit:
            flags.append(f"unit_changed:{self._unit}->{unit}")
            log.info("%s: unit changed on the gauge from %s to %s", self.name, self._unit, unit)
        self._unit = unit
        mode = self.options.mode_letters.get(reply.mode_letter, reply.mode_letter)
        judgement = self.options.judgement_letters.get(
            reply.judgement_letter, reply.judgement_letter
        )
        capacity = self.options.capacity
        over = capacity is not None and abs(reply.value) >= parse_level(capacity).to(
            unit, self.options.quantity
        )
        if judgement == "overload" or over:
            flags.append("overload")
        extra: tuple[tuple[str, FieldValue], ...] = (
            ("gauge_mode", mode),
            ("judgement", judgement),
        )
        return [
            Sample(
                instrument=self.name,
                measurement=self.options.measurement_name,
                channel=self.options.channel_name,
                quantity=self.options.quantity,
                value=reply.value,
                unit=unit,
                time_ns=time.time_ns(),
                raw=reply.text,
                flags=tuple(flags),
                extra=extra,
            )
        ]

    def receive(self, timeout: float) -> list[Sample]:
        """Poll ``D`` at ``rate_hz`` for ``timeout`` s; the tests that ended, or []."""
        if self.mode != "push":
            raise InstrumentError(f"{self.name} is polled (mode = poll); it does not push")
        period = 1.0 / self.options.rate_hz
        deadline = time.monotonic() + timeout
        samples: list[Sample] = []
        while True:
            now = time.monotonic()
            if self._next_at < now - period:
                self._next_at = now  # fell behind (a slow reply): do not burst to catch up
            if self._next_at >= deadline:
                break
            if self._next_at > now:
                time.sleep(self._next_at - now)
            self._next_at += period
            reply, unit, when = self._request()
            judgement = self.options.judgement_letters.get(reply.judgement_letter)
            flags = ("overload",) if judgement == "overload" else ()
            samples += self._session.feed(
                when, reply.value, unit, reply.text, time.time_ns(), flags=flags
            )
        samples += self._session.expire(time.monotonic(), time.time_ns())
        return samples


def build(settings: InstrumentSettings, options: ImadaOptions) -> Imada:
    """Build an Imada driver (no I/O)."""
    return Imada(settings, options)
