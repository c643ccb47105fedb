"""The one place where drivers register. The CLI builds instruments from here.

Each entry names a driver (the ``driver`` key of an ``[[instrument]]``), its family (the kind of
instrument), whether it is polled or pushes results, the pydantic model of its options, how to
check its address, and how to build it. ``check_instrument`` is the callback the config loader
uses, so that ``daq check`` reports driver problems with every other problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from daq.config import InstrumentConfig
from daq.instrument import Driver, InstrumentSettings, Mode
from drivers import modbus_controller
from drivers.modbus_map import load_map
from drivers.transport.modbus import parse_address

__all__ = ["REGISTRY", "DriverEntry", "build_driver", "check_instrument", "register"]


@dataclass(frozen=True, slots=True)
class DriverEntry:
    name: str
    family: str
    mode: Mode
    description: str
    options: type[BaseModel]
    check_address: Callable[[str], object]
    build: Callable[[InstrumentSettings, Any], Driver]
    #: Extra checks on validated options; returns (key, message) problems.
    check_options: Callable[[Any], Sequence[tuple[str, str]]] | None = None


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


register(
    DriverEntry(
        name="watlow_f4t",
        family="chamber",
        mode="poll",
        description="Watlow F4T chamber controller over Modbus TCP/RTU",
        options=modbus_controller.ModbusControllerOptions,
        check_address=parse_address,
        build=lambda s, o: modbus_controller.build(s, o, "watlow_f4t"),
        check_options=_check_map,
    )
)


def _friendly(err: Any) -> str:
    if err.get("type") == "extra_forbidden":
        return "is not an option of this driver (misspelt?)"
    msg = str(err.get("msg", "is invalid"))
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
    if entry.mode == "poll" and inst.poll_interval is None:
        problems.append(("poll_interval", "this instrument is polled: give poll_interval (s)"))
    if entry.mode == "push" and inst.poll_interval is not None:
        problems.append(("poll_interval", "this instrument pushes its results: remove it"))
    try:
        options = entry.options.model_validate(inst.options)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(["options", *(str(p) for p in err["loc"])])
            problems.append((key, _friendly(err)))
    else:
        if entry.check_options is not None:
            problems.extend(entry.check_options(options))
    return problems


def build_driver(inst: InstrumentConfig) -> Driver:
    """Build the driver for a validated instrument config (no I/O happens here)."""
    entry = REGISTRY[inst.driver]
    settings = InstrumentSettings(inst.name, inst.address, inst.timeout)
    return entry.build(settings, entry.options.model_validate(inst.options))
