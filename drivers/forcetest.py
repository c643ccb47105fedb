"""A force or torque test as an event: from a stream of (time, force) points to one result.

Pure: no port, no clock. The gauge drivers (drivers/mark10.py, drivers/imada.py) feed the points
they read; the unit tests feed synthetic curves.

What a test is (``ForceTestDetector``):

- **Start**: the force rises above ``start_threshold``. The test's clock starts at that point.
- **Peak**: the running maximum of the force during the test.
- **End by a drop**: the force falls to ``break_fraction`` of the running peak or below, and stays
  there for ``confirm_points`` points in a row (one noisy point never ends a test). The force of
  the last point before the drop is the *break force* (the load the part carried when it gave
  way), its time the *time to break*.
- **Broke or released**: the drop is a break when, within ``break_drop_s`` before it, the force
  was still near the peak (at least halfway between ``break_fraction`` of the peak and the peak):
  a soldered ring that snaps at its peak, or an open jump ring that plateaus and then slips off.
  A slower fall is the operator unloading: ``released``. After a completed hold the drop is
  always taken as the release.
- **End by time**: a test still loaded after ``max_test_s`` ends as ``timeout``.
- After a test the detector re-arms only once the force is back at ``rearm_threshold`` or below
  (half the start threshold by default), so the tail of one test does not start the next.

A **hold** (16 CFR 1500.51-.53 style torque and tension tests: reach the target within
``ramp_max_s``, keep it for ``hold_s``) is judged on the same curve: the target is reached at the
first point at or above ``target - tolerance``; the hold lasts while the force stays there (again
``confirm_points`` points below are needed to end it); it is ``held`` when the target was reached
in time and kept for ``hold_s``. ``held_s`` is measured to the last point still at the target, a
lower bound of the true time. The reason is stated when it was not held.

The options shared by the gauge drivers (``GaugeOptions``) live here too, with
``ForceTestSession``, which turns a gauge's readings into one ``Sample`` per test, following
front-panel unit changes and flagging them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from daq.errors import UnitError
from daq.model import FieldValue, Sample
from daq.units import canonical_unit, convert

__all__ = [
    "DetectorSettings",
    "Direction",
    "ForceTestDetector",
    "ForceTestSession",
    "GaugeOptions",
    "HoldOptions",
    "HoldProfile",
    "Level",
    "Outcome",
    "TestEvent",
    "parse_level",
    "unit_factor",
]

Outcome = Literal["broke", "released", "timeout"]
Direction = Literal["either", "positive", "negative"]


# -- the detector --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldProfile:
    """A hold test: reach ``target - tolerance`` within ``ramp_max_s``, keep it ``hold_s``."""

    target: float
    tolerance: float = 0.0
    ramp_max_s: float = 5.0
    hold_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.target > 0 and math.isfinite(self.target)):
            raise ValueError("the hold target must be a positive number")
        if not (0 <= self.tolerance < self.target):
            raise ValueError("the hold tolerance must be at least 0 and below the target")
        if not (self.ramp_max_s > 0 and self.hold_s > 0):
            raise ValueError("ramp_max_s and hold_s must be positive")

    @property
    def level(self) -> float:
        """The least force that counts as "at the target"."""
        return self.target - self.tolerance


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """How tests are told apart in a curve; every force in the curve's own unit."""

    start_threshold: float
    rearm_threshold: float | None = None
    break_fraction: float = 0.5
    break_drop_s: float = 0.3
    confirm_points: int = 2
    max_test_s: float = 120.0
    hold: HoldProfile | None = None
    curve_points: int = 12

    def __post_init__(self) -> None:
        if not (self.start_threshold > 0 and math.isfinite(self.start_threshold)):
            raise ValueError("start_threshold must be a positive number")
        rearm = self.rearm_threshold
        if rearm is not None and not (0 <= rearm < self.start_threshold):
            raise ValueError("rearm_threshold must be at least 0 and below start_threshold")
        if not (0 < self.break_fraction < 1):
            raise ValueError("break_fraction must be between 0 and 1")
        if not (self.break_drop_s > 0 and self.max_test_s > 0):
            raise ValueError("break_drop_s and max_test_s must be positive")
        if self.confirm_points < 1 or self.curve_points < 2:
            raise ValueError("confirm_points must be at least 1 and curve_points at least 2")

    @property
    def rearm(self) -> float:
        return self.start_threshold / 2 if self.rearm_threshold is None else self.rearm_threshold


