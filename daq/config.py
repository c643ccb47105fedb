"""Bench configuration: TOML, validated by pydantic, every problem reported at once.

A bench config (``schema = 1``) names the bench, the journal, an optional InfluxDB target, the
lot context and the instruments. ``load_config`` reads and validates it without starting
anything; a ``ConfigError`` lists each problem with the file, the instrument and the key, in
words a lab technician can act on. Driver-specific checks (does the driver exist, are its
options right) come in through a callback, so that the core never imports the drivers.

Secrets never live in the config: the InfluxDB token (or v1 password) is read from an
environment variable or a file that the config names.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daq.errors import ConfigError, ConfigProblem
from daq.model import Limits, LotContext, Phase

__all__ = [
    "BenchConfig",
    "CabinetConfig",
    "Config",
    "DriftConfig",
    "InfluxConfig",
    "InstrumentCheck",
    "InstrumentConfig",
    "JournalConfig",
    "LimitConfig",
    "LotConfig",
    "SpecsConfig",
    "load_config",
    "parse_config",
    "read_secret",
]

SCHEMA_VERSION = 1

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenchConfig(_Strict):
    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")]
    health_interval: PositiveSeconds = 10.0
    #: Longest wait between attempts to reach an instrument that does not answer.
    reconnect_max: PositiveSeconds = 30.0


class JournalConfig(_Strict):
    path: Path = Path("hallmark-journal.db")
    #: Rows older than this many days are deleted once every sink has them. 0 keeps them all.
    retention_days: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    #: ``full`` survives power loss; ``normal`` survives a crash of the daemon only.
    synchronous: Literal["full", "normal"] = "full"


class InfluxConfig(_Strict):
    """Where readings are forwarded. ``token_file`` and ``password_file``, when relative, start
    at the config file's folder (``load_config``); ``verify_tls`` is on unless turned off."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    api: Literal["v1", "v2"] = "v1"
    database: str | None = None
    retention_policy: str | None = None
    create_database: bool = True
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    bucket: str | None = None
    org: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5000
    flush_interval: PositiveSeconds = 1.0
    timeout: PositiveSeconds = 10.0
    verify_tls: bool = True

    @model_validator(mode="after")
    def _api_fields(self) -> InfluxConfig:
        if self.api == "v1" and not self.database:
            raise ValueError("the v1 API needs 'database' (the InfluxDB database to write to)")
        if self.api == "v2":
            missing = [k for k in ("bucket", "org") if not getattr(self, k)]
            if missing:
                raise ValueError(f"the v2 API needs {' and '.join(missing)}")
            if not (self.token_env or self.token_file):
                raise ValueError(
                    "the v2 API needs a token: set token_env (an environment variable's name)"
                    " or token_file (a file holding the token); never put the token itself here"
                )
        return self


class LotConfig(_Strict):
    sku: str | None = None
    po: str | None = None
    lot: str | None = None
    phase: Phase | None = None
    spec_rev: str | None = None

    def context(self) -> LotContext:
        return LotContext(self.sku, self.po, self.lot, self.phase, self.spec_rev)


class LimitConfig(_Strict):
    low: Annotated[float | None, Field(allow_inf_nan=False)] = None
    high: Annotated[float | None, Field(allow_inf_nan=False)] = None
    guard: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    uncertainty: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _order(self) -> LimitConfig:
        if self.low is None and self.high is None:
            raise ValueError("give at least one of 'low' and 'high'")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
        return self

    def limits(self) -> Limits:
        return Limits(self.low, self.high, self.guard, self.uncertainty)


class DriftConfig(_Strict):
    """How values are watched for drift against the golden sample (daq/quality/drift.py)."""

    enabled: bool = True
    cusum_k: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 0.5
    cusum_h: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5.0
    ewma_lambda: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.10
    ewma_L: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 2.814
    #: Run rules on individuals: WE1..WE8 (Western Electric), N1..N8 (Nelson). Each one added
    #: raises the false-alarm rate (benchmarks/drift_detection.py measures it).
    rules: tuple[str, ...] = ("WE1",)

    @model_validator(mode="after")
    def _rules(self) -> DriftConfig:
        known = {f"WE{i}" for i in range(1, 9)} | {f"N{i}" for i in range(1, 9)}
        unknown = [r for r in self.rules if r not in known]
        if unknown:
            raise ValueError(f"unknown run rule(s) {', '.join(unknown)}: use WE1..WE8 or N1..N8")
        return self


class SpecsConfig(_Strict):
    #: Folder of per-SKU spec files; relative paths start at the config file's folder.
    dir: Path = Path("specs")


