"""The judge stage: a reading, in its lot context, becomes a Measurement.

Shared by the runtime (instrument readings) and ``daq enter`` (operator entries), so that a
value is judged the same way whoever brings it. It asks the ``SpecSource`` for the limits in
force (the SKU's written spec, else the bench config), applies the verdict rules
(daq/quality/judge.py) with the larger of the spec's and the instrument's stated measurement
uncertainty as the guard band, fails a hold test whose part did not hold (``held = False``),
refuses a pass from an instrument past its calibration due date,
and expresses the value as a shift from the golden-sample baseline in baseline σ units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime

from daq.lots import Baseline
from daq.model import FieldValue, Limits, LotContext, Measurement, Reading, Verdict
from daq.quality.judge import judge
from daq.specs import SpecSource

__all__ = ["BaselineLookup", "JudgeStage"]

#: (sku, measurement, feature, instrument) -> the baseline in force, or None
BaselineLookup = Callable[[str, str, str, str], Baseline | None]


class JudgeStage:
    """Judges readings for one bench."""

    def __init__(
        self,
        bench: str,
        spec: SpecSource,
        *,
        calibration_due: Mapping[str, date] | None = None,
        baseline: BaselineLookup | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.bench = bench
        self.spec = spec
        self.calibration_due = dict(calibration_due or {})
        self.baseline = baseline
        self.today = today
        self._revised: dict[tuple[LotContext, str | None], LotContext] = {}

    def _with_rev(self, context: LotContext, rev: str | None) -> LotContext:
        """The context with the spec revision in force (a handful per run, so kept)."""
        key = (context, rev)
        ctx = self._revised.get(key)
        if ctx is None:
            if len(self._revised) >= 256:
                self._revised.clear()
            ctx = self._revised[key] = replace(context, spec_rev=rev)
        return ctx

    def judge(
        self,
        reading: Reading,
        context: LotContext,
        *,
        entered_by: str | None = None,
        extra: tuple[tuple[str, FieldValue], ...] = (),
    ) -> Measurement:
        s = reading.sample
        rev = self.spec.revision(context)
        ctx = context if rev == context.spec_rev else self._with_rev(context, rev)
        limits = self.spec.limits_for(s.instrument, s.measurement, s.channel, ctx)
        stated = None
        for name, value in reading.scaled:  # the last one wins, as in a dict
            if name == "uncertainty":
                stated = value
        if limits is not None and stated is not None and stated > limits.uncertainty:
            # The instrument's own uncertainty for this reading (an XRF application's)
            # widens the guard band when it is larger than the spec's.
            limits = Limits(limits.low, limits.high, limits.guard, stated)
        verdict = judge(reading.value, limits)
        test = dict(s.extra) if s.extra else _NO_EXTRA
        if test.get("held") is False and verdict.status in ("pass", "marginal", "none"):
            # A hold test (16 CFR 1500.51-.53 style) passes only if the part held the target
            # for the whole hold: a peak above the target is not enough.
            why = test.get("test_reason") or "the part did not hold the target for the hold time"
            verdict = replace(verdict, status="fail", reason=str(why))
        due = self.calibration_due.get(s.instrument)
        if due is not None and self.today() > due:
            verdict = _overdue(verdict, due)
        z = None
        if self.baseline is not None and ctx.sku:
            base = self.baseline(ctx.sku, s.measurement, s.channel, s.instrument)
            if base is not None and base.sigma > 0:
                z = (reading.value - base.mean) / base.sigma
        return Measurement(self.bench, reading, verdict, ctx, z, entered_by, extra)


_NO_EXTRA: dict[str, FieldValue] = {}


def _overdue(verdict: Verdict, due: date) -> Verdict:
    reason = f"instrument calibration was due {due.isoformat()}"
    if verdict.status in ("pass", "marginal"):
        return replace(verdict, status="suspect", reason=reason)
    return replace(verdict, reason=reason)
