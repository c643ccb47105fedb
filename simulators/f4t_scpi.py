"""Simulator of a Watlow F4T chamber controller's SCPI interface (raw TCP, like port 5025).

Instrument: Watlow F4T on a salt-spray (ASTM B117 / ISO 9227 NSS, 35 ± 2 °C; domain notes §3.1)
cabinet with humidity: control loop 1 is the chamber temperature, loop 2 the relative humidity
(%RH) in the fog. It pairs with ``drivers/f4t_scpi.py``, written separately from the same
sources; it does not import it. The thermal model is :class:`simulators.watlow_f4t.ChamberModel`
(the Modbus F4T simulator's), its second loop read as %RH.

Sources:

- Watlow F4T Setup & Operations manual, appendix "Communications" (easymanua.ls/watlow/f4t
  p. 222): ``:SOURCE:CLOOP#:PVALUE?`` reads a loop's process value, ``:SOURCE:CLOOP#:SPOINT?``
  its set point, ``:SOURCE:CLOOP#:SPOINT <value>`` writes it; mnemonics are printed with SCPI
  short forms (``:SOURce:CLOop#:RTIMe``), so short forms are accepted.
- TestEquity 101H manual ch. 6 p. 62 (manualshive.com/en/manual/testequity/101h/1092015?page=62)
  and TestEquity F4T manual p. 48 / doc 746854 p. 18: SCPI only on Ethernet port 5025; CLOOP1
  is temperature, CLOOP2 humidity; ``:UNIT:TEMPERATURE?`` answers ``C|F`` and
  ``:UNIT:TEMPERATURE C|F`` sets the *Ethernet* units (not the front panel's);
  ``:SOURCE:CLOOP#:PVALUE?``/``SPOINT?``/``RRATE?`` answer ``<floating point value>``;
  ``:SOURCE:CLOOP#:ERROR?`` answers ``ERROR|NONE`` (input error status). Older firmware spoke
  °F only over SCPI; ``units = "F"`` in ``[model]`` reproduces that start-up state.
- ``EspecNorthAmerica/WatlowF4T-SCPI-Lib`` (``f4tscpi/f4t_class.py``, ``f4t_interface.py``,
  ``bin/f4t_run.py``): commands end in ``\\n`` (``EOL = 10``), answers are read up to ``\\n``;
  ``*IDN?`` gives "Manufacturer, Part Number, S/N, Software Version" (tested firmware
  04:07:0012); ``:PROGRAM:NUMBER n`` selects profile 1…40 (0 = the running one);
  ``:PROGRAM:NAME?`` answers the quoted profile name, ``""`` past the last profile;
  ``:PROGRAM:SELECTED:STATE start|stop|pause|resume``; ``:OUTPUT{n}:STATE?`` answers ``ON|OFF``
  and ``:OUTPUT{n}:STATE ON|OFF`` sets it; ``:SOURCE:CLOOP{n}:RRATE?``.
- The F4T's input "error status" values include "Open: a sensor is broken or disconnected"
  (Watlow F4T manual p. 86).

Assumptions (not in a retrieved source; check against a real controller):

- The ``*IDN?`` text (``Watlow Electric,F4T,<serial>,04:07:0012``; "Watlow Electric" is the
  manufacturer string a Tektronix TSP example matches).
- Number formats: PV and SP as fixed-point with 2 decimals (``35.02``), ramp rate with 1.
- ``:PROGram:SELected:STATe?`` answers ``RUN``, ``PAUS`` or ``STOP`` as the SCPI PROGram
  subsystem does (HP 8920B manual, PROGram Subsystem), and ``START`` on an empty profile,
  ``PAUSE`` when not running or ``RESUME`` when not paused answer -221 "Settings conflict".
- On a sensor break the PV answers ``nan`` (``sensor_break`` ``reading = "9999"`` gives the
  other common convention) and ``ERROR?`` answers ``ERROR``.
- ``*RST`` puts the Ethernet units back to the start-up units and selects profile 1; set
  points are untouched. A reboot also restores the set points and stops the profile.
- Set-point limits: temperature −100…200 °C, humidity 0…100 %RH (answers -222 outside).

Fault kinds (``set_fault(kind, **params)`` or a scenario's ``[[fault]]``): the link faults of
:data:`simulators._scpi.LINK_FAULTS` (``no_reply``, ``late_reply``, ``garbage``,
``partial_line``, ``disconnect``, ``reboot``, ``scpi_error``) plus ``sensor_break`` (``loop``,
``reading``), ``frozen`` (both PVs stop changing) and ``excursion`` (door open: ``delta`` °C,
default −6, added to the temperature target while the window lasts; the recovery follows the
model's lag, ``time_constant_s`` = 180 s by default, so about ten minutes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulators._scpi import (
    LINK_FAULTS,
    Call,
    ScpiDevice,
    ScpiError,
    ScpiSimulator,
    parse_bool,
    parse_number,
    running_device,
    serve_device,
)
from simulators.scenario import (
    FaultTimeline,
    Scenario,
    ScenarioVocabulary,
)
from simulators.watlow_f4t import ChamberModel, ChamberModelParams

__all__ = [
    "F4T_SCPI_VOCABULARY",
    "FAULT_KINDS",
    "HUMIDITY_LIMITS",
    "OUTPUT_COUNT",
    "PROFILE_COUNT",
    "TEMPERATURE_LIMITS_C",
    "F4tScpiDevice",
    "F4tScpiParams",
    "F4tScpiSimulator",
    "running_f4t_scpi",
    "serve",
]

TEMPERATURE_LIMITS_C = (-100.0, 200.0)
HUMIDITY_LIMITS = (0.0, 100.0)
#: Profile numbers 1…40 (``bin/f4t_run.py``: "Must be between 1 and 40").
PROFILE_COUNT = 40
#: Event outputs served (time signals); output 1 is the fog (spray) output here.
OUTPUT_COUNT = 8


class F4tScpiParams(BaseModel):
    """The ``[model]`` table of an F4T SCPI scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Loop 1 (chamber temperature) set point at power-on, °C.
    setpoint_c: float = Field(default=35.0, ge=-100.0, le=200.0, allow_inf_nan=False)
    #: Loop 2 (humidity) set point at power-on, %RH.
    humidity_setpoint: float = Field(default=96.0, ge=0.0, le=100.0, allow_inf_nan=False)
    #: False: a temperature-only chamber (one loop).
    humidity: bool = True
    #: First-order lag time constant of both loops, s (scale it down in tests).
    time_constant_s: float = Field(default=180.0, gt=0.0, allow_inf_nan=False)
    #: Standard deviation of the PV noise (°C; %RH on loop 2).
    noise: float = Field(default=0.15, ge=0.0, le=10.0)
    #: Where both loops start when not preheated (°C / %RH).
    ambient: float = Field(default=22.0, ge=-50.0, le=60.0)
    preheated: bool = True
    seed: int = 0
    #: Ethernet temperature units at power-on.
    units: Literal["C", "F"] = "C"
    #: Ramp rate of both loops at power-on (units per minute).
    ramp_rate: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    serial: str = "SIM-0001"
    firmware: str = "04:07:0012"


