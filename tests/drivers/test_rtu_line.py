"""Several controllers on one Modbus RTU line share one port and one scheduler.

The line is a socat pty pair with the pymodbus RTU server of simulators/modbus_rtu.py on one
end; the links under test open the other end, from several threads at once, as the runtime's
worker threads do. No mocks. Also here: per-register-group poll rates (``interval_s``) of the
map-driven driver, against the RTU and the F4T (TCP) simulators.
"""

import os
import select
import struct
import threading
import time
import tty
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.framer.rtu import FramerRTU

from daq.errors import InstrumentTimeout, TransportError
from daq.instrument import InstrumentSettings
from drivers.modbus_controller import MAPS_DIR, ModbusControllerOptions, build
from drivers.transport import rtu_line
from drivers.transport.modbus import ModbusLink
from drivers.transport.rtu_line import SerialSettings
from simulators.modbus_rtu import Eurotherm3200, EzZonePm, RtuLine, running_rtu_line
from simulators.watlow_f4t import running_chamber

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 0.3
ROUNDS = 15


def float_of(words: list[int]) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", *words))[0]
    return value


def three_devices() -> list[EzZonePm | Eurotherm3200]:
    return [EzZonePm(1, pv=35.0), Eurotherm3200(2, pv=47.0), EzZonePm(3, pv=61.5)]


def line_of(path: str) -> rtu_line.LineStats | None:
    real = Path(path).resolve()
    found = [s for s in rtu_line.line_stats() if Path(s.device).resolve() == real]
    return found[0] if found else None


@pytest.fixture
def line():
    with running_rtu_line(devices=three_devices(), noise=False) as rtu:
        yield rtu


def run_threads(targets) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)


# -- one wire, one transaction at a time -------------------------------------------------------


def test_three_device_ids_polled_concurrently_never_overlap(line: RtuLine) -> None:
    shared = rtu_line.attach(line.path, SerialSettings(baudrate=9600), timeout=TIMEOUT_S)
    on_wire = 0
    most_on_wire = 0
    counter_lock = threading.Lock()
    replies: dict[int, list[float]] = {1: [], 2: [], 3: []}
    errors: list[BaseException] = []

    def counted(client: ModbusSerialClient, device_id: int, address: int, count: int):
        nonlocal on_wire, most_on_wire
        with counter_lock:
            on_wire += 1
            most_on_wire = max(most_on_wire, on_wire)
        try:
            return client.read_holding_registers(address, count=count, device_id=device_id)
        finally:
            with counter_lock:
                on_wire -= 1

    def poller(device_id: int, address: int, count: int):
        def run() -> None:
            try:
                for _ in range(ROUNDS):
                    reply = shared.transact(
                        device_id, TIMEOUT_S, lambda c, d: counted(c, d, address, count)
                    )
                    regs = list(reply.registers)
                    value = float_of(regs) if count == 2 else regs[0] / 10.0
                    replies[device_id].append(value)
            except BaseException as exc:
                errors.append(exc)

        return run

    try:
        run_threads([poller(1, 360, 2), poller(2, 1, 1), poller(3, 360, 2)])
        stats = shared.stats()
    finally:
        rtu_line.detach(shared)
    assert errors == []
    assert most_on_wire == 1
    assert replies == {1: [35.0] * ROUNDS, 2: [47.0] * ROUNDS, 3: [61.5] * ROUNDS}
    assert stats.max_concurrent == 1
    assert stats.transactions == 3 * ROUNDS
    assert stats.timeouts == stats.failures == stats.abandoned == 0
    assert 0.0 < stats.busy_fraction <= 1.0
    assert line_of(line.path) is None  # the last detach closed it


def test_drivers_on_one_line_share_one_port(line: RtuLine) -> None:
    maps = {1: "watlow_ezzone_pm", 2: "eurotherm_3200", 3: "watlow_ezzone_pm"}
    drivers = {
        device_id: build(
            InstrumentSettings(f"c{device_id}", f"rtu://{line.path}?baudrate=9600", TIMEOUT_S),
            ModbusControllerOptions(device_id=device_id),
            name,
        )
        for device_id, name in maps.items()
    }
    temperatures: dict[int, set[float]] = {1: set(), 2: set(), 3: set()}
    errors: list[BaseException] = []

    def poller(device_id: int):
        def run() -> None:
            try:
                for _ in range(ROUNDS):
                    samples = {s.channel: s for s in drivers[device_id].poll()}
                    temperatures[device_id].add(round(samples["temperature"].value, 3))
            except BaseException as exc:
                errors.append(exc)

        return run

    try:
        for driver in drivers.values():
            driver.connect()
        during = line_of(line.path)
        run_threads([poller(1), poller(2), poller(3)])
        after = line_of(line.path)
    finally:
        for driver in drivers.values():
            driver.close()
    assert errors == []
    assert temperatures == {1: {35.0}, 2: {47.0}, 3: {61.5}}
    assert during is not None and after is not None
    assert during.users == 3  # one port for three controllers
    assert after.max_concurrent == 1
    assert after.transactions >= 3 * ROUNDS
    assert line_of(line.path) is None


