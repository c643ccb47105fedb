import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daq.quality import sampling_tables as tables
from daq.quality.sampling import (
    AQL_VALUES,
    INSPECTION_LEVELS,
    SEVERITIES,
    SamplingPlan,
    SwitchingState,
    code_letter,
    decide,
    next_state,
    plan,
    progress_text,
    resume_inspection,
    switching_score_after,
    variables_decision,
    variables_plan,
)

# ---------------------------------------------------------------------------------------------
# Table I

# Level II, every row of the domain notes' table (section 4): (low, high, letter, n).
LEVEL_II_ROWS = [
    (2, 8, "A", 2),
    (9, 15, "B", 3),
    (16, 25, "C", 5),
    (26, 50, "D", 8),
    (51, 90, "E", 13),
    (91, 150, "F", 20),
    (151, 280, "G", 32),
    (281, 500, "H", 50),
    (501, 1200, "J", 80),
    (1201, 3200, "K", 125),
    (3201, 10000, "L", 200),
    (10001, 35000, "M", 315),
    (35001, 150000, "N", 500),
    (150001, 500000, "P", 800),
    (500001, 10_000_000, "Q", 1250),
]


@pytest.mark.parametrize(("low", "high", "letter", "n"), LEVEL_II_ROWS)
def test_level_ii_code_letters(low, high, letter, n):
    assert code_letter(low) == letter
    assert code_letter(high) == letter
    assert tables.SAMPLE_SIZE[letter] == n


# Special and general levels I/III, points on which AQLSchemes, GB/T 2828.1 and
# garment-aql-calculator agree.
@pytest.mark.parametrize(
    ("lot", "level", "letter"),
    [
        (8, "III", "B"),
        (20, "S-3", "B"),
        (20, "S-2", "A"),
        (50, "S-1", "A"),
        (50, "S-2", "B"),
        (50, "S-4", "C"),
        (51, "S-1", "B"),
        (150, "S-4", "D"),
        (1000, "S-1", "C"),
        (1000, "S-2", "C"),
        (1000, "S-3", "E"),
        (1000, "S-4", "F"),
        (1000, "I", "G"),
        (1000, "III", "K"),
        (3201, "S-2", "D"),
        (35001, "S-3", "G"),
        (500000, "I", "M"),
        (600000, "S-1", "D"),
        (600000, "S-2", "E"),
        (600000, "S-3", "H"),
        (600000, "S-4", "K"),
        (600000, "I", "N"),
        (600000, "III", "R"),
    ],
)
def test_code_letters_other_levels(lot, level, letter):
    assert code_letter(lot, level) == letter


def test_special_levels_are_not_offsets_of_general_levels():
    # The gap between S-4 and II changes along the table: 0 letters at 2-8, 6 at 500001+.
    letters = tables.CODE_LETTERS
    gaps = {
        letters.index(code_letter(lot, "II")) - letters.index(code_letter(lot, "S-4"))
        for lot in (5, 40, 400, 2000, 600000)
    }
    assert len(gaps) > 2


def test_letters_never_decrease_with_lot_size():
    for level in INSPECTION_LEVELS:
        order = [tables.CODE_LETTERS.index(code_letter(low, level)) for low, *_ in tables.TABLE_I]
        assert order == sorted(order), level


# ---------------------------------------------------------------------------------------------
# Table II-A (normal)

# One (lot size, level) per code letter, with the lot large enough that no plan in the domain
# notes' excerpt triggers 100 % inspection.
LOT_FOR_LETTER = {
    "A": (50, "S-1"),
    "B": (500, "S-1"),
    "C": (35000, "S-1"),
    "D": (100000, "S-1"),
    "E": (500, "S-4"),
    "F": (1200, "S-4"),
    "G": (10000, "S-4"),
    "H": (35000, "S-4"),
    "J": (500000, "S-4"),
    "K": (600000, "S-4"),
    "L": (150000, "I"),
    "M": (500000, "I"),
    "N": (600000, "I"),
    "P": (500000, "II"),
    "Q": (600000, "II"),
    "R": (600000, "III"),
}


def plan_for(letter, aql, state="normal"):
    lot, level = LOT_FOR_LETTER[letter]
    p = plan(lot, aql, level, state)
    assert p.initial_code_letter == letter
    assert not p.full_inspection
    return p


