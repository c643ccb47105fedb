"""The judge, first cut: one reading against the limits in force.

Pure functions, no I/O. The verdict rules:

- ``fail``: the value lies outside a limit by more than the guard band. The guard band is the
  larger of the configured ``guard`` and the measurement ``uncertainty``.
- ``marginal``: the value lies within the guard band of a limit, on either side. Inside, it is too
  close to call a clean pass; outside by less than the uncertainty, the instrument cannot prove
  the part nonconforming (the uncertainty interval straddles the limit).
- ``pass``: inside every limit by more than the guard band.
- ``none``: no limit is in force; the value is recorded, not judged.

``margin`` is the signed distance to the nearest limit in the canonical unit (positive inside,
negative outside). ``margin_pct`` expresses it in % of the tolerance width for a two-sided
limit, and in % of the limit's magnitude for a one-sided one.
"""

from __future__ import annotations

from daq.model import Limits, Status, Verdict

__all__ = ["judge"]


def judge(value: float, limits: Limits | None) -> Verdict:
    """Judge one value in its canonical unit against ``limits``."""
    if limits is None or (limits.low is None and limits.high is None):
        return Verdict(status="none")
    low, high = limits.low, limits.high
    margin: float
    if low is None:
        assert high is not None
        margin = high - value
    elif high is None:
        margin = value - low
    else:
        # As min() of the two: the upper distance only when strictly smaller.
        above, below = value - low, high - value
        margin = below if below < above else above
    band = max(limits.guard, limits.uncertainty, 0.0)
    status: Status
    if margin < -band:
        status = "fail"
    elif margin <= band and band > 0.0:
        status = "marginal"
    else:
        status = "pass"
    if low is not None and high is not None and high > low:
        pct: float | None = 100.0 * margin / (high - low)
    else:
        limit = low if low is not None else high
        pct = 100.0 * margin / abs(limit) if limit else None
    return Verdict(status, margin, pct, low, high)
