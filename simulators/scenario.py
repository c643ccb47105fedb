"""Fault-timeline scenarios shared by every Hallmark simulator.

A scenario is a versioned TOML file that says *which faults are active when*, plus optional
overrides for the simulator's process model::

    ## A salt-spray chamber that loses its door seal ten seconds in.
    schema = 1
    description = "door opened at t = 10 s"

    [model]
    setpoint_c = 35.0

    [[fault]]
    kind = "excursion"
    start = 10.0      # seconds after the simulator started
    duration = 60.0   # seconds; leave out for "until the simulator stops"
    delta = -6.0      # any further keys are the fault kind's own parameters

This module knows nothing about any instrument. Each simulator describes its own fault kinds, their
parameters and its model keys in a :class:`ScenarioVocabulary` (pydantic models), and
:func:`load_scenario` / :meth:`Scenario.validated` check a scenario against it, collecting every
problem and naming the file, the ``[[fault]]`` entry and the key.

At run time a simulator keeps a :class:`FaultTimeline`: the scenario's scripted windows plus the
windows opened and closed by hand (``set_fault`` / ``clear_faults``). Because every window has a
start and an end on the simulator's own clock, a process model can be evaluated at any time ``t``
from the history alone, which keeps simulated values consistent and repeatable.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "SCHEMA_VERSION",
    "FaultEntry",
    "FaultTimeline",
    "FaultWindow",
    "ParamValue",
    "Scenario",
    "ScenarioError",
    "ScenarioVocabulary",
    "load_scenario",
]

#: The only scenario file format version this module reads.
SCHEMA_VERSION = 1

#: A scalar a TOML scenario may give a fault parameter or a model key.
ParamValue: TypeAlias = float | int | bool | str

_EMPTY: Mapping[str, ParamValue] = MappingProxyType({})
_RESERVED_FAULT_KEYS = frozenset({"kind", "start", "duration"})


class ScenarioError(ValueError):
    """A scenario is malformed; ``problems`` lists every problem found, each naming its key."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            text = f"{source}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            text = f"{source}: {len(self.problems)} problems:\n{lines}"
        super().__init__(text)


@dataclass(frozen=True)
class ScenarioVocabulary:
    """What one simulator understands: its fault kinds with their parameters, and its model keys.

    ``faults`` maps each fault kind to a pydantic model of its parameters (use
    ``extra="forbid"`` so misspelt keys are reported); ``model`` validates the ``[model]`` table.
    """

    simulator: str
    faults: Mapping[str, type[BaseModel]]
    model: type[BaseModel]

    def fault_params(self, kind: str, params: Mapping[str, object]) -> dict[str, ParamValue]:
        """Validate the parameters of one fault; raise :class:`ScenarioError` naming the key."""
        problems, checked = self.check_fault(kind, params, where=f"fault {kind!r}")
        if problems:
            raise ScenarioError(self.simulator, problems)
        return checked

    def check_fault(
        self, kind: object, params: Mapping[str, object], *, where: str
    ) -> tuple[list[str], dict[str, ParamValue]]:
        """Check one fault's kind and parameters: ``(problems, validated params)``.

        ``where`` prefixes each problem (for example ``[[fault]] #2 (kind = 'exception')``).
        """
        if not isinstance(kind, str) or kind not in self.faults:
            known = ", ".join(sorted(self.faults))
            return [f"{where}: kind: unknown fault kind {kind!r} (known: {known})"], {}
        try:
            checked = self.faults[kind].model_validate(dict(params))
        except ValidationError as exc:
            return _pydantic_problems(exc, where, self.faults[kind]), {}
        return [], checked.model_dump()

    def check_model(self, model: Mapping[str, object]) -> tuple[list[str], dict[str, ParamValue]]:
        """Check the ``[model]`` table: ``(problems, validated values of the keys given)``."""
        try:
            checked = self.model.model_validate(dict(model))
        except ValidationError as exc:
            return _pydantic_problems(exc, "[model]", self.model), {}
        # Keep only the keys the file gave: the simulator supplies its own defaults.
        return [], {k: v for k, v in checked.model_dump().items() if k in model}


@dataclass(frozen=True)
class FaultWindow:
    """One fault, active on the simulator clock from ``start`` (included) to ``end`` (excluded)."""

    kind: str
    start: float
    end: float = math.inf
    params: Mapping[str, ParamValue] = field(default_factory=lambda: _EMPTY)
    scripted: bool = True

    def covers(self, t: float) -> bool:
        """True when the fault is active at time ``t`` (seconds since the simulator started)."""
        return self.start <= t < self.end