# The domain notes' excerpt of Table II-A, cell by cell: letter -> five cells at
# AQL 0.65, 1.0, 2.5, 4.0, 6.5, each (final letter, n, Ac, Re).
EXCERPT_AQLS = (0.65, 1.0, 2.5, 4.0, 6.5)
EXCERPT = {
    "A": [("F", 20, 0, 1), ("E", 13, 0, 1), ("C", 5, 0, 1), ("B", 3, 0, 1), ("A", 2, 0, 1)],
    "B": [("F", 20, 0, 1), ("E", 13, 0, 1), ("C", 5, 0, 1), ("B", 3, 0, 1), ("A", 2, 0, 1)],
    "C": [("F", 20, 0, 1), ("E", 13, 0, 1), ("C", 5, 0, 1), ("B", 3, 0, 1), ("D", 8, 1, 2)],
    "D": [("F", 20, 0, 1), ("E", 13, 0, 1), ("C", 5, 0, 1), ("E", 13, 1, 2), ("D", 8, 1, 2)],
    "E": [("F", 20, 0, 1), ("E", 13, 0, 1), ("F", 20, 1, 2), ("E", 13, 1, 2), ("E", 13, 2, 3)],
    "F": [("F", 20, 0, 1), ("E", 13, 0, 1), ("F", 20, 1, 2), ("F", 20, 2, 3), ("F", 20, 3, 4)],
    "G": [("F", 20, 0, 1), ("H", 50, 1, 2), ("G", 32, 2, 3), ("G", 32, 3, 4), ("G", 32, 5, 6)],
    "H": [("J", 80, 1, 2), ("H", 50, 1, 2), ("H", 50, 3, 4), ("H", 50, 5, 6), ("H", 50, 7, 8)],
    "J": [("J", 80, 1, 2), ("J", 80, 2, 3), ("J", 80, 5, 6), ("J", 80, 7, 8), ("J", 80, 10, 11)],
    "K": [
        ("K", 125, 2, 3),
        ("K", 125, 3, 4),
        ("K", 125, 7, 8),
        ("K", 125, 10, 11),
        ("K", 125, 14, 15),
    ],
    "L": [
        ("L", 200, 3, 4),
        ("L", 200, 5, 6),
        ("L", 200, 10, 11),
        ("L", 200, 14, 15),
        ("L", 200, 21, 22),
    ],
    "M": [
        ("M", 315, 5, 6),
        ("M", 315, 7, 8),
        ("M", 315, 14, 15),
        ("M", 315, 21, 22),
        ("L", 200, 21, 22),
    ],
    "N": [
        ("N", 500, 7, 8),
        ("N", 500, 10, 11),
        ("N", 500, 21, 22),
        ("M", 315, 21, 22),
        ("L", 200, 21, 22),
    ],
    "P": [
        ("P", 800, 10, 11),
        ("P", 800, 14, 15),
        ("N", 500, 21, 22),
        ("M", 315, 21, 22),
        ("L", 200, 21, 22),
    ],
    "Q": [
        ("Q", 1250, 14, 15),
        ("Q", 1250, 21, 22),
        ("N", 500, 21, 22),
        ("M", 315, 21, 22),
        ("L", 200, 21, 22),
    ],
}


@pytest.mark.parametrize(
    ("letter", "aql", "expected"),
    [
        (letter, aql, cell)
        for letter, cells in EXCERPT.items()
        for aql, cell in zip(EXCERPT_AQLS, cells, strict=True)
    ],
)
def test_table_ii_a_excerpt(letter, aql, expected):
    p = plan_for(letter, aql)
    assert (p.code_letter, p.sample_size, p.accept, p.reject) == expected


@pytest.mark.parametrize(
    ("lot", "aql", "letter", "n", "ac", "re"),
    [
        (400, 1.0, "H", 50, 1, 2),
        (400, 2.5, "H", 50, 3, 4),
        (400, 4.0, "H", 50, 5, 6),
        (1000, 2.5, "J", 80, 5, 6),
        (1000, 4.0, "J", 80, 7, 8),
        (5000, 2.5, "L", 200, 10, 11),
        (5000, 4.0, "L", 200, 14, 15),
        (20000, 4.0, "M", 315, 21, 22),
        (100000, 2.5, "N", 500, 21, 22),
    ],
)
def test_table_ii_a_published_points(lot, aql, letter, n, ac, re):
    p = plan(lot, aql)
    assert (p.code_letter, p.sample_size, p.accept, p.reject) == (letter, n, ac, re)


