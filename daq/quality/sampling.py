"""Acceptance sampling: ISO 2859-1 attribute plans, switching rules, and a Z1.9 variables check.

Pure functions and small frozen dataclasses; no I/O. The tables themselves, their sources, the
cross-checks made and the cells that could not be confirmed are in
:mod:`daq.quality.sampling_tables` (read its docstring before trusting a cell in an audit).

Edition: ISO 2859-1:1999 (= GB/T 2828.1-2012, IS 2500-1:2000, BS 6001-1:1999), single
sampling. Its Tables I, II-A and II-B match MIL-STD-105E / ANSI/ASQ Z1.4 (one disputed II-B
cell aside, see the tables module); its reduced Table II-C does not (the 1999 revision
removed the gap between Ac and Re, so Re = Ac + 1 everywhere here), and its normal-to-reduced
rule is the *switching score* (clause 9.3.3), not the 105E "10 lots and limit numbers" rule.

Attributes, one lot
    :func:`plan` reads Table I for the code letter, then the master table for the inspection
    severity. An arrow sends you to the first plan in its direction and you use *that* plan's
    sample size, Ac and Re (``code_letter`` is the letter you land on; ``initial_code_letter``
    is the one Table I gave). When the sample size is at least the lot size the lot is
    inspected 100 %: ``sample_size`` becomes the lot size, ``table_sample_size`` keeps the
    table's n, and ``accept``/``reject`` stay the plan's Ac/Re, applied to the count found in
    the whole lot. The standard says only "carry out 100 % inspection"; keeping the plan's
    Ac/Re means the lot decision rule does not change between a lot just smaller and just
    larger than n, and every nonconforming item found is removed from the lot anyway.
    :func:`decide` and :func:`progress_text` turn a count into a decision and into the status
    line shown by ``daq lot status``.

Switching rules (clauses 9.3 and 9.4)
    :func:`next_state` is a pure state machine over :class:`SwitchingState`:

    * normal to tightened: 2 lots not accepted within 5 or fewer consecutive lots;
    * tightened to normal: 5 consecutive lots accepted;
    * normal to reduced: switching score at least 30, production steady, and the responsible
      authority approves;
    * reduced to normal: a lot not accepted, production irregular, or the authority no longer
      approves reduced inspection;
    * discontinue: 5 lots not accepted, cumulatively, while on tightened inspection; resume
      (on tightened) only after corrective action, with :func:`resume_inspection`.

    The switching score (clause 9.3.3.2, single sampling) starts at 0 with normal inspection
    and is updated after every lot on original normal inspection: when Ac is 0 or 1, add 2 if
    the lot was accepted, else reset to 0; when Ac is 2 or more, add 3 if the lot would also
    have been accepted at the AQL one step tighter (the next smaller AQL in the preferred
    series, same code letter, hence the same sample), else reset to 0. Evidence: the
    threshold of 30 is on the sqconline.com ISO 2859-1 switching chart; a public GB/T 2828.1
    tool describes clause 9.3.3.2 as comparing the lot's count with the Ac of the plan one
    AQL step tighter *at the same sample size*, and notes that the 0.010 column has no
    Ac >= 2 plan; the +2 / +3 points come from the domain notes, where they are marked [M].
    The clause text itself was not found in a public copy: check it before an audit.

    The rules apply per defect class and per stream of lots (one supplier, one SKU): the
    caller keeps one :class:`SwitchingState` for each (stream, defect class) pair and feeds
    it only that pair's results, on original inspection (resubmitted lots do not count).

Variables, one lot (plating thickness against a minimum)
    :func:`variables_decision` is the ANSI/ASQ Z1.9 / ISO 3951-1 s-method with a single lower
    limit, form k: accept when Q_L = (x̄ - L) / s >= k. It needs normally distributed values.
    :func:`variables_plan` gives n and k from ANSI/ASQ Z1.9 Tables A-2 and B-1 (normal
    inspection). Only part of Table B-1 could be found in public sources: for letters G to P
    at AQL 2.5, 4.0, 6.5 and 10 it raises and asks for n and k from the purchased standard.
    ISO 3951-1's own form-k tables were not found in any public source; this module does not
    claim them, and Z1.9's code letters (Table A-2) are not those of ISO 2859-1.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from daq.quality.sampling_tables import (
    AQL_VALUES,
    CODE_LETTERS,
    INSPECTION_LEVELS,
    SAMPLE_SIZE,
    SAMPLE_SIZE_REDUCED,
    TABLE_I,
    TABLE_II_A,
    TABLE_II_B,
    TABLE_II_C,
    Z19_AQL_VALUES,
    Z19_INSPECTION_LEVELS,
    Z19_K_NORMAL,
    Z19_SAMPLE_SIZE,
    Z19_TABLE_A2,
)

__all__ = [
    "AQL_VALUES",
    "INSPECTION_LEVELS",
    "SEVERITIES",
    "Decision",
    "SamplingPlan",
    "Severity",
    "SwitchingState",
    "VariablesPlan",
    "VariablesResult",
    "code_letter",
    "decide",
    "next_state",
    "plan",
    "progress_text",
    "resume_inspection",
    "switching_score_after",
    "variables_decision",
    "variables_plan",
]

Severity = Literal["normal", "tightened", "reduced"]
Decision = Literal["accept", "reject"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)

#: Lots in the normal-to-tightened window ("2 out of 5 or fewer consecutive lots").
_WINDOW = 5
#: Consecutive accepted lots that end tightened inspection.
_TIGHTENED_EXIT = 5
#: Lots not accepted on tightened inspection that discontinue inspection.
_DISCONTINUE_AFTER = 5
#: Switching score that allows reduced inspection.
_SCORE_FOR_REDUCED = 30

_UP: Final = "↑"
_DOWN: Final = "↓"
_BLANK: Final = "·"
_UNKNOWN: Final = "?"

# A parsed master-table cell: (Ac, Re), an arrow, or None where nothing is printed.
_Cell = tuple[int, int] | Literal["↑", "↓"] | None


def _parse_row(row: str) -> tuple[_Cell, ...]:
    cells: list[_Cell] = []
    for token in row.split():
        if token == _UP:
            cells.append(_UP)
        elif token == _DOWN:
            cells.append(_DOWN)
        elif token == _BLANK:
            cells.append(None)
        else:
            ac, re = token.split("/")
            cells.append((int(ac), int(re)))
    return tuple(cells)


def _parse_table(table: Mapping[str, str]) -> dict[str, tuple[_Cell, ...]]:
    return {letter: _parse_row(row) for letter, row in table.items()}


_MASTER: Final[Mapping[Severity, Mapping[str, tuple[_Cell, ...]]]] = {
    "normal": _parse_table(TABLE_II_A),
    "tightened": _parse_table(TABLE_II_B),
    "reduced": _parse_table(TABLE_II_C),
}
_SIZES: Final[Mapping[Severity, Mapping[str, int]]] = {
    "normal": SAMPLE_SIZE,
    "tightened": SAMPLE_SIZE,
    "reduced": SAMPLE_SIZE_REDUCED,
}


def _aql_label(aql: float) -> str:
    """Write an AQL the way the tables print it: 0.010, 0.10, 1.0, 10, 1000."""
    if aql < 0.1:
        return f"{aql:.3f}"
    if aql < 1.0:
        return f"{aql:.2f}"
    if aql < 10.0:
        return f"{aql:.1f}"
    return f"{aql:g}"


_AQL_LIST: Final = ", ".join(_aql_label(a) for a in AQL_VALUES)


@dataclass(frozen=True, slots=True)
class SamplingPlan:
    """A single-sampling plan for one lot, as read from ISO 2859-1.

    ``code_letter`` is the row the arrows led to and whose sample size, Ac and Re apply;
    ``initial_code_letter`` is the one Table I gave for the lot size and level.
    ``full_inspection`` is True when the table's sample size is at least the lot size: then
    ``sample_size`` is the lot size, ``table_sample_size`` the table's n, and ``accept`` /
    ``reject`` are still the plan's Ac / Re, applied to the count over the whole lot.
    """

    lot_size: int
    aql: float
    level: str
    state: Severity
    initial_code_letter: str
    code_letter: str
    sample_size: int
    table_sample_size: int
    accept: int
    reject: int
    full_inspection: bool


def _aql_index(aql: float, values: Sequence[float]) -> int | None:
    if isinstance(aql, bool) or not isinstance(aql, int | float):
        return None
    for i, value in enumerate(values):
        if math.isclose(aql, value, rel_tol=1e-9, abs_tol=1e-12):
            return i
    return None


def _level_name(level: str, allowed: Sequence[str], standard: str) -> str:
    name = level.strip().upper() if isinstance(level, str) else level
    if name not in allowed:
        raise ValueError(
            f"inspection level {level!r} is not a {standard} level; "
            f"use one of: {', '.join(allowed)}"
        )
    return str(name)


def _check_lot_size(lot_size: int) -> None:
    if isinstance(lot_size, bool) or not isinstance(lot_size, int):
        raise ValueError(f"lot size must be a whole number of items, got {lot_size!r}")
    if lot_size < 2:
        raise ValueError(f"lot size must be at least 2 items, got {lot_size}")


def _row_letter(rows: tuple[tuple[int, int | None, str], ...], lot_size: int, column: int) -> str:
    for low, high, letters in rows:
        if lot_size >= low and (high is None or lot_size <= high):
            return letters.split()[column]
    # Unreachable for lot_size >= 2: the first row starts at 2 and the last has no end.
    raise ValueError(f"lot size {lot_size} is outside the table")


def code_letter(lot_size: int, level: str = "II") -> str:
    """Return the ISO 2859-1 Table I sample size code letter for a lot size and level."""
    _check_lot_size(lot_size)
    name = _level_name(level, INSPECTION_LEVELS, "ISO 2859-1")
    return _row_letter(TABLE_I, lot_size, INSPECTION_LEVELS.index(name))


def _resolve(state: Severity, letter: str, column: int) -> tuple[str, int, int]:
    """Follow the arrows from (letter, column) to a plan: (letter, Ac, Re)."""
    rows = _MASTER[state]
    order = [row for row in (*CODE_LETTERS, "S") if row in rows]
    i = order.index(letter)
    while 0 <= i < len(order):
        cell = rows[order[i]][column]
        if cell == _DOWN:
            i += 1
        elif cell == _UP:
            i -= 1
        elif cell is None:
            break
        else:
            return order[i], cell[0], cell[1]
    # The tables are tested so that every arrow ends on a plan; this is a data error.
    raise RuntimeError(f"table II ({state}) has no plan for letter {letter}, column {column}")


def plan(
    lot_size: int,
    aql: float,
    level: str = "II",
    state: Severity = "normal",
) -> SamplingPlan:
    """Return the ISO 2859-1 single-sampling plan for a lot.

    ``aql`` must be one of the preferred values (0.010 ... 1000; above 10 it means
    nonconformities per 100 items). ``level`` is one of S-1, S-2, S-3, S-4, I, II, III.
    Raises ``ValueError`` with the valid values when an input is not in the tables.
    """
    _check_lot_size(lot_size)
    name = _level_name(level, INSPECTION_LEVELS, "ISO 2859-1")
    column = _aql_index(aql, AQL_VALUES)
    if column is None:
        raise ValueError(
            f"AQL {aql!r} is not an ISO 2859-1 preferred value; use one of: {_AQL_LIST}"
        )
    if state not in SEVERITIES:
        raise ValueError(
            f"inspection severity {state!r} is not known; use one of: {', '.join(SEVERITIES)}"
        )
    initial = code_letter(lot_size, name)
    final, ac, re = _resolve(state, initial, column)
    table_n = _SIZES[state][final]
    full = table_n >= lot_size
    return SamplingPlan(
        lot_size=lot_size,
        aql=AQL_VALUES[column],
        level=name,
        state=state,
        initial_code_letter=initial,
        code_letter=final,
        sample_size=lot_size if full else table_n,
        table_sample_size=table_n,
        accept=ac,
        reject=re,
        full_inspection=full,
    )


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number, 0 or more, got {value!r}")


def decide(plan: SamplingPlan, defects_found: int) -> Decision:
    """Accept when the count of nonconforming items (or nonconformities) is at most Ac."""
    _check_count("defects found", defects_found)
    return "accept" if defects_found <= plan.accept else "reject"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def progress_text(plan: SamplingPlan, inspected: int, defects: int) -> str:
    """Plain-words status of a lot under inspection, for ``daq lot status``.

    ``"32 of 50 samples; 1 defect; accept ≤ 3, reject ≥ 4"`` while undecided;
    ``"... ; rejected (reject ≥ 4)"`` as soon as the count reaches Re (more items cannot
    change that); ``"... ; accepted (accept ≤ 3)"`` once every sample is inspected.
    """
    _check_count("items inspected", inspected)
    _check_count("defects", defects)
    if inspected > plan.sample_size:
        raise ValueError(
            f"items inspected ({inspected}) is more than the sample size ({plan.sample_size})"
        )
    unit = "items (100 % inspection)" if plan.full_inspection else "samples"
    head = f"{inspected} of {plan.sample_size} {unit}; {_plural(defects, 'defect')}"
    if defects >= plan.reject:
        return f"{head}; rejected (reject ≥ {plan.reject})"
    if inspected == plan.sample_size:
        return f"{head}; accepted (accept ≤ {plan.accept})"
    return f"{head}; accept ≤ {plan.accept}, reject ≥ {plan.reject}"


# ---------------------------------------------------------------------------------------------
# Switching rules


@dataclass(frozen=True, slots=True)
class SwitchingState:
    """Where one stream of lots (one supplier/SKU, one defect class) stands in the scheme.

    The default value is the start of a scheme: normal inspection, nothing counted yet.
    ``recent_results`` holds the last results on normal inspection (True = accepted), at
    most five, for the 2-in-5 rule. ``consecutive_accepted`` counts accepted lots in a row
    under the current severity. ``not_accepted_on_tightened`` counts lots not accepted since
    tightened inspection began. ``discontinued`` means acceptance inspection has stopped
    until the supplier's corrective action is accepted (see :func:`resume_inspection`).
    """

    state: Severity = "normal"
    consecutive_accepted: int = 0
    recent_results: tuple[bool, ...] = ()
    switching_score: int = 0
    not_accepted_on_tightened: int = 0
    discontinued: bool = False


def _one_step_tighter_accept(plan: SamplingPlan) -> int | None:
    """Ac of the normal plan at the next smaller AQL, same (final) code letter and sample."""
    column = _aql_index(plan.aql, AQL_VALUES)
    if column is None or column == 0:
        return None
    cell = _MASTER["normal"][plan.code_letter][column - 1]
    # For Ac >= 2 the cell to the left in the same row is always a plan with the same sample
    # size (checked by the tests); an arrow would mean another sample, so no comparison.
    return cell[0] if isinstance(cell, tuple) else None


def switching_score_after(
    score: int, plan: SamplingPlan, accepted: bool, defects_found: int
) -> int:
    """Update the ISO 2859-1 switching score after one lot on original normal inspection."""
    _check_count("defects found", defects_found)
    if plan.accept >= 2:
        tighter = _one_step_tighter_accept(plan)
        if accepted and tighter is not None and defects_found <= tighter:
            return score + 3
        return 0
    return score + 2 if accepted else 0


def _fresh(state: Severity) -> SwitchingState:
    return SwitchingState(state=state)


def next_state(
    state: SwitchingState,
    accepted: bool,
    plan: SamplingPlan,
    defects_found: int,
    *,
    production_steady: bool = True,
    authority_approves_reduced: bool = True,
) -> SwitchingState:
    """Return the switching state after one lot judged on original inspection.

    ``plan`` is the plan the lot was inspected with; it must be for the stream's current
    severity. ``accepted`` is the lot decision (normally ``decide(plan, defects_found) ==
    "accept"``); ``defects_found`` feeds the switching score. Raises ``ValueError`` for a
    discontinued stream or a plan of another severity.
    """
    if state.discontinued:
        raise ValueError(
            "acceptance inspection is discontinued for this stream (5 lots not accepted on "
            "tightened inspection); after the supplier's corrective action is accepted, "
            "call resume_inspection()"
        )
    if plan.state != state.state:
        raise ValueError(
            f"the plan is for {plan.state} inspection but this stream is on "
            f"{state.state} inspection"
        )
    _check_count("defects found", defects_found)
    streak = state.consecutive_accepted + 1 if accepted else 0

    if state.state == "normal":
        window = (*state.recent_results, accepted)[-_WINDOW:]
        if not accepted and window.count(False) >= 2:
            return _fresh("tightened")
        score = switching_score_after(state.switching_score, plan, accepted, defects_found)
        if score >= _SCORE_FOR_REDUCED and production_steady and authority_approves_reduced:
            return _fresh("reduced")
        return SwitchingState(
            state="normal",
            consecutive_accepted=streak,
            recent_results=window,
            switching_score=score,
        )

    if state.state == "tightened":
        if accepted:
            if streak >= _TIGHTENED_EXIT:
                return _fresh("normal")
            return SwitchingState(
                state="tightened",
                consecutive_accepted=streak,
                not_accepted_on_tightened=state.not_accepted_on_tightened,
            )
        not_accepted = state.not_accepted_on_tightened + 1
        return SwitchingState(
            state="tightened",
            consecutive_accepted=0,
            not_accepted_on_tightened=not_accepted,
            discontinued=not_accepted >= _DISCONTINUE_AFTER,
        )

    # reduced
    if not accepted or not production_steady or not authority_approves_reduced:
        return _fresh("normal")
    return SwitchingState(state="reduced", consecutive_accepted=streak)


def resume_inspection(state: SwitchingState) -> SwitchingState:
    """Resume a discontinued stream: ISO 2859-1 9.4 restarts it on tightened inspection."""
    if not state.discontinued:
        raise ValueError("this stream is not discontinued; there is nothing to resume")
    return _fresh("tightened")


# ---------------------------------------------------------------------------------------------
# Variables sampling (ANSI/ASQ Z1.9 / ISO 3951-1 s-method, single lower limit, form k)


@dataclass(frozen=True, slots=True)
class VariablesResult:
    """The s-method check of one sample against a lower specification limit ``lsl``.

    ``q_l`` is (mean - lsl) / s; the lot is accepted when ``q_l >= k``. When every value is
    the same (s = 0), ``q_l`` is +inf above the limit, -inf below it, and 0 exactly on it.
    """

    n: int
    mean: float
    s: float
    lsl: float
    q_l: float
    k: float
    accepted: bool

    @property
    def decision(self) -> Decision:
        """``"accept"`` or ``"reject"``."""
        return "accept" if self.accepted else "reject"


def variables_decision(values: Sequence[float], lsl: float, k: float) -> VariablesResult:
    """Judge a lot from its sample measurements against a lower limit, s-method form k.

    ``values`` are the measurements of the n sample items (all finite, at least 2); ``lsl``
    the lower specification limit in the same unit; ``k`` the acceptability constant for
    that n and AQL (from :func:`variables_plan` or the standard).
    """
    if len(values) < 2:
        raise ValueError(f"the s-method needs at least 2 measurements, got {len(values)}")
    numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("every measurement must be a finite number")
    if not (math.isfinite(lsl) and math.isfinite(k)):
        raise ValueError("the lower limit and k must be finite numbers")
    mean = statistics.fmean(numbers)
    s = statistics.stdev(numbers)
    if s > 0.0:
        q_l = (mean - lsl) / s
    elif mean > lsl:
        q_l = math.inf
    elif mean < lsl:
        q_l = -math.inf
    else:
        q_l = 0.0
    return VariablesResult(n=len(numbers), mean=mean, s=s, lsl=lsl, q_l=q_l, k=k, accepted=q_l >= k)


@dataclass(frozen=True, slots=True)
class VariablesPlan:
    """An ANSI/ASQ Z1.9 normal-inspection s-method plan: measure n items, accept if Q_L >= k.

    ``full_inspection`` is True when n is at least the lot size: then measure every item and
    judge each one against the limit; the k criterion says little about so small a lot.
    """

    lot_size: int
    aql: float
    level: str
    initial_code_letter: str
    code_letter: str
    sample_size: int
    k: float
    full_inspection: bool


def _parse_k_row(row: str) -> tuple[float | Literal["↓"] | None, ...]:
    cells: list[float | Literal["↓"] | None] = []
    for token in row.split():
        if token == _DOWN:
            cells.append(_DOWN)
        elif token == _UNKNOWN:
            cells.append(None)
        else:
            cells.append(float(token))
    return tuple(cells)


_Z19_K: Final = {letter: _parse_k_row(row) for letter, row in Z19_K_NORMAL.items()}
_Z19_LETTERS: Final = tuple(Z19_K_NORMAL)


def variables_plan(lot_size: int, aql: float, level: str = "II") -> VariablesPlan:
    """Return n and k for ANSI/ASQ Z1.9, s-method, single limit, form k, normal inspection.

    ``aql`` is one of 0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5, 10 (percent
    nonconforming); ``level`` one of S-3, S-4, I, II, III. Raises ``ValueError`` for other
    values, and for the Table B-1 cells we could not find in a public source (letters G-P at
    AQL 2.5 and above): then take n and k from the standard and call
    :func:`variables_decision` directly.
    """
    _check_lot_size(lot_size)
    name = _level_name(level, Z19_INSPECTION_LEVELS, "ANSI/ASQ Z1.9")
    column = _aql_index(aql, Z19_AQL_VALUES)
    if column is None:
        listed = ", ".join(_aql_label(a) for a in Z19_AQL_VALUES)
        raise ValueError(f"AQL {aql!r} is not in ANSI/ASQ Z1.9 Table B-1; use one of: {listed}")
    initial = _row_letter(Z19_TABLE_A2, lot_size, Z19_INSPECTION_LEVELS.index(name))
    i = _Z19_LETTERS.index(initial)
    cell = _Z19_K[initial][column]
    while cell == _DOWN:
        i += 1
        cell = _Z19_K[_Z19_LETTERS[i]][column]
    final = _Z19_LETTERS[i]
    if cell is None:
        where = f"code letter {final} at AQL {_aql_label(Z19_AQL_VALUES[column])}"
        raise ValueError(
            f"k for ANSI/ASQ Z1.9 {where} was not found in any public source we could check; "
            "take n and k from your copy of Z1.9 Table B-1 and call variables_decision() "
            "with them"
        )
    n = Z19_SAMPLE_SIZE[final]
    return VariablesPlan(
        lot_size=lot_size,
        aql=Z19_AQL_VALUES[column],
        level=name,
        initial_code_letter=initial,
        code_letter=final,
        sample_size=n,
        k=cell,
        full_inspection=n >= lot_size,
    )
