"""Capped exponential backoff with full jitter, for reconnects and database retries."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``cap``, each drawn with jitter.

    Jitter (a delay drawn between half and all of the current step) keeps many instruments
    or many benches from retrying in lockstep after a shared outage.
    """

    def __init__(
        self, initial: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.initial = initial
        self.cap = cap
        self._step = initial
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        """Back to the first, shortest delay (after a success)."""
        self._step = self.initial

    def next(self, at_least: float | None = None) -> float:
        """The next delay in seconds; ``at_least`` (a server's Retry-After) is honoured."""
        delay = self._rng.uniform(self._step / 2, self._step)
        self._step = min(self._step * 2, self.cap)
        if at_least is not None:
            delay = max(delay, min(at_least, 3600.0))
        return delay