@pytest.mark.parametrize(
    ("lot", "aql", "initial", "final", "n", "ac"),
    [
        (8, 2.5, "A", "C", 5, 0),  # A at 2.5: arrow down to C
        (40, 4.0, "D", "E", 13, 1),  # D at 4.0: arrow down to E
        (200, 1.0, "G", "H", 50, 1),  # G at 1.0: arrow down to H
        (20, 4.0, "C", "B", 3, 0),  # C at 4.0: arrow up to B
        (600000, 0.015, "Q", "P", 800, 0),  # R-side: Q at 0.015 arrow up to P (AIR)
        (8, 10.0, "A", "C", 5, 1),  # A at 10: arrow down to C (AIR; NIBS draws an up-arrow)
    ],
)
def test_arrows_use_the_target_plans_sample_size(lot, aql, initial, final, n, ac):
    p = plan(lot, aql)
    assert (p.initial_code_letter, p.code_letter, p.sample_size, p.accept) == (
        initial,
        final,
        n,
        ac,
    )
    assert p.reject == ac + 1


@pytest.mark.parametrize("lot", [281, 400, 500])
def test_public_bug_lot_281_to_500_aql_2_5_is_3_4_not_7_8(lot):
    p = plan(lot, 2.5, "II")
    assert (p.code_letter, p.sample_size, p.accept, p.reject) == ("H", 50, 3, 4)


# ---------------------------------------------------------------------------------------------
# 100 % inspection


def test_full_inspection_when_sample_size_reaches_lot_size():
    p = plan(8, 0.65)  # A, arrow down to F: n = 20 > 8
    assert p.full_inspection
    assert (p.code_letter, p.table_sample_size, p.sample_size) == ("F", 20, 8)
    assert (p.accept, p.reject) == (0, 1)


def test_full_inspection_at_equal_sizes_keeps_ac_re():
    p = plan(5, 10.0)  # A at 10: arrow down to C, n = 5 = lot, Ac 1
    assert p.full_inspection
    assert (p.sample_size, p.accept, p.reject) == (5, 1, 2)
    assert plan(2, 6.5).full_inspection  # A, n = 2 = lot


def test_no_full_inspection_below_lot_size():
    p = plan(6, 2.5)
    assert not p.full_inspection
    assert p.sample_size == p.table_sample_size == 5


# ---------------------------------------------------------------------------------------------
# Tables II-B (tightened) and II-C (reduced)


@pytest.mark.parametrize(
    ("letter", "aql", "final", "n", "ac"),
    [
        ("H", 2.5, "H", 50, 2),  # AQLSchemes, GB, NIBS
        ("J", 4.0, "J", 80, 5),  # AQLSchemes, GB, NIBS
        ("K", 1.0, "K", 125, 2),
        ("G", 0.65, "G", 32, 0),
        ("G", 1.0, "J", 80, 1),  # two down-arrows in a row: G, H -> J
        ("L", 6.5, "L", 200, 18),
        ("M", 6.5, "L", 200, 18),
        ("Q", 0.025, "S", 3150, 1),  # only way into row S (AQLSchemes, GB, AIR)
        ("R", 0.025, "S", 3150, 1),
        ("R", 0.010, "R", 2000, 0),
        ("A", 10.0, "D", 8, 1),  # disputed: GB/T 2828.1 copy gives A 2 0/1 (see tables)
        ("A", 40.0, "A", 2, 1),
        ("B", 1000.0, "B", 3, 41),
    ],
)
def test_table_ii_b_points(letter, aql, final, n, ac):
    p = plan_for(letter, aql, "tightened")
    assert (p.code_letter, p.table_sample_size, p.accept, p.reject) == (final, n, ac, ac + 1)


