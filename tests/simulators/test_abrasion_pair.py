"""The abrasion PLC driver (drivers/abrasion_plc.py) against the PLC simulator
(simulators/abrasion_plc.py): written by different people from the project's reference register
layout, meeting only over Modbus TCP on 127.0.0.1."""

import threading

from daq.instrument import InstrumentSettings
from daq.units import Normalizer
from drivers import abrasion_plc
from simulators.abrasion_plc import running_abrasion_plc


def driver(address):
    settings = InstrumentSettings("taber-1", address, timeout=0.5)
    return abrasion_plc.build(settings, abrasion_plc.AbrasionPlcOptions())


def poll_until_test(d, limit=800):
    """Poll (every 20 ms, at most ``limit`` times) until a finished test is reported."""
    pause = threading.Event()
    live = []
    for _ in range(limit):
        for s in d.poll():
            if s.channel == "test":
                return s, live
            live.append(s)
        pause.wait(0.02)
    raise AssertionError("no test reported")


def extra(sample):
    return dict(sample.extra)


def test_a_test_run_to_its_end_point_is_one_result():
    with running_abrasion_plc(seed=2, time_scale=120.0) as sim:
        d = driver(sim.address)
        d.connect()
        try:
            assert d.poll() == []  # idle
            sim.start_test(preset=500, load_g=500, wheel=10)
            test, live = poll_until_test(d)
            assert test.value == 500 and extra(test)["outcome"] == "end point reached"
            assert extra(test)["preset_cycles"] == 500 and extra(test)["load_g"] == 500
            assert extra(test)["wheel"] == "CS-10"
            assert abs(extra(test)["mean_speed_rpm"] - 60.0) < 1.0
            assert "stopped_early" not in test.flags
            assert {s.channel for s in live} >= {"cycles", "speed", "load"}
            for s in [test, *live]:
                Normalizer().normalize(s)  # every sample has a unit the core knows
            assert all(s.channel != "test" for s in d.poll())  # never reported twice
        finally:
            d.close()


def test_stopped_and_faulted_tests_say_so():
    with running_abrasion_plc(seed=3, time_scale=5.0) as sim:
        d = driver(sim.address)
        d.connect()
        try:
            sim.start_test(preset=5000)
            pause = threading.Event()
            for _ in range(20):
                d.poll()
                pause.wait(0.02)
            sim.stop_test()
            test, _ = poll_until_test(d)
            assert extra(test)["outcome"] == "stopped by operator"
            assert 0 < test.value < 5000 and "stopped_early" in test.flags
            sim.start_test(preset=5000)
            for _ in range(10):
                d.poll()
                pause.wait(0.02)
            sim.fault(1)
            test, _ = poll_until_test(d)
            assert extra(test)["outcome"] == "fault: motor overload"
        finally:
            d.close()
