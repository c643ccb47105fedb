"""Per-SKU written standards: the spec files in ``config/specs/`` and the limits they set.

A spec file (TOML, ``schema = 1``) is one revision of one SKU. It writes down what the approved
sample is (plating layers, stones and their setting, hardware, finishing), how that sample was
built and how production will build it instead (where quality quietly drifts), the QC criteria
with their limits, the defect classes with their AQLs, and the testing agreed with the factory
before the purchase order. Quantities are written as a number and a unit, the way the standard
or the drawing says them (``"2 in-lbf"``, ``"10 lbf"``, ``"2.5 µm"``); they are converted to
Hallmark's canonical units on load (daq/units.py).

The features a spec judges, as (measurement, feature) — the names written to InfluxDB:

    thickness  layer_<element>            [[plating]]   min / max, uncertainty as guard band
    force      jump_ring_pull             [mechanical]  jump_ring_pull_min
    force      stone_retention_<position> [[stone]]     retention_min
    torque|force <hold name>              [[hold]]      target (the part must hold it)
    corrosion  rating                     [corrosion]   rating_min (after the exposure hours)
    abrasion   cycles_to_end_point        [abrasion]    cycles_min
    abrasion   wear_index                 [abrasion]    wear_index_max

A revision is immutable once a lot has been judged under it: the lot store records the file's
hash with the first lot and refuses a changed file under the same revision (daq/lots.py).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from daq.errors import ConfigError, ConfigProblem, UnitError
from daq.model import Limits, LotContext
from daq.units import convert

__all__ = [
    "DefectClass",
    "SkuSpec",
    "SpecFile",
    "SpecLibrary",
    "load_spec",
    "quantity",
]

DefectClass = Literal["critical", "major", "minor"]

_QTY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def quantity(text: str, kind: str) -> float:
    """Parse ``"2 in-lbf"`` as a ``kind`` quantity, in its canonical unit. Raises ValueError."""
    m = _QTY.match(text)
    if not m or not m.group(2):
        raise ValueError(f"write a number and a unit, e.g. '2.5 µm' (got {text!r})")
    try:
        value, _ = convert(float(m.group(1)), m.group(2), kind)
    except UnitError as exc:
        raise ValueError(str(exc)) from exc
    return value


def _qty(kind: str) -> BeforeValidator:
    def parse(v: Any) -> float:
        if isinstance(v, str):
            return quantity(v, kind)
        raise ValueError(f"write a number and a unit in quotes, e.g. '{_EXAMPLE[kind]}'")

    return BeforeValidator(parse)


_EXAMPLE = {"length": "2.5 µm", "force": "25 N", "torque": "2 in-lbf", "duration": "48 h"}

Thickness = Annotated[float, _qty("length")]
Force = Annotated[float, _qty("force")]
Torque = Annotated[float, _qty("torque")]
Hours = Annotated[float, _qty("duration")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessStep(_Strict):
    name: str
    #: How the approved sample was made at this step.
    sample: str
    #: How production will do it (the place where quality quietly drifts).
    production: str
    hand_finished: bool = False


class Process(_Strict):
    sample_built_by: str
    step: list[ProcessStep] = Field(default_factory=list)


class Plating(_Strict):
    layer: Annotated[str, Field(pattern=r"^[A-Z][a-z]?$")]
    over: str
    min: Thickness
    target: Thickness | None = None
    max: Thickness | None = None
    #: Expanded XRF uncertainty: "10 %" of the minimum, or an absolute "0.2 µm".
    uncertainty: str = "5 %"
    karat: int | None = None

    @model_validator(mode="after")
    def _order(self) -> Plating:
        if self.max is not None and self.max <= self.min:
            raise ValueError("max must be above min")
        if self.target is not None and not (
            self.min <= self.target <= (self.max if self.max is not None else float("inf"))
        ):
            raise ValueError("target must lie between min and max")
        self.uncertainty_um()  # validates the text
        return self

    def uncertainty_um(self) -> float:
        text = self.uncertainty.strip()
        if text.endswith("%"):
            return float(text[:-1]) / 100.0 * self.min
        return quantity(text, "length")


class Stone(_Strict):
    position: str
    kind: str
    size_mm: Annotated[float, Field(gt=0)]
    #: How the approved sample set this stone, e.g. "individual 4-prong", "shared prong".
    setting: str
    retention_min: Force | None = None


class Hold(_Strict):
    """A use-and-abuse hold (16 CFR 1500.51–.53 style): reach the target, hold it."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    kind: Literal["torque", "tension"]
    target: str
    ramp_max: Hours = 5.0 / 3600.0
    hold: Hours = 10.0 / 3600.0
    regulation: str | None = None

    def target_canonical(self) -> float:
        return quantity(self.target, "torque" if self.kind == "torque" else "force")

    @model_validator(mode="after")
    def _target(self) -> Hold:
        self.target_canonical()
        return self