@dataclass(frozen=True, slots=True)
class TestEvent:
    """One finished test. Forces in the curve's unit, times in s (``*_t`` on the feed's clock)."""

    __test__ = False  # not a pytest test class, despite its name

    start_t: float
    end_t: float
    peak: float
    peak_t: float
    peak_raw: str
    outcome: Outcome
    #: Force at the last loaded point before the drop (the break force when it broke).
    end_force: float
    end_force_t: float
    points: int
    #: Downsampled curve: (s since start, force), peak and break points included.
    curve: tuple[tuple[float, float], ...] = ()
    held: bool | None = None
    reached_target_s: float | None = None
    held_s: float | None = None
    reason: str = ""

    @property
    def broke(self) -> bool:
        return self.outcome == "broke"

    @property
    def duration_s(self) -> float:
        return self.end_t - self.start_t

    @property
    def time_to_break_s(self) -> float | None:
        return self.end_force_t - self.start_t if self.broke else None

    @property
    def peak_time_s(self) -> float:
        return self.peak_t - self.start_t

    def curve_text(self) -> str:
        """The curve as ``s:force`` pairs separated by spaces (``0.00:0.61 0.42:5.2 ...``)."""
        return " ".join(f"{t:.2f}:{f:.4g}" for t, f in self.curve)


