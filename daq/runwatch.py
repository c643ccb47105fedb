"""The daemon's view of salt-spray runs: valid exposure per run and specimen, kept current.

At every health tick :meth:`RunWatch.tick` re-reads which runs are going (``daq chamber start``
and ``stop`` are made by other processes), brings each run's :class:`daq.runs.RunAccount` up to
date from the journal rows written since the last tick (the daemon's own zone readings and the
operator's pH and collection-rate entries alike) and returns ``exposure`` points tagged with the
run, and with the specimen, SKU and lot for each specimen. A run is replayed from its start once,
when the daemon first sees it, so a restart continues the same figures.
"""

from __future__ import annotations

import logging
import time

from daq.config import Config
from daq.journal import Journal
from daq.model import Point
from daq.runs import RunAccount, RunStore, cabinets, exposure_points, max_gap_s

__all__ = ["RunWatch"]

log = logging.getLogger(__name__)


class RunWatch:
    """Valid exposure of the bench's going runs. Call :meth:`tick` from the journal's thread."""

    def __init__(self, config: Config, journal: Journal, store: RunStore) -> None:
        self.config = config
        self.journal = journal
        self.store = store
        self.cabinets = cabinets(config)
        self.accounts: dict[str, RunAccount] = {}
        self._warned: set[str] = set()

    def tick(self) -> list[Point]:
        now = time.time_ns()
        active = {r.run: r for r in self.store.runs(active_only=True)}
        for name in set(self.accounts) - set(active):
            del self.accounts[name]
        points: list[Point] = []
        for run in active.values():
            cab = self.cabinets.get(run.cabinet)
            if cab is None:
                if run.run not in self._warned:
                    self._warned.add(run.run)
                    log.warning(
                        "run %s is in cabinet '%s', which this bench config does not describe:"
                        " its exposure is not accounted here",
                        run.run,
                        run.cabinet,
                    )
                continue
            acc = self.accounts.get(run.run)
            if acc is None:
                acc = self.accounts[run.run] = RunAccount.of(run, cab, max_gap_s(self.config, cab))
            acc.update(self.journal)
            points.extend(
                exposure_points(self.config.bench.id, acc, self.store.specimens(run.run), now)
            )
        return points