class InstrumentConfig(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")]
    driver: Annotated[str, Field(min_length=1)]
    address: Annotated[str, Field(min_length=1)]
    #: Seconds between polls. Leave it out for a push-mode instrument that sends on its own.
    poll_interval: PositiveSeconds | None = None
    timeout: PositiveSeconds = 1.0
    enabled: bool = True
    #: After this date the instrument's readings can no longer pass (status ``suspect``).
    calibration_due: date | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, LimitConfig] = Field(default_factory=dict)


class CabinetConfig(_Strict):
    """A salt-spray cabinet (ASTM B117 / ISO 9227 NSS) made of the instruments that watch it.

    Exposure counts as valid only while the zone's temperature, the saturator's temperature
    (when one is named) and the operator's latest pH and collection-rate entries are all within
    their limits (the named instruments' ``[instrument.limits.*]``).
    """

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")]
    #: The instrument whose channel ``zone_channel`` is the exposure zone's temperature.
    zone: Annotated[str, Field(min_length=1)]
    zone_channel: str = "temperature"
    #: The instrument measuring the saturator (bubble tower), if the cabinet has one.
    saturator: str | None = None
    saturator_channel: str = "temperature"
    #: The instrument the operator's pH and collection-rate entries are made against
    #: (``daq enter chamber --instrument``); the zone instrument when left out.
    manual: str | None = None
    standard: str = "ASTM B117"
    #: Two zone readings further apart than this leave the time between them unaccounted
    #: (default: three of the zone's poll intervals).
    max_gap_s: PositiveSeconds | None = None

    @property
    def manual_instrument(self) -> str:
        return self.manual or self.zone