class ForceTestDetector:
    """Feed (t, force) points in time order; get a ``TestEvent`` when a test ends."""

    def __init__(self, settings: DetectorSettings, *, armed: bool = True) -> None:
        self.settings = settings
        self._armed = armed
        self._t: list[float] = []
        self._f: list[float] = []
        self._raw: list[str] = []
        self._reset_test()

    def _reset_test(self) -> None:
        self._t, self._f, self._raw = [], [], []
        self._peak_i = 0
        self._below_start: int | None = None
        self._below_n = 0
        self._reached_t: float | None = None
        self._run_active = False
        self._run_last_ok = 0.0
        self._hold_below = 0
        self._hold_done = False

    @property
    def in_test(self) -> bool:
        return bool(self._t)

    @property
    def armed(self) -> bool:
        """Whether a rise above the start threshold would start a test now."""
        return self._armed and not self._t

    @property
    def last_t(self) -> float | None:
        return self._t[-1] if self._t else None

    def feed(self, t: float, force: float, raw: str = "") -> TestEvent | None:
        """Add one point; returns the test that this point ended, if any."""
        if not (math.isfinite(t) and math.isfinite(force)):
            return None
        s = self.settings
        if not self._t:
            if not self._armed:
                if force <= s.rearm:
                    self._armed = True
                return None
            if force > s.start_threshold:
                self._append(t, force, raw)
            return None
        t = max(t, self._t[-1])  # a clock never runs backwards within one test
        self._append(t, force, raw)
        i = len(self._f) - 1
        if force > self._f[self._peak_i]:
            self._peak_i = i
        if s.hold is not None:
            self._track_hold(t, force, s.hold)
        if force <= s.break_fraction * self._f[self._peak_i]:
            if self._below_start is None:
                self._below_start = i
            self._below_n += 1
        else:
            self._below_start, self._below_n = None, 0
        if self._below_n >= s.confirm_points and self._below_start is not None:
            return self._finish(self._below_start, timed_out=False)
        if t - self._t[0] > s.max_test_s:
            return self._finish(len(self._f), timed_out=True)
        return None

    def expire(self, t: float) -> TestEvent | None:
        """End a test that has lasted longer than ``max_test_s`` by ``t`` (no points needed)."""
        if self._t and t - self._t[0] > self.settings.max_test_s:
            return self._finish(len(self._f), timed_out=True)
        return None

    def _append(self, t: float, force: float, raw: str) -> None:
        self._t.append(t)
        self._f.append(force)
        self._raw.append(raw)

    def _track_hold(self, t: float, force: float, hold: HoldProfile) -> None:
        if self._reached_t is None:
            if force >= hold.level:
                self._reached_t = self._run_last_ok = t
                self._run_active = True
            return
        if not self._run_active:
            return
        if force >= hold.level:
            self._run_last_ok = t
            self._hold_below = 0
            if t - self._reached_t >= hold.hold_s:
                self._hold_done = True
        else:
            self._hold_below += 1
            if self._hold_below >= self.settings.confirm_points:
                self._run_active = False

    def _finish(self, drop_at: int, *, timed_out: bool) -> TestEvent:
        s = self.settings
        ts, fs = self._t, self._f
        last = drop_at - 1  # the last loaded point
        peak = fs[self._peak_i]
        outcome: Outcome
        if timed_out:
            outcome = "timeout"
        else:
            t_drop = ts[drop_at]
            window = [fs[j] for j in range(last, -1, -1) if t_drop - ts[j] <= s.break_drop_s]
            near = max(window) if window else fs[last]
            sudden = near >= peak * (1 + s.break_fraction) / 2
            outcome = "broke" if sudden and not self._hold_done else "released"
        end_t = ts[-1]
        held: bool | None = None
        reached_s: float | None = None
        held_s: float | None = None
        reasons: list[str] = []
        if s.hold is not None:
            hold = s.hold
            if self._reached_t is None:
                held = False
                held_s = 0.0
                reasons.append(f"target {hold.level:.4g} never reached (peak {peak:.4g})")
            else:
                reached_s = self._reached_t - ts[0]
                held_s = self._run_last_ok - self._reached_t
                in_time = reached_s <= hold.ramp_max_s
                held = in_time and self._hold_done
                if not in_time:
                    reasons.append(
                        f"ramp too slow: target reached after {reached_s:.2f} s"
                        f" (limit {hold.ramp_max_s:g} s)"
                    )
                elif not self._hold_done:
                    reasons.append(
                        f"load fell below {hold.level:.4g} after {held_s:.2f} s"
                        f" of the {hold.hold_s:g} s hold"
                    )
            if held is False and outcome == "broke":
                reasons.append("the part broke")
            if held is False and outcome == "timeout":
                reasons.append(f"still loaded after {s.max_test_s:g} s")
            if hold.tolerance > 0 and peak > hold.target + hold.tolerance:
                reasons.append(
                    f"peak {peak:.4g} above target + tolerance {hold.target + hold.tolerance:.4g}"
                )
        elif outcome == "timeout":
            reasons.append(f"still loaded after {s.max_test_s:g} s")
        event = TestEvent(
            start_t=ts[0],
            end_t=end_t,
            peak=peak,
            peak_t=ts[self._peak_i],
            peak_raw=self._raw[self._peak_i],
            outcome=outcome,
            end_force=fs[last],
            end_force_t=ts[last],
            points=len(fs),
            curve=_downsample(ts, fs, s.curve_points, (self._peak_i, last)),
            held=held,
            reached_target_s=reached_s,
            held_s=held_s,
            reason="; ".join(reasons),
        )
        final = fs[-1]
        self._reset_test()
        self._armed = final <= s.rearm
        return event


def _downsample(
    ts: Sequence[float], fs: Sequence[float], n: int, keep: Sequence[int]
) -> tuple[tuple[float, float], ...]:
    """At most about ``n`` points: the highest of each time bucket, plus ``keep`` and the ends."""
    count = len(ts)
    chosen = {0, count - 1, *(k for k in keep if 0 <= k < count)}
    if count > n:
        span = ts[-1] - ts[0]
        buckets: dict[int, int] = {}
        for i in range(count):
            b = min(n - 1, int((ts[i] - ts[0]) / span * n)) if span > 0 else i * n // count
            if b not in buckets or fs[i] > fs[buckets[b]]:
                buckets[b] = i
        chosen.update(buckets.values())
    else:
        chosen.update(range(count))
    return tuple((ts[i] - ts[0], fs[i]) for i in sorted(chosen))


