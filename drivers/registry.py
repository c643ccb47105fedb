"""The one place where drivers register. The CLI builds instruments from here.

Each entry names a driver (the ``driver`` key of an ``[[instrument]]``), its family (the kind of
instrument), whether it is polled or pushes results (or ``either``, its options deciding: a force
gauge is polled for readings or records whole tests from its stream), the pydantic model of its
options, how to check its address, and how to build it. ``check_instrument`` is the callback the
config loader uses, so that ``daq check`` reports driver problems with every other problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from daq.config import InstrumentConfig
from daq.instrument import Driver, InstrumentSettings, Mode
from drivers import imada, mark10, modbus_controller
from drivers.modbus_map import load_map
from drivers.transport.modbus import parse_address
from drivers.transport.serial import parse_line_address

__all__ = [
    "REGISTRY",
    "DriverEntry",
    "build_driver",
    "check_instrument",
    "register",
    "register_map_controller",
]


@dataclass(frozen=True, slots=True)
class DriverEntry:
    name: str
    family: str
    #: ``either``: the validated options choose, through ``mode_of``.
    mode: Mode | Literal["either"]
    description: str
    options: type[BaseModel]
    check_address: Callable[[str], object]
    build: Callable[[InstrumentSettings, Any], Driver]
    #: Extra checks on validated options; returns (key, message) problems.
    check_options: Callable[[Any], Sequence[tuple[str, str]]] | None = None
    #: For ``mode = "either"``: the mode a driver's validated options choose.
    mode_of: Callable[[Any], Mode] | None = None


REGISTRY: dict[str, DriverEntry] = {}


def register(entry: DriverEntry) -> None:
    """Add a driver. Names are unique."""
    if entry.name in REGISTRY:
        raise ValueError(f"driver {entry.name!r} is registered twice")
    REGISTRY[entry.name] = entry


def _check_map(options: modbus_controller.ModbusControllerOptions) -> list[tuple[str, str]]:
    if options.map is None:
        return []
    try:
        load_map(options.map)
    except ValueError as exc:
        return [("options.map", str(exc))]
    return []


def register_map_controller(name: str, description: str) -> None:
    """Register a Modbus controller served by the generic driver with drivers/maps/<name>.toml:
    a new controller is a map file and this one call."""
    register(
        DriverEntry(
            name=name,
            family="chamber",
            mode="poll",
            description=description,
            options=modbus_controller.ModbusControllerOptions,
            check_address=parse_address,
            build=lambda s, o: modbus_controller.build(s, o, name),
            check_options=_check_map,
        )
    )


register_map_controller("watlow_f4t", "Watlow F4T chamber controller over Modbus TCP/RTU")


register(
    DriverEntry(
        name="mark10",
        family="force",
        mode="either",
        description="Mark-10 Series 4/5/7 force gauge or TT01 torque tester (GCL2, serial/USB)",
        options=mark10.Mark10Options,
        check_address=parse_line_address,
        build=mark10.build,
        mode_of=lambda o: o.mode,
    )
)

register(
    DriverEntry(
        name="imada",
        family="force",
        mode="either",
        description="Imada DS2/DST/ZT/HTG2 force or torque gauge ('D' request, serial/USB)",
        options=imada.ImadaOptions,
        check_address=parse_line_address,
        build=imada.build,
        mode_of=lambda o: o.mode,
    )
)


def _friendly(err: Any) -> str:
    if err.get("type") == "extra_forbidden":
        return "is not an option of this driver (misspelt?)"
    msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, (str, int, float, bool)):
        return f"{msg} (got {value!r})"
    return msg


def check_instrument(inst: InstrumentConfig) -> list[tuple[str, str]]:
    """Problems with one instrument's driver, address and options, as (key, message)."""
    entry = REGISTRY.get(inst.driver)
    if entry is None:
        known = ", ".join(sorted(REGISTRY))
        return [("driver", f"no driver called '{inst.driver}' (known: {known})")]
    problems: list[tuple[str, str]] = []
    try:
        entry.check_address(inst.address)
    except ValueError as exc:
        problems.append(("address", str(exc)))
    options: BaseModel | None = None
    option_problems: list[tuple[str, str]] = []
    try:
        options = entry.options.model_validate(inst.options)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(["options", *(str(p) for p in err["loc"])])
            option_problems.append((key, _friendly(err)))
    mode: str | None = entry.mode
    chosen = ""
    if entry.mode == "either":
        if options is not None and entry.mode_of is not None:
            mode = entry.mode_of(options)
        else:  # the options are wrong; still say what their mode asks for
            asked = inst.options.get("mode", "poll")
            mode = asked if asked in ("poll", "push") else None
        chosen = f' (options.mode = "{mode}")'
    if mode == "poll" and inst.poll_interval is None:
        problems.append(
            ("poll_interval", f"this instrument is polled{chosen}: give poll_interval (s)")
        )
    if mode == "push" and inst.poll_interval is not None:
        problems.append(("poll_interval", f"this instrument pushes its results{chosen}: remove it"))
    problems.extend(option_problems)
    if options is not None and entry.check_options is not None:
        problems.extend(entry.check_options(options))
    return problems


