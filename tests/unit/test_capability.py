import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daq.model import Limits
from daq.quality.capability import capability, capability_of
from daq.quality.spc import constants


def test_two_sided_textbook_numbers():
    # Centred process: LSL 38, USL 62, s = 1.75, n = 20 (Montgomery's Cp interval example).
    # Cp = 24/(6·1.75) = 2.29; 95 % CI 2.29·√(χ²(.025,19)/19) … √(χ²(.975,19)/19) = 1.57…3.01
    # in the book, which multiplies the rounded 2.29; unrounded the lower end is 1.565.
    r = capability(mean=50.0, n=20, limits=Limits(38.0, 62.0), sigma_within=1.75)
    assert r.cp is not None
    assert r.cp.value == pytest.approx(24 / 10.5)
    assert r.cp.lower == pytest.approx(1.57, abs=0.006)
    assert r.cp.upper == pytest.approx(3.01, abs=0.005)
    assert r.cp.lower == pytest.approx(24 / 10.5 * math.sqrt(8.9065 / 19), abs=1e-4)
    assert r.cpk is not None
    assert r.cpk.value == pytest.approx(r.cp.value)
    assert r.pp is None
    assert r.ppk is None


def test_off_centre_indices():
    r = capability(mean=10.0, n=50, limits=Limits(9.7, 10.4), sigma_within=0.1)
    assert r.cp is not None
    assert r.cpl is not None
    assert r.cpu is not None
    assert r.cpk is not None
    assert r.cp.value == pytest.approx(0.7 / 0.6)
    assert r.cpl.value == pytest.approx(1.0)
    assert r.cpu.value == pytest.approx(4 / 3)
    assert r.cpk == r.cpl


def test_bissell_interval_for_cpk():
    # Cpk = 1.33 from n = 20: 1.33 ± 1.96·√(1/180 + 1.33²/38) = 0.88 … 1.78 (Bissell 1990,
    # Montgomery's worked example).
    r = capability(mean=62.0 - 3 * 2 * 1.33, n=20, limits=Limits(38.0, 62.0), sigma_within=2.0)
    assert r.cpk is not None
    assert r.cpk.value == pytest.approx(1.33)
    assert (round(r.cpk.lower, 2), round(r.cpk.upper, 2)) == (0.88, 1.78)
    half = 1.959964 * math.sqrt(1 / 180 + 1.33**2 / 38)
    assert r.cpk.upper - r.cpk.value == pytest.approx(half, abs=1e-6)


def test_minimum_thickness_is_one_sided():
    # A 2.5 µm minimum, process at 3.0 µm with σ 0.15: Cpl = 0.5/0.45 = 1.11.
    r = capability(mean=3.0, n=30, limits=Limits(low=2.5), sigma_within=0.15)
    assert r.cpl is not None
    assert r.cpl.value == pytest.approx(0.5 / 0.45)
    assert r.cp is None
    assert r.cpu is None
    assert r.cpk == r.cpl
    assert r.usl is None


def test_maximum_only():
    r = capability(mean=3.0, n=30, limits=Limits(high=4.0), sigma_within=0.25)
    assert r.cpu is not None
    assert r.cpu.value == pytest.approx(4 / 3)
    assert r.cp is None
    assert r.cpl is None
    assert r.cpk == r.cpu


def test_pp_uses_overall_sigma():
    r = capability(mean=3.0, n=30, limits=Limits(2.5, 3.5), sigma_within=0.1, sigma_overall=0.125)
    assert r.cp is not None
    assert r.pp is not None
    assert r.ppk is not None
    assert r.cp.value == pytest.approx(1 / 0.6)
    assert r.pp.value == pytest.approx(1 / 0.75)
    assert r.ppk.value == pytest.approx(0.5 / 0.375)
    only_p = capability(mean=3.0, n=30, limits=Limits(low=2.5), sigma_overall=0.125)
    assert only_p.cpl is None
    assert only_p.ppl is not None
    assert only_p.ppk == only_p.ppl


@pytest.mark.parametrize("n", [5, 10, 30, 100, 1000])
def test_interval_contains_the_estimate(n):
    r = capability(mean=3.1, n=n, limits=Limits(2.5, 3.5), sigma_within=0.1, sigma_overall=0.12)
    for est in (r.cp, r.cpl, r.cpu, r.cpk, r.pp, r.ppl, r.ppu, r.ppk):
        assert est is not None
        assert est.lower < est.value < est.upper


