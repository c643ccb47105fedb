"""The few immutable types that travel through Hallmark, left to right.

    driver ──Sample──▶ normalize ──Reading──▶ judge ──Measurement──▶ journal ──Point──▶ forwarder

A ``Sample`` is what an instrument said, in its own unit. A ``Reading`` is that value in the
canonical unit of its quantity. A ``Measurement`` is a reading judged against the limits in force,
with the lot context it belongs to. A ``Point`` is the schema-level record the journal keeps and
the forwarder ships (docs/schema.md); events and health figures are points too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # The type checker sees every record frozen, so no code can assign to one.
    from dataclasses import dataclass as record
else:

    def record(**options: Any) -> Callable[[type], type]:
        """``dataclass(frozen=True, slots=True)`` as far as any code can tell, but built fast.

        These records are made for every reading (five per measurement). A frozen dataclass's
        ``__init__`` sets each field through ``object.__setattr__``, which makes building one
        2-3x slower; here the class is a plain slots dataclass with the same equality and
        hash, and immutability is enforced where it matters: mypy (which sees ``frozen=True``
        above) refuses any assignment to a field.
        """
        options.pop("frozen", None)
        return dataclass(**options, unsafe_hash=True)


__all__ = [
    "PHASES",
    "FieldValue",
    "Limits",
    "LotContext",
    "Measurement",
    "Phase",
    "Point",
    "Reading",
    "Sample",
    "Status",
    "Verdict",
]

Phase = Literal["golden-sample", "pre-production", "bulk"]
PHASES: tuple[Phase, ...] = ("golden-sample", "pre-production", "bulk")

#: ``none`` means no limit is in force for this feature: the value is recorded, not judged.
#: ``suspect`` means the value cannot be trusted to pass: the instrument is past its
#: calibration due date (``reason`` in the verdict says so).
Status = Literal["pass", "marginal", "fail", "none", "suspect"]

FieldValue = float | int | str | bool


@record(frozen=True, slots=True)
class Sample:
    """One value as an instrument reported it.

    ``measurement`` is the kind of test (``chamber``, ``force``, ``thickness``...), ``channel``
    the feature within it (``temperature``, ``layer_Au``...), ``quantity`` what the value
    measures (``temperature``, ``force``, ``length``...; see daq/units.py), so that a unit
    that does not fit is caught. ``time_ns`` is UTC nanoseconds
    taken on arrival; ``instrument_time`` is the instrument's own clock, when it sends one.
    ``flags`` carries driver observations worth keeping (``implausible``, ``unit_changed``).

    A test that is an event (a pull test, a torque hold) says more than one number: ``scaled``
    holds further values in the sample's own unit (force at break, ...) that are converted
    with ``value``; ``extra`` holds fields recorded as they are (time to break in s, the curve's
    point count, whether the part held).
    """

    instrument: str
    measurement: str
    channel: str
    quantity: str
    value: float
    unit: str
    time_ns: int
    raw: str = ""
    instrument_time: str | None = None
    flags: tuple[str, ...] = ()
    scaled: tuple[tuple[str, float], ...] = ()
    extra: tuple[tuple[str, FieldValue], ...] = ()


@record(frozen=True, slots=True)
class Reading:
    """A sample's value (and its ``scaled`` values) converted to the canonical unit."""

    sample: Sample
    value: float
    unit: str
    scaled: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits in force for one feature, in its canonical unit.

    Either side may be open (``None``) for a one-sided limit such as a minimum thickness.
    ``guard`` is the width of the marginal band inside each limit; ``uncertainty`` is the
    measurement's expanded uncertainty, used as a guard band as well (the larger one wins).
    """

    low: float | None = None
    high: float | None = None
    guard: float = 0.0
    uncertainty: float = 0.0


@record(frozen=True, slots=True)
class Verdict:
    """A judged value: status, margin to the nearest limit (negative outside), limits used."""

    status: Status
    margin: float | None = None
    margin_pct: float | None = None
    low: float | None = None
    high: float | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LotContext:
    """Who and what a measurement is about. Travels as tags on every measurement."""

    sku: str | None = None
    po: str | None = None
    lot: str | None = None
    phase: Phase | None = None
    spec_rev: str | None = None

    def tags(self) -> dict[str, str]:
        """The context as InfluxDB tags, leaving out what is not set."""
        pairs = {
            "sku": self.sku,
            "po": self.po,
            "lot": self.lot,
            "phase": self.phase,
            "spec_rev": self.spec_rev,
        }
        return {k: v for k, v in pairs.items() if v}


@record(frozen=True, slots=True)
class Measurement:
    """A reading, judged, in its lot context, on a bench."""

    bench: str
    reading: Reading
    verdict: Verdict
    context: LotContext = field(default_factory=LotContext)
    #: Shift from the golden-sample baseline in baseline σ, when a baseline exists.
    baseline_z: float | None = None
    #: Who entered it, for operator entries (``daq enter``); None for instrument readings.
    entered_by: str | None = None
    #: Extra fields an operator entry carries (sample unit, failure mode, part number...).
    extra: tuple[tuple[str, FieldValue], ...] = ()

    def to_point(self) -> Point:
        """The measurement as a schema point (docs/schema.md)."""
        reading = self.reading
        s = reading.sample
        # A copy: the cached tag set of the series is shared between points.
        tags = _series_tags(self.bench, s.instrument, s.channel, self.context).copy()
        v = self.verdict
        fields: dict[str, FieldValue] = {
            "value": reading.value,
            "unit": reading.unit,
            "status": v.status,
        }
        if v.low is not None:
            fields["low"] = v.low
        if v.high is not None:
            fields["high"] = v.high
        if v.margin is not None:
            fields["margin"] = v.margin
        if v.margin_pct is not None:
            fields["margin_pct"] = v.margin_pct
        if self.baseline_z is not None:
            fields["baseline_z"] = self.baseline_z
        if v.reason:
            fields["reason"] = v.reason
        if self.entered_by:
            fields["entered_by"] = self.entered_by
        if self.extra:
            fields.update(self.extra)
        if s.unit != reading.unit:
            fields["raw_value"] = s.value
            fields["raw_unit"] = s.unit
        if s.raw:
            fields["raw"] = s.raw
        if s.instrument_time:
            fields["instrument_time"] = s.instrument_time
        if s.flags:
            fields["flags"] = ",".join(s.flags)
        if reading.scaled:
            fields.update(reading.scaled)
        if s.extra:
            fields.update(s.extra)
        return Point(s.measurement, tags, fields, s.time_ns)


@lru_cache(maxsize=4096)
def _series_tags(bench: str, instrument: str, channel: str, context: LotContext) -> dict[str, str]:
    """The tag set of one series (cached: a bench has few). Callers must copy it."""
    tags = {"bench": bench, "instrument": instrument, "feature": channel}
    if channel.startswith("layer_"):
        # Plating layers are also grouped by element alone (layer=Au) on dashboards.
        tags["layer"] = channel.removeprefix("layer_")
    tags.update(context.tags())
    return tags


@record(frozen=True, slots=True)
class Point:
    """One record of the schema: measurement name, tags, fields and a UTC nanosecond time.

    The same series (measurement + tags) at the same time is the same point: InfluxDB keeps
    the last write, which is what makes a resend after a crash idempotent.
    """

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int