# -- options shared by the gauge drivers ---------------------------------------------------------

_LEVEL = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Level:
    """A force or torque with its unit, as written in a config: ``"10 lbF"``, ``"2 lbFin"``."""

    value: float
    unit: str

    def to(self, unit: str, quantity: str) -> float:
        """This level in ``unit``. Raises UnitError when a unit does not fit ``quantity``."""
        return self.value * unit_factor(self.unit, unit, quantity)


def parse_level(text: str) -> Level:
    """Parse ``"<number> <unit>"``. Raises ValueError in plain words."""
    m = _LEVEL.match(text)
    if m is None:
        raise ValueError(f"write a number and a unit, e.g. '0.5 N' or '2 lbFin' (got {text!r})")
    return Level(float(m.group(1)), m.group(2))


def _level_text(text: str) -> str:
    parse_level(text)
    return text


LevelText = Annotated[str, AfterValidator(_level_text)]


def _stopbits(value: float) -> float:
    if value not in (1, 1.5, 2):
        raise ValueError("stopbits is 1, 1.5 or 2")
    return value


PositiveS = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def unit_factor(source: str, dest: str, quantity: str) -> float:
    """Multiply a value in ``source`` by this to get it in ``dest`` (both of ``quantity``)."""
    a, _ = convert(1.0, source, quantity)
    b, _ = convert(1.0, dest, quantity)
    return a / b