def test_interval_narrows_with_n():
    def widths(n):
        r = capability(mean=3.1, n=n, limits=Limits(2.5, 3.5), sigma_within=0.1)
        assert r.cp is not None
        assert r.cpk is not None
        return r.cp.upper - r.cp.lower, r.cpk.upper - r.cpk.lower

    ns = [3, 5, 10, 30, 100, 1000]
    cp_widths, cpk_widths = zip(*(widths(n) for n in ns), strict=True)
    assert list(cp_widths) == sorted(cp_widths, reverse=True)
    assert list(cpk_widths) == sorted(cpk_widths, reverse=True)


def test_confidence_level_widens_the_interval():
    narrow = capability(mean=3.0, n=25, limits=Limits(low=2.5), sigma_within=0.15, confidence=0.9)
    wide = capability(mean=3.0, n=25, limits=Limits(low=2.5), sigma_within=0.15, confidence=0.99)
    assert narrow.cpl is not None
    assert wide.cpl is not None
    assert wide.cpl.lower < narrow.cpl.lower


def test_dof_for_sigma_from_subgroups():
    base = capability(mean=0.0, n=100, limits=Limits(-1.0, 1.0), sigma_within=0.2)
    fewer = capability(mean=0.0, n=100, limits=Limits(-1.0, 1.0), sigma_within=0.2, dof=20.0)
    assert base.cp is not None
    assert fewer.cp is not None
    assert fewer.cp.upper - fewer.cp.lower > base.cp.upper - base.cp.lower


def test_capability_of_values():
    values = [3.0, 3.2, 2.9, 3.1, 3.0, 2.8, 3.1, 3.0]
    r = capability_of(values, Limits(low=2.5))
    n = len(values)
    mean = sum(values) / n
    overall = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    mr = sum(abs(b - a) for a, b in itertools.pairwise(values)) / (n - 1)
    assert r.mean == pytest.approx(mean)
    assert r.sigma_overall == pytest.approx(overall)
    assert r.sigma_within == pytest.approx(mr / constants(2).d2)
    assert r.ppl is not None
    assert r.ppl.value == pytest.approx((mean - 2.5) / (3 * overall))
    given_sigma = capability_of(values, Limits(low=2.5), sigma_within=0.1)
    assert given_sigma.sigma_within == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 1}, "at least 2"),
        ({"sigma_within": 0.0}, "positive"),
        ({"sigma_within": -0.1}, "positive"),
        ({"sigma_within": math.nan}, "positive"),
        ({"sigma_within": None}, "sigma_within"),
        ({"limits": Limits()}, "at least one specification limit"),
        ({"limits": Limits(3.5, 2.5)}, "LSL must be below USL"),
        ({"limits": Limits(3.0, 3.0)}, "LSL must be below USL"),
        ({"limits": Limits(low=-math.inf)}, "finite"),
        ({"confidence": 1.0}, "confidence"),
        ({"mean": math.inf}, "mean"),
        ({"dof": 0.0}, "dof"),
    ],
)
def test_degenerate_input_is_refused(kwargs, message):
    args = {"mean": 3.0, "n": 10, "limits": Limits(2.5, 3.5), "sigma_within": 0.1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        capability(**args)


def test_degenerate_values_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        capability_of([3.0], Limits(low=2.5))
    with pytest.raises(ValueError, match="σ = 0"):
        capability_of([3.0, 3.0, 3.0], Limits(low=2.5))
    with pytest.raises(ValueError, match="not finite"):
        capability_of([3.0, math.nan], Limits(low=2.5))


def close(a, b):
    assert a is not None
    assert b is not None
    for x, y in ((a.value, b.value), (a.lower, b.lower), (a.upper, b.upper)):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    mean=st.floats(-100, 100),
    sigma=st.floats(1e-2, 10),
    lsl=st.floats(-200, 200),
    width=st.floats(1e-2, 100),
    n=st.integers(2, 500),
    one_sided=st.sampled_from(["both", "low", "high"]),
)
def test_capability_is_symmetric_under_reflection(mean, sigma, lsl, width, n, one_sided):
    usl = lsl + width
    low = None if one_sided == "high" else lsl
    high = None if one_sided == "low" else usl
    r = capability(
        mean=mean, n=n, limits=Limits(low, high), sigma_within=sigma, sigma_overall=sigma * 1.1
    )
    m = capability(
        mean=-mean,
        n=n,
        limits=Limits(None if high is None else -high, None if low is None else -low),
        sigma_within=sigma,
        sigma_overall=sigma * 1.1,
    )
    for a, b in ((r.cpl, m.cpu), (r.cpu, m.cpl), (r.ppl, m.ppu), (r.ppu, m.ppl)):
        assert (a is None) == (b is None)
        if a is not None:
            close(a, b)
    close(r.cpk, m.cpk)
    close(r.ppk, m.ppk)
    assert (r.cp is None) == (m.cp is None)
    if r.cp is not None:
        close(r.cp, m.cp)
