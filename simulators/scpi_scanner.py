"""Simulator of a Keysight 34970A / DAQ970A data-acquisition unit scanning a salt-spray chamber.

Instrument: a Keysight (Agilent, HP) 34970A or DAQ970A mainframe with a 20-channel multiplexer
in slot 1 (channels 101…120), spoken to in SCPI over a raw TCP socket (Keysight's usual SCPI
socket port is 5025; not confirmed for these two models in a retrieved source). Wired here:
type-K thermocouples at slightly different places in a salt-spray cabinet
(35 ± 2 °C, domain notes §3.1) on channels 101…103 and a humidity transmitter's voltage output on
104. It pairs with ``drivers/scpi_scanner.py``, written separately; it does not import it.

Sources (Agilent/Keysight 34970A/34972A User's Guide, ch. 4 and 5; DAQ970A Programming Guide):

- ``CONFigure:TEMPerature TC,<type>,(@list)``, ``CONFigure:VOLTage:DC [range,res,](@list)``,
  ``UNIT:TEMPerature C|F|K,(@list)``, ``ROUTe:SCAN (@list)``, ``READ?``, ``INITiate`` +
  ``FETCh?``, ``SYSTem:ERRor?``. A channel list is ``(@101:103,105)``; "the range may contain
  invalid channels (they are ignored), but the first and last channel in the range must be
  valid" (34970A UG ch. 4, "Rules for Using a Channel List").
- ``ROUTe:SCAN?`` answers a definite-length block, ``#214(@101,102,103)``; an empty list is
  ``#13(@)`` (34970A UG ch. 5, "Scanning Commands"); ``ROUTe:SCAN:SIZE?`` answers ``+20``
  (DAQ970A Programming Guide p. 215).
- "The CONFigure and MEASure? commands overwrite the scan list" (DAQ970A Programming Guide
  p. 215) and "automatically turn off the units, time, channel, and alarm information"; they set
  the Mx+B gain to 1 and offset to 0 (34970A UG ch. 4, "Reading Format", "Mx+B Scaling").
- Mx+B: ``CALC:SCAL:GAIN``, ``CALC:SCAL:OFFS``, ``CALC:SCAL:UNIT "<label>"``,
  ``CALC:SCAL:STAT ON``; gain and offset within ±1E+15; label up to three characters
  (34970A UG ch. 5 "Mx+B Scaling Commands"). ``*RST`` turns scaling off and clears the values.
- Reading format: ``+2.61950000E+01`` (sign, 8 decimals, exponent); with every field on, a
  reading is ``2.61950000E+01 C,000000000.017,1003,2``: value and unit, relative time since the
  start of the scan in seconds, channel, alarm (34980A Mainframe User's Guide "Reading Format";
  the 34970A and DAQ970A guides show the same fields in the same order). ``FORM:READ:TIME:TYPE``
  ``ABSolute`` gives ``YYYY,MM,DD,hh,mm,ss.sss`` instead. ``FORM:READ:*`` queries answer 0/1.
  Alarm fields are not simulated (``FORM:READ:ALAR`` is an undefined header here).
- Overload / open readings are ``+9.90000000E+37`` (the 9.9E+37 overload value of Keysight
  DMMs; 34980A "TEMP:TRAN:TC:RJUN:EXT?" remarks). An open thermocouple reading as overload is
  standard Keysight behaviour but was not confirmed for the 34970A in a retrieved source.

Assumptions (simulator choices, documented for the driver's author):

- ``*IDN?``: ``Keysight Technologies,DAQ970A,<serial>,A.01.01-01.00-01.00-00.02-01-01`` (or
  ``Agilent Technologies,34970A,<serial>,13-2-2`` with ``model = "34970A"``).
- After ``*RST`` every channel is configured for DC volts; nothing is scanned.
- ``READ?``/``FETCh?`` with an empty scan list answer nothing and queue -221 "Settings
  conflict"; ``FETCh?`` before any scan queues -230 "Data corrupt or stale". One sweep takes
  10 ms per channel (the relative time stamps step by 0.010 s).
- The scaled label is printed after the value with ``FORM:READ:UNIT ON`` (``%RH``); the real
  34970A only allows letters, digits, ``_`` and a leading ``#`` in a label, so ``"%RH"`` is
  accepted here (as the DAQ970A's longer label set would) but ``label_rules = "34970A"`` in
  ``[model]`` enforces the 34970A's rule (-224 for ``%``).
- Humidity transmitter: 0.8 V at 0 %RH to 3.9 V at 100 %RH, linear (gain 100/3.1 =
  32.2580645 %RH/V, offset −25.8064516 %RH). Fog humidity 96.5 %RH ± 0.4 (1 σ).
- Thermocouples follow :class:`simulators.watlow_f4t.ChamberModel`'s chamber loop (set point
  35 °C, first-order lag) plus a fixed position offset (+0.2, −0.3, +0.1 °C, repeating) and
  their own seeded noise (0.1 °C, 1 σ); unwired channels read overload as thermocouples and
  about 0 V as volts.

Fault kinds: the link faults of :data:`simulators._scpi.LINK_FAULTS` plus ``sensor_break``
(``channel``: that channel reads ``+9.90000000E+37``), ``frozen`` (every reading stops
changing) and ``excursion`` (door open, ``delta`` °C, default −6, on the chamber temperature).
A ``reboot`` is a power cycle: the volatile settings (format, scaling, units, readings) go back to
the ``*RST`` state; the scan list is kept (stored in non-volatile memory, DAQ970A PG p. 215).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulators._scpi import (
    LINK_FAULTS,
    Call,
    ScpiDevice,
    ScpiError,
    ScpiSimulator,
    definite_block,
    format_nr3,
    parse_bool,
    parse_channel_list,
    parse_number,
    running_device,
    serve_device,
    unquote,
)
from simulators.scenario import (
    FaultTimeline,
    Scenario,
    ScenarioVocabulary,
)
from simulators.watlow_f4t import NOISE_PERIOD_S, ChamberModel, ChamberModelParams

__all__ = [
    "CHANNELS",
    "FAULT_KINDS",
    "HUMIDITY_GAIN",
    "HUMIDITY_OFFSET",
    "OVERLOAD",
    "SCANNER_VOCABULARY",
    "SCAN_STEP_S",
    "ChannelConfig",
    "ScannerDevice",
    "ScannerParams",
    "ScannerSimulator",
    "humidity_volts",
    "running_scanner",
    "serve",
]

#: Channels of the 20-channel multiplexer in slot 1.
CHANNELS = range(101, 121)
#: The overload / open-circuit reading.
OVERLOAD = 9.9e37
#: Time between two channels of one sweep (simulator choice).
SCAN_STEP_S = 0.010
#: Humidity transmitter: volts at 0 and 100 %RH (simulator choice).
HUMIDITY_V0 = 0.8
HUMIDITY_V100 = 3.9
#: The Mx+B that turns the transmitter's volts into %RH.
HUMIDITY_GAIN = 100.0 / (HUMIDITY_V100 - HUMIDITY_V0)
HUMIDITY_OFFSET = -HUMIDITY_V0 * HUMIDITY_GAIN
_TC_TYPES = frozenset("BEJKNRST")
_POSITION_OFFSETS_C = (0.2, -0.3, 0.1)
_MAX_SCALE = 1e15
_LABEL_34970A = re.compile(r"^(#|[A-Za-z])[A-Za-z0-9_]{0,2}$")
_TEMP_UNITS: Mapping[str, Literal["C", "F", "K"]] = {
    "C": "C",
    "CEL": "C",
    "F": "F",
    "FAR": "F",
    "K": "K",
}


def humidity_volts(rh: float) -> float:
    """The transmitter's output (V) at ``rh`` %RH."""
    return HUMIDITY_V0 + (HUMIDITY_V100 - HUMIDITY_V0) * rh / 100.0


