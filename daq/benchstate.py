"""What a running bench needs to know from its lot records, read often and cheaply.

The daemon asks for the lot context for every reading and for baselines for every judged
value; both change only when a person runs ``daq lot ...``, in another process. This reads them
from the lot store at most once per ``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from daq.lots import Baseline, LotStore
from daq.model import LotContext

__all__ = ["BenchState"]


class BenchState:
    """Cached view of the open lot and the baselines, with the config's lot as a fallback."""

    def __init__(
        self,
        store: LotStore,
        fallback: LotContext,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.fallback = fallback
        self.ttl = ttl
        self._clock = clock
        self._ctx: tuple[float, LotContext] | None = None
        self._baselines: dict[str, tuple[float, dict[tuple[str, str, str], Baseline]]] = {}

    def context(self) -> LotContext:
        """The open lot's context, else the config's ``[lot]``."""
        now = self._clock()
        if self._ctx is None or now - self._ctx[0] >= self.ttl:
            lot = self.store.open_lot()
            self._ctx = (now, lot.context() if lot is not None else self.fallback)
        return self._ctx[1]

    def baseline(
        self, sku: str, measurement: str, feature: str, instrument: str
    ) -> Baseline | None:
        """The latest baseline of one SKU feature on one instrument, if one was fixed."""
        now = self._clock()
        cached = self._baselines.get(sku)
        if cached is None or now - cached[0] >= self.ttl:
            table = {(b.measurement, b.feature, b.instrument): b for b in self.store.baselines(sku)}
            cached = (now, table)
            self._baselines[sku] = cached
        return cached[1].get((measurement, feature, instrument))

    def baseline_figures(
        self, sku: str, measurement: str, feature: str, instrument: str
    ) -> tuple[int, float, float, int, int] | None:
        """The baseline as (n, mean, sigma, version, created_ns), for the drift watch."""
        b = self.baseline(sku, measurement, feature, instrument)
        return None if b is None else (b.n, b.mean, b.sigma, b.version, b.created_ns)