class HoldOptions(BaseModel):
    """``[instrument.options.hold]``: a 16 CFR 1500.51-.53 style hold test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The load to reach and keep, with its unit: ``"10 lbF"``, ``"2 lbFin"``.
    target: LevelText
    #: How far below the target still counts as at the target: ``"0.5 lbF"``.
    tolerance: LevelText | None = None
    #: The target must be reached within this many seconds of the test's start.
    ramp_max_s: PositiveS = 5.0
    #: ...and kept for this many seconds.
    hold_s: PositiveS = 10.0


class GaugeOptions(BaseModel):
    """Options every force or torque gauge driver takes (``[instrument.options]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``poll``: one reading per poll (give ``poll_interval``); ``push``: one result per test.
    mode: Literal["poll", "push"] = "poll"
    #: What the gauge measures; every reading's unit is checked against it.
    quantity: Literal["force", "torque"] = "force"
    #: The test or feature name the results are recorded under (``jump_ring_pull``,
    #: ``stone_retention_center``, ``charm_torque``); the quantity's name when left out.
    channel: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None
    #: The measurement written (docs/schema.md); the quantity's name when left out.
    measurement: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")] | None = None
    #: Serial settings; when left out, the address query's, then the driver's default.
    baudrate: Annotated[int, Field(gt=0)] | None = None
    bytesize: Literal[5, 6, 7, 8] | None = None
    parity: Literal["N", "E", "O", "M", "S"] | None = None
    stopbits: Annotated[float, AfterValidator(_stopbits)] | None = None
    #: The gauge's capacity (``"50 lbF"``): readings at or beyond it are flagged ``overload``.
    capacity: LevelText | None = None

    # push mode: what a test is (drivers/forcetest.py explains each)
    #: A test starts when the force rises above this (``"0.5 N"``). Required in push mode.
    start_threshold: LevelText | None = None
    #: The next test may start once the force is back at or below this (default: half the start).
    rearm_threshold: LevelText | None = None
    #: A test ends when the force falls to this fraction of its peak.
    break_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5
    #: A fall from near the peak within this many seconds is a break, a slower one a release.
    break_drop_s: PositiveS = 0.3
    #: Points in a row needed to end a test or a hold (noise immunity).
    confirm_points: Annotated[int, Field(ge=1, le=100)] = 2
    #: A test still loaded after this many seconds ends as ``timeout``.
    max_test_s: PositiveS = 120.0
    #: Which sign is load: ``either`` (magnitude), ``negative`` (Mark-10 tension), ``positive``.
    direction: Direction = "either"
    #: Points kept in the result's ``curve`` summary.
    curve_points: Annotated[int, Field(ge=2, le=200)] = 12
    #: A hold test (16 CFR 1500.51-.53): target, tolerance, ramp_max_s, hold_s.
    hold: HoldOptions | None = None

    @model_validator(mode="after")
    def _check_levels(self) -> GaugeOptions:
        problems = []
        levels = {
            "capacity": self.capacity,
            "start_threshold": self.start_threshold,
            "rearm_threshold": self.rearm_threshold,
        }
        if self.hold is not None:
            levels["hold.target"] = self.hold.target
            levels["hold.tolerance"] = self.hold.tolerance
        for key, text in levels.items():
            if text is None:
                continue
            level = parse_level(text)
            try:
                convert(level.value, level.unit, self.quantity)
            except UnitError as exc:
                problems.append(f"{key}: {exc}")
        if self.mode == "push" and self.start_threshold is None:
            problems.append("start_threshold is required in push mode (e.g. '0.5 N')")
        if problems:
            raise ValueError("; ".join(problems))
        try:
            self.detector_settings(canonical_unit(self.quantity))
        except (ValueError, UnitError) as exc:
            if self.mode == "push":
                raise ValueError(str(exc)) from exc
        return self

    @property
    def channel_name(self) -> str:
        return self.channel or self.quantity

    @property
    def measurement_name(self) -> str:
        return self.measurement or self.quantity

    def level(self, text: str | None, unit: str) -> float | None:
        """A level option in ``unit``, or None when not set."""
        return None if text is None else parse_level(text).to(unit, self.quantity)

    def detector_settings(self, unit: str) -> DetectorSettings:
        """The detector's settings with every level in ``unit``. Raises ValueError."""
        start = self.level(self.start_threshold, unit)
        hold = None
        if self.hold is not None:
            target = self.level(self.hold.target, unit)
            tol = self.level(self.hold.tolerance, unit)
            assert target is not None
            hold = HoldProfile(target, tol or 0.0, self.hold.ramp_max_s, self.hold.hold_s)
        return DetectorSettings(
            start_threshold=1.0 if start is None else start,
            rearm_threshold=self.level(self.rearm_threshold, unit),
            break_fraction=self.break_fraction,
            break_drop_s=self.break_drop_s,
            confirm_points=self.confirm_points,
            max_test_s=self.max_test_s,
            hold=hold,
            curve_points=self.curve_points,
        )


# -- from readings to one Sample per test ---------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    flags: list[str] = field(default_factory=list)

    def add(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.append(flag)


class ForceTestSession:
    """A gauge's readings in, one ``Sample`` per finished test out.

    The curve is kept in the unit the gauge used when the test began (the sample's unit). A
    front-panel unit change is followed: between tests the session switches to the new unit;
    within a test later points are converted into the test's unit. Either way the test's sample
    is flagged ``unit_changed:<old>-><new>``; a reading at or beyond ``capacity`` flags
    ``overload``.

    The sample of a test: ``value`` the peak load (as a magnitude with ``direction = either``),
    ``unit`` the gauge's unit, ``raw`` the gauge's line at the peak, ``time_ns`` when the test
    ended, ``channel`` the test's name. ``scaled`` (in the sample's unit): ``break_<quantity>``
    when it broke, else ``end_<quantity>`` (the load before the drop); ``target`` for a hold.
    ``extra``: ``outcome`` (broke / released / timeout), ``broke``, ``time_to_break_s`` (when it
    broke), ``peak_time_s``, ``duration_s``, ``points``, ``curve`` (``s:load`` pairs); for a
    hold ``held``, ``reached_target_s`` (when reached), ``held_s``, ``hold_s``, ``ramp_max_s``;
    ``test_reason`` when there is something to say (why a hold failed, a timeout).
    """

    def __init__(self, instrument: str, options: GaugeOptions) -> None:
        self.instrument = instrument
        self.options = options
        self.unit: str | None = None
        self._gauge_unit: str | None = None
        self._detector: ForceTestDetector | None = None
        self._capacity: float | None = None
        self._pending = _Pending()

    @property
    def in_test(self) -> bool:
        return self._detector is not None and self._detector.in_test

    def _use_unit(self, unit: str) -> None:
        # Build everything before changing any state: a unit of the wrong quantity raises
        # UnitError here, and must leave the session as it was (found by fuzzing: it used to
        # keep the new unit without a detector, and the next reading failed an assertion).
        armed = self._detector.armed if self._detector is not None else True
        detector = ForceTestDetector(self.options.detector_settings(unit), armed=armed)
        capacity = self.options.level(self.options.capacity, unit)
        self.unit, self._detector, self._capacity = unit, detector, capacity

    def _load(self, value: float) -> float:
        d = self.options.direction
        return abs(value) if d == "either" else (value if d == "positive" else -value)

    def feed(
        self,
        t: float,
        value: float,
        unit: str,
        raw: str,
        time_ns: int,
        *,
        flags: Sequence[str] = (),
    ) -> list[Sample]:
        """One reading (``t`` on a monotonic clock in s, ``time_ns`` wall clock).

        ``flags`` are the reading's own (an overload the gauge reported): they go on the
        sample of the test the reading belongs to, if any.
        """
        # Convert or switch first: a unit that does not fit raises UnitError before any
        # state changes.
        if self.unit is None:
            self._use_unit(unit)
        elif unit != self.unit:
            if self.in_test:
                value *= unit_factor(unit, self.unit, self.options.quantity)
            else:
                self._use_unit(unit)
        if self._gauge_unit is not None and unit != self._gauge_unit:
            self._pending.add(f"unit_changed:{self._gauge_unit}->{unit}")
        self._gauge_unit = unit
        detector = self._detector
        assert detector is not None
        point_flags = list(flags)
        if self._capacity is not None and abs(value) >= self._capacity:
            point_flags.append("overload")
        event = detector.feed(t, self._load(value), raw)
        if event is not None or detector.in_test:
            for flag in point_flags:
                self._pending.add(flag)
        if event is None:
            return []
        return [self._sample(event, time_ns)]

    def expire(self, t: float, time_ns: int) -> list[Sample]:
        """End a test that has outlasted ``max_test_s`` with no new points."""
        if self._detector is None:
            return []
        event = self._detector.expire(t)
        return [] if event is None else [self._sample(event, time_ns)]

    def _sample(self, ev: TestEvent, time_ns: int) -> Sample:
        assert self.unit is not None
        scaled: list[tuple[str, float]] = []
        extra: list[tuple[str, FieldValue]] = [
            ("outcome", ev.outcome),
            ("broke", ev.broke),
        ]
        q = self.options.quantity
        if ev.broke:
            scaled.append((f"break_{q}", ev.end_force))
            extra.append(("time_to_break_s", round(ev.end_force_t - ev.start_t, 4)))
        else:
            scaled.append((f"end_{q}", ev.end_force))
        extra += [
            ("peak_time_s", round(ev.peak_time_s, 4)),
            ("duration_s", round(ev.duration_s, 4)),
            ("points", ev.points),
            ("curve", ev.curve_text()),
        ]
        hold = self._detector.settings.hold if self._detector is not None else None
        if hold is not None:
            scaled.append(("target", hold.target))
            extra.append(("held", bool(ev.held)))
            if ev.reached_target_s is not None:
                extra.append(("reached_target_s", round(ev.reached_target_s, 4)))
            extra.append(("held_s", round(ev.held_s or 0.0, 4)))
            extra.append(("hold_s", hold.hold_s))
            extra.append(("ramp_max_s", hold.ramp_max_s))
        if ev.reason:
            extra.append(("test_reason", ev.reason))
        flags = tuple(self._pending.flags)
        self._pending = _Pending()
        return Sample(
            instrument=self.instrument,
            measurement=self.options.measurement_name,
            channel=self.options.channel_name,
            quantity=self.options.quantity,
            value=ev.peak,
            unit=self.unit,
            time_ns=time_ns,
            raw=ev.peak_raw,
            flags=flags,
            scaled=tuple(scaled),
            extra=tuple(extra),
        )
