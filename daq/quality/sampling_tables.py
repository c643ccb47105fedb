"""Acceptance-sampling tables as data: ISO 2859-1:1999 attributes, ANSI/ASQ Z1.9 variables.

Nothing here computes a plan; :mod:`daq.quality.sampling` reads these tables. Every cell is
written out as it is printed in the standard, arrows included, so that a reviewer can hold
this file next to the printed page. Special inspection levels are their own columns of
Table I, not offsets of the general levels, and no cell is generated from the diagonal
pattern of the master tables.

Edition
    ISO 2859-1:1999 (second edition), whose tables are reproduced unchanged by its identical
    national adoptions GB/T 2828.1-2012, IS 2500 (Part 1):2000 and BS 6001-1:1999. Tables I,
    II-A and II-B are the same as in MIL-STD-105E / ANSI/ASQ Z1.4 (one disputed cell aside,
    see below). Table II-C is *not*: the 1999 revision "changed the reduced plans to
    eliminate the gap between the acceptance and rejection numbers" (BS 6001-1:1999
    foreword), so here every single-sampling cell has Re = Ac + 1. MIL-STD-105E keeps the old
    reduced table with a gap, and so, as far as public copies show, does ANSI/ASQ Z1.4-2003:
    the AQL Inspector's Rule's "ANSI version" still gives 0/2 for letter H reduced at AQL 1.0,
    and a copy of Z1.4-2003 still carries Table VIII (limit numbers for reduced inspection),
    i.e. the 105E normal-to-reduced rule rather than the ISO switching score.

Sources (public third-party copies; none is the standards body's own text)
    [AQLS]  J. S. Lawson, R package AQLSchemes 1.7-2, MIL-STD-105E tables, as mirrored in
            github.com/fjgonzalezmgt/AQLSchemesCust, R/AAZ14Single.R (Tables I, II-A, II-B,
            II-C of 105E, arrows already resolved to n/Ac/Re) and R/AAZ19.R (Z1.9).
    [GB]    GB/T 2828.1-2012 (IDT ISO 2859-1:1999) Tables 1, 2-A, 2-B, 2-C as transcribed in a
            public TypeScript QC tool (src/core/aql.ts, MASTER_2A_RAW/2B/2C, arrows resolved;
            the author states the cells were checked against the GB PDF, pp. 15-17).
    [NIBS]  www.nibs.org/FMOC/DPW_AC/AC-TABLE.ASC, ASCII tables "developed from MIL-STD-105E"
            (Table I level II; II-A and II-B for AQL 0.65 to 15, arrows drawn as text).
    [AIR]   AQL Inspector's Rule manual, aqlinspectorsrule.com (manual/notes.html, /below,
            Example 3 "Differences between ANSI and ISO versions").
    [GAC]   PyPI garment-aql-calculator 1.0.0 (Table I only; its Table II-A drops the arrows
            and keeps the original sample size, the same bug as the one noted in the domain
            notes, so it was not used for II-A).
    [JP]    A public Japanese MIL-STD-105E tool (js/aql-table.js, tests/check.js) that extracted
            Tables I and II-A/B/C from the 105E "legible copy" PDF (text layer and arrow
            vectors) and reports all 1,248 cells equal to [AQLS]; it lists three transcription
            errors in that copy (a "44 65" for 44/45, and two Table I rows).
    [BS]    BS 6001-1:1999 foreword (quoted on pinzhi.org): the list of 1999 changes.
    [DOM]   shared/domain/INSTRUMENTS_AND_STANDARDS.md section 4 (level II letters, II-A excerpt).
    [Z19T]  web.tecnico.ulisboa.pt/~mcasquilho/acad/cq/Z1.9.B1.html: ANSI/ASQ Z1.9 Table B-1
            (form k, s method, single limit), transcribed as text.
    [Z19C]  studylib.es/doc/9356105: ANSI/ASQ Z1.9-2008 Table A-2 (sample size code letters).

Cross-checks
    Table I      [AQLS], [GB] and [GAC] agree on all 15 x 7 cells; [DOM] agrees on level II;
                 a Russian GOST copy (base.garant.ru) agrees from lot size 16 upward.
    Table II-A   [AQLS] (105E) and [GB] (ISO 1999) agree on all 416 resolved cells (n, Ac, Re);
                 [DOM]'s excerpt and [NIBS] agree wherever they overlap, except [NIBS] draws
                 an up-arrow at letter A, AQL 10, which would point off the table: [AQLS],
                 [GB] and [AIR] ("for AQL 10 and code letter A use code letter C") give a
                 down-arrow, which is what is written here.
    Table II-B   [AQLS] and [GB] agree on 415 of 416 cells. They disagree at letter A, AQL 10:
                 [GB] gives A, n = 2, 0/1; [AQLS], [NIBS] and [AIR] ("for tightened inspection
                 use code letter D") give a down-arrow to D, n = 8, 1/2, and the ISO 1999
                 foreword lists no change to the tightened single plans. The down-arrow is
                 written here. UNCONFIRMED for the ISO edition: check this cell against a
                 purchased copy.
                 The extra row S (n = 3150) holds only the 1/2 plan at AQL 0.025, reached by
                 the down-arrows of letters Q and R ([AQLS], [GB], [AIR] agree).
    Table II-C   Only [GB] gives the complete ISO 1999 reduced table. Its sample sizes equal
                 those of [AQLS]'s 105E reduced table; [AIR]'s ISO version confirms letter G at
                 AQL 1.0 (arrows to J: n = 32, 1/2) and letter R at AQL 0.015 (arrow to P:
                 n = 315, 0/1). Every other II-C cell is UNCONFIRMED by a second source.
    Z1.9 k       [Z19T] gives every cell for normal AQL 0.10 to 1.5 and letters B-F for AQL 2.5
                 to 10; those are the values written here, arrows included. Converting the
                 Table B-3 M values of [AQLS]/AAZ19.R to k (exact relation for the s method)
                 reproduces every one of them to within 0.01 except letter J at AQL 0.10 (2.54
                 printed, 2.555 converted): that cell is UNCONFIRMED. [AQLS] fills some arrow
                 cells of letters B-F with plans of its own; [Z19T]'s arrows are used. For
                 letters G-P at AQL 2.5, 4.0, 6.5 and 10 no printed k was found (only [AQLS]'s
                 M values, which convert to k within about 0.01 but are not the printed
                 numbers), so those cells are written "?" and must come from a purchased Z1.9.
    Z1.9 Table A-2   [Z19C] and [AQLS]/AAZ19.R agree on all 16 x 5 cells.

These copies are good enough to design and test software against. They are not good enough
for a compliance claim: buy ISO 2859-1 and ANSI/ASQ Z1.9 and check the cells marked above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "AQL_VALUES",
    "CODE_LETTERS",
    "INSPECTION_LEVELS",
    "SAMPLE_SIZE",
    "SAMPLE_SIZE_REDUCED",
    "TABLE_I",
    "TABLE_II_A",
    "TABLE_II_B",
    "TABLE_II_C",
    "Z19_AQL_VALUES",
    "Z19_INSPECTION_LEVELS",
    "Z19_K_NORMAL",
    "Z19_SAMPLE_SIZE",
    "Z19_TABLE_A2",
]

#: The 26 columns of Tables II-A/B/C. Up to 10 an AQL may be read as percent nonconforming
#: or as nonconformities per 100 items; above 10 it is nonconformities per 100 items only.
AQL_VALUES: Final[tuple[float, ...]] = (
    0.010, 0.015, 0.025, 0.040, 0.065, 0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5,
    4.0, 6.5, 10.0, 15.0, 25.0, 40.0, 65.0, 100.0, 150.0, 250.0, 400.0, 650.0, 1000.0,
)  # fmt: skip

#: Rows of Tables II-A/B/C, top to bottom (I and O are not used). Row S exists in II-B only.
CODE_LETTERS: Final[str] = "ABCDEFGHJKLMNPQR"

#: The columns of Table I, in printed order.
INSPECTION_LEVELS: Final[tuple[str, ...]] = ("S-1", "S-2", "S-3", "S-4", "I", "II", "III")

#: Table I: (smallest lot, largest lot or None for "and over", code letters for the levels
#: in INSPECTION_LEVELS order).
TABLE_I: Final[tuple[tuple[int, int | None, str], ...]] = (
    #                S-1 S-2 S-3 S-4  I  II III
    (2, 8,           "A   A   A   A   A   A   B"),
    (9, 15,          "A   A   A   A   A   B   C"),
    (16, 25,         "A   A   B   B   B   C   D"),
    (26, 50,         "A   B   B   C   C   D   E"),
    (51, 90,         "B   B   C   C   C   E   F"),
    (91, 150,        "B   B   C   D   D   F   G"),
    (151, 280,       "B   C   D   E   E   G   H"),
    (281, 500,       "B   C   D   E   F   H   J"),
    (501, 1200,      "C   C   E   F   G   J   K"),
    (1201, 3200,     "C   D   E   G   H   K   L"),
    (3201, 10000,    "C   D   F   G   J   L   M"),
    (10001, 35000,   "C   D   F   H   K   M   N"),
    (35001, 150000,  "D   E   G   J   L   N   P"),
    (150001, 500000, "D   E   G   J   M   P   Q"),
    (500001, None,   "D   E   H   K   N   Q   R"),
)  # fmt: skip

#: Sample size by code letter, Tables II-A and II-B (S appears in II-B only).
SAMPLE_SIZE: Final[Mapping[str, int]] = {
    "A": 2, "B": 3, "C": 5, "D": 8, "E": 13, "F": 20, "G": 32, "H": 50, "J": 80,
    "K": 125, "L": 200, "M": 315, "N": 500, "P": 800, "Q": 1250, "R": 2000, "S": 3150,
}  # fmt: skip

#: Sample size by code letter, Table II-C (reduced inspection has its own series).
SAMPLE_SIZE_REDUCED: Final[Mapping[str, int]] = {
    "A": 2, "B": 2, "C": 2, "D": 3, "E": 5, "F": 8, "G": 13, "H": 20, "J": 32,
    "K": 50, "L": 80, "M": 125, "N": 200, "P": 315, "Q": 500, "R": 800,
}  # fmt: skip

# Tables II-A, II-B, II-C. Each row is the printed row for one code letter, left to right in
# AQL_VALUES order, one cell per column:
#   "Ac/Re"  the plan in that cell, with the row's sample size;
#   "↓"      use the first sampling plan below the arrow (and that plan's sample size);
#   "↑"      use the first sampling plan above the arrow (and that plan's sample size);
#   "·"      no plan printed (row S of II-B only).
# A row is split over two string literals only to fit the line length.

TABLE_II_A: Final[Mapping[str, str]] = {
    #    0.010 0.015 0.025 0.040 0.065 0.10  0.15  0.25  0.40  0.65  1.0   1.5   2.5
    #    4.0   6.5   10    15    25    40    65    100   150   250   400   650   1000
    "A": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31"
    ),
    "B": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31 44/45"
    ),
    "C": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   "
        "↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31 44/45 ↑"
    ),
    "D": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     "
        "↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31 44/45 ↑     ↑"
    ),
    "E": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     "
        "1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31 44/45 ↑     ↑     ↑"
    ),
    "F": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     1/2   "
        "2/3   3/4   5/6   7/8   10/11 14/15 21/22 ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "G": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     1/2   2/3   "
        "3/4   5/6   7/8   10/11 14/15 21/22 ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "H": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     1/2   2/3   3/4   "
        "5/6   7/8   10/11 14/15 21/22 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "J": (
        "↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     1/2   2/3   3/4   5/6   "
        "7/8   10/11 14/15 21/22 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "K": (
        "↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   "
        "10/11 14/15 21/22 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "L": (
        "↓     ↓     ↓     ↓     0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 "
        "14/15 21/22 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "M": (
        "↓     ↓     ↓     0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 "
        "21/22 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "N": (
        "↓     ↓     0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "P": (
        "↓     0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "Q": (
        "0/1   ↑     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 ↑     ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "R": (
        "↑     ↑     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 ↑     ↑     ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
}
TABLE_II_B: Final[Mapping[str, str]] = {
    #    0.010 0.015 0.025 0.040 0.065 0.10  0.15  0.25  0.40  0.65  1.0   1.5   2.5
    #    4.0   6.5   10    15    25    40    65    100   150   250   400   650   1000
    "A": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "↓     ↓     ↓     ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 27/28"
    ),
    "B": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 27/28 41/42"
    ),
    "C": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 27/28 41/42 ↑"
    ),
    "D": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   "
        "↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 27/28 41/42 ↑     ↑"
    ),
    "E": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↓     "
        "↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 27/28 41/42 ↑     ↑     ↑"
    ),
    "F": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↓     ↓     "
        "1/2   2/3   3/4   5/6   8/9   12/13 18/19 ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "G": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↓     ↓     1/2   "
        "2/3   3/4   5/6   8/9   12/13 18/19 ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "H": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↓     ↓     1/2   2/3   "
        "3/4   5/6   8/9   12/13 18/19 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "J": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↓     ↓     1/2   2/3   3/4   "
        "5/6   8/9   12/13 18/19 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "K": (
        "↓     ↓     ↓     ↓     ↓     ↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   "
        "8/9   12/13 18/19 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "L": (
        "↓     ↓     ↓     ↓     ↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   "
        "12/13 18/19 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "M": (
        "↓     ↓     ↓     ↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 "
        "18/19 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "N": (
        "↓     ↓     ↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "P": (
        "↓     ↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "Q": (
        "↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 ↑     ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "R": (
        "0/1   ↑     ↓     1/2   2/3   3/4   5/6   8/9   12/13 18/19 ↑     ↑     ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "S": (
        "·     ·     1/2   ·     ·     ·     ·     ·     ·     ·     ·     ·     ·     "
        "·     ·     ·     ·     ·     ·     ·     ·     ·     ·     ·     ·     ·"
    ),
}
TABLE_II_C: Final[Mapping[str, str]] = {
    #    0.010 0.015 0.025 0.040 0.065 0.10  0.15  0.25  0.40  0.65  1.0   1.5   2.5
    #    4.0   6.5   10    15    25    40    65    100   150   250   400   650   1000
    "A": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "↓     0/1   ↓     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31"
    ),
    "B": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     "
        "0/1   ↑     ↓     ↓     1/2   2/3   3/4   5/6   7/8   10/11 14/15 21/22 30/31"
    ),
    "C": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   "
        "↑     ↓     ↓     1/2   2/3   3/4   5/6   6/7   8/9   10/11 14/15 21/22 ↑"
    ),
    "D": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     "
        "↓     ↓     1/2   2/3   3/4   5/6   6/7   8/9   10/11 14/15 21/22 ↑     ↑"
    ),
    "E": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     "
        "↓     1/2   2/3   3/4   5/6   6/7   8/9   10/11 14/15 21/22 ↑     ↑     ↑"
    ),
    "F": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     ↓     "
        "1/2   2/3   3/4   5/6   6/7   8/9   10/11 ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "G": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     ↓     1/2   "
        "2/3   3/4   5/6   6/7   8/9   10/11 ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "H": (
        "↓     ↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     ↓     1/2   2/3   "
        "3/4   5/6   6/7   8/9   10/11 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "J": (
        "↓     ↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     ↓     1/2   2/3   3/4   "
        "5/6   6/7   8/9   10/11 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "K": (
        "↓     ↓     ↓     ↓     ↓     0/1   ↑     ↓     ↓     1/2   2/3   3/4   5/6   "
        "6/7   8/9   10/11 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "L": (
        "↓     ↓     ↓     ↓     0/1   ↑     ↓     ↓     1/2   2/3   3/4   5/6   6/7   "
        "8/9   10/11 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "M": (
        "↓     ↓     ↓     0/1   ↑     ↓     ↓     1/2   2/3   3/4   5/6   6/7   8/9   "
        "10/11 ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "N": (
        "↓     ↓     0/1   ↑     ↓     ↓     1/2   2/3   3/4   5/6   6/7   8/9   10/11 "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "P": (
        "↓     0/1   ↑     ↓     ↓     1/2   2/3   3/4   5/6   6/7   8/9   10/11 ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "Q": (
        "0/1   ↑     ↑     ↓     1/2   2/3   3/4   5/6   6/7   8/9   10/11 ↑     ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
    "R": (
        "↑     ↑     ↑     1/2   2/3   3/4   5/6   6/7   8/9   10/11 ↑     ↑     ↑     "
        "↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑     ↑"
    ),
}

# ANSI/ASQ Z1.9, variability unknown, standard deviation ("s") method, single specification
# limit, form k, normal inspection. See the module docstring for sources and gaps.

#: Normal-inspection AQL columns of Z1.9 Table B-1 (percent nonconforming).
Z19_AQL_VALUES: Final[tuple[float, ...]] = (
    0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5, 10.0,
)  # fmt: skip

#: The columns of Z1.9 Table A-2, in printed order (Z1.9 has no S-1/S-2).
Z19_INSPECTION_LEVELS: Final[tuple[str, ...]] = ("S-3", "S-4", "I", "II", "III")

#: Z1.9 Table A-2: (smallest lot, largest lot or None, letters for Z19_INSPECTION_LEVELS).
#: Z1.9 splits 281-500 in two and uses letter I; its letters are not those of ISO 2859-1.
Z19_TABLE_A2: Final[tuple[tuple[int, int | None, str], ...]] = (
    #                S-3 S-4  I  II III
    (2, 8,           "B   B   B   B   C"),
    (9, 15,          "B   B   B   B   D"),
    (16, 25,         "B   B   B   C   E"),
    (26, 50,         "B   B   C   D   F"),
    (51, 90,         "B   B   D   E   G"),
    (91, 150,        "B   C   E   F   H"),
    (151, 280,       "B   D   F   G   I"),
    (281, 400,       "C   E   G   H   J"),
    (401, 500,       "C   E   G   I   J"),
    (501, 1200,      "D   F   H   J   K"),
    (1201, 3200,     "E   G   I   K   L"),
    (3201, 10000,    "F   H   J   L   M"),
    (10001, 35000,   "G   I   K   M   N"),
    (35001, 150000,  "H   J   L   N   P"),
    (150001, 500000, "H   K   M   P   P"),
    (500001, None,   "H   K   N   P   P"),
)  # fmt: skip

#: Sample size by Z1.9 code letter, s method.
Z19_SAMPLE_SIZE: Final[Mapping[str, int]] = {
    "B": 3, "C": 4, "D": 5, "E": 7, "F": 10, "G": 15, "H": 20, "I": 25, "J": 35,
    "K": 50, "L": 75, "M": 100, "N": 150, "P": 200,
}  # fmt: skip

#: Z1.9 Table B-1, normal inspection, k per Z19_AQL_VALUES column: a number, "↓" (use the
#: first plan below, with its sample size), or "?" (not found in a public source).
Z19_K_NORMAL: Final[Mapping[str, str]] = {
    #    0.10  0.15  0.25  0.40  0.65  1.0   1.5   2.5   4.0   6.5   10
    "B": "↓     ↓     ↓     ↓     ↓     ↓     ↓     1.12  0.958 0.765 0.566",
    "C": "↓     ↓     ↓     ↓     ↓     1.45  1.34  1.17  1.01  0.814 0.617",
    "D": "↓     ↓     ↓     ↓     1.65  1.53  1.40  1.24  1.07  0.874 0.675",
    "E": "↓     ↓     2.00  1.88  1.75  1.62  1.50  1.33  1.15  0.955 0.755",
    "F": "↓     2.24  2.11  1.98  1.84  1.72  1.58  1.41  1.23  1.03  0.828",
    "G": "2.42  2.32  2.20  2.06  1.91  1.79  1.65  ?     ?     ?     ?",
    "H": "2.47  2.36  2.24  2.11  1.96  1.82  1.69  ?     ?     ?     ?",
    "I": "2.50  2.40  2.26  2.14  1.98  1.85  1.72  ?     ?     ?     ?",
    "J": "2.54  2.45  2.31  2.18  2.03  1.89  1.76  ?     ?     ?     ?",
    "K": "2.60  2.50  2.35  2.22  2.08  1.93  1.80  ?     ?     ?     ?",
    "L": "2.66  2.55  2.41  2.27  2.12  1.98  1.84  ?     ?     ?     ?",
    "M": "2.69  2.58  2.43  2.29  2.14  2.00  1.86  ?     ?     ?     ?",
    "N": "2.73  2.61  2.47  2.33  2.18  2.03  1.89  ?     ?     ?     ?",
    "P": "2.73  2.62  2.47  2.33  2.18  2.04  1.89  ?     ?     ?     ?",
}