class _SensorBreakParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    loop: int = Field(default=1, ge=1, le=2)
    reading: Literal["nan", "9999"] = "nan"


class _NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ExcursionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delta: float = Field(default=-6.0, ge=-100.0, le=100.0, allow_inf_nan=False)


FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    **LINK_FAULTS,
    "sensor_break": _SensorBreakParams,
    "frozen": _NoParams,
    "excursion": _ExcursionParams,
}

F4T_SCPI_VOCABULARY = ScenarioVocabulary(
    simulator="f4t_scpi", faults=FAULT_KINDS, model=F4tScpiParams
)

_PROFILES: Mapping[int, str] = {1: "B117 NSS 96 h", 2: "B117 NSS 48 h", 3: "Dry-off 24 h"}
_STATES = {"STOP": "STOP", "RUN": "RUN", "PAUSE": "PAUS"}


def _c_to_f(value: float) -> float:
    return value * 9.0 / 5.0 + 32.0


def _f_to_c(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


class F4tScpiDevice(ScpiDevice):
    """The F4T's SCPI command set over a :class:`ChamberModel`. Thread-safe (device lock)."""

    def __init__(self, params: F4tScpiParams, timeline: FaultTimeline) -> None:
        super().__init__(timeline, seed=params.seed)
        self.params = params
        self.model = ChamberModel(
            ChamberModelParams(
                setpoint_c=params.setpoint_c,
                saturator_setpoint_c=params.humidity_setpoint,
                time_constant_s=params.time_constant_s,
                noise_c=params.noise,
                ambient_c=params.ambient,
                seed=params.seed,
                preheated=params.preheated,
            ),
            timeline,
        )
        self.units = params.units
        self.program_number = 1
        self.program_state = "STOP"
        self.outputs = [False] * OUTPUT_COUNT
        self.ramp_rates = [params.ramp_rate, params.ramp_rate]
        self._power_on_outputs()
        add = self.commands.add
        add(":UNIT:TEMPerature?", self._units_query)
        add(":UNIT:TEMPerature", self._units_set)
        add(":SOURce:CLOop#:PVALue?", self._pv)
        add(":SOURce:CLOop#:SPOint?", self._sp_query)
        add(":SOURce:CLOop#:SPOint", self._sp_set)
        add(":SOURce:CLOop#:ERRor?", self._error_query)
        add(":SOURce:CLOop#:RRATe?", self._rate_query)
        add(":SOURce:CLOop#:RRATe", self._rate_set)
        add(":PROGram:NUMBer?", lambda call: str(self.program_number))
        add(":PROGram:NUMBer", self._program_number)
        add(":PROGram:NAME?", self._program_name)
        add(":PROGram[:SELected]:STATe?", lambda call: _STATES[self.program_state])
        add(":PROGram[:SELected]:STATe", self._program_state)
        add(":OUTPut#:STATe?", self._output_query)
        add(":OUTPut#:STATe", self._output_set)

    def identity(self) -> str:
        """``Watlow Electric,F4T,<serial>,<firmware>``."""
        return f"Watlow Electric,F4T,{self.params.serial},{self.params.firmware}"

    def reset(self) -> None:
        """``*RST``: start-up Ethernet units, profile 1 selected; set points untouched."""
        self.units = self.params.units
        self.program_number = 1

    def power_on(self, t: float) -> None:
        """A reboot: default set points, profile stopped, outputs and units as at power-on."""
        self.reset()
        self.program_state = "STOP"
        self.ramp_rates = [self.params.ramp_rate, self.params.ramp_rate]
        self._power_on_outputs()
        self.model.set_setpoint("chamber", t, self.params.setpoint_c)
        self.model.set_setpoint("saturator", t, self.params.humidity_setpoint)

    def _power_on_outputs(self) -> None:
        self.outputs = [False] * OUTPUT_COUNT
        self.outputs[0] = True  # fog on

    # values (also used by tests through the simulator)

    def pv(self, loop: int) -> float:
        """Loop ``loop``'s process value now, in Ethernet units (°C/°F; %RH), no fault text."""
        with self.lock:
            t = self.elapsed()
            if loop == 1:
                return self._temperature_out(self.model.temperature("chamber", t))
            return self.model.temperature("saturator", t)

    def setpoint(self, loop: int) -> float:
        """Loop ``loop``'s set point now, in Ethernet units."""
        with self.lock:
            t = self.elapsed()
            if loop == 1:
                return self._temperature_out(self.model.setpoint("chamber", t))
            return self.model.setpoint("saturator", t)

    def _temperature_out(self, value_c: float) -> float:
        return _c_to_f(value_c) if self.units == "F" else value_c

    def _loop(self, call: Call) -> int:
        loop = call.suffixes[0]
        if not 1 <= loop <= (2 if self.params.humidity else 1):
            raise ScpiError(-114, call.header)
        return loop

    def _broken(self, loop: int) -> str | None:
        for window in reversed(self.timeline.active(self.elapsed())):
            if window.kind == "sensor_break" and int(window.params["loop"]) == loop:
                return str(window.params["reading"])
        return None

    # handlers

    def _units_query(self, call: Call) -> str:
        call.at_most(0)
        return self.units

    def _units_set(self, call: Call) -> None:
        call.at_most(1)
        unit = call.param(0).upper()
        if unit not in ("C", "F"):
            raise ScpiError(-224, call.params[0])
        self.units = "F" if unit == "F" else "C"

    def _pv(self, call: Call) -> str:
        call.at_most(0)
        loop = self._loop(call)
        broken = self._broken(loop)
        return broken if broken is not None else f"{self.pv(loop):.2f}"

    def _sp_query(self, call: Call) -> str:
        call.at_most(0)
        return f"{self.setpoint(self._loop(call)):.2f}"

    def _sp_set(self, call: Call) -> None:
        call.at_most(1)
        loop = self._loop(call)
        value = parse_number(call.param(0))
        t = self.elapsed()
        if loop == 1:
            value_c = _f_to_c(value) if self.units == "F" else value
            if not TEMPERATURE_LIMITS_C[0] <= value_c <= TEMPERATURE_LIMITS_C[1]:
                raise ScpiError(-222, call.params[0])
            self.model.set_setpoint("chamber", t, value_c)
        else:
            if not HUMIDITY_LIMITS[0] <= value <= HUMIDITY_LIMITS[1]:
                raise ScpiError(-222, call.params[0])
            self.model.set_setpoint("saturator", t, value)

    def _error_query(self, call: Call) -> str:
        call.at_most(0)
        return "ERROR" if self._broken(self._loop(call)) is not None else "NONE"

    def _rate_query(self, call: Call) -> str:
        call.at_most(0)
        return f"{self.ramp_rates[self._loop(call) - 1]:.1f}"

    def _rate_set(self, call: Call) -> None:
        call.at_most(1)
        loop = self._loop(call)
        value = parse_number(call.param(0))
        if value < 0:
            raise ScpiError(-222, call.params[0])
        self.ramp_rates[loop - 1] = value

    def _program_number(self, call: Call) -> None:
        call.at_most(1)
        value = parse_number(call.param(0))
        if value != int(value):
            raise ScpiError(-224, call.params[0])
        if not 0 <= value <= PROFILE_COUNT:
            raise ScpiError(-222, call.params[0])
        self.program_number = int(value)

    def _program_name(self, call: Call) -> str:
        call.at_most(0)
        return f'"{_PROFILES.get(self.program_number, "")}"'

    def _program_state(self, call: Call) -> None:
        call.at_most(1)
        action = call.param(0).upper()
        state = self.program_state
        if action == "START":
            if self.program_number not in _PROFILES:
                raise ScpiError(-221, f"profile {self.program_number} is empty")
            self.program_state = "RUN"
        elif action == "STOP":
            self.program_state = "STOP"
        elif action == "PAUSE":
            if state != "RUN":
                raise ScpiError(-221, "no profile running")
            self.program_state = "PAUSE"
        elif action == "RESUME":
            if state != "PAUSE":
                raise ScpiError(-221, "no profile paused")
            self.program_state = "RUN"
        else:
            raise ScpiError(-224, call.params[0])

    def _output(self, call: Call) -> int:
        number = call.suffixes[0]
        if not 1 <= number <= OUTPUT_COUNT:
            raise ScpiError(-114, call.header)
        return number

    def _output_query(self, call: Call) -> str:
        call.at_most(0)
        return "ON" if self.outputs[self._output(call) - 1] else "OFF"

    def _output_set(self, call: Call) -> None:
        call.at_most(1)
        number = self._output(call)
        self.outputs[number - 1] = parse_bool(call.param(0))


class F4tScpiSimulator(ScpiSimulator):
    """A Watlow F4T SCPI endpoint on TCP. ``scenario`` is checked against the vocabulary."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        scenario: Scenario | None = None,
    ) -> None:
        scenario = (scenario or Scenario()).validated(F4T_SCPI_VOCABULARY)
        self.params = F4tScpiParams.model_validate({"seed": seed, **scenario.model})
        self.scenario = scenario
        self.f4t = F4tScpiDevice(self.params, FaultTimeline(scenario.windows()))
        super().__init__(
            self.f4t, F4T_SCPI_VOCABULARY, name="F4T SCPI simulator", host=host, port=port
        )

    def pv(self, loop: int = 1) -> float:
        """The process value a ``PVALue?`` would answer now (without the sensor-break text)."""
        return self.f4t.pv(loop)


def running_f4t_scpi(**kwargs: Any) -> contextlib.AbstractContextManager[F4tScpiSimulator]:
    """Run an :class:`F4tScpiSimulator` (its keyword arguments) in a background thread."""
    return running_device(F4tScpiSimulator, **kwargs)


def serve(host: str, port: int, seed: int, scenario_path: Path | None) -> int:
    """Serve until SIGTERM/SIGINT; one JSON line on stdout once listening.

    Returns 0 after a clean stop, 2 for a bad scenario file, 1 when the address cannot be bound.
    """
    return serve_device(
        F4tScpiSimulator,
        F4T_SCPI_VOCABULARY,
        lambda simulator: {"family": "chamber", "model": "watlow_f4t", "transport": "scpi-tcp"},
        host=host,
        port=port,
        seed=seed,
        scenario_path=scenario_path,
    )