class Mechanical(_Strict):
    jump_ring_pull_min: Force | None = None
    jump_rings_soldered: bool | None = None


class Corrosion(_Strict):
    standard: str
    hours: Hours
    rating_min: Annotated[float, Field(ge=0, le=10)]


class Abrasion(_Strict):
    method: str
    cycles_min: Annotated[int, Field(gt=0)] | None = None
    wear_index_max: Annotated[float, Field(gt=0)] | None = None


class Hardware(_Strict):
    part: str
    part_number: str
    no_substitution: bool = True


class DefectCode(_Strict):
    code: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    defect_class: Annotated[DefectClass, Field(alias="class")]
    description: str


class Defects(_Strict):
    level: Literal["I", "II", "III", "S-1", "S-2", "S-3", "S-4"] = "II"
    #: AQL per class; 0 means no defect of that class is accepted in the sample.
    critical_aql: Annotated[float, Field(ge=0)] = 0.0
    major_aql: Annotated[float, Field(ge=0)] = 2.5
    minor_aql: Annotated[float, Field(ge=0)] = 4.0
    #: Judge plating thickness by variables (ANSI/ASQ Z1.9, s-method, lower limit) at this AQL,
    #: in addition to the verdict of each reading. Leave out to judge readings only.
    thickness_variables_aql: Annotated[float, Field(gt=0)] | None = None
    code: list[DefectCode] = Field(default_factory=list)

    def aql(self, cls: DefectClass) -> float:
        return {"critical": self.critical_aql, "major": self.major_aql, "minor": self.minor_aql}[
            cls
        ]


class Testing(_Strict):
    agreed_with: str
    agreed_on: date
    requirements: Annotated[list[str], Field(min_length=1)]


