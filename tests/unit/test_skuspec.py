from pathlib import Path

import pytest

from daq.errors import ConfigError
from daq.lots import Baseline, Lot
from daq.model import LotContext
from daq.quality.readiness import readiness
from daq.skuspec import SpecLibrary, load_spec, quantity
from daq.specs import ConfiguredLimits

SPECS = Path(__file__).resolve().parents[2] / "config" / "specs"


def test_shipped_specs_load():
    lib = SpecLibrary.load(SPECS)
    assert {f.spec.sku for f in lib} == {
        "VRM-RING-001",
        "RHD-PEND-014",
        "GPB-NECK-203",
        "KID-BRAC-007",
        "HMK-CHRM-100",
    }


def test_quantities_convert_to_canonical_units():
    assert quantity("2 in-lbf", "torque") == pytest.approx(0.2259697)
    assert quantity("15 lbf", "force") == pytest.approx(66.7233)
    assert quantity("100 µin", "length") == pytest.approx(2.54)
    with pytest.raises(ValueError, match="write a number and a unit"):
        quantity("2.5", "length")
    with pytest.raises(ValueError, match="is a force unit, not torque"):
        quantity("2 N", "torque")


def test_vermeil_features():
    f = load_spec(SPECS / "VRM-RING-001.A.toml")
    feats = f.spec.features()
    au = feats[("thickness", "layer_Au")]
    assert (au.low, au.high) == (2.5, 4.5)
    assert au.uncertainty == pytest.approx(0.25)  # 10 % of the minimum
    assert feats[("force", "stone_retention_center")].low == 45.0
    assert len(f.sha256) == 64


def test_children_holds_in_canonical_units():
    feats = load_spec(SPECS / "KID-BRAC-007.A.toml").spec.features()
    assert feats[("torque", "charm_torque")].low == pytest.approx(0.45194, rel=1e-4)  # 4 in-lbf
    assert feats[("force", "charm_tension")].low == pytest.approx(66.723, rel=1e-4)  # 15 lbf


def test_bad_spec_lists_every_problem(tmp_path):
    bad = tmp_path / "X.toml"
    bad.write_text(
        'schema = 1\nsku = "X"\nrevision = "A"\ntitle = "t"\ncategory = "ring"\n'
        'base_metal = "925"\ncolour = "red"\n'
        '[[plating]]\nlayer = "Au"\nover = "Ag"\nmin = "2.5"\n'
        '[[stone]]\nposition = "c"\nkind = "cz"\nsize_mm = -1\nsetting = "prong"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_spec(bad)
    text = str(info.value)
    assert "colour: is not a known setting" in text
    assert "plating.0.min: write a number and a unit" in text
    assert "stone.0.size_mm: Input should be greater than 0" in text


def test_library_falls_back_to_bench_limits():
    from daq.model import Limits

    lib = SpecLibrary.load(
        SPECS, fallback=ConfiguredLimits({"c1": {"temperature": Limits(33, 37)}})
    )
    ctx = LotContext(sku="VRM-RING-001", lot="L1", phase="bulk")
    assert lib.revision(ctx) == "A"
    assert lib.limits_for("xrf", "thickness", "layer_Au", ctx).low == 2.5
    assert lib.limits_for("c1", "chamber", "temperature", ctx).high == 37
    assert lib.limits_for("c1", "chamber", "setpoint", ctx) is None


def lot(phase, decision, rev="A", drift=0):
    return Lot(
        1,
        "S",
        "PO",
        f"L-{phase}",
        phase,
        50,
        None,
        rev,
        True,
        1,
        2,
        decision,
        {"drift_alarms": drift},
    )


def test_readiness_items():
    spec = load_spec(SPECS / "VRM-RING-001.A.toml")
    features = spec.spec.features()
    bases = [Baseline("VRM-RING-001", m, f, "i", 1, 5, 1.0, 0.1, "GS", "A", 1) for m, f in features]
    ready = readiness("VRM-RING-001", spec, bases, [lot("pre-production", "accept")])
    assert all(i.ok for i in ready), [i for i in ready if not i.ok]
    drifted = readiness("VRM-RING-001", spec, bases, [lot("pre-production", "accept", drift=2)])
    assert [i.name for i in drifted if not i.ok] == ["pre-production lot"]
    old_rev = readiness("VRM-RING-001", spec, bases[:1], [lot("pre-production", "accept", "0")])
    missing = {i.name: i.detail for i in old_rev if not i.ok}
    assert "no pre-production lot under the current revision A" in missing["pre-production lot"]
    assert missing["golden-sample baseline"] == (
        "no golden-sample baseline for: corrosion rating, force stone_retention_center"
    )
    none = readiness("NOPE", None, [], [])
    assert not none[0].ok and "no spec file for NOPE" in none[0].detail