@pytest.mark.parametrize(
    ("lot", "level", "aql", "initial", "final", "n", "ac"),
    [
        (125, "III", 1.0, "G", "J", 32, 1),  # AIR, ISO version, Example 3
        (600000, "III", 0.015, "R", "P", 315, 0),  # AIR: reduced R at 0.015 -> P 315 0/1
        (1000, "III", 1.0, "K", "K", 50, 2),  # GB/T 2828.1 copy
        (20000, "II", 6.5, "M", "L", 80, 10),  # GB/T 2828.1 copy
        (400, "II", 2.5, "H", "H", 20, 2),
        (600000, "II", 0.025, "Q", "N", 200, 0),  # long up-arrow over P, Q, R
    ],
)
def test_table_ii_c_points(lot, level, aql, initial, final, n, ac):
    p = plan(lot, aql, level, "reduced")
    assert (p.initial_code_letter, p.code_letter, p.sample_size, p.accept, p.reject) == (
        initial,
        final,
        n,
        ac,
        ac + 1,
    )


def test_reduced_table_has_no_gap_between_ac_and_re():
    # The 105E plan for H at AQL 1.0 reduced was n 20, 0/2; ISO 1999 goes on to J, 1/2.
    p = plan(400, 1.0, "II", "reduced")
    assert (p.code_letter, p.sample_size, p.accept, p.reject) == ("J", 32, 1, 2)


# ---------------------------------------------------------------------------------------------
# Structure of the tables, every cell


def test_every_row_has_26_cells():
    for table in (tables.TABLE_II_A, tables.TABLE_II_B, tables.TABLE_II_C):
        for letter, row in table.items():
            assert len(row.split()) == len(AQL_VALUES), letter


@pytest.mark.parametrize("state", SEVERITIES)
def test_every_cell_ends_on_a_plan(state):
    for letter, (lot, level) in LOT_FOR_LETTER.items():
        for aql in AQL_VALUES:
            p = plan(lot, aql, level, state)
            assert p.initial_code_letter == letter
            assert p.reject == p.accept + 1
            sizes = tables.SAMPLE_SIZE_REDUCED if state == "reduced" else tables.SAMPLE_SIZE
            assert p.table_sample_size == sizes[p.code_letter]


def test_one_step_tighter_plan_shares_the_sample():
    # The switching score compares with the plan one AQL to the left in the same row; for
    # every plan with Ac >= 2 that cell must be a plan, not an arrow.
    for letter, row in tables.TABLE_II_A.items():
        cells = row.split()
        for i, cell in enumerate(cells):
            if "/" in cell and int(cell.split("/")[0]) >= 2:
                assert "/" in cells[i - 1], (letter, AQL_VALUES[i])


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("aql", [3.0, 0.0, -1.0, 2.0, 1001.0])
def test_unknown_aql(aql):
    with pytest.raises(ValueError, match=r"preferred value; use one of: 0\.010, 0\.015.*1000"):
        plan(100, aql)


@pytest.mark.parametrize("level", ["IV", "S-5", "", "normal"])
def test_unknown_level(level):
    with pytest.raises(ValueError, match="use one of: S-1, S-2, S-3, S-4, I, II, III"):
        plan(100, 2.5, level)


def test_level_is_case_insensitive():
    assert plan(100, 2.5, "s-4").level == "S-4"
    assert plan(100, 2.5, " ii ").level == "II"


@pytest.mark.parametrize("lot", [1, 0, -5])
def test_lot_size_below_two(lot):
    with pytest.raises(ValueError, match="at least 2 items"):
        plan(lot, 2.5)


@pytest.mark.parametrize("lot", [2.5, "100", True])
def test_lot_size_not_a_whole_number(lot):
    with pytest.raises(ValueError, match="whole number"):
        plan(lot, 2.5)


def test_unknown_state():
    with pytest.raises(ValueError, match="use one of: normal, tightened, reduced"):
        plan(100, 2.5, "II", "loose")


# ---------------------------------------------------------------------------------------------
# Lot decision and status line


def test_decide():
    p = plan(400, 2.5)  # 3/4
    assert decide(p, 0) == "accept"
    assert decide(p, 3) == "accept"
    assert decide(p, 4) == "reject"
    assert decide(p, 40) == "reject"
    with pytest.raises(ValueError, match="whole number"):
        decide(p, -1)