@dataclass(frozen=True)
class FaultEntry:
    """One ``[[fault]]`` table: a fault kind, when it starts, how long it lasts, its parameters."""

    kind: str
    start: float
    duration: float | None = None
    params: Mapping[str, ParamValue] = field(default_factory=lambda: _EMPTY)

    def window(self) -> FaultWindow:
        """The entry as a window on the simulator clock."""
        end = math.inf if self.duration is None else self.start + self.duration
        return FaultWindow(self.kind, self.start, end, MappingProxyType(dict(self.params)))


@dataclass(frozen=True)
class Scenario:
    """A fault timeline plus model overrides; build it in code or with :func:`load_scenario`."""

    faults: tuple[FaultEntry, ...] = ()
    model: Mapping[str, ParamValue] = field(default_factory=lambda: _EMPTY)
    description: str = ""
    source: str = "<scenario>"

    def windows(self) -> list[FaultWindow]:
        """Every fault as a window, in file order."""
        return [entry.window() for entry in self.faults]

    def active_at(self, t: float) -> list[FaultWindow]:
        """The faults active at time ``t`` (seconds since the simulator started)."""
        return [window for window in self.windows() if window.covers(t)]

    def validated(self, vocabulary: ScenarioVocabulary) -> Scenario:
        """Check fault kinds, parameters and model keys against ``vocabulary``.

        Returns a copy holding the validated (type-converted) values; raises
        :class:`ScenarioError` listing every problem.
        """
        problems: list[str] = []
        entries: list[FaultEntry] = []
        for number, entry in enumerate(self.faults, start=1):
            where = _fault_where(number, entry.kind)
            if entry.start < 0 or not math.isfinite(entry.start):
                problems.append(f"{where}: start: must be a finite number of seconds >= 0")
            if entry.duration is not None and not entry.duration > 0:
                problems.append(f"{where}: duration: must be > 0 seconds (or left out)")
            found, params = vocabulary.check_fault(entry.kind, entry.params, where=where)
            problems.extend(found)
            entries.append(replace(entry, params=MappingProxyType(params)))
        found, model = vocabulary.check_model(self.model)
        problems.extend(found)
        if problems:
            raise ScenarioError(self.source, problems)
        return replace(self, faults=tuple(entries), model=MappingProxyType(model))


class FaultTimeline:
    """The faults of one simulator run: scripted windows plus windows opened by hand.

    Not thread-safe by itself: the simulator that owns it serialises access.
    """

    def __init__(self, scripted: Iterable[FaultWindow] = ()) -> None:
        self._windows: list[FaultWindow] = list(scripted)

    def start_manual(self, kind: str, t: float, params: Mapping[str, ParamValue]) -> None:
        """Open a hand-set fault at ``t``, ending any hand-set fault of the same kind."""
        self._end_manual(t, kind)
        self._windows.append(FaultWindow(kind, t, math.inf, MappingProxyType(dict(params)), False))

    def stop_manual(self, t: float) -> None:
        """End every hand-set fault still open at ``t``; scripted windows keep their schedule."""
        self._end_manual(t, None)

    def _end_manual(self, t: float, kind: str | None) -> None:
        for index, window in enumerate(self._windows):
            if window.scripted or window.end <= t or (kind is not None and window.kind != kind):
                continue
            self._windows[index] = replace(window, end=max(t, window.start))

    def active(self, t: float) -> list[FaultWindow]:
        """The windows active at ``t``, scripted ones first, each group in order of creation."""
        return [window for window in self._windows if window.covers(t)]

    def windows(self, kind: str) -> list[FaultWindow]:
        """Every window (past, present and future) of one kind."""
        return [window for window in self._windows if window.kind == kind]

    def next_start_after(self, t: float, kinds: Iterable[str] | None = None) -> float | None:
        """The earliest window start strictly after ``t`` (optionally only of ``kinds``)."""
        wanted = None if kinds is None else frozenset(kinds)
        starts = [
            window.start
            for window in self._windows
            if window.start > t and (wanted is None or window.kind in wanted)
        ]
        return min(starts, default=None)