class Config(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    bench: BenchConfig
    journal: JournalConfig = JournalConfig()
    influx: InfluxConfig | None = None
    lot: LotConfig = LotConfig()
    specs: SpecsConfig = SpecsConfig()
    drift: DriftConfig = DriftConfig()
    instrument: list[InstrumentConfig] = Field(default_factory=list)
    cabinet: list[CabinetConfig] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def journal_path(self, base: Path) -> Path:
        """The journal path, relative paths taken from the config file's folder."""
        path = self.journal.path
        return path if path.is_absolute() else base / path

    def specs_path(self, base: Path) -> Path:
        """The spec folder, relative paths taken from the config file's folder."""
        path = self.specs.dir
        return path if path.is_absolute() else base / path


#: Checks one instrument with its driver; returns (key, message) for each problem found.
InstrumentCheck = Callable[[InstrumentConfig], Sequence[tuple[str, str]]]

_FRIENDLY = {
    "missing": "is required but missing",
    "extra_forbidden": "is not a known setting (misspelt?)",
}


def _message(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "string_pattern_mismatch":
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        if pattern.startswith("^https?"):
            return f"must start with http:// or https:// (got {err.get('input')!r})"
        return f"use letters, digits and _ . : - only, no spaces (got {err.get('input')!r})"
    if kind in _FRIENDLY:
        return str(_FRIENDLY[kind])
    msg = str(err.get("msg", "is invalid"))
    msg = msg.removeprefix("Value error, ")
    value = err.get("input")
    if kind not in ("model_type",) and isinstance(value, (str, int, float, bool)):
        return f"{msg} (got {value!r})"
    return msg


def _problems_from(exc: ValidationError, file: str, raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    listed = raw.get("instrument")
    instruments: list[Any] = listed if isinstance(listed, list) else []
    for err in exc.errors():
        loc = list(err["loc"])
        instrument = None
        if len(loc) >= 2 and loc[0] == "instrument" and isinstance(loc[1], int):
            idx = loc[1]
            entry = instruments[idx] if idx < len(instruments) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            instrument = str(name) if name else f"#{idx + 1}"
            loc = loc[2:]
        key = ".".join(str(p) for p in loc if p not in ("function-after[_order()]",))
        key = key.replace("schema_", "schema")
        problems.append(ConfigProblem(file, key, _message(err), instrument))
    return problems


def parse_config(
    raw: dict[str, Any], file: str, check_instrument: InstrumentCheck | None = None
) -> Config:
    """Validate an already-parsed TOML document. Raises ConfigError listing every problem."""
    problems: list[ConfigProblem] = []
    if raw.get("schema") != SCHEMA_VERSION:
        got = raw.get("schema")
        problems.append(
            ConfigProblem(
                file,
                "schema",
                f"this Hallmark reads schema = {SCHEMA_VERSION} configs"
                + (f" (got {got!r})" if got is not None else "; add 'schema = 1' at the top"),
            )
        )
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        # The top-level schema was reported above; a "schema" key inside an instrument's table
        # is a misplaced setting of its own (found by fuzzing: it used to be dropped here too,
        # leaving an invalid config with no problem listed).
        problems.extend(
            p
            for p in _problems_from(exc, file, raw)
            if p.key != "schema" or p.instrument is not None
        )
    # Whatever else is wrong, check each instrument that is well-formed on its own with its
    # driver, so that one run of `daq check` lists every problem.
    instruments = config.instrument if config is not None else _valid_parts(raw)
    problems.extend(_instrument_problems(instruments, file, check_instrument))
    if config is not None:
        problems.extend(_cabinet_problems(config, file))
    influx = config.influx if config is not None else _valid_influx(raw)
    if influx is not None:
        problems.extend(_secret_problems(influx, file))
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


def _valid_parts(raw: dict[str, Any]) -> list[InstrumentConfig]:
    listed = raw.get("instrument")
    valid = []
    for entry in listed if isinstance(listed, list) else []:
        try:
            valid.append(InstrumentConfig.model_validate(entry))
        except ValidationError:
            continue  # already reported
    return valid


def _valid_influx(raw: dict[str, Any]) -> InfluxConfig | None:
    try:
        return InfluxConfig.model_validate(raw.get("influx"))
    except ValidationError:
        return None  # absent, or already reported


def _instrument_problems(
    instruments: Sequence[InstrumentConfig], file: str, check_instrument: InstrumentCheck | None
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[str] = set()
    for inst in instruments:
        if inst.name in seen:
            problems.append(
                ConfigProblem(file, "name", "another instrument already has this name", inst.name)
            )
        seen.add(inst.name)
        if check_instrument is not None:
            for key, message in check_instrument(inst):
                problems.append(ConfigProblem(file, key, message, inst.name))
    return problems


def _cabinet_problems(config: Config, file: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    names = {i.name for i in config.instrument}
    seen: set[str] = set()
    for n, cab in enumerate(config.cabinet):
        where = f"cabinet.{n + 1}"
        if cab.name in seen or cab.name in names:
            taken = f"'{cab.name}' is already the name of another cabinet or instrument"
            problems.append(ConfigProblem(file, f"{where}.name", taken))
        seen.add(cab.name)
        for key in ("zone", "saturator", "manual"):
            inst = getattr(cab, key)
            if inst is not None and inst not in names:
                problems.append(
                    ConfigProblem(file, f"{where}.{key}", f"no instrument called '{inst}'")
                )
    return problems


def _secret_problems(influx: InfluxConfig, file: str) -> list[ConfigProblem]:
    problems = []
    for env_key, file_key in (("token_env", "token_file"), ("password_env", "password_file")):
        env_name = getattr(influx, env_key)
        path = getattr(influx, file_key)
        if env_name and path:
            problems.append(
                ConfigProblem(file, f"influx.{env_key}", f"give {env_key} or {file_key}, not both")
            )
        elif env_name and not os.environ.get(env_name):
            problems.append(
                ConfigProblem(
                    file,
                    f"influx.{env_key}",
                    f"the environment variable {env_name} is not set (it should hold the secret)",
                )
            )
        elif path and not Path(path).is_file():
            problems.append(ConfigProblem(file, f"influx.{file_key}", f"no such file: {path}"))
    return problems


def read_secret(env_name: str | None, path: Path | None) -> str | None:
    """Read a secret from the named environment variable or file (stripped), or None."""
    if env_name:
        return os.environ.get(env_name)
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def load_config(path: Path, check_instrument: InstrumentCheck | None = None) -> Config:
    """Read and validate a bench config file. Raises ConfigError listing every problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([ConfigProblem(file, "", "no such config file")]) from exc
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", f"cannot read it: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", "is not UTF-8 text")]) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(file, "", f"is not valid TOML: {exc}")]) from exc
    except (RecursionError, ValueError) as exc:
        # tomllib's own limits: arrays or tables nested thousands deep overflow its recursive
        # parser, and integers over 4300 digits exceed int()'s limit (found by fuzzing).
        raise ConfigError(
            [ConfigProblem(file, "", f"is not valid TOML: {_toml_limit(exc)}")]
        ) from exc
    return parse_config(_secret_files_from(raw, path.parent), file, check_instrument)


def _secret_files_from(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """``token_file`` / ``password_file`` given relative: from the config's folder, like the
    journal and the specs folder. Without this they were taken from the working directory, so
    ``daq check`` in /etc/hallmark and the daemon started by systemd in / read different files.
    """
    influx = raw.get("influx")
    if not isinstance(influx, dict):
        return raw
    fixed = dict(influx)
    for key in ("token_file", "password_file"):
        value = fixed.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            fixed[key] = str(base / value)
    return {**raw, "influx": fixed}


def _toml_limit(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "arrays or tables are nested too deep"
    return f"a value is out of range ({str(exc).split(':')[0]})"


def is_finite(value: float) -> bool:
    """True for a finite float (helper for drivers' option checks)."""
    return math.isfinite(value)