@pytest.mark.parametrize(
    ("inspected", "defects", "text"),
    [
        (32, 1, "32 of 50 samples; 1 defect; accept ≤ 3, reject ≥ 4"),
        (0, 0, "0 of 50 samples; 0 defects; accept ≤ 3, reject ≥ 4"),
        (49, 3, "49 of 50 samples; 3 defects; accept ≤ 3, reject ≥ 4"),
        (50, 3, "50 of 50 samples; 3 defects; accepted (accept ≤ 3)"),
        (50, 0, "50 of 50 samples; 0 defects; accepted (accept ≤ 3)"),
        (20, 4, "20 of 50 samples; 4 defects; rejected (reject ≥ 4)"),
        (50, 7, "50 of 50 samples; 7 defects; rejected (reject ≥ 4)"),
    ],
)
def test_progress_text(inspected, defects, text):
    assert progress_text(plan(400, 2.5), inspected, defects) == text


def test_progress_text_full_inspection():
    text = progress_text(plan(8, 0.65), 8, 0)
    assert text == "8 of 8 items (100 % inspection); 0 defects; accepted (accept ≤ 0)"


def test_progress_text_rejects_impossible_counts():
    p = plan(400, 2.5)
    with pytest.raises(ValueError, match="more than the sample size"):
        progress_text(p, 51, 0)
    with pytest.raises(ValueError, match="whole number"):
        progress_text(p, 10, -1)


# ---------------------------------------------------------------------------------------------
# Switching rules

H_25 = plan(400, 2.5)  # H, n 50, 3/4; one step tighter (AQL 1.5) is 2/3
H_10 = plan(400, 1.0)  # H, n 50, 1/2
PLANS = {state: plan(400, 2.5, "II", state) for state in SEVERITIES}


def run(results, state=None, **flags):
    """Feed (accepted, defects) pairs, each with the plan of the stream's current severity."""
    s = state or SwitchingState()
    for accepted, defects in results:
        s = next_state(s, accepted, PLANS[s.state], defects, **flags)
    return s


OK = (True, 0)
BAD = (False, 9)


def test_start_is_normal():
    s = SwitchingState()
    assert (s.state, s.switching_score, s.discontinued) == ("normal", 0, False)


def test_normal_to_tightened_two_of_two():
    assert run([BAD]).state == "normal"
    assert run([BAD, BAD]).state == "tightened"


def test_normal_to_tightened_two_of_five():
    assert run([BAD, OK, OK, OK, OK, BAD]).state == "normal"  # six lots apart
    assert run([BAD, OK, OK, OK, BAD]).state == "tightened"  # within five
    assert run([OK, BAD, OK, BAD]).state == "tightened"


def test_tightened_to_normal_after_five_accepted():
    s = run([BAD, BAD])
    assert run([OK] * 4, s).state == "tightened"
    assert run([OK] * 5, s).state == "normal"
    assert run([OK, OK, BAD, OK, OK, OK, OK], s).state == "tightened"  # streak broken
    back = run([OK] * 5, s)
    assert back == SwitchingState()  # score, window and counters start again


def test_normal_to_reduced_with_switching_score():
    # Ac = 3: +3 per lot accepted also at AQL 1.5 (Ac 2). Ten such lots reach 30.
    s = run([(True, 2)] * 9)
    assert (s.state, s.switching_score) == ("normal", 27)
    s = run([(True, 2)], s)
    assert s.state == "reduced"
    assert s.switching_score == 0


def test_switching_score_resets_when_not_accepted_one_step_tighter():
    s = run([(True, 2)] * 9)
    s = run([(True, 3)], s)  # accepted at 2.5 (Ac 3) but not at 1.5 (Ac 2)
    assert (s.state, s.switching_score) == ("normal", 0)


def test_switching_score_for_ac_zero_or_one():
    assert switching_score_after(10, H_10, accepted=True, defects_found=1) == 12
    assert switching_score_after(10, H_10, accepted=False, defects_found=2) == 0
    s = SwitchingState()
    for _ in range(14):
        s = next_state(s, True, H_10, 0)
    assert (s.state, s.switching_score) == ("normal", 28)
    assert next_state(s, True, H_10, 1).state == "reduced"


def test_switching_score_for_ac_two_or_more():
    assert switching_score_after(6, H_25, accepted=True, defects_found=2) == 9
    assert switching_score_after(6, H_25, accepted=True, defects_found=3) == 0
    assert switching_score_after(6, H_25, accepted=False, defects_found=4) == 0


