"""A signal that interrupts the port's drain (tcdrain: EINTR) is not a lost link."""

from __future__ import annotations

import errno
import termios

import pytest

from drivers.transport.serial import retry_interrupted


class Drain:
    """Stands for ``tcdrain``: interrupted ``interrupted`` times, then done."""

    def __init__(self, interrupted: int, error: int = errno.EINTR) -> None:
        self.left = interrupted
        self.error = error
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise termios.error(self.error, "Interrupted system call")


def test_an_interrupted_drain_is_repeated() -> None:
    drain = Drain(interrupted=3)
    retry_interrupted(drain)
    assert drain.calls == 4


def test_other_errors_are_not_repeated() -> None:
    drain = Drain(interrupted=1, error=errno.EIO)
    with pytest.raises(termios.error):
        retry_interrupted(drain)
    assert drain.calls == 1


def test_a_drain_interrupted_without_end_fails_in_the_end() -> None:
    drain = Drain(interrupted=10_000)
    with pytest.raises(termios.error):
        retry_interrupted(drain)
    assert drain.calls < 100