def test_silent_device_times_out_only_its_own_requests(line: RtuLine) -> None:
    address = f"rtu://{line.path}?baudrate=9600"
    links = {d: ModbusLink(address, timeout=TIMEOUT_S, device_id=d) for d in (1, 2, 7)}
    results: dict[int, list[object]] = {1: [], 2: [], 7: []}

    def poller(device_id: int, rounds: int):
        def run() -> None:
            for _ in range(rounds):
                try:
                    results[device_id].append(links[device_id].read_holding(360, 2))
                except InstrumentTimeout as exc:
                    results[device_id].append(exc)
                except TransportError as exc:  # not expected: recorded to fail the test
                    results[device_id].append(exc)

        return run

    def eurotherm() -> None:
        for _ in range(ROUNDS):
            results[2].append(links[2].read_holding(1, 1))

    try:
        for link in links.values():
            link.open()
        run_threads([poller(1, ROUNDS), eurotherm, poller(7, 3)])
        stats = line_of(line.path)
    finally:
        for link in links.values():
            link.close()
    assert results[1] == [[0x420C, 0x0000]] * ROUNDS  # 35.0, every time
    assert results[2] == [[470]] * ROUNDS
    assert len(results[7]) == 3
    assert all(type(r) is InstrumentTimeout for r in results[7])
    assert str(results[7][0]).startswith(
        f"no reply from device 7 on rtu://{line.path} within 0.3 s"
    )
    assert stats is not None
    assert stats.timeouts == 3
    assert stats.failures == 0


def test_port_vanishing_fails_waiting_requests_then_reopens(tmp_path: Path) -> None:
    port = tmp_path / "ttyRS485"  # a stable name, as /dev/serial/by-id/... would be
    address = f"rtu://{port}?baudrate=9600"
    slow = ModbusLink(address, timeout=1.5, device_id=7)  # absent: holds the wire 1.5 s
    chamber = ModbusLink(address, timeout=TIMEOUT_S, device_id=1)
    saturator = ModbusLink(address, timeout=TIMEOUT_S, device_id=2)
    outcome: dict[int, BaseException | list[int]] = {}

    def read(link: ModbusLink, address: int) -> None:
        try:
            outcome[link.device_id] = link.read_holding(address, 1)
        except BaseException as exc:
            outcome[link.device_id] = exc

    threads = []
    try:
        with running_rtu_line(devices=three_devices(), noise=False) as first:
            port.symlink_to(first.path)
            for link in (slow, chamber, saturator):
                link.open()
            threads = [
                threading.Thread(target=read, args=(slow, 1)),
                threading.Thread(target=read, args=(chamber, 360)),
                threading.Thread(target=read, args=(saturator, 1)),
            ]
            threads[0].start()
            for _ in range(200):  # bounded: the slow request is on the wire
                stats = line_of(str(port))
                if stats is not None and stats.in_progress == 1:
                    break
                threading.Event().wait(0.01)
            threads[1].start()
            threads[2].start()
            for _ in range(200):  # bounded: both wait behind it
                stats = line_of(str(port))
                if stats is not None and stats.queued == 2:
                    break
                threading.Event().wait(0.01)
        # the simulator stopped: the port is gone under the waiting requests
        for thread in threads:
            thread.join(10)
        assert set(outcome) == {1, 2, 7}
        for device_id in (1, 2, 7):
            error = outcome[device_id]
            assert type(error) is TransportError, error
            assert "port closed" in str(error)
        with pytest.raises(TransportError, match="closed after a failure"):
            chamber.read_holding(360, 2)
        stats = line_of(str(port))
        assert stats is not None and stats.failures == 1 and not stats.open
        with running_rtu_line(devices=three_devices(), noise=False) as second:
            port.unlink()
            port.symlink_to(second.path)
            for link in (slow, chamber, saturator):
                link.open()  # the runtime reconnects each instrument
            assert chamber.read_holding(360, 2) == [0x420C, 0x0000]
            assert saturator.read_holding(1, 1) == [470]
            stats = line_of(str(port))
            assert stats is not None and stats.open and stats.users == 3
    finally:
        for link in (slow, chamber, saturator):
            link.close()
        for thread in threads:
            thread.join(10)
    assert line_of(str(port)) is None


