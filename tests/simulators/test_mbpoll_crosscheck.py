"""Cross-check the F4T simulator with Debian's mbpoll, an independent (libmodbus) Modbus client.

mbpoll prints floats with C's ``%g`` (six significant digits) as ``[REF]: \\tVALUE`` lines. Its
float word order is low word first by default (matching the F4T's CDAB); ``-B`` selects high
word first. ``-0`` makes references 0-based PDU addresses; without it ``-r`` is 1-based.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from simulators.scenario import Scenario
from simulators.watlow_f4t import HARDWARE_ID, ChamberSimulator, running_chamber

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

_VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(\S+)\s*$", re.MULTILINE)


def mbpoll(
    sim: ChamberSimulator, *args: str, write: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mbpoll")
    if exe is None:
        pytest.fail(
            "mbpoll is not installed; the cross-check needs it (Debian: apt-get install mbpoll)"
        )
    command = [exe, "-m", "tcp", "-p", str(sim.port), "-a", str(sim.device_id), "-1", "-o", "2"]
    return subprocess.run(
        [*command, *args, "127.0.0.1", *write],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )


def polled(sim: ChamberSimulator, *args: str) -> dict[int, str]:
    result = mbpoll(sim, *args)
    assert result.returncode == 0, f"mbpoll {' '.join(args)} failed: {result.stderr}"
    values = {int(ref): value for ref, value in _VALUE_LINE.findall(result.stdout)}
    assert values, f"no values in mbpoll output:\n{result.stdout}"
    return values


def test_chamber_temperature_as_cdab_float_matches_the_model() -> None:
    with running_chamber(seed=21) as sim:
        sim.set_fault("frozen")  # the served value stays put while mbpoll runs
        expected = sim.reading("chamber_temperature")
        values = polled(sim, "-0", "-t", "4:float", "-r", "27586")
        assert float(values[27586]) == pytest.approx(expected, rel=1e-5)
        assert 34.7 < float(values[27586]) < 35.3


def test_one_based_reference_reads_the_same_register() -> None:
    with running_chamber(seed=21) as sim:
        sim.set_fault("frozen")
        zero_based = polled(sim, "-0", "-t", "4:float", "-r", "27586")[27586]
        one_based = polled(sim, "-t", "4:float", "-r", "27587")[27587]
        assert one_based == zero_based


def test_big_endian_flag_decodes_the_swapped_word_order() -> None:
    with running_chamber(seed=22) as sim:
        sim.set_fault("frozen")
        sim.set_fault("word_order_swapped")
        expected = sim.reading("chamber_temperature")
        big_endian = polled(sim, "-0", "-B", "-t", "4:float", "-r", "27586")
        assert float(big_endian[27586]) == pytest.approx(expected, rel=1e-5)
        default_order = polled(sim, "-0", "-t", "4:float", "-r", "27586")
        assert abs(float(default_order[27586]) - expected) > 1.0, "CDAB decode should be garbage"


def test_status_hardware_id_and_set_points() -> None:
    with running_chamber(scenario=Scenario(model={"noise_c": 0.0})) as sim:
        assert polled(sim, "-0", "-t", "4", "-r", "90") == {90: "138"}
        assert polled(sim, "-0", "-t", "4:int", "-r", "0") == {0: str(HARDWARE_ID)}
        assert polled(sim, "-0", "-t", "4:float", "-r", "2782") == {2782: "35"}
        assert polled(sim, "-0", "-t", "4:float", "-r", "2942") == {2942: "47"}
        sim.set_fault("word_order_swapped")  # 35.0 has a zero low word: CDAB decodes ~2.4e-41
        swapped = polled(sim, "-0", "-t", "4:float", "-r", "2782")[2782]
        assert 0 < float(swapped) < 1e-38, swapped
        assert polled(sim, "-0", "-B", "-t", "4:float", "-r", "2782") == {2782: "35"}
        sim.set_fault("device_fail")
        assert polled(sim, "-0", "-t", "4", "-r", "90") == {90: "32"}


def test_set_point_written_by_mbpoll_reaches_the_model() -> None:
    with running_chamber() as sim:
        result = mbpoll(sim, "-0", "-t", "4:float", "-r", "2782", write=("38.5",))
        assert result.returncode == 0, result.stderr
        assert sim.reading("chamber_setpoint") == 38.5
        assert polled(sim, "-0", "-t", "4:float", "-r", "2810") == {2810: "38.5"}


@pytest.mark.parametrize(
    ("code", "text"),
    [(2, "Illegal data address"), (4, "Slave device or server failure"), (6, "busy")],
)
def test_exception_fault_is_reported_by_libmodbus(code: int, text: str) -> None:
    with running_chamber() as sim:
        sim.set_fault("exception", code=code)
        result = mbpoll(sim, "-0", "-t", "4", "-r", "90")
        assert result.returncode != 0
        assert text.lower() in result.stderr.lower(), result.stderr


def test_unmapped_register_is_illegal_data_address() -> None:
    with running_chamber() as sim:
        result = mbpoll(sim, "-0", "-t", "4", "-r", "91")
        assert result.returncode != 0
        assert "illegal data address" in result.stderr.lower(), result.stderr