class _FaultTable(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str
    start: float = Field(ge=0, allow_inf_nan=False)
    duration: float | None = Field(default=None, gt=0)


class _ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    schema_version: Literal[1] = Field(alias="schema")
    description: str = ""
    model: dict[str, ParamValue] = Field(default_factory=dict)
    fault: list[_FaultTable] = Field(default_factory=list)


def load_scenario(path: Path | str, vocabulary: ScenarioVocabulary | None = None) -> Scenario:
    """Read and validate a scenario TOML file.

    Without ``vocabulary`` only the common structure is checked (``schema = 1``, each
    ``[[fault]]`` has ``kind``, ``start`` >= 0 and optional ``duration`` > 0). With it, fault kinds,
    their parameters and the ``[model]`` keys are checked too. Every problem is collected into one
    :class:`ScenarioError` whose message names the file and the key.
    """
    source = str(path)
    try:
        with Path(path).open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ScenarioError(source, [f"cannot read scenario file: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [f"not valid TOML: {exc}"]) from exc

    problems: list[str] = []
    parsed: _ScenarioFile | None = None
    try:
        parsed = _ScenarioFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(_file_problems(exc, data))
    if vocabulary is not None:
        problems.extend(_vocabulary_problems(data, vocabulary))
    if problems or parsed is None:
        raise ScenarioError(source, _in_file_order(problems))

    for number, table in enumerate(parsed.fault, start=1):
        for key, value in (table.model_extra or {}).items():
            if not isinstance(value, float | int | bool | str):
                where = _fault_where(number, table.kind)
                problems.append(f"{where}: {key}: must be a number, true/false or a string")
    if problems:
        raise ScenarioError(source, problems)

    scenario = Scenario(
        faults=tuple(
            FaultEntry(
                kind=table.kind,
                start=table.start,
                duration=table.duration,
                params=MappingProxyType(dict(table.model_extra or {})),
            )
            for table in parsed.fault
        ),
        model=MappingProxyType(dict(parsed.model)),
        description=parsed.description,
        source=source,
    )
    return scenario if vocabulary is None else scenario.validated(vocabulary)


def _fault_where(number: int, kind: object) -> str:
    return f"[[fault]] #{number} (kind = {kind!r})" if kind else f"[[fault]] #{number}"


def _pydantic_problems(exc: ValidationError, where: str, model: type[BaseModel]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "(table)"
        problems.append(f"{where}: {key}: {_describe(error, model)}")
    return problems


def _describe(error: ErrorDetails, model: type[BaseModel] | None = None) -> str:
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "extra_forbidden" and model is not None:
        if not model.model_fields:
            return "unknown key (this takes no parameters)"
        return f"unknown key (known: {', '.join(model.model_fields)})"
    return f"{error['msg']} (got {error.get('input')!r})"


def _file_problems(exc: ValidationError, data: Mapping[str, object]) -> list[str]:
    """Turn the structural errors into messages that say which ``[[fault]]`` entry is wrong."""
    faults = data.get("fault")
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        got = error.get("input")
        if loc == ["schema"] and error["type"] == "missing":
            problems.append(
                f"schema: missing; the first line should be `schema = {SCHEMA_VERSION}`"
            )
            continue
        if loc == ["schema"]:
            problems.append(
                f"schema: this reader understands schema = {SCHEMA_VERSION} only (got {got!r})"
            )
            continue
        if len(loc) >= 2 and loc[0] == "fault" and isinstance(loc[1], int):
            index = loc[1]
            kind = None
            if isinstance(faults, list) and index < len(faults) and isinstance(faults[index], dict):
                kind = faults[index].get("kind")
            where = _fault_where(index + 1, kind)
            key = ".".join(str(part) for part in loc[2:]) or "(table)"
            problems.append(f"{where}: {key}: {_describe(error)}")
            continue
        key = ".".join(str(part) for part in loc) or "(file)"
        if error["type"] == "extra_forbidden":
            problems.append(
                f"{key}: unknown top-level key (known: schema, description, model, fault)"
            )
        else:
            problems.append(f"{key}: {error['msg']} (got {got!r})")
    return problems


def _vocabulary_problems(data: Mapping[str, object], vocabulary: ScenarioVocabulary) -> list[str]:
    problems: list[str] = []
    faults = data.get("fault", [])
    if isinstance(faults, list):
        for index, table in enumerate(faults):
            if not isinstance(table, dict) or "kind" not in table:
                continue  # the structural check reports these
            kind = table["kind"]
            params = {k: v for k, v in table.items() if k not in _RESERVED_FAULT_KEYS}
            found, _ = vocabulary.check_fault(kind, params, where=_fault_where(index + 1, kind))
            problems.extend(found)
    model = data.get("model", {})
    if isinstance(model, dict):
        found, _ = vocabulary.check_model(model)
        problems.extend(found)
    return problems


def _in_file_order(problems: Iterable[str]) -> list[str]:
    """Drop repeats; top-level problems, then each ``[[fault]]`` in order, then ``[model]``."""

    def position(problem: str) -> tuple[int, int]:
        if problem.startswith("[[fault]] #"):
            return (1, int(problem.removeprefix("[[fault]] #").split(maxsplit=1)[0].rstrip(":")))
        if problem.startswith("[model]"):
            return (2, 0)
        return (0, 0)

    return sorted(dict.fromkeys(problems), key=position)