def read_pv(client: ModbusSerialClient, device_id: int):
    return client.read_holding_registers(360, count=2, device_id=device_id)


def test_request_stuck_behind_a_hung_one_gives_up_without_being_sent(line: RtuLine) -> None:
    shared = rtu_line.attach(line.path, SerialSettings(baudrate=9600), timeout=0.1)
    gate = threading.Event()
    outcome: dict[str, object] = {}

    def hung(client: ModbusSerialClient, device_id: int):
        gate.wait(10)  # a request that holds the wire far beyond its timeout
        return client.read_holding_registers(1, count=1, device_id=device_id)

    def first() -> None:
        outcome["first"] = list(shared.transact(2, 0.1, hung).registers)

    def second() -> None:
        try:
            shared.transact(
                1, 0.1, lambda c, d: c.read_holding_registers(360, count=2, device_id=d)
            )
        except InstrumentTimeout as exc:
            outcome["second"] = exc

    holder = threading.Thread(target=first)
    try:
        holder.start()
        for _ in range(200):  # bounded: the hung request is on the wire
            if shared.stats().in_progress == 1:
                break
            threading.Event().wait(0.01)
        second()
        gate.set()
        holder.join(10)
        stats = shared.stats()
        with pytest.raises(ValueError, match="not a reply"):
            shared.transact(1, 0.1, lambda c, d: int("not a reply"))
        after = shared.transact(
            1, 0.1, lambda c, d: c.read_holding_registers(360, count=2, device_id=d)
        )
    finally:
        gate.set()
        holder.join(10)
        rtu_line.detach(shared)
    assert outcome["first"] == [470]
    assert "busy with other instruments" in str(outcome["second"])
    assert "device 1: not even started" in str(outcome["second"])
    assert stats.abandoned == 1
    assert stats.transactions == 1  # the abandoned request never went out
    assert list(after.registers) == [0x420C, 0x0000]  # the worker outlived the odd request


def test_other_serial_settings_on_the_same_port_are_refused(line: RtuLine) -> None:
    first = ModbusLink(f"rtu://{line.path}?baudrate=9600&parity=N", timeout=TIMEOUT_S)
    other = ModbusLink(f"rtu://{line.path}?baudrate=19200&parity=E", timeout=TIMEOUT_S)
    first.open()
    try:
        with pytest.raises(
            TransportError,
            match=r"already in use at 9600 baud 8N1 .* asks for 19200 baud 8E1",
        ):
            other.open()
        assert first.read_holding(360, 2) == [0x420C, 0x0000]  # the first keeps working
        stats = line_of(line.path)
        assert stats is not None and stats.users == 1
    finally:
        other.close()
        first.close()


def test_defaults_written_out_are_the_same_settings(line: RtuLine) -> None:
    implicit = ModbusLink(f"rtu://{line.path}", timeout=TIMEOUT_S, device_id=1)
    explicit = ModbusLink(
        f"rtu://{line.path}?baudrate=19200&parity=N&bytesize=8&stopbits=1",
        timeout=TIMEOUT_S,
        device_id=2,
    )
    try:
        implicit.open()
        explicit.open()
        assert implicit.read_holding(360, 2) == [0x420C, 0x0000]
        assert explicit.read_holding(1, 1) == [470]
        stats = line_of(line.path)
        assert stats is not None and stats.users == 2
    finally:
        implicit.close()
        explicit.close()
        explicit.close()  # idempotent


def test_missing_port_is_a_transport_error(tmp_path: Path) -> None:
    link = ModbusLink(f"rtu://{tmp_path / 'nothing'}", timeout=TIMEOUT_S)
    with pytest.raises(TransportError, match="cannot open serial port"):
        link.open()
    with pytest.raises(TransportError, match="not connected"):
        link.read_holding(0, 1)
    assert line_of(str(tmp_path / "nothing")) is None
    link.close()


# -- register groups with their own poll rate (interval_s) -------------------------------------


def grouped_map(tmp_path: Path, name: str, channel: str, interval_s: float) -> Path:
    """A copy of a shipped map with ``interval_s`` on one point."""
    text = (MAPS_DIR / f"{name}.toml").read_text(encoding="utf-8")
    marker = f'channel = "{channel}"\n'
    assert text.count(marker) == 1
    path = tmp_path / f"{name}_grouped.toml"
    path.write_text(text.replace(marker, f"{marker}interval_s = {interval_s}\n"), "utf-8")
    return path