class ScannerParams(BaseModel):
    """The ``[model]`` table of a scanner scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["DAQ970A", "34970A"] = "DAQ970A"
    serial: str = "MY00000001"
    #: Chamber set point, °C.
    setpoint_c: float = Field(default=35.0, ge=-100.0, le=200.0, allow_inf_nan=False)
    time_constant_s: float = Field(default=180.0, gt=0.0, allow_inf_nan=False)
    preheated: bool = True
    ambient_c: float = Field(default=22.0, ge=-50.0, le=60.0)
    #: Thermocouple noise, °C (1 σ).
    noise_c: float = Field(default=0.1, ge=0.0, le=10.0)
    #: Thermocouples wired from channel 101 on; the humidity transmitter comes next.
    thermocouples: int = Field(default=3, ge=0, le=19)
    #: Mean relative humidity in the fog, %RH, and its noise (1 σ).
    humidity_rh: float = Field(default=96.5, ge=0.0, le=100.0)
    humidity_noise: float = Field(default=0.4, ge=0.0, le=20.0)
    seed: int = 0
    #: ``"34970A"`` refuses labels with characters the 34970A does not allow.
    label_rules: Literal["DAQ970A", "34970A"] = "DAQ970A"


class _SensorBreakParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: int = Field(default=101, ge=101, le=120)


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

SCANNER_VOCABULARY = ScenarioVocabulary(
    simulator="scpi_scanner", faults=FAULT_KINDS, model=ScannerParams
)


@dataclass(frozen=True)
class ChannelConfig:
    """One channel's measurement configuration."""

    function: Literal["TEMP", "VOLT"] = "VOLT"
    tc_type: str = "K"
    unit: Literal["C", "F", "K"] = "C"
    gain: float = 1.0
    offset: float = 0.0
    label: str = ""
    scaling: bool = False