def test_reduced_needs_steady_production_and_approval():
    s = run([(True, 0)] * 12, production_steady=False)
    assert (s.state, s.switching_score) == ("normal", 36)
    s = run([(True, 0)] * 12, authority_approves_reduced=False)
    assert s.state == "normal"
    assert run([OK], s).state == "reduced"


def test_reduced_to_normal():
    reduced = run([(True, 0)] * 10)
    assert reduced.state == "reduced"
    assert run([OK] * 20, reduced).state == "reduced"
    assert run([BAD], reduced) == SwitchingState()
    assert run([OK], reduced, production_steady=False).state == "normal"
    assert run([OK], reduced, authority_approves_reduced=False).state == "normal"


def test_discontinue_after_five_not_accepted_on_tightened():
    tightened = run([BAD, BAD])
    s = run([BAD, OK, BAD, OK, OK, BAD, BAD], tightened)
    assert (s.state, s.not_accepted_on_tightened, s.discontinued) == ("tightened", 4, False)
    s = run([BAD], s)
    assert s.discontinued
    with pytest.raises(ValueError, match="discontinued"):
        run([OK], s)
    resumed = resume_inspection(s)
    assert (resumed.state, resumed.discontinued, resumed.not_accepted_on_tightened) == (
        "tightened",
        False,
        0,
    )
    with pytest.raises(ValueError, match="not discontinued"):
        resume_inspection(resumed)


def test_count_on_tightened_starts_again_after_returning_to_normal():
    s = run([BAD, BAD, BAD, BAD, BAD, BAD])  # two to tighten, four on tightened
    assert s.not_accepted_on_tightened == 4
    s = run([OK] * 5 + [BAD, BAD, BAD], s)  # back to normal, tightened again, one more
    assert (s.state, s.not_accepted_on_tightened, s.discontinued) == ("tightened", 1, False)


def test_plan_of_another_severity_is_refused():
    with pytest.raises(ValueError, match="plan is for tightened inspection"):
        next_state(SwitchingState(), True, PLANS["tightened"], 0)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 8)), max_size=60))
def test_switching_invariants(results):
    s = SwitchingState()
    for accepted, defects in results:
        if s.discontinued:
            s = resume_inspection(s)
        s = next_state(s, accepted, PLANS[s.state], defects)
        assert s.state in SEVERITIES
        assert s.switching_score >= 0
        assert len(s.recent_results) <= 5
        assert s.not_accepted_on_tightened <= 5
        assert not s.discontinued or s.state == "tightened"
        if s.state != "normal":
            assert s.switching_score == 0
            assert s.recent_results == ()


# ---------------------------------------------------------------------------------------------
# Variables sampling (Z1.9 / ISO 3951-1 s-method, form k)


def test_variables_decision_statistics():
    r = variables_decision([2.9, 3.1, 3.0, 2.8, 3.2], lsl=2.5, k=1.5)
    assert r.n == 5
    assert r.mean == pytest.approx(3.0)
    assert r.s == pytest.approx(0.158113883)
    assert r.q_l == pytest.approx(0.5 / 0.158113883)
    assert r.accepted
    assert r.decision == "accept"


def test_variables_decision_rejects_below_k():
    r = variables_decision([2.6, 2.9, 2.5, 3.0, 2.7], lsl=2.5, k=1.65)
    assert r.q_l < 1.65
    assert r.decision == "reject"


def test_variables_decision_accepts_exactly_at_k():
    values = [1.0, 3.0]  # mean 2, s = sqrt(2)
    r = variables_decision(values, lsl=2.0 - 1.5 * math.sqrt(2.0), k=1.5)
    assert r.q_l == pytest.approx(1.5)
    assert r.accepted == (r.q_l >= 1.5)


@pytest.mark.parametrize(
    ("values", "q_l", "accepted"),
    [([3.0, 3.0, 3.0], math.inf, True), ([2.0, 2.0], -math.inf, False), ([2.5, 2.5], 0.0, False)],
)
def test_variables_decision_zero_spread(values, q_l, accepted):
    r = variables_decision(values, lsl=2.5, k=1.0)
    assert r.s == 0.0
    assert r.q_l == q_l
    assert r.accepted is accepted


