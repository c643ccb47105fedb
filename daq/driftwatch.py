"""Drift against the golden sample, watched on every judged value of a pre-production or bulk lot.

For each stream — one SKU, lot, feature and instrument with a golden-sample baseline — a
``DriftMonitor`` (daq/quality/drift.py: one-sided CUSUM and EWMA plus run rule 1 against the
frozen baseline) sees the values in arrival order. The side watched follows the written spec:
a minimum (plating thickness, pull force) watches for a downward drift, a maximum (wear index)
upward, a two-sided limit both ways. A stream seen for the first time is replayed from the
journal, so a restart of the daemon or an entry made with ``daq enter`` continues the same
charts. Each rule raises its alarm once per stream (the first point that trips it), as an
``event`` point of kind ``drift_alarm`` carrying its evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from daq.model import Measurement, Point
from daq.quality.drift import Baseline as DriftBaseline
from daq.quality.drift import DriftMonitor, DriftSettings, MonitorSide

__all__ = ["DriftWatch"]

#: (sku, measurement, feature, instrument) -> (n, mean, sigma, version, created_ns) or None
BaselineOf = Callable[[str, str, str, str], "tuple[int, float, float, int, int] | None"]
#: (sku, lot) -> the lot's points already in the journal, oldest first
History = Callable[[str, str], Sequence[Point]]

_WATCHED_PHASES = ("pre-production", "bulk")


@dataclass
class _Stream:
    monitor: DriftMonitor
    alarmed: set[str] = field(default_factory=set)


class DriftWatch:
    """Turns judged measurements into drift alarms (event points)."""

    def __init__(
        self,
        bench: str,
        baseline_of: BaselineOf,
        history: History,
        settings: DriftSettings | None = None,
    ) -> None:
        self.bench = bench
        self.settings = settings or DriftSettings()
        self._baseline_of = baseline_of
        self._history = history
        self._streams: dict[tuple[str, str, str, str, str, int], _Stream] = {}

    def check(self, m: Measurement) -> list[Point]:
        """Drift alarm events raised by this measurement (usually none)."""
        ctx = m.context
        s = m.reading.sample
        if ctx.phase not in _WATCHED_PHASES or not ctx.sku or not ctx.lot:
            return []
        base = self._baseline_of(ctx.sku, s.measurement, s.channel, s.instrument)
        if base is None:
            return []
        n, mean, sigma, version, created_ns = base
        if n < 2 or sigma <= 0:
            return []
        key = (ctx.sku, ctx.lot, s.measurement, s.channel, s.instrument, version)
        stream = self._streams.get(key)
        if stream is None:
            baseline = DriftBaseline(
                f"{s.measurement}/{s.channel}", n, mean, sigma, str(version), created_ns
            )
            settings = replace(self.settings, side=_side(m))
            stream = _Stream(DriftMonitor(baseline, settings))
            self._streams[key] = stream
            for past in self._history(ctx.sku, ctx.lot):
                if (
                    past.measurement == s.measurement
                    and past.tags.get("feature") == s.channel
                    and past.tags.get("instrument") == s.instrument
                    and past.time_ns < s.time_ns
                ):
                    value = past.fields.get("value")
                    if isinstance(value, float):
                        for alarm in stream.monitor.observe(value, past.time_ns):
                            stream.alarmed.add(alarm.rule)
        events = []
        for alarm in stream.monitor.observe(m.reading.value, s.time_ns):
            if alarm.rule in stream.alarmed:
                continue
            stream.alarmed.add(alarm.rule)
            # feature and rule as tags: two rules tripping on one point stay two points.
            tags = {
                "bench": self.bench,
                "instrument": s.instrument,
                "kind": "drift_alarm",
                "feature": s.channel,
                "rule": alarm.rule,
            }
            tags.update(ctx.tags())
            fields = alarm.fields()
            fields["message"] = (
                f"{ctx.sku} lot {ctx.lot}: {s.measurement}.{s.channel} on {s.instrument}"
                f" drifts from the golden sample: {alarm.description}"
            )
            events.append(Point("event", tags, fields, s.time_ns))
        return events


def _side(m: Measurement) -> MonitorSide:
    low, high = m.verdict.low, m.verdict.high
    if low is not None and high is None:
        return "lower"
    if high is not None and low is None:
        return "upper"
    return "both"