@dataclass(frozen=True)
class _Reading:
    value: float
    unit: str
    t_rel: float
    channel: int


class ScannerDevice(ScpiDevice):
    """The 34970A/DAQ970A command subset over a chamber model. Thread-safe (device lock)."""

    def __init__(self, params: ScannerParams, timeline: FaultTimeline) -> None:
        super().__init__(timeline, seed=params.seed)
        self.params = params
        self.model = ChamberModel(
            ChamberModelParams(
                setpoint_c=params.setpoint_c,
                time_constant_s=params.time_constant_s,
                noise_c=0.0,
                ambient_c=params.ambient_c,
                seed=params.seed,
                preheated=params.preheated,
            ),
            timeline,
        )
        self.channels: dict[int, ChannelConfig] = {}
        self.scan_list: list[int] = []
        self.fmt = {"CHAN": False, "UNIT": False, "TIME": False}
        self.time_type = "REL"
        self.readings: list[_Reading] | None = None
        self._scan_start_wall = dt.datetime.now(dt.UTC)
        self.reset()
        add = self.commands.add
        add("CONFigure:TEMPerature", self._conf_temp)
        add("CONFigure:VOLTage[:DC]", self._conf_volt)
        add("UNIT:TEMPerature", self._unit_set)
        add("UNIT:TEMPerature?", self._unit_query)
        add("CALCulate:SCALe:GAIN", lambda call: self._scale_number(call, "gain"))
        add("CALCulate:SCALe:OFFSet", lambda call: self._scale_number(call, "offset"))
        add("CALCulate:SCALe:GAIN?", lambda call: self._scale_query(call, "gain"))
        add("CALCulate:SCALe:OFFSet?", lambda call: self._scale_query(call, "offset"))
        add("CALCulate:SCALe:UNIT", self._scale_unit)
        add("CALCulate:SCALe:UNIT?", self._scale_unit_query)
        add("CALCulate:SCALe:STATe", self._scale_state)
        add("CALCulate:SCALe:STATe?", self._scale_state_query)
        add("ROUTe:SCAN", self._route_scan)
        add("ROUTe:SCAN?", self._route_scan_query)
        add("ROUTe:SCAN:SIZE?", lambda call: f"{len(self.scan_list):+d}")
        for field in ("CHANnel", "UNIT", "TIME"):
            add(f"FORMat:READing:{field}", functools.partial(self._format_set, key=field[:4]))
            add(f"FORMat:READing:{field}?", functools.partial(self._format_query, key=field[:4]))
        add("FORMat:READing:TIME:TYPE", self._time_type)
        add("FORMat:READing:TIME:TYPE?", lambda call: "ABS" if self.time_type == "ABS" else "REL")
        add("INITiate[:IMMediate]", self._initiate)
        add("FETCh?", self._fetch)
        add("READ?", self._read)
        add("ABORt", lambda call: None)
        add("DATA:POINts?", lambda call: f"{len(self.readings or []):+d}")

    # identity and resets

    def identity(self) -> str:
        """The ``*IDN?`` answer for the configured model."""
        if self.params.model == "34970A":
            return f"Agilent Technologies,34970A,{self.params.serial},13-2-2"
        return f"Keysight Technologies,DAQ970A,{self.params.serial},A.01.01-01.00-01.00-00.02-01-01"

    def reset(self) -> None:
        """``*RST``: DC volts on every channel, no scaling, format fields off, memory cleared."""
        self.channels = {channel: ChannelConfig() for channel in CHANNELS}
        self.fmt = {"CHAN": False, "UNIT": False, "TIME": False}
        self.time_type = "REL"
        self.readings = None

    def power_on(self, t: float) -> None:
        """A power cycle: volatile settings as after ``*RST``; the scan list is kept."""
        scan_list = list(self.scan_list)
        self.reset()
        self.scan_list = scan_list

    # the physical side

    def true_value(self, channel: int, config: ChannelConfig, t: float) -> float:
        """What channel ``channel`` measures at ``t`` in its configured units (no scaling)."""
        active = self.timeline.active(t)
        if any(w.kind == "sensor_break" and int(w.params["channel"]) == channel for w in active):
            return OVERLOAD
        frozen = [w.start for w in active if w.kind == "frozen"]
        t_eff = min(frozen, default=t)
        index = channel - CHANNELS.start
        wired_tc = index < self.params.thermocouples
        humidity = index == self.params.thermocouples
        if config.function == "TEMP":
            if not wired_tc:
                return OVERLOAD  # nothing on the terminals: an open thermocouple
            offset = _POSITION_OFFSETS_C[index % len(_POSITION_OFFSETS_C)]
            value_c = self.model.temperature("chamber", t_eff) + offset
            value_c += self._noise(channel, t_eff, self.params.noise_c)
            return _from_c(value_c, config.unit)
        if humidity:
            rh = self.params.humidity_rh + self._noise(channel, t_eff, self.params.humidity_noise)
            return humidity_volts(min(100.0, max(0.0, rh)))
        return self._noise(channel, t_eff, 2e-6)

    def _noise(self, channel: int, t: float, sigma: float) -> float:
        if sigma == 0.0:
            return 0.0
        tick = math.floor(t / NOISE_PERIOD_S)
        # Not cryptographic: a reproducible draw per (seed, channel, tick).
        rng = random.Random(f"{self.seed}:ch{channel}:{tick}")  # noqa: S311
        return rng.gauss(0.0, sigma)

    def measure(self, channel: int, t: float) -> _Reading:
        """One reading of ``channel`` at ``t`` as the scan stores it."""
        config = self.channels[channel]
        value = self.true_value(channel, config, t)
        unit: str = config.unit if config.function == "TEMP" else "VDC"
        if config.scaling and value != OVERLOAD:
            value = config.gain * value + config.offset
            unit = config.label
        return _Reading(value, unit, 0.0, channel)

    # helpers

    def _channels(self, text: str) -> list[int]:
        channels = parse_channel_list(text)
        if not channels:
            return channels
        if channels[0] not in CHANNELS or channels[-1] not in CHANNELS:
            raise ScpiError(-222, f"channel list {text}")
        return [channel for channel in channels if channel in CHANNELS]

    def _listed(self, call: Call, *, required: bool = True) -> list[int]:
        if call.params and call.params[-1].startswith("("):
            return self._channels(call.params[-1])
        if required:
            raise ScpiError(-109, f"{call.header}: channel list")
        return list(self.scan_list)

    def _configured(self, channels: list[int]) -> None:
        """What every CONFigure does besides the configuration itself."""
        self.scan_list = sorted(set(channels))
        self.fmt = {"CHAN": False, "UNIT": False, "TIME": False}

    # handlers

    def _conf_temp(self, call: Call) -> None:
        channels = self._listed(call)
        values = list(call.params[:-1])
        if not values:
            raise ScpiError(-109, f"{call.header}: transducer")
        if values[0].upper() not in ("TC", "TCOUPLE", "TCOU"):
            raise ScpiError(-224, f"{call.header}: only thermocouples are simulated")
        tc_type = values[1].upper() if len(values) > 1 else "J"
        if tc_type not in _TC_TYPES:
            raise ScpiError(-224, f"thermocouple type {values[1]!r}")
        for channel in channels:
            unit = self.channels[channel].unit
            self.channels[channel] = ChannelConfig("TEMP", tc_type, unit)
        self._configured(channels)

    def _conf_volt(self, call: Call) -> None:
        channels = self._listed(call)
        for value in call.params[:-1]:
            if value.upper() not in ("AUTO", "DEF", "MIN", "MAX"):
                parse_number(value)
        for channel in channels:
            self.channels[channel] = ChannelConfig("VOLT", unit=self.channels[channel].unit)
        self._configured(channels)

    def _unit_set(self, call: Call) -> None:
        short = _TEMP_UNITS.get(call.param(0).upper())
        if short is None:
            raise ScpiError(-224, call.params[0])
        for channel in self._listed(call, required=False):
            config = self.channels[channel]
            # Changing temperature units turns scaling off (34980A CALC:SCAL:OFFS remarks).
            self.channels[channel] = replace(config, unit=short, scaling=False)

    def _unit_query(self, call: Call) -> str:
        return ",".join(self.channels[c].unit for c in self._listed(call, required=False))

    def _scale_number(self, call: Call, name: Literal["gain", "offset"]) -> None:
        value = parse_number(call.param(0))
        if abs(value) > _MAX_SCALE:
            raise ScpiError(-222, call.params[0])
        for channel in self._listed(call, required=False):
            config = self.channels[channel]
            self.channels[channel] = (
                replace(config, gain=value) if name == "gain" else replace(config, offset=value)
            )

    def _scale_query(self, call: Call, name: Literal["gain", "offset"]) -> str:
        channels = self._listed(call, required=False)
        return ",".join(format_nr3(getattr(self.channels[c], name)) for c in channels)

    def _scale_unit(self, call: Call) -> None:
        label = unquote(call.param(0))
        if len(label) > 3 or not label.isprintable():
            raise ScpiError(-224, f"label {call.params[0]}")
        rules = self.params.label_rules
        if rules == "34970A" and label and _LABEL_34970A.match(label) is None:
            raise ScpiError(-224, f"label {call.params[0]}")
        for channel in self._listed(call, required=False):
            self.channels[channel] = replace(self.channels[channel], label=label)

    def _scale_unit_query(self, call: Call) -> str:
        channels = self._listed(call, required=False)
        return ",".join(f'"{self.channels[c].label}"' for c in channels)

    def _scale_state(self, call: Call) -> None:
        state = parse_bool(call.param(0))
        for channel in self._listed(call, required=False):
            self.channels[channel] = replace(self.channels[channel], scaling=state)

    def _scale_state_query(self, call: Call) -> str:
        channels = self._listed(call, required=False)
        return ",".join(str(int(self.channels[c].scaling)) for c in channels)

    def _route_scan(self, call: Call) -> None:
        call.at_most(1)
        self.scan_list = sorted(set(self._channels(call.param(0))))

    def _route_scan_query(self, call: Call) -> str:
        call.at_most(0)
        return definite_block("(@" + ",".join(str(c) for c in self.scan_list) + ")")

    def _format_set(self, call: Call, *, key: str) -> None:
        call.at_most(1)
        self.fmt[key.upper()] = parse_bool(call.param(0))

    def _format_query(self, call: Call, *, key: str) -> str:
        call.at_most(0)
        return str(int(self.fmt[key.upper()]))

    def _time_type(self, call: Call) -> None:
        call.at_most(1)
        word = call.param(0).upper()
        if word in ("ABS", "ABSOLUTE"):
            self.time_type = "ABS"
        elif word in ("REL", "RELATIVE"):
            self.time_type = "REL"
        else:
            raise ScpiError(-224, call.params[0])

    def _initiate(self, call: Call) -> None:
        call.at_most(0)
        if not self.scan_list:
            raise ScpiError(-221, "empty scan list")
        t0 = self.elapsed()
        self._scan_start_wall = dt.datetime.now(dt.UTC)
        self.readings = []
        for index, channel in enumerate(self.scan_list):
            t_rel = index * SCAN_STEP_S
            reading = self.measure(channel, t0 + t_rel)
            self.readings.append(replace(reading, t_rel=t_rel))

    def _fetch(self, call: Call) -> str:
        call.at_most(0)
        if self.readings is None:
            raise ScpiError(-230, "no scan has run")
        return ",".join(self._format(reading) for reading in self.readings)

    def _read(self, call: Call) -> str:
        self._initiate(call)
        return self._fetch(call)

    def _format(self, reading: _Reading) -> str:
        text = format_nr3(reading.value)
        if self.fmt["UNIT"] and reading.unit:
            text += f" {reading.unit}"
        parts = [text]
        if self.fmt["TIME"]:
            if self.time_type == "ABS":
                at = self._scan_start_wall + dt.timedelta(seconds=reading.t_rel)
                seconds = at.second + at.microsecond / 1e6
                parts.append(
                    f"{at.year:04d},{at.month:02d},{at.day:02d},{at.hour:02d},{at.minute:02d},"
                    f"{seconds:06.3f}"
                )
            else:
                parts.append(f"{reading.t_rel:013.3f}")
        if self.fmt["CHAN"]:
            parts.append(str(reading.channel))
        return ",".join(parts)