def build_driver(inst: InstrumentConfig) -> Driver:
    """Build the driver for a validated instrument config (no I/O happens here)."""
    entry = REGISTRY[inst.driver]
    settings = InstrumentSettings(inst.name, inst.address, inst.timeout)
    return entry.build(settings, entry.options.model_validate(inst.options))


# -- XRF coating-thickness gauges (drivers/xrf_export.py, drivers/xrf_telegram.py) -------------
# Imported here, at the end, so that these entries stay one appended block.
from drivers import xrf_export, xrf_telegram  # noqa: E402

register(
    DriverEntry(
        name="xrf_export",
        family="thickness",
        mode="push",
        description="Benchtop XRF coating-thickness gauge: result files in a watched folder",
        options=xrf_export.XrfExportOptions,
        check_address=xrf_export.parse_dir_address,
        build=xrf_export.build,
        check_options=xrf_export.check_options,
    )
)

register(
    DriverEntry(
        name="xrf_telegram",
        family="thickness",
        mode="push",
        description="Benchtop XRF coating-thickness gauge: result print-out on a serial port",
        options=xrf_telegram.XrfTelegramOptions,
        check_address=xrf_telegram.check_address,
        build=xrf_telegram.build,
        check_options=xrf_telegram.check_options,
    )
)

# -- More Modbus chamber controllers: map files in drivers/maps/, the same generic driver ------

register_map_controller(
    "watlow_ezzone_pm",
    "Watlow EZ-ZONE PM controller over Modbus RTU (Modbus enabled, not Std Bus)",
)
register_map_controller(
    "eurotherm_3200", "Eurotherm 3200 controller over Modbus RTU (scaled integers, 1 decimal)"
)

# -- Chambers over VISA (SCPI), and abrasion testers over Modbus -------------------------------
from drivers import abrasion_plc, f4t_scpi, scpi_scanner  # noqa: E402

register(
    DriverEntry(
        name="f4t_scpi",
        family="chamber",
        mode="poll",
        description="Watlow F4T chamber controller over SCPI on TCP (TCPIP::host::5025::SOCKET)",
        options=f4t_scpi.F4TScpiOptions,
        check_address=f4t_scpi.check_address,
        build=f4t_scpi.build,
    )
)

register(
    DriverEntry(
        name="scpi_scanner",
        family="chamber",
        mode="poll",
        description="34970A/DAQ970A-style scanner: chamber thermocouples and humidity over VISA",
        options=scpi_scanner.ScpiScannerOptions,
        check_address=scpi_scanner.check_address,
        build=scpi_scanner.build,
    )
)

register(
    DriverEntry(
        name="abrasion_plc",
        family="abrasion",
        mode="poll",
        description="PLC-based Taber-style rotary abrasion tester over Modbus TCP/RTU (map file)",
        options=abrasion_plc.AbrasionPlcOptions,
        check_address=abrasion_plc.check_address,
        build=abrasion_plc.build,
        check_options=abrasion_plc.check_options,
    )
)


# -- RS-485 lines shared by several Modbus RTU controllers ---------------------------------------
from drivers import rtu_capacity  # noqa: E402


def rtu_poll_plan(inst: InstrumentConfig) -> rtu_capacity.PollPlan | None:
    """What one poll of a map-driven controller puts on its line (None for other drivers)."""
    entry = REGISTRY.get(inst.driver)
    if entry is None or entry.options is not modbus_controller.ModbusControllerOptions:
        return None
    return modbus_controller.capacity_plan(inst, inst.driver)


def check_rtu_lines(instruments: Sequence[InstrumentConfig]) -> list[rtu_capacity.LineFinding]:
    """Conflicting serial settings on one port (errors) and lines polled beyond their capacity
    at their baud rate (warnings, notes above 80 % busy)."""
    return rtu_capacity.check_lines(instruments, rtu_poll_plan)