class SkuSpec(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    sku: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    revision: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    title: str
    category: Literal["ring", "pendant", "necklace", "bracelet", "earrings", "anklet", "other"]
    base_metal: str
    children: bool = False
    approved_by: str | None = None
    approved_on: date | None = None
    finishing: str | None = None
    process: Process | None = None
    plating: list[Plating] = Field(default_factory=list)
    stone: list[Stone] = Field(default_factory=list)
    mechanical: Mechanical = Mechanical()
    hold: list[Hold] = Field(default_factory=list)
    corrosion: Corrosion | None = None
    abrasion: Abrasion | None = None
    hardware: list[Hardware] = Field(default_factory=list)
    defects: Defects = Defects()
    testing: Testing | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _checks(self) -> SkuSpec:
        if self.schema_ != 1:
            raise ValueError(f"spec schema {self.schema_} is not supported (this reads 1)")
        layers = [p.layer for p in self.plating]
        if len(set(layers)) != len(layers):
            raise ValueError("a plating layer is listed twice")
        return self

    def features(self) -> dict[tuple[str, str], Limits]:
        """Every feature this spec judges, with its limits in canonical units."""
        out: dict[tuple[str, str], Limits] = {}
        for p in self.plating:
            out[("thickness", f"layer_{p.layer}")] = Limits(
                low=p.min, high=p.max, uncertainty=p.uncertainty_um()
            )
        if self.mechanical.jump_ring_pull_min is not None:
            out[("force", "jump_ring_pull")] = Limits(low=self.mechanical.jump_ring_pull_min)
        for s in self.stone:
            if s.retention_min is not None:
                out[("force", f"stone_retention_{s.position}")] = Limits(low=s.retention_min)
        for h in self.hold:
            measurement = "torque" if h.kind == "torque" else "force"
            out[(measurement, h.name)] = Limits(low=h.target_canonical())
        if self.corrosion is not None:
            out[("corrosion", "rating")] = Limits(low=self.corrosion.rating_min)
        if self.abrasion is not None:
            if self.abrasion.cycles_min is not None:
                out[("abrasion", "cycles_to_end_point")] = Limits(low=self.abrasion.cycles_min)
            if self.abrasion.wear_index_max is not None:
                out[("abrasion", "wear_index")] = Limits(high=self.abrasion.wear_index_max)
        return out

    def defect_class(self, code: str) -> DefectClass | None:
        for d in self.defects.code:
            if d.code == code:
                return d.defect_class
        return None


@dataclass(frozen=True, slots=True)
class SpecFile:
    path: Path
    spec: SkuSpec
    sha256: str


def load_spec(path: Path) -> SpecFile:
    """Load and validate one spec file. Raises ConfigError listing every problem."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, "", f"cannot read it: {exc.strerror}")]) from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, "", f"is not valid TOML: {exc}")]) from exc
    except RecursionError as exc:  # tomllib recurses once per nesting level (found by fuzzing)
        raise ConfigError(
            [ConfigProblem(file, "", "is not valid TOML: arrays or tables are nested too deep")]
        ) from exc
    except ValueError as exc:  # an integer longer than int()'s 4300-digit limit
        why = str(exc).split(":")[0]
        raise ConfigError([ConfigProblem(file, "", f"is not valid TOML: {why}")]) from exc
    try:
        spec = SkuSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]).replace("schema_", "schema")
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "is required but missing"
            elif err["type"] == "extra_forbidden":
                msg = "is not a known setting (misspelt?)"
            problems.append(ConfigProblem(file, key, msg))
        raise ConfigError(problems) from exc
    return SpecFile(Path(path), spec, hashlib.sha256(data).hexdigest())


class SpecLibrary:
    """The spec files of a folder, by SKU and revision; a ``SpecSource`` for the runtime.

    Limits come from the SKU's spec in the lot context (its ``spec_rev``, or the latest
    revision when none is set); features the spec does not cover fall back to ``fallback``
    (the bench config's per-instrument limits, e.g. a chamber's 35 ± 2 °C).
    """

    def __init__(self, files: list[SpecFile], fallback: Any = None) -> None:
        self._by_key: dict[tuple[str, str], SpecFile] = {}
        self._features: dict[tuple[str, str], dict[tuple[str, str], Limits]] = {}
        for f in files:
            key = (f.spec.sku, f.spec.revision)
            self._by_key[key] = f
            self._features[key] = f.spec.features()
        self._fallback = fallback

    @classmethod
    def load(cls, folder: Path, fallback: Any = None) -> SpecLibrary:
        """Load every ``*.toml`` below ``folder``. Raises ConfigError with every problem."""
        files: list[SpecFile] = []
        problems: list[ConfigProblem] = []
        seen: dict[tuple[str, str], Path] = {}
        for path in sorted(Path(folder).rglob("*.toml")) if Path(folder).is_dir() else []:
            try:
                f = load_spec(path)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            key = (f.spec.sku, f.spec.revision)
            if key in seen:
                problems.append(
                    ConfigProblem(
                        str(path), "revision", f"{key[0]} rev {key[1]} is also in {seen[key]}"
                    )
                )
            seen[key] = path
            files.append(f)
        if problems:
            raise ConfigError(problems)
        return cls(files, fallback)

    def __iter__(self) -> Iterator[SpecFile]:
        return iter(sorted(self._by_key.values(), key=lambda f: (f.spec.sku, f.spec.revision)))

    def revisions(self, sku: str) -> list[str]:
        return sorted(rev for s, rev in self._by_key if s == sku)

    def get(self, sku: str, revision: str | None = None) -> SpecFile | None:
        """A SKU's spec at ``revision``, or its latest revision (sorted by name)."""
        if revision is not None:
            return self._by_key.get((sku, revision))
        revs = self.revisions(sku)
        return self._by_key[(sku, revs[-1])] if revs else None

    def limits_for(
        self, instrument: str, measurement: str, feature: str, context: LotContext
    ) -> Limits | None:
        if context.sku:
            f = self.get(context.sku, context.spec_rev)
            if f is not None:
                limits = self._features[(f.spec.sku, f.spec.revision)].get((measurement, feature))
                if limits is not None:
                    return limits
        if self._fallback is not None:
            result: Limits | None = self._fallback.limits_for(
                instrument, measurement, feature, context
            )
            return result
        return None

    def revision(self, context: LotContext) -> str | None:
        if context.spec_rev:
            return context.spec_rev
        if context.sku:
            f = self.get(context.sku)
            if f is not None:
                return f.spec.revision
        return None