def _from_c(value_c: float, unit: str) -> float:
    if unit == "F":
        return value_c * 9.0 / 5.0 + 32.0
    if unit == "K":
        return value_c + 273.15
    return value_c


class ScannerSimulator(ScpiSimulator):
    """A 34970A/DAQ970A SCPI endpoint on TCP. ``scenario`` is checked against the vocabulary."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        scenario: Scenario | None = None,
    ) -> None:
        scenario = (scenario or Scenario()).validated(SCANNER_VOCABULARY)
        self.params = ScannerParams.model_validate({"seed": seed, **scenario.model})
        self.scenario = scenario
        self.scanner = ScannerDevice(self.params, FaultTimeline(scenario.windows()))
        super().__init__(
            self.scanner, SCANNER_VOCABULARY, name="DAQ scanner simulator", host=host, port=port
        )

    def value(self, channel: int) -> float:
        """What ``channel`` measures now in its configured units, before scaling."""
        device = self.scanner
        with device.lock:
            return device.true_value(channel, device.channels[channel], device.elapsed())


def running_scanner(**kwargs: Any) -> contextlib.AbstractContextManager[ScannerSimulator]:
    """Run a :class:`ScannerSimulator` (its keyword arguments) in a background thread."""
    return running_device(ScannerSimulator, **kwargs)


def serve(host: str, port: int, seed: int, scenario_path: Path | None) -> int:
    """Serve until SIGTERM/SIGINT; one JSON line on stdout once listening.

    Returns 0 after a clean stop, 2 for a bad scenario file, 1 when the address cannot be bound.
    """
    return serve_device(
        ScannerSimulator,
        SCANNER_VOCABULARY,
        lambda simulator: {
            "family": "scanner",
            "model": simulator.params.model,
            "transport": "scpi-tcp",
        },
        host=host,
        port=port,
        seed=seed,
        scenario_path=scenario_path,
    )
