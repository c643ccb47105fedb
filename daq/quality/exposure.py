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

__all__ = ["Excursion", "ExposureState", "observe"]


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