@pytest.mark.parametrize(
    ("values", "lsl", "k", "message"),
    [
        ([3.0], 2.5, 1.0, "at least 2"),
        ([], 2.5, 1.0, "at least 2"),
        ([3.0, math.nan], 2.5, 1.0, "finite"),
        ([3.0, 3.1], math.inf, 1.0, "finite"),
    ],
)
def test_variables_decision_bad_input(values, lsl, k, message):
    with pytest.raises(ValueError, match=message):
        variables_decision(values, lsl, k)


@pytest.mark.parametrize(
    ("lot", "aql", "letter", "final", "n", "k"),
    [
        (450, 1.0, "I", "I", 25, 1.85),  # Z1.9 Table B-1 as transcribed by mcasquilho
        (400, 1.0, "H", "H", 20, 1.82),
        (40, 1.0, "D", "D", 5, 1.53),
        (1000, 0.65, "J", "J", 35, 2.03),
        (100, 1.5, "F", "F", 10, 1.58),
        (100, 4.0, "F", "F", 10, 1.23),
        (10, 0.65, "B", "D", 5, 1.65),  # arrows down from B through C
        (100, 0.10, "F", "G", 15, 2.42),
        (5, 2.5, "B", "B", 3, 1.12),
        (600000, 0.40, "P", "P", 200, 2.33),
    ],
)
def test_variables_plan(lot, aql, letter, final, n, k):
    p = variables_plan(lot, aql)
    assert (p.initial_code_letter, p.code_letter, p.sample_size) == (letter, final, n)
    assert p.k == pytest.approx(k)
    assert p.full_inspection is (n >= lot)


@pytest.mark.parametrize(
    ("lot", "level", "letter"),
    [(400, "II", "H"), (401, "II", "I"), (600000, "S-3", "H"), (8, "III", "C"), (500, "I", "G")],
)
def test_z19_code_letters(lot, level, letter):
    assert variables_plan(lot, 1.0, level).initial_code_letter == letter


def test_variables_plan_refuses_unconfirmed_cells():
    with pytest.raises(ValueError, match=r"code letter I at AQL 2\.5 was not found"):
        variables_plan(450, 2.5)


def test_variables_plan_bad_input():
    with pytest.raises(ValueError, match=r"use one of: 0\.10, 0\.15"):
        variables_plan(450, 0.065)
    with pytest.raises(ValueError, match="use one of: S-3, S-4, I, II, III"):
        variables_plan(450, 1.0, "S-1")
    with pytest.raises(ValueError, match="at least 2"):
        variables_plan(1, 1.0)


# ---------------------------------------------------------------------------------------------
# Properties

lots = st.integers(min_value=2, max_value=10_000_000)
aqls = st.sampled_from(AQL_VALUES)
levels = st.sampled_from(INSPECTION_LEVELS)
states = st.sampled_from(SEVERITIES)


@given(lots, aqls, levels, states)
def test_plan_never_raises_for_valid_inputs(lot, aql, level, state):
    p = plan(lot, aql, level, state)
    assert isinstance(p, SamplingPlan)
    assert 2 <= p.sample_size <= lot or p.full_inspection
    assert p.sample_size == min(lot, p.table_sample_size)


@given(lots, aqls, levels, states)
def test_reject_is_accept_plus_one(lot, aql, level, state):
    p = plan(lot, aql, level, state)
    assert p.reject == p.accept + 1


@given(lots, lots, aqls, levels)
def test_sample_size_never_decreases_with_lot_size(a, b, aql, level):
    small, large = sorted((a, b))
    assert plan(small, aql, level).sample_size <= plan(large, aql, level).sample_size


@given(lots, aqls, levels)
def test_tightened_never_looser_than_normal(lot, aql, level):
    normal = plan(lot, aql, level, "normal")
    tightened = plan(lot, aql, level, "tightened")
    if tightened.table_sample_size == normal.table_sample_size:
        assert tightened.accept <= normal.accept


def test_public_names():
    from daq.quality import sampling

    for name in sampling.__all__:
        assert hasattr(sampling, name), name
    for name in tables.__all__:
        assert hasattr(tables, name), name


def test_results_are_frozen():
    p = plan(400, 2.5)
    with pytest.raises(AttributeError):
        p.accept = 5
    with pytest.raises(AttributeError):
        SwitchingState().state = "reduced"


@pytest.mark.parametrize("aql", ["2.5", None, True, math.nan])
def test_aql_of_the_wrong_type(aql):
    with pytest.raises(ValueError, match="preferred value"):
        plan(100, aql)
