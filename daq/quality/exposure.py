"""Salt-spray exposure validity (ASTM B117 / ISO 9227 NSS): pure bookkeeping of a chamber run.

A run's exposure counts only while the exposure zone is in tolerance (35 ± 2 °C by default;
the limits come from the chamber's configured limits). Between two consecutive readings that
are both in tolerance and no further apart than ``max_gap_s``, the elapsed time is valid
exposure; a gap longer than that (the controller did not answer) does not count, because
nobody can say what the chamber did meanwhile. An excursion starts at the first reading out of
tolerance and ends at the next one back in; it is reported with its start, end, duration and
worst value (the one farthest outside the band).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "LOSS_REASONS",
    "MANUAL_FEATURES",
    "CabinetExposure",
    "Excursion",
    "ExposureState",
    "observe",
]


@dataclass(frozen=True, slots=True)
class Excursion:
    """A spell out of tolerance, closed (``end_ns`` set) or still going."""

    start_ns: int
    end_ns: int | None
    worst: float
    worst_margin: float

    @property
    def duration_s(self) -> float | None:
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True, slots=True)
class ExposureState:
    """Where a run stands: valid seconds so far, the last reading, an open excursion."""

    valid_s: float = 0.0
    last_ns: int | None = None
    last_ok: bool | None = None
    excursions: int = 0
    open: Excursion | None = None

    @property
    def valid_hours(self) -> float:
        return self.valid_s / 3600.0


def observe(
    state: ExposureState,
    time_ns: int,
    value: float,
    margin: float,
    *,
    max_gap_s: float,
) -> tuple[ExposureState, Excursion | None, Excursion | None]:
    """Account one temperature reading. ``margin`` is the verdict's signed distance to the
    nearest limit (negative outside). Returns (new state, excursion started, excursion ended).
    """
    ok = margin >= 0.0
    valid = state.valid_s
    if (
        ok
        and state.last_ok
        and state.last_ns is not None
        and 0 < time_ns - state.last_ns <= max_gap_s * 1e9
    ):
        valid += (time_ns - state.last_ns) / 1e9
    started = ended = None
    open_ = state.open
    excursions = state.excursions
    if not ok:
        if open_ is None:
            open_ = started = Excursion(time_ns, None, value, margin)
            excursions += 1
        elif margin < open_.worst_margin:
            open_ = replace(open_, worst=value, worst_margin=margin)
    elif open_ is not None:
        ended = replace(open_, end_ns=time_ns)
        open_ = None
    return (
        ExposureState(valid, time_ns, ok, excursions, open_),
        started,
        ended,
    )


#: Why time between two zone readings did not count, in the order they are blamed.
LOSS_REASONS = ("no data", "temperature", "saturator", "pH", "collection rate")

#: The operator's daily entries that gate validity: feature -> reason name.
MANUAL_FEATURES = {"ph": "pH", "collection_rate": "collection rate"}


@dataclass(slots=True)
class CabinetExposure:
    """A salt-spray run's exposure, fed in time order; no I/O.

    Time between two consecutive zone readings counts as valid exposure only when both readings
    are within the zone's band, they are no further apart than ``max_gap_s``, the saturator (when
    the cabinet has one) was in its band throughout, and the operator's latest pH and
    collection-rate entries are within their limits. An out-of-range entry stops the count from
    the moment it is entered until an in-range entry of the same kind follows; before the first
    entry of a kind the run counts (the first check is usually made a day in) and
    :meth:`missing_entries` says which are still owed. Time that does not count is attributed to
    the first reason in :data:`LOSS_REASONS` that applies.
    """

    max_gap_s: float
    state: ExposureState = ExposureState()
    saturator_ok: bool | None = None
    manual_ok: dict[str, bool] | None = None
    last_manual_ns: dict[str, int] | None = None
    lost_s: dict[str, float] | None = None
    # Whether every gate stayed open since the previous zone reading.
    _gates_held: bool = True
    _first_loss: str | None = None

    def __post_init__(self) -> None:
        self.manual_ok = {} if self.manual_ok is None else self.manual_ok
        self.last_manual_ns = {} if self.last_manual_ns is None else self.last_manual_ns
        self.lost_s = {r: 0.0 for r in LOSS_REASONS} if self.lost_s is None else self.lost_s

    @property
    def valid_hours(self) -> float:
        return self.state.valid_hours

    def _gate_reason(self) -> str | None:
        assert self.manual_ok is not None
        if self.saturator_ok is False:
            return "saturator"
        for feature, reason in MANUAL_FEATURES.items():
            if self.manual_ok.get(feature) is False:
                return reason
        return None

    def _gate_changed(self) -> None:
        reason = self._gate_reason()
        if reason is not None:
            self._gates_held = False
            if self._first_loss is None:
                self._first_loss = reason

    def saturator(self, ok: bool) -> None:
        """A saturator temperature reading, in its band or not."""
        self.saturator_ok = ok
        self._gate_changed()

    def manual(self, feature: str, time_ns: int, ok: bool) -> None:
        """An operator's pH (``ph``) or collection-rate (``collection_rate``) entry."""
        assert self.manual_ok is not None and self.last_manual_ns is not None
        if feature not in MANUAL_FEATURES:
            raise ValueError(f"'{feature}' is not a salt-spray daily check")
        self.manual_ok[feature] = ok
        self.last_manual_ns[feature] = time_ns
        self._gate_changed()

    def zone(
        self, time_ns: int, value: float, margin: float
    ) -> tuple[Excursion | None, Excursion | None]:
        """A zone temperature reading with its signed margin to the band (negative outside).
        Returns (excursion started, excursion ended)."""
        assert self.lost_s is not None
        prev = self.state
        gates = self._gates_held and self._gate_reason() is None
        new, started, ended = observe(prev, time_ns, value, margin, max_gap_s=self.max_gap_s)
        if not gates:  # in band or not, a closed gate stops the count
            new = replace(new, valid_s=prev.valid_s)
        if prev.last_ns is not None and time_ns > prev.last_ns:
            span = (time_ns - prev.last_ns) / 1e9
            counted = new.valid_s - prev.valid_s
            if counted < span:
                self.lost_s[self._loss_reason(span, bool(prev.last_ok) and margin >= 0)] += (
                    span - counted
                )
        self.state = new
        self._gates_held = True
        self._first_loss = None
        self._gate_changed()
        return started, ended

    def _loss_reason(self, span: float, temperature_ok: bool) -> str:
        if span > self.max_gap_s:
            return "no data"
        if not temperature_ok:
            return "temperature"
        return self._first_loss or self._gate_reason() or "temperature"

    def missing_entries(self, now_ns: int, max_age_h: float = 24.0) -> list[str]:
        """The daily checks not entered, or older than ``max_age_h``, in words."""
        assert self.last_manual_ns is not None
        missing = []
        for feature, reason in MANUAL_FEATURES.items():
            last = self.last_manual_ns.get(feature)
            if last is None:
                missing.append(f"no {reason} entered yet")
            elif (now_ns - last) / 3.6e12 > max_age_h:
                missing.append(f"{reason} last entered {(now_ns - last) / 3.6e12:.0f} h ago")
        return missing