def test_slow_group_is_read_once_then_when_due(line: RtuLine, tmp_path: Path) -> None:
    settings = InstrumentSettings("c1", f"rtu://{line.path}?baudrate=9600", TIMEOUT_S)
    rarely = build(
        settings,
        ModbusControllerOptions(
            device_id=1, map=grouped_map(tmp_path, "watlow_ezzone_pm", "setpoint", 3600)
        ),
        "watlow_ezzone_pm",
    )
    often = build(
        settings,
        ModbusControllerOptions(
            device_id=3, map=grouped_map(tmp_path, "watlow_ezzone_pm", "setpoint", 0.2)
        ),
        "watlow_ezzone_pm",
    )
    rarely.connect()
    often.connect()
    try:
        before = line_of(line.path)
        assert before is not None
        first = {s.channel: s.value for s in rarely.poll()}
        assert first == {"temperature": 35.0, "setpoint": 35.0}  # the first poll reads all
        middle = line_of(line.path)
        second = {s.channel: s.value for s in rarely.poll()}
        after = line_of(line.path)
        assert second == {"temperature": 35.0}  # set point not due for an hour
        assert middle is not None and after is not None
        assert middle.transactions - before.transactions == 2  # 360 and 2160: two blocks
        assert after.transactions - middle.transactions == 1  # 360 only

        assert {s.channel for s in often.poll()} == {"temperature", "setpoint"}
        threading.Event().wait(0.25)  # longer than its 0.2 s interval
        assert {s.channel for s in often.poll()} == {"temperature", "setpoint"}
    finally:
        rarely.close()
        often.close()


def test_display_unit_and_status_are_read_every_poll(tmp_path: Path) -> None:
    regmap = grouped_map(tmp_path, "watlow_f4t", "setpoint", 3600)
    with running_chamber(seed=3) as chamber:
        driver = build(
            InstrumentSettings("chamber-1", chamber.address, 0.5),
            ModbusControllerOptions(map=regmap),
            "watlow_f4t",
        )
        driver.connect()
        try:
            assert "setpoint" in {s.channel for s in driver.poll()}
            client = ModbusTcpClient(chamber.host, port=chamber.port, timeout=1)
            assert client.connect()
            try:
                assert not client.write_register(1328, 30, device_id=1).isError()  # to °F
            finally:
                client.close()
            chamber.set_fault("device_fail")
            samples = {s.channel: s for s in driver.poll()}
        finally:
            driver.close()
    assert set(samples) == {"temperature", "saturator_temperature", "saturator_setpoint"}
    temperature = samples["temperature"]
    assert temperature.unit == "°F"
    assert "unit_changed:°C->°F" in temperature.flags
    assert "status=fail" in temperature.flags


# -- the inter-frame silence, seen from the device's end ---------------------------------------


class TimedDevice:
    """A device on the far end of a pty: answers function 3 with zeros, noting when each request
    arrived and when each reply was written (time.monotonic)."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.requests: list[float] = []
        self.replies: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        buffer = b""
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            buffer += os.read(self.master, 256)
            while len(buffer) >= 8:
                request, buffer = buffer[:8], buffer[8:]
                self.requests.append(time.monotonic())
                unit, _function, _address, count = struct.unpack(">BBHH", request[:6])
                body = struct.pack(">BBB", unit, 3, 2 * count) + bytes(2 * count)
                crc = FramerRTU.compute_CRC(body)
                os.write(self.master, body + struct.pack(">H", crc))
                self.replies.append(time.monotonic())


@pytest.mark.parametrize("baudrate", [9600, 115200])
def test_the_next_request_waits_the_inter_frame_silence_after_a_reply(baudrate: int) -> None:
    # t3.5 (Modbus over Serial Line V1.02 §2.5.1.1): 3.65 ms at 9600 baud 8N1, 1.75 ms above
    # 19200. The scheduler counts the quiet pymodbus already waited for before returning a
    # reply and waits the rest; the device must never see a request sooner than t3.5 after it
    # wrote its last reply (a pty adds no wire time, so this is the tightest case).
    master, slave = os.openpty()
    tty.setraw(master)
    device = TimedDevice(master)
    device.thread.start()
    settings = SerialSettings(baudrate=baudrate)
    shared = rtu_line.attach(os.ttyname(slave), settings, timeout=TIMEOUT_S)
    try:
        for _ in range(30):
            reply = shared.transact(
                1, TIMEOUT_S, lambda c, d: c.read_holding_registers(100, count=2, device_id=d)
            )
            assert reply.registers == [0, 0]
    finally:
        rtu_line.detach(shared)
        device.stop.set()
        device.thread.join(5)
        os.close(master)
        os.close(slave)
    silence = rtu_line.inter_frame_delay_s(settings)
    gaps = [nxt - done for done, nxt in zip(device.replies, device.requests[1:], strict=False)]
    assert len(gaps) == 29
    assert min(gaps) >= silence, (silence, min(gaps))
