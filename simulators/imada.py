"""Simulator of an Imada DS2/ZT-style force gauge on a pty (request ``D``, fixed-width reply).

Instrument: Imada DS2 / ZTA-class push-pull force gauge on a test stand. It pairs with
``drivers/`` code written separately from the same sources; it does not import it. The client
opens :attr:`ImadaSimulator.path` (``/dev/pts/N``) with pyserial, nominally 19200 8N1.

Sources (Hallmark's domain notes, INSTRUMENTS_AND_STANDARDS.md §1.2 and §6.2; no Imada manual
was retrieved, so these come from public drivers):

- The request is ``D`` + CR. The reply ends in CR only, no LF.
- The reply is sign and number, then three trailing characters: unit, mode and
  judgement/condition. ``cranio`` (HTG2-4, 19200 8N1, 20 ms timeout, EOL CR) does
  ``unit, mode, condition = telegram[-3:]``; ``sktometometo/imada_forcegauge`` (DS2-500N,
  19200 baud) writes ``b"D\\r"``, reads 10 bytes and does ``float(string[:-4])``.
- §6.2: emulate the exact fixed width, because drivers slice by position; a missing CR makes a
  naive driver wait forever.

Telegram emitted (10 bytes)::

    +012.3NTN<CR>      sign, 5 characters of zero-padded number, unit, mode, judgement, CR
    -080.7NPN<CR>      the peak of a jump-ring pull, peak mode, comparator off
    +500.0NTE<CR>      overload

Simulator choices (NOT confirmed in any source; the meanings of the letters are [M] in §1.2, so
a driver should take them from configuration and check them against a real gauge):

======  ====  =========================================================================
Field   Char  Meaning in this simulator
======  ====  =========================================================================
unit    N     newton
unit    K     kilogram-force
unit    L     pound-force
mode    T     track (real-time reading)
mode    P     peak (the larger of peak push and peak pull since the last clear, signed)
judge   N     no judgement (comparator off, the default)
judge   G     go: within the low..high limits
judge   H     above the high limit
judge   L     below the low limit
judge   E     overload (the number is pinned at ±capacity)
======  ====  =========================================================================

- Sign: ``+`` compression (push), ``-`` tension (pull); zero is ``+``.
- Number: 5 characters, zero padded, with the decimals that make the capacity fit 4 digits:
  DS2-500N 0.1 N / 0.01 kgf / 0.1 lbf (``+500.0``, ``+50.99``, ``+112.4``); DS2-50N 0.01 N /
  0.001 kgf / 0.01 lbf.
- The comparator judges the magnitude of the displayed value in newtons against
  ``[model] low_limit_n``/``high_limit_n``.
- Only ``D`` is answered; any other line is ignored silently (no error reply is known). LF is
  ignored, so ``D\\r\\n`` works too. Unit, mode, zero and peak clearing are front-panel actions
  here (:meth:`ImadaSimulator.set_unit`, :meth:`set_mode`, :meth:`press_zero`,
  :meth:`clear_peak`, and the ``panel_unit`` fault).
- Output is paced at ``baud`` (default 19200, 8N1: a telegram takes 5.2 ms) and replies come
  after 2-5 ms (``reply_latency_s`` + ``latency_jitter_s``), inside cranio's 20 ms timeout.

Physics, noise, seeds and part tests are those of :mod:`simulators.mark10` (:class:`LoadModel`:
``jump_ring``, ``prong``, ``hold``).

Fault kinds (``set_fault`` or scenario ``[[fault]]``): ``no_reply``, ``late_reply``
(``delay_s``), ``missing_cr`` (the CR is left out, so telegrams run together), ``garbage``
(``where``, ``content``, ``count`` as for the Mark-10), ``overload`` (``side`` = tension or
compression), ``panel_unit`` (``unit`` = N, kgf or lbf), ``vanish`` (``new_path``),
``duplicate``; and the part tests ``jump_ring``, ``prong``, ``hold``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from simulators.mark10 import (
    FORCE_UNITS,
    TEST_KINDS,
    GarbageParams,
    LateReplyParams,
    NoParams,
    SerialGaugeSimulator,
    StrictParams,
    UnitDef,
    VanishParams,
    running_gauge,
    serve_gauge,
)
from simulators.scenario import (
    ParamValue,
    Scenario,
    ScenarioError,
    ScenarioVocabulary,
    load_scenario,
)

__all__ = [
    "DEFAULT_PROFILE",
    "IMADA_PROFILES",
    "IMADA_UNITS",
    "IMADA_VOCABULARY",
    "JUDGEMENT_LETTERS",
    "MODE_LETTERS",
    "ImadaModelParams",
    "ImadaProfile",
    "ImadaSimulator",
    "format_telegram",
    "running_imada",
    "serve",
]

#: Imada unit name -> (telegram letter, unit definition). Letters are a simulator choice.
IMADA_UNITS: Mapping[str, tuple[str, UnitDef]] = {
    "N": ("N", FORCE_UNITS["N"]),
    "kgf": ("K", FORCE_UNITS["kgF"]),
    "lbf": ("L", FORCE_UNITS["lbF"]),
}
#: Mode -> telegram letter (simulator choice).
MODE_LETTERS: Mapping[str, str] = {"track": "T", "peak": "P"}
#: Judgement -> telegram letter (simulator choice).
JUDGEMENT_LETTERS: Mapping[str, str] = {
    "none": "N",
    "go": "G",
    "high": "H",
    "low": "L",
    "overload": "E",
}
#: Characters of the number field after the sign (4 digits and the decimal point).
NUMBER_WIDTH = 5


@dataclass(frozen=True)
class ImadaProfile:
    """Capacity of one Imada model; the decimals follow from it (see module docstring)."""

    name: str
    capacity_n: float

    def decimals(self, unit: str) -> int:
        """Decimals that fit the capacity in ``unit`` into 4 digits."""
        capacity = self.capacity_n / IMADA_UNITS[unit][1].si
        digits = max(1, math.floor(math.log10(capacity)) + 1)
        return max(0, NUMBER_WIDTH - 1 - digits)


IMADA_PROFILES: Mapping[str, ImadaProfile] = {
    p.name: p for p in (ImadaProfile("DS2-500N", 500.0), ImadaProfile("DS2-50N", 50.0))
}
DEFAULT_PROFILE = "DS2-500N"


def format_telegram(
    value_n: float, *, profile: ImadaProfile, unit: str, mode: str, judgement: str
) -> str:
    """The reply to ``D`` without its CR, e.g. ``+012.3NTN`` (pure)."""
    decimals = profile.decimals(unit)
    value = value_n / IMADA_UNITS[unit][1].si
    text = f"{abs(value):0{NUMBER_WIDTH}.{decimals}f}"
    negative = value < 0 and float(text) != 0.0
    letters = IMADA_UNITS[unit][0] + MODE_LETTERS[mode] + JUDGEMENT_LETTERS[judgement]
    return ("-" if negative else "+") + text + letters


class _ImadaOverloadParams(StrictParams):
    side: Literal["tension", "compression"] = "tension"


class _ImadaUnitParams(StrictParams):
    unit: Literal["N", "kgf", "lbf"]


class ImadaModelParams(StrictParams):
    """The ``[model]`` table of an Imada scenario (every key optional)."""

    profile: Literal["DS2-500N", "DS2-50N"] = "DS2-500N"
    seed: int = 0
    noise_pct_fs: float = Field(default=0.05, ge=0, le=5)
    zero_drift_pct_fs_per_min: float = Field(default=0.0, ge=-10, le=10)
    reply_latency_s: float = Field(default=0.002, ge=0, le=5)
    latency_jitter_s: float = Field(default=0.003, ge=0, le=5)
    #: Pace output at this baud (8N1); 0 = as fast as the pty goes.
    baud: int = Field(default=19200, ge=0, le=4_000_000)
    unit: Literal["N", "kgf", "lbf"] = "N"
    mode: Literal["track", "peak"] = "track"
    #: Comparator limits on the magnitude in newtons; leave out for no judgement.
    low_limit_n: float | None = Field(default=None, ge=0)
    high_limit_n: float | None = Field(default=None, ge=0)


FAULT_KINDS: Mapping[str, type[BaseModel]] = {
    "no_reply": NoParams,
    "late_reply": LateReplyParams,
    "missing_cr": NoParams,
    "garbage": GarbageParams,
    "overload": _ImadaOverloadParams,
    "panel_unit": _ImadaUnitParams,
    "vanish": VanishParams,
    "duplicate": NoParams,
    **TEST_KINDS,
}

IMADA_VOCABULARY = ScenarioVocabulary(simulator="imada", faults=FAULT_KINDS, model=ImadaModelParams)


class ImadaSimulator(SerialGaugeSimulator):
    """An Imada DS2-style gauge on a pty (module docstring).

    ``profile`` and ``seed`` are defaults the scenario's ``[model]`` overrides; ``model``
    overrides both; ``baud`` (if given) overrides ``[model] baud`` (0 = unpaced).
    """

    TERMINATOR = b"\r"
    vocabulary = IMADA_VOCABULARY
    name = "imada"

    def __init__(
        self,
        *,
        profile: str = DEFAULT_PROFILE,
        seed: int = 0,
        scenario: Scenario | None = None,
        model: Mapping[str, ParamValue] | None = None,
        baud: int | None = None,
        path_file: Path | None = None,
        link_path: Path | None = None,
        on_path: Callable[[str | None], None] | None = None,
    ) -> None:
        scenario = (scenario or Scenario()).validated(IMADA_VOCABULARY)
        try:
            params = ImadaModelParams.model_validate(
                {"profile": profile, "seed": seed, **scenario.model, **(model or {})}
            )
        except ValidationError as exc:
            raise ScenarioError(scenario.source, [f"[model]: {exc}"]) from exc
        self.params = params
        self.profile = IMADA_PROFILES[params.profile]
        chosen_baud = params.baud if baud is None else baud
        super().__init__(
            scenario=scenario,
            seed=params.seed,
            quantity="force",
            capacity_si=self.profile.capacity_n,
            noise_pct_fs=params.noise_pct_fs,
            drift_pct_fs_per_min=params.zero_drift_pct_fs_per_min,
            reply_latency_s=params.reply_latency_s,
            latency_jitter_s=params.latency_jitter_s,
            baud=chosen_baud or None,
            path_file=path_file,
            link_path=link_path,
            on_path=on_path,
        )
        self.unit: str = params.unit
        self.mode: str = params.mode
        self.low_limit_n = params.low_limit_n
        self.high_limit_n = params.high_limit_n
        self._cleared_at = 0.0
        self._seen_high = 0.0
        self._seen_low = 0.0

    # --- front panel (thread-safe) --------------------------------------------------------

    def set_unit(self, unit: str) -> None:
        """Change the unit on the gauge (``N``, ``kgf`` or ``lbf``)."""
        if unit not in IMADA_UNITS:
            raise ValueError(f"unknown unit {unit!r} (known: {', '.join(IMADA_UNITS)})")
        with self._lock:
            self.unit = unit

    def set_mode(self, mode: str) -> None:
        """Switch between ``track`` and ``peak``."""
        if mode not in MODE_LETTERS:
            raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODE_LETTERS)})")
        with self._lock:
            self.mode = mode

    def clear_peak(self) -> None:
        """Clear the peak (front panel)."""
        with self._lock:
            self._clear(self.elapsed())

    def press_zero(self) -> None:
        """Tare the gauge and clear the peak (front panel)."""
        with self._lock:
            self._zero(self.elapsed())

    def telegram(self) -> str:
        """What ``D`` would answer now, without faults, latency or CR."""
        with self._lock:
            return self._stream_text(self.elapsed())

    # --- behaviour -------------------------------------------------------------------------

    def _on_line(self, line: str) -> None:
        if line.strip(" ") == "D":
            self._emit(self._stream_text(self.elapsed()), reply=True)

    def _stream_text(self, t: float) -> str:
        window = 0.0
        current = self.model.reading(t, window)
        self._seen_high = max(self._seen_high, current)
        self._seen_low = min(self._seen_low, current)
        if self.mode == "peak":
            high = max(self.model.peak(self._cleared_at, t, 1.0), self._seen_high)
            low = min(self.model.peak(self._cleared_at, t, -1.0), self._seen_low)
            value = high if high >= -low else low
        else:
            value = current
        if self.model.overloaded(t) or abs(value) >= self.profile.capacity_n:
            judgement = "overload"
        elif self.low_limit_n is None and self.high_limit_n is None:
            judgement = "none"
        elif self.high_limit_n is not None and abs(value) > self.high_limit_n:
            judgement = "high"
        elif self.low_limit_n is not None and abs(value) < self.low_limit_n:
            judgement = "low"
        else:
            judgement = "go"
        return format_telegram(
            value, profile=self.profile, unit=self.unit, mode=self.mode, judgement=judgement
        )

    def _clear(self, t: float) -> None:
        self._cleared_at = t
        self._seen_high = self._seen_low = 0.0

    def _zero(self, t: float) -> None:
        self.model.zero(t)
        self._clear(t)

    def _apply_panel_unit(self, unit: str) -> None:
        self.unit = unit


@contextlib.contextmanager
def running_imada(**kwargs: Any) -> Iterator[ImadaSimulator]:
    """Run an :class:`ImadaSimulator` (its keyword arguments) for the ``with`` block.

    The pty is being served when the block is entered; on exit the simulator stops (bounded)
    and any exception raised inside its thread is raised here.
    """
    simulator = ImadaSimulator(**kwargs)
    with running_gauge(simulator):
        yield simulator


def serve(
    pty: bool,
    seed: int,
    scenario_path: Path | None,
    profile: str = DEFAULT_PROFILE,
    *,
    path_file: Path | None = None,
) -> int:
    """Serve a simulated Imada gauge until SIGTERM or SIGINT (see :func:`simulators.mark10.serve`).

    Prints one JSON line once the pty is open: ``{"family": "force", "model": "imada",
    "transport": "serial", "port": "/dev/pts/N", "address": "/dev/pts/N", ...}``. Returns 0
    after a clean stop, 2 for a bad scenario or arguments, 1 when no pty can be opened.
    """
    if not pty:
        print("error: the imada simulator is a serial device; serve it with --pty", file=sys.stderr)
        return 2
    if profile not in IMADA_PROFILES:
        known = ", ".join(IMADA_PROFILES)
        print(f"error: unknown profile {profile!r} (known: {known})", file=sys.stderr)
        return 2
    try:
        scenario = None if scenario_path is None else load_scenario(scenario_path, IMADA_VOCABULARY)
        simulator = ImadaSimulator(
            profile=profile, seed=seed, scenario=scenario, path_file=path_file
        )
    except (ScenarioError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def describe(sim: SerialGaugeSimulator) -> dict[str, object]:
        assert isinstance(sim, ImadaSimulator)
        return {
            "family": "force",
            "model": "imada",
            "transport": "serial",
            "profile": sim.profile.name,
            "capacity": sim.profile.capacity_n,
            "unit": sim.unit,
            "baud": sim.port.baud,
            "seed": sim.seed,
        }

    return serve_gauge(lambda: simulator, describe)
