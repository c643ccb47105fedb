"""A Mark-10 streaming at AOUT 250/s for 5 s into the push-mode driver loses no line.

The simulator counts the stream lines it hands to its pty (``stream_lines_sent``) and the driver
the reading lines its streaming reader takes (``stream_readings``); after ``AOUT0`` and a drain
both counts must agree. The load is a compression ramp (a ``hold`` test ramping to 9.5 N over
7 s) on the M5-2 profile (0.001 N steps), so the values read never go down: a line read out of
order would show. The pty is not paced by baud (as a USB virtual
COM port is not), so 250 lines/s fit the link.
"""

from __future__ import annotations

import itertools
import time

import pytest

from daq.instrument import InstrumentSettings
from drivers import mark10
from drivers.mark10 import Reading, parse_line
from simulators.mark10 import running_mark10

pytestmark = pytest.mark.timeout(30)

RUN_S = 5.0
RATE = 250


class Recorder:
    """Wraps the driver's parsing hook to keep every value its streaming reader took."""

    def __init__(self, driver: mark10.Mark10) -> None:
        self.values: list[float] = []
        self._inner = driver._stream_reading
        driver._stream_reading = self  # type: ignore[method-assign]

    def __call__(self, t: float, reading: Reading):
        self.values.append(reading.value)
        return self._inner(t, reading)


def test_aout_250_for_five_seconds_loses_no_line():
    model = {"profile": "M5-2", "noise_pct_fs": 0.0, "fltc": 0, "baud": 0}
    with running_mark10(model=model) as sim:
        assert sim.port.baud is None
        sim.start_test("hold", target=9.5, unit="N", ramp_s=7.0, direction="compression")
        assert sim.path is not None
        options = mark10.Mark10Options(mode="push", aout_rate=RATE, start_threshold="9.9 N")
        driver = mark10.build(InstrumentSettings("m10", sim.path, 1.0), options)
        recorder = Recorder(driver)
        driver.connect()
        try:
            started = time.monotonic()
            while time.monotonic() - started < RUN_S:
                assert driver.receive(0.1) == []
            driver.link.write_line("AOUT0", b"\r\n")
            # drain: until the gauge has stopped and its last line has been read
            deadline = time.monotonic() + 3.0
            while True:
                assert time.monotonic() < deadline, "the stream did not stop"
                driver.receive(0.1)
                if sim.aout == 0 and driver.stream_readings == sim.stream_lines_sent:
                    driver.receive(0.1)  # nothing more may come
                    break
            elapsed = time.monotonic() - started
        finally:
            driver.close()
        sent = sim.stream_lines_sent
        lost = sent - driver.stream_readings
        assert lost == 0, f"{lost} of {sent} stream lines lost"
        assert sent >= 0.9 * RATE * RUN_S, f"only {sent} lines in {elapsed:.1f} s"
        assert sim.stream_dropped == 0 and sim.port.dropped_items == 0
        assert driver.ignored_lines == 0 and driver.link.garbage == 0
        values = recorder.values
        assert len(values) == sent
        assert all(b >= a for a, b in itertools.pairwise(values))
        # Only a repeat of the previous value can be dropped as a duplicate. (Known: when the
        # simulator's thread catches up it sends two ticks back to back with the same value; they
        # arrive in one read, get one arrival time, and the driver drops the second as a
        # duplicate although the gauge did send it twice. The line was still read: lost == 0.)
        repeats = sum(a == b for a, b in itertools.pairwise(values))
        assert driver.duplicates <= repeats
        assert values[-1] > values[0] + 0.5  # the ramp moved (1.36 N/s)
        # sanity: what the driver parsed is what the gauge prints
        last = parse_line(sim.reading())
        assert isinstance(last, Reading) and last.value >= values[-1]
