"""Progress of long work (export, replay, backfill) on stderr.

On a terminal it is a rich progress bar; elsewhere (a log, a pipe, CI) nothing, unless asked
with ``--progress``: then one plain line at every tenth of the work and at the end, so a log
shows how far a long job got. Never on stdout: exports write their data there.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, Literal, TextIO

__all__ = ["Progress", "ProgressMode"]

ProgressMode = Literal["auto", "on", "off"]


class Progress:
    """``with Progress("export", total) as p: p.advance(n)``."""

    def __init__(
        self,
        what: str,
        total: int,
        *,
        mode: ProgressMode = "auto",
        stream: TextIO | None = None,
        unit: str = "rows",
    ) -> None:
        self.what = what
        self.total = max(0, total)
        self.unit = unit
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._task: Any = None
        self._plain = mode == "on" and not tty
        self._next_tenth = 1
        if mode != "off" and tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(unit),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total or None)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self._plain and self.total:
            while self._next_tenth <= 10 and self.done * 10 >= self._next_tenth * self.total:
                self._line(f"{self._next_tenth * 10} %")
                self._next_tenth += 1

    def set_total(self, total: int) -> None:
        self.total = max(0, total)
        if self._bar is not None:
            self._bar.update(self._task, total=self.total or None)

    def _line(self, how_far: str) -> None:
        print(
            f"{self.what}: {how_far} ({self.done} of {self.total} {self.unit})",
            file=self.stream,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._plain and (self._next_tenth <= 10 or exc_type is not None):
            self._line("stopped" if exc_type is not None else "done")
